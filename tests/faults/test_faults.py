"""Faults, through the sandbox: each asserts nothing unowned was touched and nothing owned lost.

Faults are injected at the emulators (refused connections, 5xx, throttling, 409s) or by
wrapping the real client from the test; production code is not told about any of them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from fedkeeper.adapters.kube import KubeCluster
from fedkeeper.invariants.ippools import pool_name
from fedkeeper.model import MANAGED_BY_LABEL, Report, Result, Scope
from fedkeeper.sandbox import Sandbox
from fedkeeper.sandbox.kube_server import FakeKubeServer
from fedkeeper.service import Connections, reconcile

CALICO = "projectcalico.org/v3"
KINDS = [
    (CALICO, "IPPool"),
    (CALICO, "RemoteClusterConfiguration"),
    (CALICO, "BGPPeer"),
    ("v1", "Secret"),
    ("v1", "ServiceAccount"),
    ("apps/v1", "DaemonSet"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
]


def _key(o: dict[str, Any]) -> str:
    m = o["metadata"]
    return f"{o['kind']}/{m.get('namespace', '')}/{m['name']}"


def snapshot(server: FakeKubeServer) -> tuple[dict[str, str], set[str]]:
    """(unowned objects → their JSON, names of owned objects)."""
    unowned: dict[str, str] = {}
    owned: set[str] = set()
    for api, kind in KINDS:
        for stored in server.list_objects(api, kind):
            o = {**stored, "kind": kind}
            if (o["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == "fedkeeper":
                owned.add(_key(o))
            elif kind != "DaemonSet":  # aws-node legitimately follows the add-on
                unowned[_key(o)] = json.dumps(o, sort_keys=True)
    return unowned, owned


def heal(sb: Sandbox) -> Report:
    """A full repair, waiting for any add-on update it (or the case) started to roll out:
    fedkeeper checks aws-node at the next trigger after its own update, so the proof of
    convergence is the run after the rollout."""
    sb.advance_time(sb.aws.addon_seconds_left())
    healed = sb.reconcile(None, "apply")
    if sb.aws.addon_seconds_left():
        sb.advance_time(sb.aws.addon_seconds_left())
        healed = sb.reconcile(None, "apply")
    return healed


def settled(report: Report) -> bool:
    """Converged, but for fedkeeper's own add-on update still rolling out."""
    own = [d for d in report.deferred if "fedkeeper's update of the vpc-cni add-on" in d.reason]
    rest = [d for d in report.deferred if d not in own]
    if rest or report.errors or report.failed_targets:
        return False
    return all(c.result is Result.APPLIED for c in report.changes)


@contextmanager
def guarded(sb: Sandbox) -> Iterator[None]:
    """Nothing unowned changes; after a healing run, every owned object is still there."""
    before = {s.name: snapshot(s) for s in (sb.eks_server, sb.onprem_server)}
    yield
    sb.connections().forget_onprem()
    healed = heal(sb)
    assert healed.converged, healed.to_dict()
    for s in (sb.eks_server, sb.onprem_server):
        unowned, owned = snapshot(s)
        assert unowned == before[s.name][0], f"{s.name}: an unowned object changed"
        assert before[s.name][1] <= owned, f"{s.name}: owned objects lost"


def _drift_everything(sb: Sandbox) -> None:
    def drift(p: dict[str, Any]) -> None:
        p["spec"]["natOutgoing"] = True

    sb.onprem_server.mutate(CALICO, "IPPool", pool_name("10.100.0.0/16"), None, drift)
    sb.eks_server.delete_object(CALICO, "RemoteClusterConfiguration", "onprem")
    sb.onprem_server.delete_object(CALICO, "RemoteClusterConfiguration", "fed-eks")
    sb.aws.reset_addon_configuration(sb.config.sole_eks().cluster_name, "vpc-cni", "{}")


def _after_calls(cluster: KubeCluster, n: int, action: Callable[[], None]) -> None:
    """Run ``action`` once, after ``n`` API calls through ``cluster``'s real client."""
    original = cluster.api.call_api
    count = {"n": 0}

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        count["n"] += 1
        if count["n"] == n + 1:
            action()
        return original(*args, **kwargs)

    cluster.api.call_api = wrapped  # type: ignore[method-assign]


def test_onprem_unreachable_mid_run_defers_and_eks_is_repaired(sandbox: Sandbox) -> None:
    _drift_everything(sandbox)
    with guarded(sandbox):
        onprem = sandbox.connections().onprem()
        _after_calls(onprem, 2, lambda: sandbox.onprem_server.set_unreachable(True))
        report = sandbox.reconcile(None, "apply")
        assert any(d.target == "onprem" for d in report.deferred)
        applied = {c.change.target for c in report.changes if c.result is Result.APPLIED}
        assert "aws/Addon/fed-eks/vpc-cni" in applied
        assert "fed-eks/RemoteClusterConfiguration/onprem" in applied
        assert not report.converged
        sandbox.onprem_server.set_unreachable(False)


