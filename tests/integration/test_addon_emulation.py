"""The vpc-cni add-on as EKS runs it: schema-checked configurationValues, and what PRESERVE
and OVERWRITE do to a hand-edited aws-node — and fedkeeper repairing through the add-on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from fedkeeper.invariants.snat import EXTERNAL_SNAT, daemonset_env
from fedkeeper.sandbox import Sandbox
from fedkeeper.sandbox.aws import ADDON_UPDATE_S

pytestmark = pytest.mark.xdist_group("addon")


def _aws_node(sb: Sandbox) -> dict[str, Any]:
    ds = sb.eks_server.get_object("apps/v1", "DaemonSet", "aws-node", "kube-system")
    assert ds is not None
    return ds


def _env(sb: Sandbox) -> dict[str, str]:
    c = next(c for c in _aws_node(sb)["spec"]["template"]["spec"]["containers"])
    return {e["name"]: e["value"] for e in c["env"]}


def _hand_edit(sb: Sandbox, **env: str) -> None:  # kubectl set env ds/aws-node ...
    def edit(ds: dict[str, Any]) -> None:
        for c in ds["spec"]["template"]["spec"]["containers"]:
            if c["name"] == "aws-node":
                for e in c["env"]:
                    if e["name"] in env:
                        e["value"] = env[e["name"]]

    sb.eks_server.mutate("apps/v1", "DaemonSet", "aws-node", "kube-system", edit)


def _update(sb: Sandbox, values: dict[str, Any], resolve: str) -> None:
    """UpdateAddon, then the time EKS takes to roll it out (the add-on UPDATING meanwhile)."""
    sb.aws_session().client("eks").update_addon(
        clusterName=sb.config.sole_eks().cluster_name,
        addonName="vpc-cni",
        configurationValues=json.dumps(values),
        resolveConflicts=resolve,
    )
    sb.advance_time(sb.aws.addon_seconds_left())


def _values(sb: Sandbox) -> dict[str, Any]:
    addon = sb.aws.addon(sb.config.sole_eks().cluster_name, "vpc-cni") or {}
    return dict(json.loads(addon.get("configurationValues") or "{}"))


def test_an_addon_update_with_an_unknown_key_is_refused(sandbox: Sandbox) -> None:
    before = _values(sandbox)
    with pytest.raises(ClientError) as exc:
        _update(sandbox, {"env": {EXTERNAL_SNAT: "true", "MY_OWN_SETTING": "1"}}, "PRESERVE")
    err = exc.value.response["Error"]
    assert err["Code"] == "InvalidParameterException"
    assert "$.env.MY_OWN_SETTING: is not defined in the schema" in err["Message"]
    assert _values(sandbox) == before  # refused: nothing changed


def test_an_unknown_top_level_key_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ClientError) as exc:
        _update(sandbox, {"environment": {EXTERNAL_SNAT: "true"}}, "PRESERVE")
    assert "$.environment: is not defined in the schema" in exc.value.response["Error"]["Message"]


def test_a_known_key_of_the_schema_is_accepted(sandbox: Sandbox) -> None:
    _update(sandbox, {"env": {EXTERNAL_SNAT: "true", "WARM_IP_TARGET": "5"}}, "PRESERVE")
    assert _env(sandbox)["WARM_IP_TARGET"] == "5"


def test_preserve_keeps_a_hand_edit_and_overwrite_takes_it_back(sandbox: Sandbox) -> None:
    values = _values(sandbox)
    _hand_edit(sandbox, **{EXTERNAL_SNAT: "false", "WARM_ENI_TARGET": "3"})
    _update(sandbox, values, "PRESERVE")
    assert _env(sandbox)[EXTERNAL_SNAT] == "false" and _env(sandbox)["WARM_ENI_TARGET"] == "3"
    _update(sandbox, values, "OVERWRITE")
    assert _env(sandbox)[EXTERNAL_SNAT] == "true"  # the add-on's configured value
    assert _env(sandbox)["WARM_ENI_TARGET"] == "1"  # the add-on's default


def test_a_hand_edited_aws_node_is_repaired_through_the_addon(sandbox: Sandbox) -> None:
    values = _values(sandbox)
    _hand_edit(sandbox, **{EXTERNAL_SNAT: "false"})
    sandbox.clear_logs()
    report = sandbox.reconcile(["snat"], "apply")
    [outcome] = report.changes
    assert outcome.change.payload["resolve_conflicts"] == "OVERWRITE"
    assert "edited by hand" in outcome.change.reason
    # Its own update rolls out: checked at the next trigger, no retry asked, nothing alarming.
    [wait] = report.deferred
    assert "fedkeeper's update of the vpc-cni add-on is rolling out" in wait.reason
    assert not wait.retry and not report.findings
    sandbox.advance_time(sandbox.aws.addon_seconds_left())
    assert daemonset_env(_aws_node(sandbox)) == "true"
    assert _values(sandbox) == values  # every configured value kept
    sandbox.clear_logs()
    rerun = sandbox.reconcile(None, "apply")
    assert rerun.converged and rerun.writes == 0


def test_a_reset_addon_with_a_hand_edit_is_restored_without_losing_it(sandbox: Sandbox) -> None:
    # The manual procedure: external SNAT set with kubectl, not in the add-on.
    sandbox.aws.reset_addon_configuration(sandbox.config.sole_eks().cluster_name, "vpc-cni", "{}")
    _hand_edit(sandbox, **{EXTERNAL_SNAT: "true"})
    report = sandbox.reconcile(["snat"], "apply")
    assert [c.change.payload["resolve_conflicts"] for c in report.changes] == ["PRESERVE"]
    sandbox.advance_time(sandbox.aws.addon_seconds_left())
    assert _values(sandbox)["env"][EXTERNAL_SNAT] == "true"
    assert daemonset_env(_aws_node(sandbox)) == "true"


# --- the add-on lifecycle: UPDATING for a while, then ACTIVE, DEGRADED or UPDATE_FAILED -----
# Sources: botocore's EKS model (data/eks/2017-11-01/service-2.json): AddonStatus (CREATING,
# ACTIVE, UPDATING, DEGRADED, UPDATE_FAILED, ...), UpdateStatus (InProgress, Successful,
# Failed), ResolveConflicts (OVERWRITE, NONE, PRESERVE), UpdateAddon's errors (409
# ResourceInUseException: "The specified resource is in use"); EKS API reference,
# UpdateAddon resolveConflicts: "None – Amazon EKS doesn't change the value. The update
# might fail." (https://docs.aws.amazon.com/eks/latest/APIReference/API_UpdateAddon.html).


def _eks(sb: Sandbox) -> Any:
    return sb.aws_session().client("eks")


def _status(sb: Sandbox) -> str:
    return str((sb.aws.addon(sb.config.sole_eks().cluster_name, "vpc-cni") or {})["status"])


def _start_update(sb: Sandbox, values: dict[str, Any], resolve: str = "PRESERVE") -> str:
    answer = _eks(sb).update_addon(
        clusterName=sb.config.sole_eks().cluster_name,
        addonName="vpc-cni",
        configurationValues=json.dumps(values),
        resolveConflicts=resolve,
    )
    return str(answer["update"]["id"])


def test_an_update_rolls_out_for_a_while_and_a_second_one_meanwhile_is_refused_409(
    sandbox: Sandbox,
) -> None:
    assert sandbox.aws.addon_update_s == ADDON_UPDATE_S == 60  # docs/SANDBOX.md: "60 s"
    values = _values(sandbox)
    _start_update(sandbox, values)
    assert _status(sandbox) == "UPDATING"
    with pytest.raises(ClientError) as exc:
        _start_update(sandbox, values)
    assert exc.value.response["Error"]["Code"] == "ResourceInUseException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    sandbox.advance_time(sandbox.aws.addon_update_s)
    assert _status(sandbox) == "ACTIVE"
    _start_update(sandbox, values)  # accepted again once the first has ended


def test_resolve_conflicts_outside_the_enum_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ClientError) as exc:
        _start_update(sandbox, _values(sandbox), "KEEP")
    assert exc.value.response["Error"]["Code"] == "InvalidParameterException"
    assert _status(sandbox) == "ACTIVE"  # refused: no rollout started


def test_resolve_conflicts_none_fails_the_update_on_a_hand_edit_and_changes_nothing(
    sandbox: Sandbox,
) -> None:
    values = _values(sandbox)
    _hand_edit(sandbox, **{EXTERNAL_SNAT: "false"})
    update_id = _start_update(sandbox, {"env": {**values["env"], "WARM_IP_TARGET": "5"}}, "NONE")
    sandbox.advance_time(sandbox.aws.addon_update_s)
    addon = sandbox.aws.addon(sandbox.config.sole_eks().cluster_name, "vpc-cni") or {}
    assert addon["status"] == "UPDATE_FAILED"
    assert [i["code"] for i in addon["health"]["issues"]] == ["ConfigurationConflict"]
    update = _eks(sandbox).describe_update(
        name=sandbox.config.sole_eks().cluster_name, updateId=update_id, addonName="vpc-cni"
    )["update"]
    assert update["status"] == "Failed"
    assert update["errors"][0]["errorCode"] == "ConfigurationConflict"
    assert _values(sandbox) == values  # the previous configuration is kept
    assert _env(sandbox)[EXTERNAL_SNAT] == "false" and "WARM_IP_TARGET" not in _env(sandbox)


@pytest.mark.parametrize("outcome", ["DEGRADED", "UPDATE_FAILED"])
def test_an_update_may_end_degraded_or_failed(sandbox: Sandbox, outcome: str) -> None:
    issue = {"code": "InsufficientNumberOfReplicas", "message": "1 of 3 pods ready"}
    sandbox.aws.next_addon_update_ends(
        sandbox.config.sole_eks().cluster_name, "vpc-cni", outcome, [issue]
    )
    _start_update(sandbox, _values(sandbox))
    sandbox.advance_time(sandbox.aws.addon_update_s)
    assert _status(sandbox) == outcome
