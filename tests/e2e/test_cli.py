"""The operator's commands as a user runs them: status, invoke, onprem-bootstrap, plan."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from fedkeeper.cli import main
from fedkeeper.sandbox.kube_server import FakeKubeServer
from tests.conftest import EXAMPLE

CFG = ["--config", str(EXAMPLE)]


def test_status_on_a_healthy_sandbox(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--sandbox", *CFG]) == 0
    first, second, *_ = capsys.readouterr().out.splitlines()
    assert first.startswith("fedkeeper status · config ")
    assert "federation fed-demo · account sandbox · region eu-west-1" in first
    assert second == "federation: healthy"


def test_status_names_a_broken_scenario_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--sandbox", "--scenario", "rcc-deleted-eks", "--json", *CFG]) == 1
    status = json.loads(capsys.readouterr().out)
    assert status["health"] == "broken"
    rcc = next(s for s in status["sections"] if s["invariant"] == "rcc")
    assert any("RemoteClusterConfiguration onprem is missing" in r for r in rcc["reasons"])


def test_plan_against_the_sandbox_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--sandbox", "--json", "--scope", "routes,vpn", *CFG]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mode"] == "plan" and report["scope"] == ["vpn", "routes"]
    assert report["changes"] == []


def test_plan_rejects_an_unknown_scope(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--sandbox", "--scope", "dns", *CFG]) == 2
    assert "--scope: unknown scope 'dns'" in capsys.readouterr().err


def test_invoke_calls_the_repair_function(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invoke", "plan", "--sandbox", *CFG]) == 0
    out = capsys.readouterr().out
    assert "trigger: manual plan" in out and "converged" in out


def test_invoke_refuses_an_unknown_scope_before_calling_the_function(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["invoke", "apply", "--sandbox", "--scope", "bogus", *CFG]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no sandbox started, nothing invoked
    assert "--scope: unknown scope 'bogus'" in captured.err


def test_onprem_bootstrap_prints_applicable_manifests(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["onprem-bootstrap", *CFG]) == 0
    out = capsys.readouterr().out
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert [(d["kind"], d["metadata"].get("namespace", "")) for d in docs] == [
        ("Namespace", ""),
        ("ServiceAccount", "fedkeeper"),
        ("Secret", "fedkeeper"),
        ("Namespace", ""),
        ("Namespace", ""),
        ("ClusterRole", ""),
        ("ClusterRoleBinding", ""),
        ("Role", "calico-system"),
        ("RoleBinding", "calico-system"),
        ("Role", "fedkeeper-access"),
        ("RoleBinding", "fedkeeper-access"),
    ]
    assert "aws secretsmanager put-secret-value" in out
    cluster_rules = docs[5]["rules"]
    assert {"apiGroups": ["projectcalico.org"], "resources": ["ippools"]} in [
        {k: r[k] for k in ("apiGroups", "resources")} for r in cluster_rules
    ]
    assert not any("secrets" in r["resources"] for r in cluster_rules)  # only per namespace
    for rules in (cluster_rules, docs[7]["rules"], docs[9]["rules"]):
        assert not any("*" in r["verbs"] or "*" in r["resources"] for r in rules)


def test_onprem_bootstrap_applies_and_writes_a_token_kubeconfig(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeKubeServer("onprem", token="admin") as server:
        kubeconfig = tmp_path / "config"
        kubeconfig.write_text(yaml.safe_dump(server.kubeconfig(context="site-a")))
        out_file = tmp_path / "fedkeeper-onprem.yaml"
        code = main(
            [
                "onprem-bootstrap",
                *CFG,
                "--apply",
                "--context",
                "site-a",
                "--kubeconfig",
                str(kubeconfig),
                "--write-kubeconfig",
                str(out_file),
            ]
        )
        assert code == 0, capsys.readouterr().err
        written = yaml.safe_load(out_file.read_text())
        token = written["users"][0]["user"]["token"]
        assert token and token != "admin"
        assert server.authenticates(token)  # a real service-account token of that cluster
        assert written["clusters"][0]["cluster"]["server"] == "https://192.168.10.10:6443"
        assert stat.S_IMODE(os.stat(out_file).st_mode) == 0o600
        assert server.get_object(
            "rbac.authorization.k8s.io/v1", "ClusterRole", "fedkeeper-reconciler"
        )
        # Idempotent: a second run creates nothing.
        assert (
            main(
                [
                    "onprem-bootstrap",
                    *CFG,
                    "--apply",
                    "--context",
                    "site-a",
                    "--kubeconfig",
                    str(kubeconfig),
                    "--write-kubeconfig",
                    str(out_file),
                ]
            )
            == 0
        )
        assert "created" not in capsys.readouterr().out.split("wrote")[-2]


def test_onprem_bootstrap_apply_needs_a_context(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["onprem-bootstrap", *CFG, "--apply"]) == 2
    assert "--context" in capsys.readouterr().err


def test_plan_and_apply_against_real_targets_through_local_contexts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The laptop path: the operator's own AWS session and kubeconfig contexts.

    The sandbox stands in for the account and the clusters; the CLI builds its own
    boto3.Session (here handed out by the sandbox, as an AWS profile would be) and reaches
    both clusters through contexts of an ordinary kubeconfig file.
    """
    import boto3

    from fedkeeper.config import load_config
    from fedkeeper.sandbox import Sandbox

    with Sandbox.start(load_config(EXAMPLE)) as sb:
        operator_session = sb.aws.session()
        monkeypatch.setattr(boto3, "Session", lambda **_: operator_session)
        eks = sb.eks_server.kubeconfig(context="eks-admin")
        onprem = sb.onprem_server.kubeconfig(context="onprem-admin")
        merged = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": eks["clusters"] + onprem["clusters"],
            "users": eks["users"] + onprem["users"],
            "contexts": eks["contexts"] + onprem["contexts"],
            "current-context": "eks-admin",
        }
        kubeconfig = tmp_path / "config"
        kubeconfig.write_text(yaml.safe_dump(merged))
        b = sb.baseline
        assert b is not None
        sb.aws_session().client("ec2").disable_vgw_route_propagation(
            RouteTableId=b.private_route_table_ids[0], GatewayId=b.vgw_id
        )
        sb.eks_server.delete_object("projectcalico.org/v3", "RemoteClusterConfiguration", "onprem")
        args = [
            *CFG,
            "--kubeconfig",
            str(kubeconfig),
            "--eks-context",
            "eks-admin",
            "--onprem-context",
            "onprem-admin",
            "--profile",
            "ops",
        ]
        assert main(["plan", *args]) == 1  # drift planned
        planned = capsys.readouterr().out
        assert "[planned] update aws/RouteTable/" in planned
        assert "[planned] create fed-eks/RemoteClusterConfiguration/onprem" in planned
        assert main(["apply", *args]) == 0
        assert "converged" in capsys.readouterr().out
        assert main(["status", *args]) == 0


