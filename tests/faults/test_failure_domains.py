"""Failure domains and the time budget: one broken side never stops the other.

One case per fault class on each cluster and per AWS service. Faults are injected at the
emulators (docs/SANDBOX.md, "Fault injection"); production code is not told about them.
Each case asserts that nothing unowned was touched and nothing owned lost (``guarded``),
that the healthy side was repaired, that the Report names the failed target, and that the
run ended within its deadline (measured on the sandbox clock, which delayed answers and
timed-out AWS attempts advance).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fedkeeper.invariants.ippools import pool_name
from fedkeeper.model import Report, Result
from fedkeeper.sandbox import Sandbox
from fedkeeper.sandbox.kube_server import FakeKubeServer
from tests.faults.test_faults import _drift_everything, guarded, heal, settled

pytestmark = pytest.mark.xdist_group("failure-domains")

DEADLINE_S = 280.0  # the repair Lambda's 300 s less the handler's margin
TINY_TIMEOUT = (0.2, 0.3)  # real seconds per HTTP attempt, so a hang costs well under 1 s

KUBE_FAULTS: dict[str, Callable[[FakeKubeServer], None]] = {
    "5xx": lambda s: s.fail_next(503, times=10_000),
    "401": lambda s: s.fail_next(401, times=10_000, message="Unauthorized"),
    "403": lambda s: s.fail_next(403, times=10_000, message="forbidden"),
    "404-crd": lambda s: s.fail_next(404, times=10_000, path_contains="/apis/projectcalico.org"),
    "unreachable": lambda s: s.set_unreachable(True),
    "hang": lambda s: s.hang(True),
    # 9 s per answer on the sandbox clock: slow, yet inside the 10 s read timeout.
    "slow": lambda s: s.delay_answers(9.0),
}
# The example's clusters by side: a backend is the cluster's mesh name.
BACKEND = {"eks": "fed-eks", "onprem": "onprem"}
# What the other side's repair looks like in the Report, per broken cluster.
HEALTHY_REPAIRS = {
    "onprem": {"aws/Addon/fed-eks/vpc-cni", "fed-eks/RemoteClusterConfiguration/onprem"},
    "eks": {
        "aws/Addon/fed-eks/vpc-cni",
        f"onprem/IPPool/{pool_name('10.100.0.0/16')}",
        "onprem/RemoteClusterConfiguration/fed-eks",
    },
}


def _applied(report: Report) -> set[str]:
    return {c.change.target for c in report.changes if c.result is Result.APPLIED}


def _timed_run(sb: Sandbox) -> tuple[Report, float]:
    start = sb.clock.monotonic()
    report = sb.reconcile(None, "apply", deadline_s=DEADLINE_S)
    return report, sb.clock.monotonic() - start


def _named(report: Report, target: str) -> bool:
    out = report.to_dict()
    texts = [f["target"] for f in out.get("failed_targets", [])]
    texts += [d["target"] for d in out["deferred"]]
    return any(t == target or t.startswith(f"{target}/") for t in texts)


@pytest.mark.parametrize("fault", list(KUBE_FAULTS))
@pytest.mark.parametrize("cluster", ["eks", "onprem"])
def test_a_broken_cluster_keeps_its_failure_to_its_own_work(
    sandbox: Sandbox, cluster: str, fault: str
) -> None:
    server = sandbox.eks_server if cluster == "eks" else sandbox.onprem_server
    conns = sandbox.connections()
    conns.kube_timeout = TINY_TIMEOUT
    _drift_everything(sandbox)
    with guarded(sandbox):
        KUBE_FAULTS[fault](server)
        try:
            report, took = _timed_run(sandbox)
        finally:
            server.clear_faults()
            server.set_unreachable(False)
        assert took <= DEADLINE_S
        if fault == "slow":
            # Nothing failed; whatever the budget did not reach says so.
            assert not report.errors and not report.failed_targets, report.to_dict()
            assert settled(report) or any("not reached" in d.reason for d in report.deferred)
            assert "aws/Addon/fed-eks/vpc-cni" in _applied(report)
        else:
            assert not report.converged
            assert _named(report, BACKEND[cluster]), report.to_dict()
            missing = HEALTHY_REPAIRS[cluster] - _applied(report)
            assert not missing, (missing, report.to_dict())
        other = "onprem" if cluster == "eks" else "eks"
        assert not any(f.target == BACKEND[other] for f in report.failed_targets)
    conns.kube_timeout = (3.0, 10.0)


def _fail_aws(sb: Sandbox, service: str, operation: str, fault: str) -> None:
    if fault == "throttling":
        sb.aws.fail_next(service, operation, "Throttling", times=10_000)
    elif fault == "5xx":
        sb.aws.fail_next(service, operation, "ServiceUnavailable", status=503, times=10_000)
    else:
        sb.aws.time_out_next(service, operation, times=10_000, seconds=10.0)


AWS_CASES: dict[str, tuple[str, set[str]]] = {
    # service: (the operation faulted, what is repaired regardless)
    "ec2": (
        "DescribeVpcs",
        {
            "aws/Addon/fed-eks/vpc-cni",
            "fed-eks/RemoteClusterConfiguration/onprem",
            "onprem/RemoteClusterConfiguration/fed-eks",
        },
    ),
    "eks": (
        "DescribeAddon",
        {
            f"onprem/IPPool/{pool_name('10.100.0.0/16')}",
            "fed-eks/RemoteClusterConfiguration/onprem",
            "onprem/RemoteClusterConfiguration/fed-eks",
        },
    ),
    "secretsmanager": (
        "GetSecretValue",
        {"aws/Addon/fed-eks/vpc-cni", "fed-eks/RemoteClusterConfiguration/onprem"},
    ),
}


@pytest.mark.parametrize("fault", ["throttling", "5xx", "timeout"])
@pytest.mark.parametrize("service", list(AWS_CASES))
def test_a_broken_aws_service_keeps_its_failure_to_its_own_work(
    sandbox: Sandbox, service: str, fault: str
) -> None:
    operation, repaired = AWS_CASES[service]
    _drift_everything(sandbox)
    with guarded(sandbox):
        sandbox.connections().forget_onprem()  # a new container reads the credentials
        _fail_aws(sandbox, service, operation, fault)
        sandbox.aws.clear_calls()
        try:
            report, took = _timed_run(sandbox)
        finally:
            sandbox.aws.clear_faults()
        assert took <= DEADLINE_S
        assert not report.converged
        assert _named(report, f"aws/{service}") or (
            service == "secretsmanager" and _named(report, "onprem")
        ), report.to_dict()
        missing = repaired - _applied(report)
        assert not missing, (missing, report.to_dict())
        # The failed read was made once, not once per invariant that needed it.
        assert [c for c in sandbox.aws.calls if c[1] == operation] == [(service, operation)]


def test_work_past_the_deadline_is_deferred_as_not_reached(sandbox: Sandbox) -> None:
    _drift_everything(sandbox)
    with guarded(sandbox):
        sandbox.onprem_server.delay_answers(9.0)
        try:
            start = sandbox.clock.monotonic()
            report = sandbox.reconcile(None, "apply", deadline_s=60.0)
            took = sandbox.clock.monotonic() - start
        finally:
            sandbox.onprem_server.clear_faults()
        assert took <= 60.0
        assert any("not reached" in d.reason and d.retry for d in report.deferred)
        assert "aws/Addon/fed-eks/vpc-cni" in _applied(report)  # AWS work came first
        assert not report.converged


@pytest.fixture
def tls_sandbox(example_config: Any) -> Iterator[Sandbox]:
    """A converged sandbox whose API servers speak HTTPS with CAs of their own."""
    with Sandbox.start(example_config, tls=True) as sb:
        yield sb


def test_a_tls_sandbox_converges_over_https_with_the_cluster_ca(tls_sandbox: Sandbox) -> None:
    for server in (tls_sandbox.eks_server, tls_sandbox.onprem_server):
        assert server.url.startswith("https://127.0.0.1:")
        assert "BEGIN CERTIFICATE" in base64.b64decode(server.ca_data).decode()
    _drift_everything(tls_sandbox)
    report = tls_sandbox.reconcile(None, "apply")
    assert not report.errors and not report.failed_targets, report.to_dict()
    assert settled(report), report.to_dict()
    assert heal(tls_sandbox).converged


@pytest.mark.parametrize("cluster", ["eks", "onprem"])
def test_a_certificate_from_another_ca_keeps_its_failure_to_its_own_cluster(
    tls_sandbox: Sandbox, cluster: str
) -> None:
    server = tls_sandbox.eks_server if cluster == "eks" else tls_sandbox.onprem_server
    _drift_everything(tls_sandbox)
    with guarded(tls_sandbox):
        server.fail_tls(True)
        try:
            report, took = _timed_run(tls_sandbox)
        finally:
            server.fail_tls(False)
        assert took <= DEADLINE_S
        assert not report.converged
        failed = [f for f in report.failed_targets if f.target == BACKEND[cluster]]
        assert failed, report.to_dict()
        assert "TLS handshake failed" in failed[0].reason
        expected_ca = "the CA in the kubeconfig" if cluster == "onprem" else "the cluster CA"
        assert "does not match " + expected_ca in (failed[0].fix or "")
        missing = HEALTHY_REPAIRS[cluster] - _applied(report)
        assert not missing, (missing, report.to_dict())
        other = "onprem" if cluster == "eks" else "eks"
        assert not any(f.target == BACKEND[other] for f in report.failed_targets)
    # The real certificate again: the next run repairs the rest.
    assert heal(tls_sandbox).converged
