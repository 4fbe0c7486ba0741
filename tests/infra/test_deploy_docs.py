"""docs/DEPLOY.md's figures are the synthesized templates': they cannot drift again."""

from __future__ import annotations

import collections
import re
from typing import Any

import pytest

from stacks.costs import cost_table
from tests.infra.conftest import PROJECT_ROOT, Synth

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