def test_eks_api_5xx_is_retryable_and_aws_side_still_repaired(sandbox: Sandbox) -> None:
    b = sandbox.baseline
    assert b is not None
    sandbox.aws_session().client("ec2").disable_vgw_route_propagation(
        RouteTableId=b.private_route_table_ids[0], GatewayId=b.vgw_id
    )
    with guarded(sandbox):
        sandbox.eks_server.fail_next(503, times=1000)
        report = sandbox.reconcile(None, "apply")
        assert [c.result for c in report.changes] == [Result.APPLIED]  # the route table
        errors = report.to_dict()["errors"]
        assert errors and all(e["retryable"] for e in errors)
        assert {e["invariant"] for e in errors} >= {"snat", "rcc"}
        sandbox.eks_server.clear_faults()


def test_aws_throttling_is_retried_by_botocore(sandbox: Sandbox) -> None:
    with guarded(sandbox):
        sandbox.aws.fail_next("ec2", "DescribeRouteTables", "Throttling", times=2)
        report = sandbox.reconcile(["routes"], "apply")
        assert report.converged and not report.errors


def test_persistent_throttling_becomes_a_retryable_error(sandbox: Sandbox) -> None:
    with guarded(sandbox):
        # RETRY_CONFIG allows 4 attempts: all four are throttled.
        sandbox.aws.fail_next("ec2", "DescribeRouteTables", "Throttling", times=4)
        report = sandbox.reconcile(["routes"], "apply")
        sandbox.aws.clear_faults()
        [error] = report.to_dict()["errors"]
        assert error["retryable"] is True and "Throttling" in error["error"]


def test_a_storm_of_409s_is_bounded_and_the_next_run_converges(sandbox: Sandbox) -> None:
    _drift_everything(sandbox)
    with guarded(sandbox):
        sandbox.onprem_server.conflict_next(50)
        report = sandbox.reconcile(["ippools", "rcc"], "apply")
        failed = [c for c in report.changes if c.result is Result.FAILED]
        assert failed and all("409" in (c.error or "") for c in failed)
        assert not report.converged
        sandbox.onprem_server.clear_faults()


def test_two_reconciles_racing_on_one_object_both_converge(sandbox: Sandbox) -> None:
    _drift_everything(sandbox)
    other = Connections(sandbox.config, sandbox.reconciler_session())  # another container
    reports: list[Any] = []
    with guarded(sandbox):
        barrier = threading.Barrier(2)

        def run(conns: Connections) -> None:
            barrier.wait()
            reports.append(reconcile(conns, Scope.everything(), "apply"))

        threads = [threading.Thread(target=run, args=(c,)) for c in (sandbox.connections(), other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(reports) == 2
        for r in reports:
            assert not r.errors, r.to_dict()
        pool = sandbox.onprem_server.get_object(CALICO, "IPPool", pool_name("10.100.0.0/16"))
        assert pool is not None and "natOutgoing" not in pool["spec"]  # served without false
    other.close()


def test_crash_between_two_writes_is_finished_by_the_next_run(sandbox: Sandbox) -> None:
    _drift_everything(sandbox)
    with guarded(sandbox):
        conns = sandbox.connections()
        onprem = conns.onprem()

        def crash() -> None:
            raise KeyboardInterrupt("process killed between two writes")

        _after_calls(onprem, 8, crash)
        with pytest.raises(KeyboardInterrupt):
            sandbox.reconcile(None, "apply")
        conns.forget_onprem()  # a new process: fresh clients


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ("not: [valid", "not a YAML or JSON kubeconfig"),
        ("just a string", "must hold a kubeconfig mapping"),
        (json.dumps({"apiVersion": "v1", "clusters": []}), "has no clusters, users, contexts"),
        (
            json.dumps(
                {
                    "clusters": [{"name": "c", "cluster": {"server": "https://x"}}],
                    "users": [{"name": "u", "user": {"exec": {"command": "aws"}}}],
                    "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                }
            ),
            "exec credential plugin",
        ),
    ],
)
def test_malformed_onprem_secret_is_a_clear_permanent_error(
    sandbox: Sandbox, secret: str, expected: str
) -> None:
    sm = sandbox.aws_session().client("secretsmanager")
    good = sm.get_secret_value(SecretId=sandbox.config.sole_site().credentials_secret)[
        "SecretString"
    ]
    with guarded(sandbox):
        sm.put_secret_value(
            SecretId=sandbox.config.sole_site().credentials_secret, SecretString=secret
        )
        sandbox.connections().forget_onprem()
        report = sandbox.reconcile(["ippools"], "apply")
        [error] = report.to_dict()["errors"]
        assert error["retryable"] is False
        assert expected in error["error"]
        assert sandbox.config.sole_site().credentials_secret in error["error"]
        sm.put_secret_value(
            SecretId=sandbox.config.sole_site().credentials_secret, SecretString=good
        )


def test_missing_onprem_secret_is_a_permanent_error(sandbox: Sandbox) -> None:
    sm = sandbox.aws_session().client("secretsmanager")
    name = sandbox.config.sole_site().credentials_secret
    good = sm.get_secret_value(SecretId=name)["SecretString"]
    with guarded(sandbox):
        sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        sandbox.connections().forget_onprem()
        report = sandbox.reconcile(["ippools"], "apply")
        [error] = report.to_dict()["errors"]
        assert error["retryable"] is False and "ResourceNotFoundException" in error["error"]
        sm.create_secret(Name=name, SecretString=good)
