"""One exit-code contract for every command: 0 converged or healthy, 1 drift planned or left
or a failure, 2 bad input, 130 interrupted (the last is driven in tests/e2e/bad_inputs.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from fedkeeper.cli import EXIT_CODES, build_parser, main
from fedkeeper.sandbox.kube_server import FakeKubeServer
from tests.conftest import EXAMPLE

CFG = ["-c", str(EXAMPLE)]
FAULT = ["--scenario", "route-propagation-disabled"]

pytestmark = pytest.mark.xdist_group("exit-codes")


def test_every_commands_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) >= {
        "init",
        "validate",
        "plan",
        "apply",
        "status",
        "adopt",
        "invoke",
        "onprem-bootstrap",
        "demo",
    }
    for name in [None, *commands]:
        with pytest.raises(SystemExit) as done:
            main([name, "--help"] if name else ["--help"])
        assert done.value.code == 0
        assert EXIT_CODES in capsys.readouterr().out


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("fedkeeper 0.")


# --- init -------------------------------------------------------------------------------------


def test_init_writes_the_commented_example_then_refuses_to_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    written = (tmp_path / "federation.yaml").read_text()
    assert written == EXAMPLE.read_text()
    assert main(["validate"]) == 0  # ./federation.yaml is now the default
    (tmp_path / "federation.yaml").write_text("# mine\n")
    capsys.readouterr()
    assert main(["init"]) == 2
    assert "never overwrites" in capsys.readouterr().err
    assert (tmp_path / "federation.yaml").read_text() == "# mine\n"


# --- validate ---------------------------------------------------------------------------------


def test_validate_exits_0_on_a_valid_file_and_2_on_an_invalid_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", *CFG]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert f"config {EXAMPLE} · federation fed-demo · account" in first
    assert "region eu-west-1" in first
    bad = tmp_path / "f.yaml"
    bad.write_text(EXAMPLE.read_text().replace("vgw_asn: 64512", "vgw_asn: 1"))
    assert main(["validate", str(bad)]) == 2


def test_validate_json_gives_the_errors_to_machines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    bad = tmp_path / "f.yaml"
    bad.write_text(EXAMPLE.read_text().replace("cidr: 10.100.0.0/16", "cidr: fd00::/64"))
    assert main(["validate", "-c", str(bad), "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is False
    assert out["errors"] == ["aws.vpc.cidr: 'fd00::/64' is IPv6; fedkeeper manages IPv4 CIDRs only"]
    assert main(["validate", "-c", str(EXAMPLE), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["federation"] == "fed-demo"


# --- plan and apply ---------------------------------------------------------------------------


def test_plan_exits_0_when_converged(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--sandbox", *CFG]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"fedkeeper plan · config {EXAMPLE} · federation fed-demo")
    assert "account sandbox · region eu-west-1" in lines[0]


def test_plan_exits_1_when_it_plans_a_change(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--sandbox", *FAULT, *CFG]) == 1
    assert "[planned] update aws/RouteTable/" in capsys.readouterr().out


def test_apply_exits_0_when_it_repairs_everything(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["apply", "--sandbox", *FAULT, *CFG]) == 0
    assert "[applied] update aws/RouteTable/" in capsys.readouterr().out


def test_apply_under_the_kill_switch_exits_1_and_says_where_it_came_from(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FEDKEEPER_MODE", "plan")
    assert main(["apply", "--sandbox", *FAULT, *CFG]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "KILL SWITCH ON (FEDKEEPER_MODE=plan): planning only, nothing will be written"
    assert any("[planned] update aws/RouteTable/" in line for line in out)


def test_the_configs_kill_switch_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "federation.yaml"
    cfg.write_text(EXAMPLE.read_text().replace("mode: apply", "mode: plan"))
    assert main(["apply", "--sandbox", "--scope", "vpn", "-c", str(cfg)]) == 0
    assert f"KILL SWITCH ON (mode: plan in {cfg})" in capsys.readouterr().out


# --- status -----------------------------------------------------------------------------------


def test_status_exits_0_when_healthy_and_1_when_not(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--sandbox", *CFG]) == 0
    capsys.readouterr()
    assert main(["status", "--sandbox", *FAULT, *CFG]) == 1
    out = capsys.readouterr().out
    assert "routes   broken" in out
    assert f"→ fix: fedkeeper apply --scope routes -c {EXAMPLE} --sandbox" in out


# --- invoke -----------------------------------------------------------------------------------


def test_invoke_plan_exits_0_when_the_function_reports_converged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["invoke", "plan", "--sandbox", *CFG]) == 0
    assert "converged" in capsys.readouterr().out


def test_invoke_status_shows_the_health_view(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invoke", "status", "--sandbox", *CFG]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "federation: healthy"
    assert any(line.startswith("  routes   healthy") for line in out)


def test_invoke_exits_1_when_the_function_cannot_be_called(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["invoke", "plan", "--sandbox", "--function", "nope", *CFG]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("fedkeeper: ") and "nope" in err[0]


# --- onprem-bootstrap -------------------------------------------------------------------------


def _kubeconfig(server: FakeKubeServer, tmp_path: Path) -> Path:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(server.kubeconfig(context="site-a")))
    return path


def test_bootstrap_prints_its_manifests_with_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["onprem-bootstrap", *CFG]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("# fedkeeper onprem-bootstrap · config ")


def test_bootstrap_reconciles_a_cut_down_role_showing_the_diff_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rbac = "rbac.authorization.k8s.io/v1"
    with FakeKubeServer("onprem", token="admin") as server:
        kubeconfig = _kubeconfig(server, tmp_path)
        out_file = tmp_path / "fedkeeper.yaml"
        args = ["onprem-bootstrap", *CFG, "--apply", "--context", "site-a"]
        args += ["--kubeconfig", str(kubeconfig), "--write-kubeconfig", str(out_file)]
        assert main(args) == 0
        full = server.get_object(rbac, "ClusterRole", "fedkeeper-reconciler")
        assert full is not None and len(full["rules"]) > 1
        server.mutate(
            rbac,
            "ClusterRole",
            "fedkeeper-reconciler",
            None,
            lambda o: o.update(rules=o["rules"][:1]),
        )
        capsys.readouterr()

        assert main([*args, "--dry-run"]) == 1  # drift planned
        dry = capsys.readouterr().out
        assert "update    ClusterRole /fedkeeper-reconciler" in dry
        assert f"rules: 1 → {len(full['rules'])}" in dry
        assert "nothing was written" in dry
        cut = server.get_object(rbac, "ClusterRole", "fedkeeper-reconciler")
        assert cut is not None and len(cut["rules"]) == 1

        assert main(args) == 0
        out = capsys.readouterr().out
        assert out.index("update    ClusterRole") < out.index("updated   ClusterRole")
        fixed = server.get_object(rbac, "ClusterRole", "fedkeeper-reconciler")
        assert fixed is not None and fixed["rules"] == full["rules"]

        assert main([*args, "--dry-run"]) == 0  # converged
        assert "0 object(s) would change" in capsys.readouterr().out
        assert os.stat(out_file).st_mode & 0o777 == 0o600


# --- demo -------------------------------------------------------------------------------------


def test_demo_exits_0_when_its_scenario_heals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--scenario", "route-propagation-disabled", *CFG]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"fedkeeper demo · config {EXAMPLE} · federation fed-demo · account sandbox · "
        "region eu-west-1"
    )
    assert "\033[" not in "\n".join(lines)  # not a terminal: no colour codes


def test_invoke_apply_says_when_the_deployed_kill_switch_is_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "federation.yaml"
    cfg.write_text(EXAMPLE.read_text().replace("mode: apply", "mode: plan"))
    assert main(["invoke", "apply", "--sandbox", "--scope", "vpn", "-c", str(cfg)]) == 0
    assert "KILL SWITCH ON in the deployed function" in capsys.readouterr().out
