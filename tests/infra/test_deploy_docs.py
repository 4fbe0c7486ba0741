"""docs/DEPLOY.md's figures are the synthesized templates': they cannot drift again."""

from __future__ import annotations

import collections
import re
from typing import Any

import pytest

from fedkeeper.rbac import RECONCILER_GROUP
from stacks.costs import cost_table
from tests.infra.conftest import PROJECT_ROOT, MeshSynth, Synth

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("infra")]

DEPLOY = PROJECT_ROOT / "docs" / "DEPLOY.md"


def _by_stack(templates: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name.rsplit("-", 1)[-1]: t for name, t in templates.items()}


def _block(name: str) -> str:
    text = DEPLOY.read_text(encoding="utf-8")
    match = re.search(rf"<!-- {name} -->\n(.*?)\n<!-- /{name} -->", text, re.S)
    assert match, f"docs/DEPLOY.md has no <!-- {name} --> block"
    return match.group(1)


def _count(template: dict[str, Any], kind: str) -> int:
    return sum(r["Type"] == kind for r in template["Resources"].values())


def test_the_documented_stacks_functions_alarms_rules_and_keys_are_the_templates(
    templates: dict[str, dict[str, Any]],
) -> None:
    stacks = _by_stack(templates)
    automation = stacks["automation"]
    fedkeeper_functions = [
        r
        for r in automation["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and str(r["Properties"].get("Handler", "")).startswith("lambdas.")
    ]
    installers = [
        r
        for r in stacks["calico"]["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Handler") == "lambdas.calico_install.handler"
    ]
    keys = sum(_count(t, "AWS::KMS::Key") for t in templates.values())
    row = (
        f"| {len(templates)} | {len(fedkeeper_functions)} | {len(installers)} | "
        f"{_count(automation, 'AWS::CloudWatch::Alarm')} | "
        f"{_count(automation, 'AWS::Events::Rule')} | {keys} |"
    )

    assert _block("deploy-figures").splitlines()[-1] == row


def test_the_documented_monthly_costs_are_counted_from_the_templates(
    templates: dict[str, dict[str, Any]],
) -> None:
    assert _block("deploy-costs") == cost_table(_by_stack(templates))


def test_the_kill_switch_disables_every_rule_the_stacks_deploy(
    synth: Synth, templates: dict[str, dict[str, Any]]
) -> None:
    automation = _by_stack(templates)["automation"]
    prefix = f"{synth.config.name}-"
    rules = {
        r["Properties"]["Name"].removeprefix(prefix)
        for r in automation["Resources"].values()
        if r["Type"] == "AWS::Events::Rule"
    }
    switch = re.search(r"for r in ([a-z -]+); do aws events disable-rule", DEPLOY.read_text())

    assert switch, "the kill switch's disable-rule loop is missing"
    assert set(switch.group(1).split()) == rules


def test_what_cdk_destroy_keeps_is_documented(templates: dict[str, dict[str, Any]]) -> None:
    kept = collections.Counter(
        r["Type"]
        for t in templates.values()
        for r in t["Resources"].values()
        if r.get("DeletionPolicy") == "Retain"
    )
    text = DEPLOY.read_text(encoding="utf-8").split("## What `cdk destroy` deletes", 1)[1]
    documented = {
        "AWS::KMS::Key": "The KMS keys",
        "AWS::Logs::LogGroup": "The log groups of CDK's deploy-time providers",
        "AWS::S3::Bucket": "The CloudTrail S3 bucket",
    }

    assert set(kept) <= set(documented)
    for kind in kept:
        assert documented[kind] in text


def test_the_documented_mesh_figures_are_the_mesh_templates(mesh_synth: MeshSynth) -> None:
    templates = mesh_synth.templates
    kinds = collections.Counter(name.rsplit("-", 1)[-1] for name in templates)
    peerings = mesh_synth.stacks.peerings
    automation = templates[mesh_synth.stacks.automation.stack_name]
    entries = sum(
        r["Type"] == "AWS::EKS::AccessEntry"
        and r["Properties"].get("KubernetesGroups") == [RECONCILER_GROUP]
        for t in templates.values()
        for r in t["Resources"].values()
    )
    tunnel_alarms = sum(
        r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("MetricName") == "TunnelState"
        for r in automation["Resources"].values()
    )
    figures = (
        len(templates),
        *(kinds[k] for k in ("network", "site", "peerings", "cluster", "calico", "automation")),
        sum(_count(t, "AWS::EC2::VPNConnection") for t in templates.values()),
        _count(templates[peerings.stack_name], "AWS::EC2::Route") if peerings else 0,
        entries,
        tunnel_alarms,
        _count(automation, "AWS::Events::Rule"),
    )
    row = "| " + " | ".join(str(f) for f in figures) + " |"

    assert _block("mesh-figures").splitlines()[-1] == row
