"""The reconciler runs under the RBAC the product deploys, and needs every rule of it.

Each case removes one rule from the reconciler's ClusterRole or one of its Roles, as the
sandbox seeded them from the cluster stack's manifest (EKS) or `fedkeeper onprem-bootstrap`
(on-prem), then converges a fresh federation: the run must fail with the 403 a real API
server gives. A rule whose removal changes nothing is a permission fedkeeper does not need.
"""

from __future__ import annotations

from typing import Any

import pytest

from fedkeeper.adopt import adopt
from fedkeeper.bootstrap import SERVICE_ACCOUNT
from fedkeeper.config import FederationConfig, load_config
from fedkeeper.invariants.ippools import pool_name
from fedkeeper.invariants.rcc import SA_NAME_ANNOTATION, TYPHA_ACCESS, access_secret_name
from fedkeeper.model import Result
from fedkeeper.rbac import RECONCILER, Side, eks_reconciler_objects, reconciler_objects
from fedkeeper.sandbox import Sandbox
from tests.conftest import EXAMPLE

RBAC = "rbac.authorization.k8s.io/v1"


def _cases() -> list[Any]:
    config = load_config(EXAMPLE)
    subject = {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": "fedkeeper"}
    manifests: dict[Side, list[dict[str, Any]]] = {
        "eks": eks_reconciler_objects(config),
        "onprem": reconciler_objects(config, "onprem", subject),
    }
    cases = []
    for side, objects in manifests.items():
        for obj in objects:
            if obj["kind"] not in ("ClusterRole", "Role"):
                continue
            ns = obj["metadata"].get("namespace")
            for index, rule in enumerate(obj["rules"]):
                label = (
                    f"{side}-{obj['kind']}-{ns or 'cluster'}-{index}-{'/'.join(rule['resources'])}"
                )
                cases.append(pytest.param(side, obj["kind"], ns, index, id=label))
    return cases


def _forbidden(report: Any) -> list[str]:
    failures = [e.message for e in report.errors] + [
        c.error or "" for c in report.changes if c.result is Result.FAILED
    ]
    return [m for m in failures if "HTTP 403" in m and "is forbidden:" in m]


def _drift_owned_objects(sb: Sandbox) -> None:
    """Out-of-band edits of what fedkeeper owns, so its repairs (patch, delete) run."""
    cfg = sb.config
    remote = cfg.federation.remote_service_account
    access_ns = cfg.federation.access_secret_namespace
    calico = f"{cfg.federation.calico_api.group}/{cfg.federation.calico_api.version}"

    def no_rules(o: dict[str, Any]) -> None:
        o["rules"] = []

    def bound_elsewhere(kind: str) -> Any:
        # A roleRef cannot change: fedkeeper deletes and re-creates such a binding.
        def edit(o: dict[str, Any]) -> None:
            o["roleRef"] = {
                "apiGroup": RBAC.split("/", maxsplit=1)[0],
                "kind": kind,
                "name": "elsewhere",
            }

        return edit

    def unbound(o: dict[str, Any]) -> None:
        o["metadata"]["annotations"][SA_NAME_ANNOTATION] = "someone-else"

    def overlay(o: dict[str, Any]) -> None:
        o["spec"]["syncOptions"] = {"overlayRoutingMode": "Enabled"}

    for server, rcc in (
        (sb.eks_server, cfg.sole_site().name),
        (sb.onprem_server, cfg.sole_eks().name),
    ):
        server.mutate(RBAC, "ClusterRole", remote.name, None, no_rules)
        server.mutate(RBAC, "ClusterRoleBinding", remote.name, None, bound_elsewhere("ClusterRole"))
        server.mutate(RBAC, "Role", TYPHA_ACCESS, access_ns, no_rules)
        server.mutate(RBAC, "RoleBinding", TYPHA_ACCESS, access_ns, bound_elsewhere("Role"))
        server.mutate(calico, "RemoteClusterConfiguration", rcc, None, overlay)
        server.mutate("v1", "Secret", remote.name, remote.namespace, unbound)
    pool = pool_name(str(cfg.sole_eks().network.cidr))
    sb.onprem_server.mutate(
        calico, "IPPool", pool, None, lambda o: o["spec"].update(natOutgoing=True)
    )


def _disown_federation_objects(sb: Sandbox) -> None:
    """Strip fedkeeper's labels, as if the objects had been made by hand."""
    cfg = sb.config
    remote = cfg.federation.remote_service_account
    access_ns = cfg.federation.access_secret_namespace
    calico = f"{cfg.federation.calico_api.group}/{cfg.federation.calico_api.version}"

    def disown(o: dict[str, Any]) -> None:
        o["metadata"]["labels"] = {}

    for server, rcc in (
        (sb.eks_server, cfg.sole_site().name),
        (sb.onprem_server, cfg.sole_eks().name),
    ):
        server.mutate("v1", "ServiceAccount", remote.name, remote.namespace, disown)
        server.mutate(calico, "RemoteClusterConfiguration", rcc, None, disown)
        server.mutate("v1", "Secret", access_secret_name(rcc), access_ns, disown)


def _enable_federated_services_by_manifest(sb: Sandbox) -> None:
    """The KubeControllersConfiguration leaves federatedServices out on both clusters."""
    api = sb.config.federation.calico_api
    calico = f"{api.group}/{api.version}"

    def manifest(o: dict[str, Any]) -> None:
        o["spec"]["controllers"].pop("federatedServices", None)

    for server in (sb.eks_server, sb.onprem_server):
        server.mutate(calico, "KubeControllersConfiguration", "default", None, manifest)


@pytest.mark.parametrize(("side", "kind", "namespace", "index"), _cases())
def test_removing_any_one_rule_the_reconciler_needs_fails_with_a_403(
    example_config: FederationConfig, side: Side, kind: str, namespace: str | None, index: int
) -> None:
    with Sandbox.start(example_config, converge=False) as sb:
        server = sb.eks_server if side == "eks" else sb.onprem_server
        removed: list[dict[str, Any]] = []
        server.mutate(
            RBAC, kind, RECONCILER, namespace, lambda o: removed.append(o["rules"].pop(index))
        )

        # Converging a fresh federation creates, lists and reads; repairing drift patches
        # and deletes. Without the rule, one of them must be refused.
        forbidden = _forbidden(sb.reconcile(None, "apply"))
        if not forbidden:
            _drift_owned_objects(sb)
            forbidden = _forbidden(sb.reconcile(None, "apply"))
        if not forbidden:
            # A manifest install: no federatedServices in the controllers' configuration, so
            # the checks read the calico-kube-controllers Deployment to tell.
            _enable_federated_services_by_manifest(sb)
            forbidden = _forbidden(sb.reconcile(["checks"], "plan"))
        if not forbidden:
            # Taking over objects made by hand labels them (patches under their own names).
            _disown_federation_objects(sb)
            forbidden = _forbidden(adopt(sb.connections(), "apply"))

        assert forbidden, f"no request needed {removed}"
        # Errors name the cluster by its mesh name (its backend).
        backend = sb.config.sole_eks().name if side == "eks" else sb.config.sole_site().name
        assert forbidden[0].startswith(f"{backend}:")


def test_the_deployed_rbac_converges_and_repairs_everything(
    example_config: FederationConfig,
) -> None:
    with Sandbox.start(example_config, converge=False) as sb:
        first = sb.reconcile(None, "apply")
        assert (first.errors, _forbidden(first)) == ([], [])
        _drift_owned_objects(sb)
        repair = sb.reconcile(None, "apply")
        assert (repair.errors, _forbidden(repair)) == ([], [])
        assert {c.result for c in repair.changes} == {Result.APPLIED}
        assert sb.reconcile(None, "apply").converged


def test_the_reconciler_cannot_widen_the_role_it_manages(sandbox: Sandbox) -> None:
    from fedkeeper.errors import PermanentError

    eks = sandbox.connections().eks()
    remote = sandbox.config.federation.remote_service_account.name
    everything = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
    with pytest.raises(PermanentError, match=r"HTTP 403: .*not currently held"):
        eks.patch("ClusterRole", remote, {"rules": [everything]})


def test_the_reconciler_cannot_bind_itself_to_a_role_it_does_not_hold(sandbox: Sandbox) -> None:
    from fedkeeper.errors import PermanentError

    sandbox.eks_server.seed(
        {
            "apiVersion": RBAC,
            "kind": "ClusterRole",
            "metadata": {"name": "cluster-admin"},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
        }
    )
    binding = {
        "apiVersion": RBAC,
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "fedkeeper-admin"},
        "roleRef": {
            "apiGroup": RBAC.split("/", maxsplit=1)[0],
            "kind": "ClusterRole",
            "name": "cluster-admin",
        },
        "subjects": [
            {
                "kind": "Group",
                "name": "fedkeeper-reconciler",
                "apiGroup": RBAC.split("/", maxsplit=1)[0],
            }
        ],
    }
    with pytest.raises(PermanentError, match="HTTP 403"):
        sandbox.connections().eks().create(binding)
    assert sandbox.eks_server.get_object(RBAC, "ClusterRoleBinding", "fedkeeper-admin") is None
