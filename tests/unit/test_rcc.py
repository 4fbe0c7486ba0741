"""Invariant 4 (rcc) and 6 (checks), pure."""

from __future__ import annotations

import base64
from typing import Any

import yaml

from fedkeeper.invariants.checks import ChecksObservation, ControllerState, plan_checks
from fedkeeper.invariants.rcc import (
    ClusterSide,
    RccNames,
    RccObservation,
    build_kubeconfig,
    desired_access_secret,
    desired_rcc,
    desired_remote_objects,
    desired_typha_access,
    kubeconfig_meaning,
    plan_rcc,
)
from fedkeeper.model import Action

NAMES = RccNames(
    "fed-demo",
    "projectcalico.org/v3",
    "tigera-federation-remote-cluster",
    "calico-system",
    "calico-system",
)


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def empty_side(backend: str, name: str, rcc_name: str) -> ClusterSide:
    return ClusterSide(
        backend=backend,  # type: ignore[arg-type]
        name=name,
        rcc_name=rcc_name,
        endpoint=f"https://{name}.example:6443",
        ca_data=None,
        service_account=None,
        token_secret=None,
        cluster_role=None,
        cluster_role_binding=None,
        typha_role=None,
        typha_binding=None,
        rccs=[],
        access_secret=None,
    )


def with_rv(obj: dict[str, Any]) -> dict[str, Any]:
    return {**obj, "metadata": {**obj["metadata"], "resourceVersion": "5"}}


def converged_pair(
    eks_token: str = "eks-token", onprem_token: str = "onprem-token"
) -> tuple[ClusterSide, ClusterSide]:
    sides = {}
    for backend, name, rcc_name, token in (
        ("eks", "fed-eks", "onprem", eks_token),
        ("onprem", "onprem", "fed-eks", onprem_token),
    ):
        remote = desired_remote_objects(NAMES)
        typha = desired_typha_access(NAMES)
        token_secret = with_rv(remote["Secret"])
        token_secret["data"] = {"token": b64(token), "ca.crt": b64(f"{name}-ca")}
        sides[backend] = empty_side(backend, name, rcc_name).__class__(
            **{
                **empty_side(backend, name, rcc_name).__dict__,
                "service_account": with_rv(remote["ServiceAccount"]),
                "token_secret": token_secret,
                "cluster_role": with_rv(remote["ClusterRole"]),
                "cluster_role_binding": with_rv(remote["ClusterRoleBinding"]),
                "typha_role": with_rv(typha["Role"]),
                "typha_binding": with_rv(typha["RoleBinding"]),
                "rccs": [with_rv(desired_rcc(NAMES, rcc_name))],
            }
        )
    eks, onprem = sides["eks"], sides["onprem"]
    eks_secret = with_rv(
        desired_access_secret(
            NAMES, "onprem", build_kubeconfig(onprem, onprem_token, NAMES.remote_sa)
        )
    )
    onprem_secret = with_rv(
        desired_access_secret(NAMES, "fed-eks", build_kubeconfig(eks, eks_token, NAMES.remote_sa))
    )
    # As observe reads them: the owned access Secrets are known to the RCCs that use them.
    eks = eks.__class__(
        **{
            **eks.__dict__,
            "access_secret": eks_secret,
            "owned_access_secrets": [eks_secret],
            "rcc_secrets": {_key(eks_secret): eks_secret},
        }
    )
    onprem = onprem.__class__(
        **{
            **onprem.__dict__,
            "access_secret": onprem_secret,
            "owned_access_secrets": [onprem_secret],
            "rcc_secrets": {_key(onprem_secret): onprem_secret},
        }
    )
    return eks, onprem


def _key(obj: dict[str, Any]) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"


def replace(side: ClusterSide, **kw: Any) -> ClusterSide:
    return side.__class__(**{**side.__dict__, **kw})


def test_converged_federation_plans_nothing() -> None:
    eks, onprem = converged_pair()
    plan = plan_rcc(RccObservation(NAMES, eks, onprem))
    assert plan.changes == [] and plan.findings == [] and plan.deferred == []


