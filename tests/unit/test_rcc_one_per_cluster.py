"""Invariant 4 (rcc), pure: one RCC per remote cluster, whatever its name."""

from __future__ import annotations

from typing import Any

import yaml

from fedkeeper.invariants.rcc import (
    RccObservation,
    build_kubeconfig,
    desired_access_secret,
    desired_rcc,
    normalized_server,
    plan_rcc,
)
from fedkeeper.model import Action, Severity
from tests.unit.test_rcc import NAMES, b64, converged_pair, replace, with_rv

OWNED_KEYS = ("app.kubernetes.io/managed-by", "fedkeeper.io/federation")


def manual_rcc(name: str, secret: str, ns: str = "calico-system") -> dict[str, Any]:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "RemoteClusterConfiguration",
        "metadata": {"name": name, "resourceVersion": "3"},
        "spec": {
            "clusterAccessSecret": {"name": secret, "namespace": ns, "kind": "Secret"},
            "syncOptions": {"overlayRoutingMode": "Disabled"},
        },
    }


def manual_secret(name: str, server: str, token: str, ns: str = "calico-system") -> dict[str, Any]:
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": "4"},
        "data": {"datastoreType": b64("kubernetes"), "kubeconfig": b64(yaml.safe_dump(kubeconfig))},
    }


def onprem_with_manual_rcc(server: str) -> tuple[Any, Any]:
    eks, onprem = converged_pair()
    secret = manual_secret("aws-cluster-access", server, "eks-token")
    onprem = replace(
        onprem,
        rccs=[manual_rcc("aws-cluster", "aws-cluster-access")],
        access_secret=None,
        owned_access_secrets=[],
        rcc_secrets={"calico-system/aws-cluster-access": secret},
    )
    return eks, onprem


def test_servers_are_compared_in_one_spelling() -> None:
    assert normalized_server("https://FED-EKS.example:443/") == normalized_server(
        "https://fed-eks.example"
    )
    assert normalized_server("https://a:6443") != normalized_server("https://a:443")


def test_same_server_rcc_under_another_name_is_the_federations_and_nothing_is_created() -> None:
    eks, onprem = onprem_with_manual_rcc("https://fed-eks.example:6443/")
    plan = plan_rcc(RccObservation(NAMES, eks, onprem))
    assert [c for c in plan.changes if c.backend == "onprem"] == []
    [info] = [f for f in plan.findings if "creates no fed-eks" in f.message]
    assert info.severity is Severity.INFO and info.check == "rcc.adoptable"
    assert "fedkeeper adopt --apply" in info.message and "creates no fed-eks" in info.message


def test_rcc_pointing_at_another_server_does_not_count() -> None:
    eks, onprem = onprem_with_manual_rcc("https://partner.example:6443")
    plan = plan_rcc(RccObservation(NAMES, eks, onprem))
    created = {c.target for c in plan.changes if c.action is Action.CREATE}
    assert "onprem/Secret/calico-system/remote-cluster-secret-fed-eks" in created


def test_adopted_rcc_keeps_its_name_and_its_secret_follows_a_rotated_token() -> None:
    eks, onprem = onprem_with_manual_rcc("https://fed-eks.example:6443")
    owned = {"app.kubernetes.io/managed-by": "fedkeeper", "fedkeeper.io/federation": "fed-demo"}
    rcc = manual_rcc("aws-cluster", "aws-cluster-access")
    rcc["metadata"]["labels"] = dict(owned)
    secret = manual_secret("aws-cluster-access", "https://fed-eks.example:6443", "stale")
    secret["metadata"]["labels"] = {**owned, "fedkeeper.io/role": "rcc-access-secret"}
    onprem = replace(
        onprem,
        rccs=[rcc],
        owned_access_secrets=[secret],
        rcc_secrets={"calico-system/aws-cluster-access": secret},
    )
    plan = plan_rcc(RccObservation(NAMES, eks, onprem))
    [change] = [c for c in plan.changes if c.backend == "onprem"]
    assert change.target == "onprem/Secret/calico-system/aws-cluster-access"
    assert change.action is Action.UPDATE and "token" in change.reason
    assert not [f for f in plan.findings if f.severity is not Severity.INFO]


def test_owned_duplicate_of_an_adopted_rcc_is_deleted() -> None:
    eks, onprem = converged_pair()
    ours = onprem.rccs[0]
    kubeconfig = build_kubeconfig(eks, "eks-token", NAMES.remote_sa)
    adopted = with_rv(desired_rcc(NAMES, "aws-cluster"))
    secret = with_rv(desired_access_secret(NAMES, "aws-cluster", kubeconfig))
    onprem = replace(
        onprem,
        rccs=[adopted, ours],
        access_secret=None,
        owned_access_secrets=[*onprem.owned_access_secrets, secret],
        rcc_secrets={
            "calico-system/remote-cluster-secret-aws-cluster": secret,
            "calico-system/remote-cluster-secret-fed-eks": onprem.access_secret or {},
        },
    )
    plan = plan_rcc(RccObservation(NAMES, eks, onprem))
    # The configured name wins when it exists; the other owned RCC is the duplicate.
    deleted = [c.target for c in plan.changes if c.action is Action.DELETE]
    assert "onprem/RemoteClusterConfiguration/aws-cluster" in deleted


def test_unowned_duplicate_beside_ours_is_a_warning() -> None:
    eks, onprem = converged_pair()
    secret = manual_secret("aws-cluster-access", "https://fed-eks.example:6443", "eks-token")
    onprem = replace(
        onprem,
        rccs=[*onprem.rccs, manual_rcc("aws-cluster", "aws-cluster-access")],
        rcc_secrets={"calico-system/aws-cluster-access": secret},
    )
    plan = plan_rcc(RccObservation(NAMES, eks, onprem))
    assert plan.changes == []
    [dup] = [f for f in plan.findings if f.check == "rcc.duplicate"]
    assert dup.severity is Severity.WARNING and "aws-cluster" in dup.message


def test_unowned_objects_with_fedkeepers_names_are_used_and_reported_adoptable() -> None:
    eks, onprem = converged_pair()
    sa = dict(onprem.service_account or {})
    sa["metadata"] = {k: v for k, v in sa["metadata"].items() if k != "labels"}
    plan = plan_rcc(RccObservation(NAMES, eks, replace(onprem, service_account=sa)))
    assert plan.changes == []
    [info] = plan.findings
    assert info.check == "rcc.adoptable" and "ServiceAccount" in info.message
