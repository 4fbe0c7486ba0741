"""Invariant 2 (snat), pure."""

from __future__ import annotations

import json
from typing import Any

from fedkeeper.invariants.snat import (
    EXTERNAL_SNAT,
    SnatObservation,
    daemonset_env,
    merged_configuration,
    plan_snat,
)
from fedkeeper.model import Addon


def addon(values: str, status: str = "ACTIVE") -> Addon:
    return Addon("fed-eks", "vpc-cni", "v1.19.2-eksbuild.1", status, values)


def daemonset(value: str | None, *, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    env = [{"name": "WARM_ENI_TARGET", "value": "1"}]
    if value is not None:
        env.append({"name": EXTERNAL_SNAT, "value": value})
    return {
        "metadata": {"name": "aws-node", "resourceVersion": "42", "annotations": annotations or {}},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "aws-node", "image": "cni:1", "env": env},
                        {"name": "aws-eks-nodeagent", "image": "agent:1"},
                    ]
                }
            }
        },
    }


def obs(a: Addon | None, ds: dict[str, Any] | None) -> SnatObservation:
    return SnatObservation("fed-eks", a, ds)


def test_addon_with_external_snat_true_plans_nothing() -> None:
    values = json.dumps({"env": {EXTERNAL_SNAT: "true"}})
    plan = plan_snat(obs(addon(values), daemonset("true")))
    assert plan.changes == [] and plan.findings == []


def test_addon_reset_to_empty_is_restored_through_update_addon() -> None:
    [change] = plan_snat(obs(addon("{}"), daemonset("false"))).changes
    assert change.target == "aws/Addon/fed-eks/vpc-cni"
    assert change.payload["op"] == "update_addon"
    assert change.payload["resolve_conflicts"] == "PRESERVE"
    assert json.loads(change.payload["configuration_values"]) == {"env": {EXTERNAL_SNAT: "true"}}
    assert "unset" in change.reason and "SNATed" in change.reason


def test_update_keeps_other_env_entries_and_top_level_keys() -> None:
    values = json.dumps(
        {
            "env": {"WARM_IP_TARGET": "5", EXTERNAL_SNAT: "false"},
            "resources": {"limits": {"cpu": "1"}},
        }
    )
    [change] = plan_snat(obs(addon(values), None)).changes
    assert json.loads(change.payload["configuration_values"]) == {
        "env": {"WARM_IP_TARGET": "5", EXTERNAL_SNAT: "true"},
        "resources": {"limits": {"cpu": "1"}},
    }
    assert "keeping WARM_IP_TARGET, resources" in change.reason


def test_yaml_configuration_values_are_understood() -> None:
    plan = plan_snat(obs(addon(f"env:\n  {EXTERNAL_SNAT}: 'true'\n"), daemonset("true")))
    assert plan.changes == []


def test_unreadable_configuration_values_are_not_overwritten() -> None:
    plan = plan_snat(obs(addon("{not json: ["), daemonset("true")))
    assert plan.changes == []
    assert plan.findings[0].check == "snat.addon"


def test_busy_addon_is_left_alone() -> None:
    plan = plan_snat(obs(addon("{}", status="UPDATING"), daemonset("true")))
    assert plan.changes == []
    assert "UPDATING" in plan.findings[0].message


def test_hand_edited_daemonset_is_repaired_through_the_addon_with_overwrite() -> None:
    values = {"env": {EXTERNAL_SNAT: "true", "WARM_IP_TARGET": "5"}, "enableNetworkPolicy": "true"}
    plan = plan_snat(obs(addon(json.dumps(values)), daemonset("false")))
    [change] = plan.changes
    assert change.target == "aws/Addon/fed-eks/vpc-cni"
    assert change.payload["resolve_conflicts"] == "OVERWRITE"
    assert json.loads(change.payload["configuration_values"]) == values  # every value kept
    assert "edited by hand" in change.reason and "checked after the update" in change.reason
    assert plan.settle  # the engine re-reads and checks the DaemonSet after the update


def test_daemonset_still_wrong_after_an_overwrite_is_an_error_not_another_update() -> None:
    a = addon(json.dumps({"env": {EXTERNAL_SNAT: "true"}}))
    plan = plan_snat(SnatObservation("fed-eks", a, daemonset("false"), updated_with="OVERWRITE"))
    assert plan.changes == []
    [finding] = plan.findings
    assert finding.check == "snat.daemonset" and finding.severity.value == "error"


def test_addon_restored_with_preserve_is_followed_by_a_check() -> None:
    assert plan_snat(obs(addon("{}"), daemonset("false"))).settle


def test_self_managed_cni_gets_a_strategic_patch_of_the_container_env_only() -> None:
    [change] = plan_snat(obs(None, daemonset(None))).changes
    assert change.target == "eks/DaemonSet/kube-system/aws-node"
    assert change.payload["patch_type"] == "strategic"
    assert change.resource_version == "42"
    containers = change.payload["patch"]["spec"]["template"]["spec"]["containers"]
    assert containers == [{"name": "aws-node", "env": [{"name": EXTERNAL_SNAT, "value": "true"}]}]


def test_never_writes_false() -> None:
    for values in ("{}", json.dumps({"env": {EXTERNAL_SNAT: "false"}})):
        for change in plan_snat(obs(addon(values), daemonset("false"))).changes:
            assert '"false"' not in change.payload["configuration_values"]
    assert merged_configuration({"env": {EXTERNAL_SNAT: "false"}})["env"][EXTERNAL_SNAT] == "true"


def test_opt_out_annotation_is_respected() -> None:
    ds = daemonset("false", annotations={"fedkeeper.io/ignore": "true"})
    plan = plan_snat(obs(None, ds))
    assert plan.changes == []
    assert plan.findings[0].check == "snat.ignored"


def test_no_cni_at_all_is_an_error_finding() -> None:
    plan = plan_snat(obs(None, None))
    assert plan.changes == [] and plan.findings[0].severity.value == "error"


def test_daemonset_env_reads_the_aws_node_container() -> None:
    assert daemonset_env(daemonset("true")) == "true"
    assert daemonset_env(daemonset(None)) is None