def test_empty_clusters_create_remote_access_first_and_ask_to_settle() -> None:
    plan = plan_rcc(
        RccObservation(
            NAMES, empty_side("eks", "fed-eks", "onprem"), empty_side("onprem", "onprem", "fed-eks")
        )
    )
    assert plan.settle
    kinds = [(c.backend, c.kind) for c in plan.changes]
    assert ("eks", "RemoteClusterConfiguration") not in kinds  # not before its Secret exists
    assert ("eks", "ServiceAccount") in kinds and ("onprem", "Secret") in kinds
    assert all(c.action is Action.CREATE for c in plan.changes)
    for c in plan.changes:
        assert (
            c.payload["body"]["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "fedkeeper"
        )


def test_rotated_token_updates_only_the_other_sides_access_secret() -> None:
    eks, onprem = converged_pair()
    rotated = dict(onprem.token_secret or {})
    rotated["data"] = {**rotated["data"], "token": b64("new-token")}
    plan = plan_rcc(RccObservation(NAMES, eks, replace(onprem, token_secret=rotated)))
    [change] = plan.changes
    assert change.target == "eks/Secret/calico-system/remote-cluster-secret-onprem"
    assert "token rotated" in change.reason
    assert "new-token" not in change.reason
    kubeconfig = yaml.safe_load(base64.b64decode(change.payload["patch"]["data"]["kubeconfig"]))
    assert kubeconfig["users"][0]["user"]["token"] == "new-token"
    assert change.resource_version == "5"


def test_kubeconfigs_are_compared_by_meaning_not_text() -> None:
    eks, onprem = converged_pair()
    secret = dict(eks.access_secret or {})
    kc = yaml.safe_load(base64.b64decode(secret["data"]["kubeconfig"]))
    reordered = yaml.safe_dump(kc, sort_keys=True, default_flow_style=True)
    secret["data"] = {**secret["data"], "kubeconfig": b64(reordered)}
    plan = plan_rcc(
        RccObservation(
            NAMES, replace(eks, access_secret=secret, owned_access_secrets=[secret]), onprem
        )
    )
    assert plan.changes == []
    assert kubeconfig_meaning(reordered) == kubeconfig_meaning(
        base64.b64decode((eks.access_secret or {})["data"]["kubeconfig"]).decode()
    )


def test_unreachable_onprem_still_reconciles_eks_and_defers_the_secret() -> None:
    eks, _ = converged_pair()
    plan = plan_rcc(RccObservation(NAMES, replace(eks, rccs=[]), None))
    assert [c.target for c in plan.changes] == ["eks/RemoteClusterConfiguration/onprem"]
    assert [d.target for d in plan.deferred] == [
        "eks/Secret/calico-system/remote-cluster-secret-onprem"
    ]


def test_owned_rcc_with_inline_fields_and_overlay_enabled_is_patched() -> None:
    eks, onprem = converged_pair()
    bad = with_rv(desired_rcc(NAMES, "onprem"))
    bad["spec"] = {
        **bad["spec"],
        "syncOptions": {"overlayRoutingMode": "Enabled"},
        "k8sAPIEndpoint": "https://x",
    }
    plan = plan_rcc(RccObservation(NAMES, replace(eks, rccs=[bad]), onprem))
    [change] = plan.changes
    assert change.action is Action.UPDATE
    assert change.payload["patch"]["spec"]["k8sAPIEndpoint"] is None
    assert change.payload["patch"]["spec"]["syncOptions"] == {"overlayRoutingMode": "Disabled"}


def test_unowned_drifted_objects_are_findings_not_writes() -> None:
    eks, onprem = converged_pair()
    foreign_role = {"kind": "ClusterRole", "metadata": {"name": NAMES.remote_sa}, "rules": []}
    plan = plan_rcc(RccObservation(NAMES, replace(eks, cluster_role=foreign_role), onprem))
    assert plan.changes == []
    assert plan.findings[0].check == "rcc.foreign"


def test_owned_rcc_no_longer_configured_is_pruned_but_foreign_ones_are_not() -> None:
    eks, onprem = converged_pair()
    old = with_rv(desired_rcc(NAMES, "old-onprem"))
    foreign = {"kind": "RemoteClusterConfiguration", "metadata": {"name": "partner"}, "spec": {}}
    plan = plan_rcc(RccObservation(NAMES, replace(eks, rccs=[*eks.rccs, old, foreign]), onprem))
    assert [(c.action, c.name) for c in plan.changes] == [(Action.DELETE, "old-onprem")]


def test_waiting_token_is_deferred() -> None:
    eks, onprem = converged_pair()
    unfilled = dict(onprem.token_secret or {})
    unfilled["data"] = {}
    plan = plan_rcc(
        RccObservation(
            NAMES,
            replace(eks, access_secret=None, owned_access_secrets=[]),
            replace(onprem, token_secret=unfilled),
        )
    )
    assert any("token controller" in d.reason for d in plan.deferred)


def pool(name: str, cidr: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"cidr": cidr, **spec}}


CONTROLLERS_ON = ControllerState({"spec": {"controllers": {"federatedServices": {}}}}, None)


def checks(**kw: Any) -> list[str]:
    base: dict[str, Any] = {
        "vpc_cidrs": ["10.100.0.0/16"],
        "eks_pools": [],
        "onprem_pools": [pool("default", "10.244.0.0/16", natOutgoing=True)],
        "onprem_bgp_peers": [{"metadata": {"name": "rr"}}],
        "eks_controllers": CONTROLLERS_ON,
        "onprem_controllers": CONTROLLERS_ON,
    }
    base.update(kw)
    return [f.check for f in plan_checks(ChecksObservation(**base)).findings]


def test_healthy_preconditions_have_no_findings() -> None:
    assert checks() == []


def test_enabled_pool_on_eks_is_reported() -> None:
    assert checks(eks_pools=[pool("default", "192.168.0.0/16")]) == ["checks.eks-pools"]


def test_onprem_without_enabled_pool_or_peers() -> None:
    assert checks(
        onprem_pools=[pool("x", "10.244.0.0/16", disabled=True)], onprem_bgp_peers=[]
    ) == [
        "checks.onprem-pools",
        "checks.bgp",
    ]


def test_vpc_overlapping_an_enabled_onprem_pool_is_an_error() -> None:
    assert checks(onprem_pools=[pool("default", "10.100.128.0/17")]) == ["checks.overlap"]


def test_federated_services_off_or_unknown() -> None:
    off = ControllerState({"spec": {"controllers": {"node": {}}}}, None)
    manifest_on = ControllerState(
        None,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "env": [
                                    {
                                        "name": "ENABLED_CONTROLLERS",
                                        "value": "node,federatedservices",
                                    }
                                ]
                            }
                        ]
                    }
                }
            }
        },
    )
    assert checks(eks_controllers=off) == ["checks.federated-services"]
    assert checks(onprem_controllers=manifest_on) == []
    assert checks(onprem_controllers=ControllerState(None, None)) == ["checks.federated-services"]
