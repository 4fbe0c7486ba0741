"""fedkeeper's own RBAC, computed from the manifests alone (fedkeeper.rbac).

Kubernetes lets a subject create a role, or bind one, only if it holds every permission in
it (kubernetes pkg/registry/rbac/validation/rule.go ConfirmNoEscalation); fedkeeper holds
neither ``escalate`` nor ``bind``, so its own rules must cover every role it creates.
"""

from __future__ import annotations

from typing import Any

import pytest

from fedkeeper.config import SHARED_NAMESPACES, FederationConfig
from fedkeeper.invariants.rcc import RccNames, desired_remote_objects, desired_typha_access
from fedkeeper.rbac import AWS_NODE, RECONCILER, Side, eks_reconciler_objects, reconciler_objects
from fedkeeper.sandbox.kube_server.rbac import uncovered

SIDES: tuple[Side, ...] = ("eks", "onprem")
SUBJECT = {"kind": "ServiceAccount", "name": "fedkeeper", "namespace": "fedkeeper"}


def _manifest(config: FederationConfig, side: Side) -> list[dict[str, Any]]:
    if side == "eks":
        return eks_reconciler_objects(config)
    return reconciler_objects(config, side, SUBJECT)


def _held(config: FederationConfig, side: Side, namespace: str = "") -> list[dict[str, Any]]:
    """The reconciler's rules in ``namespace`` ("" = cluster-wide), from its manifest."""
    objects = _manifest(config, side)
    rules = [r for o in objects if o["kind"] == "ClusterRole" for r in o["rules"]]
    if namespace:
        rules += [
            r
            for o in objects
            if o["kind"] == "Role" and o["metadata"]["namespace"] == namespace
            for r in o["rules"]
        ]
    return rules


def _names(config: FederationConfig) -> RccNames:
    fed = config.federation
    return RccNames(
        federation=config.name,
        calico_api_version=f"{fed.calico_api.group}/{fed.calico_api.version}",
        remote_sa=fed.remote_service_account.name,
        remote_sa_namespace=fed.remote_service_account.namespace,
        access_namespace=fed.access_secret_namespace,
    )


@pytest.mark.parametrize("side", SIDES)
def test_the_reconciler_holds_every_permission_of_the_remote_cluster_role(
    config: FederationConfig, side: Side
) -> None:
    granted = desired_remote_objects(_names(config))["ClusterRole"]["rules"]
    assert uncovered(_held(config, side), granted) == []


@pytest.mark.parametrize("side", SIDES)
def test_the_reconciler_holds_every_permission_of_the_typha_role(
    config: FederationConfig, side: Side
) -> None:
    names = _names(config)
    granted = desired_typha_access(names)["Role"]["rules"]
    assert uncovered(_held(config, side, names.access_namespace), granted) == []


@pytest.mark.parametrize("side", SIDES)
def test_the_reconciler_may_neither_bind_escalate_nor_use_wildcards(
    config: FederationConfig, side: Side
) -> None:
    for obj in _manifest(config, side):
        for rule in obj.get("rules", []):
            assert not {"bind", "escalate", "*"} & set(rule["verbs"])
            assert "*" not in rule["resources"]
            assert "*" not in rule["apiGroups"]


@pytest.mark.parametrize("side", SIDES)
def test_updates_patches_and_deletes_name_the_objects_fedkeeper_owns(
    config: FederationConfig, side: Side
) -> None:
    calico = config.federation.calico_api.group
    for obj in _manifest(config, side):
        for rule in obj.get("rules", []):
            if not {"update", "patch", "delete"} & set(rule["verbs"]):
                continue
            if side == "onprem" and rule["resources"] == ["ippools"]:
                # Pools are named after VPC CIDRs that change at run time.
                assert rule["apiGroups"] == [calico]
                continue
            if rule["resources"] == ["remoteclusterconfigurations"]:
                # Adopted RCCs keep the names their operators gave them.
                assert rule["apiGroups"] == [calico]
                continue
            if rule["resources"] == ["secrets"] and "resourceNames" not in rule:
                # Adopted access Secrets keep their names (and old ones are pruned): only in
                # the access namespace, fedkeeper's own, and never by update.
                assert obj["kind"] == "Role"
                assert obj["metadata"]["namespace"] == config.federation.access_secret_namespace
                assert obj["metadata"]["namespace"] not in SHARED_NAMESPACES
                assert "update" not in rule["verbs"]
                continue
            assert rule.get("resourceNames"), (obj["kind"], rule)


def test_the_eks_reconciler_may_touch_only_the_aws_node_daemonset(
    config: FederationConfig,
) -> None:
    daemonset_rules = [
        (o["metadata"].get("namespace"), r)
        for o in eks_reconciler_objects(config)
        for r in o.get("rules", [])
        if "daemonsets" in r["resources"]
    ]
    assert daemonset_rules == [
        (
            AWS_NODE[1],
            {
                "apiGroups": ["apps"],
                "resources": ["daemonsets"],
                "verbs": ["get", "patch", "list", "watch"],  # list, watch: the watch function
                "resourceNames": [AWS_NODE[0]],
            },
        )
    ]


def test_a_rule_naming_the_role_does_not_cover_granting_it_unnamed(
    config: FederationConfig,
) -> None:
    owner = [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["a"]}
    ]
    granted = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    assert [a.verb for a in uncovered(owner, granted)] == ["get"]


def test_the_reconciler_role_is_named_once_per_side(config: FederationConfig) -> None:
    for side in SIDES:
        kinds = [o["kind"] for o in _manifest(config, side) if o["metadata"]["name"] == RECONCILER]
        assert kinds.count("ClusterRole") == 1
        assert kinds.count("ClusterRoleBinding") == 1


@pytest.mark.parametrize("side", SIDES)
def test_secrets_outside_the_access_namespace_are_reached_only_by_the_token_secret_s_name(
    config: FederationConfig, side: Side
) -> None:
    sa = config.federation.remote_service_account
    for obj in _manifest(config, side):
        ns = obj["metadata"].get("namespace")
        for rule in obj.get("rules", []):
            if (
                "secrets" not in rule["resources"]
                or ns == config.federation.access_secret_namespace
            ):
                continue
            assert obj["kind"] == "Role" and ns == sa.namespace, (obj["kind"], ns, rule)
            # create carries no name (Kubernetes cannot narrow it) and reads nothing.
            assert rule.get("resourceNames") == [sa.name] or rule["verbs"] == ["create"], rule
