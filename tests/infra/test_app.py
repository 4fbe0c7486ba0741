"""The CDK app as a whole: cdk-nag, cfn-lint, app.py, stack wiring."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from cfnlint.api import ManualArgs, lint_file

from tests.infra.conftest import PROJECT_ROOT, Synth

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("infra")]


def _run_app(
    tmp_path: Path, context: dict[str, Any], *python_options: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        # What the CDK CLI passes to the app it runs.
        "CDK_OUTDIR": str(tmp_path / "cdk.out"),
        "CDK_CONTEXT_JSON": json.dumps(context),
    }
    env.pop("CDK_DEFAULT_ACCOUNT", None)
    return subprocess.run(
        [sys.executable, *python_options, str(PROJECT_ROOT / "app.py")],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_synth_passes_cdk_nag_with_every_finding_acknowledged(synth: Synth) -> None:
    # The session synth ran with AwsSolutionsChecks and would have raised on a finding.
    report = synth.outdir / "validation-report.json"
    if report.exists():
        for plugin in json.loads(report.read_text())["pluginReports"]:
            assert plugin["conclusion"] == "success", plugin["violations"]


def test_every_acknowledgement_says_why(templates: dict[str, dict[str, Any]]) -> None:
    acknowledged = [
        rule
        for template in templates.values()
        for resource in template["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]

    assert any(rule["id"].startswith("AwsSolutions-") for rule in acknowledged)
    for rule in acknowledged:
        assert len(rule["reason"].split()) >= 8, rule


@pytest.mark.parametrize("stack", ["network", "cluster", "calico", "automation"])
def test_cfn_lint_reports_no_errors(synth: Synth, stack: str) -> None:
    path = synth.outdir / f"{synth.config.name}-{stack}.template.json"
    matches = lint_file(path, config=ManualArgs(regions=[synth.config.aws.region]))

    errors = [f"{m.rule.id} {m.message} ({m.path})" for m in matches if m.rule.id.startswith("E")]
    assert errors == []


def test_stacks_are_account_agnostic_in_the_configured_region(synth: Synth) -> None:
    for stack in (
        synth.stacks.network,
        synth.stacks.cluster,
        synth.stacks.calico,
        synth.stacks.automation,
    ):
        assert stack.region == synth.config.aws.region
        if not os.environ.get("CDK_DEFAULT_ACCOUNT"):
            assert cdk.Token.is_unresolved(stack.account)


def test_references_flow_from_network_to_cluster_to_calico_and_automation(synth: Synth) -> None:
    network, cluster, automation = (
        synth.stacks.network,
        synth.stacks.cluster,
        synth.stacks.automation,
    )

    assert network.dependencies == []
    assert {s.stack_name for s in cluster.dependencies} == {network.stack_name}
    assert {s.stack_name for s in automation.dependencies} == {
        network.stack_name,
        cluster.stack_name,
    }
    # Calico comes after the cluster (its installer runs in the network's private subnets);
    # nothing waits for it, so its failure stops nothing else.
    assert {s.stack_name for s in synth.stacks.calico.dependencies} == {
        network.stack_name,
        cluster.stack_name,
    }


def test_app_prints_each_config_error_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "federation.yaml"
    text = (PROJECT_ROOT / "federation.example.yaml").read_text()
    bad.write_text(text.replace("cidr: 10.100.0.0/16", "cidr: 10.244.0.0/16"))

    result = _run_app(tmp_path, {"config": str(bad)})

    assert result.returncode == 2
    assert "aws.vpc.cidr" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cdk.out" / "manifest.json").exists()


def test_app_synthesizes_every_stack_without_importing_the_handlers(
    tmp_path: Path, synth: Synth
) -> None:
    # Runs after the session synth, so the dependency cache is warm: no network needed.
    # -X importtime lists every module the app imports.
    result = _run_app(
        tmp_path, {"config": str(PROJECT_ROOT / "federation.example.yaml")}, "-X", "importtime"
    )

    assert result.returncode == 0, result.stderr[-3000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()]
    # Bundling copies the handlers; synth never imports them.
    assert "fedkeeper.config" in imported
    assert not [m for m in imported if m == "lambdas" or m.startswith("lambdas.")]
    written = sorted(p.name for p in (tmp_path / "cdk.out").glob("*.template.json"))
    assert written == [
        f"{synth.config.name}-automation.template.json",
        f"{synth.config.name}-calico.template.json",
        f"{synth.config.name}-cluster.template.json",
        f"{synth.config.name}-network.template.json",
    ]


def test_app_without_a_config_refuses_instead_of_using_the_example(tmp_path: Path) -> None:
    env = {**os.environ, "CDK_OUTDIR": str(tmp_path / "cdk.out"), "CDK_CONTEXT_JSON": "{}"}
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "app.py")],
        cwd=tmp_path,  # no federation.yaml here, and -c config=… not given
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )

    assert result.returncode == 2
    assert "-c config=" in result.stderr and "fedkeeper init" in result.stderr
    assert not (tmp_path / "cdk.out" / "manifest.json").exists()