@pytest.mark.parametrize(
    "command", [["plan"], ["status"], ["invoke", "plan"], ["demo"], ["onprem-bootstrap"]]
)
def test_every_command_refuses_a_bad_config_the_same_way(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    bad = tmp_path / "federation.yaml"
    bad.write_text("name: Not_A_Label\n")
    assert main([*command, "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fedkeeper: {bad}: 4 errors")
    assert "name:" in err and "aws: is required" in err
    assert "Traceback" not in err


def test_the_run_budget_given_with_deadline_reaches_the_engine(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import fedkeeper.service
    from fedkeeper.cli import main

    budgets: list[float | None] = []
    real = fedkeeper.service.reconcile

    def spy(*args: Any, **kwargs: Any) -> Any:
        budgets.append(kwargs.get("deadline_s"))
        return real(*args, **kwargs)

    monkeypatch.setattr(fedkeeper.service, "reconcile", spy)
    assert main(["plan", "--sandbox", "--deadline", "120", "-c", str(EXAMPLE)]) == 0
    assert main(["plan", "--sandbox", "-c", str(EXAMPLE)]) == 0
    capsys.readouterr()
    # The sandbox converges its baseline first (no budget); then the CLI's run.
    assert [b for b in budgets if b is not None] == [120.0, 280.0]
