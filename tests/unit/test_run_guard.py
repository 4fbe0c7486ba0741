"""Failure domains, bounded retries and the time budget, with stub runners (no I/O)."""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import urllib3

from fedkeeper.adapters.kube import _connection_error
from fedkeeper.config import load_config
from fedkeeper.errors import (
    AnswerTimeoutError,
    OutOfTimeError,
    RetryableError,
    UnauthorizedError,
    UnreachableError,
)
from fedkeeper.guard import RunGuard, fix_for
from fedkeeper.invariants import Plan
from fedkeeper.invariants.snat import SnatObservation, plan_snat
from fedkeeper.model import (
    Action,
    Addon,
    ApiCounter,
    Change,
    Deferred,
    Invariant,
    Result,
    Scope,
)
from fedkeeper.service import Run, reconcile


@dataclass
class FailingAws:
    """Route tables in ``broken`` fail every time; every attempt is counted."""

    broken: set[str] = field(default_factory=set)
    attempts: list[str] = field(default_factory=list)

    def enable_route_propagation(self, rt: str, gw: str) -> None:
        self.attempts.append(rt)
        if rt in self.broken:
            raise RetryableError(f"AWS EnableVgwRoutePropagation failed for {rt}: 503")


EXAMPLE_CONFIG = load_config(Path(__file__).resolve().parents[2] / "federation.example.yaml")


@dataclass
class Conns:
    # The example federation: its clusters are the backends "fed-eks" and "onprem".
    config: Any = field(default_factory=lambda: EXAMPLE_CONFIG)
    aws: FailingAws = field(default_factory=FailingAws)
    counter: ApiCounter = field(default_factory=ApiCounter)
    clock: Any = time.monotonic
    guard: Any = None

    def use_guard(self, guard: Any) -> None:
        self.guard = guard


def enable(rt: str, after: tuple[str, ...] = ()) -> Change:
    return Change(
        backend="aws",
        kind="RouteTable",
        name=rt,
        action=Action.UPDATE,
        reason=f"{rt} drifted",
        invariant=Invariant.ROUTES,
        payload={"op": "enable_vgw_route_propagation", "route_table_id": rt, "gateway_id": "g"},
        after=after,
    )


def run_with(conns: Conns, runner: Any) -> Any:
    return reconcile(conns, Scope.of("routes"), "apply", runners={Invariant.ROUTES: runner})  # type: ignore[arg-type]


def test_a_failing_write_is_sent_once_per_run_even_when_the_plan_settles_again() -> None:
    conns = Conns(aws=FailingAws(broken={"a"}))
    report = run_with(conns, lambda r: Plan(changes=[enable("a")], settle=True))
    assert conns.aws.attempts == ["a"]
    assert [c.result for c in report.changes] == [Result.FAILED]


def test_a_write_needing_a_failed_write_is_not_attempted_and_says_why() -> None:
    conns = Conns(aws=FailingAws(broken={"secret"}))
    plan = Plan(changes=[enable("secret"), enable("rcc", after=("aws/RouteTable/secret",))])
    report = run_with(conns, lambda r: plan)
    assert conns.aws.attempts == ["secret"]
    skipped = report.changes[1]
    assert skipped.result is Result.SKIPPED and "aws/RouteTable/secret" in (skipped.error or "")
    assert not report.converged


def test_a_failed_read_is_not_repeated_by_the_next_invariant() -> None:
    reads: list[str] = []

    def read() -> Any:
        reads.append("vpc")
        raise UnreachableError("ec2 unreachable", target="aws/ec2")

    def runner(r: Run) -> Plan:
        r.cached("vpc", read)
        return Plan()

    report = reconcile(  # type: ignore[arg-type]
        Conns(),
        Scope.of("routes", "vpn"),
        "apply",
        runners={Invariant.ROUTES: runner, Invariant.VPN: runner},
    )
    assert reads == ["vpc"]
    assert [f.target for f in report.failed_targets] == ["aws/ec2"]
    assert report.failed_targets[0].invariants == ["vpn", "routes"]


def test_a_target_that_failed_domain_wide_is_refused_at_once() -> None:
    guard = RunGuard()
    err = RetryableError("onprem: HTTP 503")
    guard.failed("onprem", err)
    with pytest.raises(RetryableError):
        guard.before("onprem", 26)
    guard.before("eks", 26)  # the other cluster is untouched


def test_a_call_that_could_pass_the_deadline_is_not_made() -> None:
    now = [100.0]
    guard = RunGuard.within(30, lambda: now[0])
    guard.before("eks", 26)
    now[0] += 5
    with pytest.raises(OutOfTimeError):
        guard.before("eks", 26)


def test_work_not_reached_before_the_deadline_is_deferred_with_a_retry() -> None:
    def runner(r: Run) -> Plan:
        raise OutOfTimeError("eks: not reached")

    report = run_with(Conns(), runner)
    [d] = report.deferred
    assert d.retry and "not reached" in d.reason
    assert not report.failed_targets


def test_a_401_from_onprem_names_the_secret_and_the_rotation_command() -> None:
    err = UnauthorizedError("onprem: list IPPool: HTTP 401")
    err.status = 401
    fix = fix_for("onprem", err, credentials="fed-demo/onprem-kubeconfig", kind="onprem")
    assert fix is not None
    assert "fed-demo/onprem-kubeconfig" in fix and "fedkeeper onprem-bootstrap" in fix


def test_tls_and_read_timeouts_are_told_apart_from_refused_connections() -> None:
    tls = urllib3.exceptions.MaxRetryError(None, "/", urllib3.exceptions.SSLError(ssl.SSLError()))  # type: ignore[arg-type]
    assert "TLS" in str(_connection_error(tls, "onprem", "list IPPool"))
    slow = urllib3.exceptions.MaxRetryError(
        None,  # type: ignore[arg-type]
        "/",
        urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out"),  # type: ignore[arg-type]
    )
    assert isinstance(_connection_error(slow, "onprem", "get"), AnswerTimeoutError)
    refused = urllib3.exceptions.MaxRetryError(None, "/", ConnectionRefusedError())  # type: ignore[arg-type]
    err = _connection_error(refused, "onprem", "get")
    assert type(err) is UnreachableError and err.target == "onprem"


@pytest.mark.parametrize("status", ["UPDATING", "DEGRADED"])
def test_an_addon_updating_or_degraded_is_deferred_to_the_next_trigger_without_a_retry(
    status: str,
) -> None:
    """A busy add-on outlasts Lambda's retries: asking for one would only dead-letter it."""
    addon = Addon("c", "vpc-cni", "v1", status, '{"env":{"AWS_VPC_K8S_CNI_EXTERNALSNAT":"true"}}')
    plan = plan_snat(SnatObservation(cluster="c", addon=addon, daemonset=None))
    [d] = plan.deferred
    assert not d.retry and status in d.reason and "next trigger" in d.reason
    assert plan.changes == []


def test_a_deferred_retry_is_kept_by_the_report() -> None:
    report = run_with(Conns(), lambda r: Plan(deferred=[Deferred("x", "busy", retry=True)]))
    assert report.to_dict()["deferred"] == [{"target": "x", "reason": "busy", "retry": True}]
