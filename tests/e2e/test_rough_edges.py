"""The first hour's rough edges, each with the answer a new user gets now."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from fedkeeper import cli
from fedkeeper.cli import install_command, main
from fedkeeper.config import load_config
from fedkeeper.events import FederationNetwork, rules
from fedkeeper.sandbox.scenarios import SCENARIOS
from tests.conftest import EXAMPLE, ROOT

CFG = ["-c", str(EXAMPLE)]
EVENTS = ROOT / "tests" / "events"


# --- arguments ------------------------------------------------------------------------------


def test_a_config_path_given_without_c_gets_the_command_with_c(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["status", "federation.example.yaml", "--sandbox"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("`fedkeeper status -c federation.example.yaml --sandbox`")
    assert "\n" not in err


def test_an_unknown_region_is_refused_with_the_nearest_real_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plan", "--sandbox", "--region", "eu-wst-1", *CFG]) == 2
    captured = capsys.readouterr()
    assert "--region 'eu-wst-1' is not an AWS region; did you mean eu-west-1?" in captured.err
    assert captured.out == ""  # refused before anything started


def test_a_region_the_sandbox_does_not_run_in_is_refused_not_ignored(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plan", "--sandbox", "--region", "us-east-1", *CFG]) == 2
    err = capsys.readouterr().err
    assert "the sandbox runs in the config's region (eu-west-1" in err


def test_an_unknown_scenario_gets_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--sandbox", "--scenario", "rcc-deleted-ekss", *CFG]) == 2
    assert "did you mean rcc-deleted-eks?" in capsys.readouterr().err


# --- the demo -------------------------------------------------------------------------------


def test_demo_list_json_prints_the_scenarios_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--list", "--json", *CFG]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["scenario"] for s in listed] == list(SCENARIOS)
    assert all(s["description"] for s in listed)


def test_an_event_file_that_is_no_eventbridge_event_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    assert main(["demo", "--event", str(empty), *CFG]) == 2
    captured = capsys.readouterr()
    assert "not an EventBridge event: 'source' is absent" in captured.err
    assert captured.out == ""


NETWORK = FederationNetwork("vpc-1", "vgw-1", "vpn-1", ("rtb-1",), ("subnet-1",))


def _event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def test_each_rule_says_which_field_rejects_an_event() -> None:
    from fedkeeper.sandbox.world import rule_mismatch

    event = _event("cloudtrail_ec2_DisableVgwRoutePropagation.json")
    event["detail"]["eventName"] = "CreateVpc"
    reasons = {r.name: rule_mismatch(r, event) for r in rules(load_config(EXAMPLE), NETWORK)}
    assert reasons["tunnel-state"] == "source is 'aws.ec2'; the rule wants ['aws.cloudwatch']"
    route = reasons["route-change"]
    assert route is not None
    assert route.startswith("detail.eventName is 'CreateVpc'; the rule wants [")
    assert "'DisableVgwRoutePropagation'" in route


def test_a_rule_narrowed_to_the_network_names_the_id_it_does_not_know() -> None:
    from fedkeeper.sandbox.world import rule_mismatch

    event = _event("cloudtrail_ec2_DisableVgwRoutePropagation.json")
    route = next(r for r in rules(load_config(EXAMPLE), NETWORK) if r.name == "route-change")
    reason = rule_mismatch(route, event)
    assert reason is not None
    assert reason.startswith("detail.requestParameters.")
    assert "the rule wants ['" in reason


def test_a_matching_rule_has_no_mismatch() -> None:
    from fedkeeper.sandbox.world import rule_mismatch

    schedule = next(r for r in rules(load_config(EXAMPLE)) if r.name == "schedule")
    assert rule_mismatch(schedule, _event("scheduled_event.json")) is None


@pytest.mark.slow
def test_demo_event_no_rule_matches_names_each_rule_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = _event("cloudtrail_ec2_DisableVgwRoutePropagation.json")
    event["detail"]["eventName"] = "CreateVpc"
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))

    assert main(["demo", "--event", str(path), *CFG]) == 0

    out = capsys.readouterr().out
    assert "no deployed rule matches this event" in out
    assert "rule route-change (on_route_change): detail.eventName is 'CreateVpc'" in out
    assert "rule schedule (repair): source is 'aws.ec2'; the rule wants ['aws.events']" in out


# --- adopt --only ------------------------------------------------------------------------------


@pytest.mark.slow
def test_adopt_only_naming_nothing_exits_2_and_adopts_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import fedkeeper.adopt

    modes: list[str] = []
    real = fedkeeper.adopt.adopt

    def spy(conns: Any, mode: Any, **kwargs: Any) -> Any:
        modes.append(mode)
        return real(conns, mode, **kwargs)

    monkeypatch.setattr(fedkeeper.adopt, "adopt", spy)
    only = ["--only", "onprem/IPPool/nope"]
    code = main(["adopt", "--apply", *only, "--sandbox", "--scenario", "adopt-manual-setup", *CFG])

    err = capsys.readouterr().err
    assert code == 2
    assert "--only 'onprem/IPPool/nope' names no object `fedkeeper adopt` lists" in err
    assert "did you mean onprem/IPPool/aws-cluster-vpc?" in err
    assert "Nothing was adopted" in err
    assert modes == ["plan"]


# --- installation --------------------------------------------------------------------------


def test_without_the_sandbox_extra_the_hint_installs_it_from_where_fedkeeper_came() -> None:
    script = (
        "import sys; sys.modules['jsonschema'] = None\n"
        "from fedkeeper.cli import main\n"
        "raise SystemExit(main(['status', '--sandbox', '-c', 'federation.example.yaml']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    err = result.stderr.strip()
    assert err.startswith("fedkeeper: the sandbox is not installed (no module 'jsonschema')")
    assert "[sandbox]'`" in err
    assert "`pip install fedkeeper`" not in err


def test_the_install_hint_follows_the_way_fedkeeper_was_installed(tmp_path: Path) -> None:
    checkout = {"url": f"file://{tmp_path}", "dir_info": {}}
    editable = {"url": f"file://{tmp_path}", "dir_info": {"editable": True}}
    assert install_command("sandbox", None, tmp_path) == "pip install 'fedkeeper[sandbox]'"
    assert install_command("sandbox", checkout, tmp_path) == "pip install '.[sandbox]'"
    assert install_command("sandbox", editable, tmp_path) == "pip install -e '.[sandbox]'"
    elsewhere = install_command(None, checkout, Path("/"))
    assert elsewhere == f"pip install '{tmp_path}'"


def test_every_requirement_of_the_sandbox_extra_is_known_to_the_hint() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extra = pyproject["project"]["optional-dependencies"]["sandbox"]
    names = {req.split("[")[0].split(">")[0].split("<")[0].split("=")[0] for req in extra}
    assert names <= cli.SANDBOX_MODULES


# --- make, git, warnings ------------------------------------------------------------------------


def test_make_test_names_each_phase_before_it_runs() -> None:
    dry = subprocess.run(
        ["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    order = [
        ("==> lint", "ruff check"),
        ("==> types", "mypy"),
        ("==> docs", "docgen --check"),
        ("==> tests", "pytest"),
    ]
    for label, tool in order:
        labelled = next(i for i, line in enumerate(dry) if label in line)
        runs = next(i for i, line in enumerate(dry) if tool in line and "echo" not in line)
        assert labelled < runs, f"{label} comes after {tool}"


def test_make_keeps_setuptools_quiet_unless_the_install_fails() -> None:
    makefile = (ROOT / "Makefile").read_text()
    step = makefile.split('"[3/3]', 1)[1].split("@touch", 1)[0]
    assert "pip install --quiet --no-deps -e . > $(VENV)/install.log 2>&1" in step
    assert "|| { cat $(VENV)/install.log; exit 1; }" in step


def test_what_pip_install_leaves_behind_is_ignored_by_git() -> None:
    for path in ("build/lib/fedkeeper/cli.py", "dist/fedkeeper-0.1.0.tar.gz"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False)
        assert ignored.returncode == 0, f"{path} is not ignored"


def test_deprecation_warnings_from_the_projects_own_code_fail_the_tests() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    filters = pyproject["tool"]["pytest"]["ini_options"]["filterwarnings"]
    assert "error::DeprecationWarning:(fedkeeper|lambdas|stacks|docgen|app)\\b" in filters
