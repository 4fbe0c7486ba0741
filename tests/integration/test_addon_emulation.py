"""The vpc-cni add-on as EKS runs it: schema-checked configurationValues, and what PRESERVE
and OVERWRITE do to a hand-edited aws-node — and fedkeeper repairing through the add-on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from fedkeeper.invariants.snat import EXTERNAL_SNAT, daemonset_env
from fedkeeper.sandbox import Sandbox

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
    sb.aws_session().client("eks").update_addon(
        clusterName=sb.config.eks.cluster_name,
        addonName="vpc-cni",
        configurationValues=json.dumps(values),
        resolveConflicts=resolve,
    )


def _values(sb: Sandbox) -> dict[str, Any]:
    addon = sb.aws.addon(sb.config.eks.cluster_name, "vpc-cni") or {}
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
    assert daemonset_env(_aws_node(sandbox)) == "true"
    assert _values(sandbox) == values  # every configured value kept
    assert report.converged and not report.findings
    sandbox.clear_logs()
    assert sandbox.reconcile(None, "apply").writes == 0


def test_a_reset_addon_with_a_hand_edit_is_restored_without_losing_it(sandbox: Sandbox) -> None:
    # The manual procedure: external SNAT set with kubectl, not in the add-on.
    sandbox.aws.reset_addon_configuration(sandbox.config.eks.cluster_name, "vpc-cni", "{}")
    _hand_edit(sandbox, **{EXTERNAL_SNAT: "true"})
    report = sandbox.reconcile(["snat"], "apply")
    assert [c.change.payload["resolve_conflicts"] for c in report.changes] == ["PRESERVE"]
    assert _values(sandbox)["env"][EXTERNAL_SNAT] == "true"
    assert daemonset_env(_aws_node(sandbox)) == "true"
