"""The engine's rules, with stub runners and a recording AWS adapter (no I/O)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedkeeper.config import FederationConfig, Mode, load_config
from fedkeeper.errors import ConflictError, PermanentError, RetryableError, UnreachableError
from fedkeeper.invariants import Plan
from fedkeeper.model import Action, ApiCounter, Change, Invariant, Result, Scope
from fedkeeper.service import Run, effective_mode, reconcile


@dataclass
class RecordingAws:
    fail_on: dict[str, Exception] = field(default_factory=dict)
    written: list[str] = field(default_factory=list)

    def enable_route_propagation(self, rt: str, gw: str) -> None:
        if rt in self.fail_on:
            raise self.fail_on.pop(rt)
        self.written.append(rt)


EXAMPLE_CONFIG = load_config(Path(__file__).resolve().parents[2] / "federation.example.yaml")


@dataclass
class StubConns:
    # The example federation: its clusters are the backends "fed-eks" and "onprem".
    config: Any = field(default_factory=lambda: EXAMPLE_CONFIG)
    aws: RecordingAws = field(default_factory=RecordingAws)
    counter: ApiCounter = field(default_factory=ApiCounter)
    guard: Any = None
    clock: Any = time.monotonic

    def use_guard(self, guard: Any) -> None:
        self.guard = guard


def enable(rt: str) -> Change:
    return Change(
        backend="aws",
        kind="RouteTable",
        name=rt,
        action=Action.UPDATE,
        reason=f"{rt} drifted",
        invariant=Invariant.ROUTES,
        payload={"op": "enable_vgw_route_propagation", "route_table_id": rt, "gateway_id": "vgw"},
    )


def runner_for(*rts: str):  # type: ignore[no-untyped-def]
    def run(r: Run) -> Plan:
        return Plan(changes=[enable(rt) for rt in rts if rt not in r.conns.aws.written])

    return run


def test_plan_mode_writes_nothing() -> None:
    conns = StubConns()
    report = reconcile(
        conns, Scope.of("routes"), "plan", runners={Invariant.ROUTES: runner_for("a", "b")}
    )  # type: ignore[arg-type]
    assert conns.aws.written == []
    assert [c.result for c in report.changes] == [Result.PLANNED, Result.PLANNED]
    assert not report.converged


def test_apply_writes_and_converges() -> None:
    conns = StubConns()
    report = reconcile(
        conns, Scope.of("routes"), "apply", runners={Invariant.ROUTES: runner_for("a")}
    )  # type: ignore[arg-type]
    assert conns.aws.written == ["a"]
    assert report.converged
    assert report.to_dict()["changes"][0] == {
        "target": "aws/RouteTable/a",
        "invariant": "routes",
        "action": "update",
        "reason": "a drifted",
        "result": "applied",
    }


def test_a_failed_target_does_not_stop_the_others() -> None:
    conns = StubConns(aws=RecordingAws(fail_on={"a": PermanentError("forbidden")}))
    report = reconcile(
        conns, Scope.of("routes"), "apply", runners={Invariant.ROUTES: runner_for("a", "b")}
    )  # type: ignore[arg-type]
    assert conns.aws.written == ["b"]
    assert [c.result for c in report.changes] == [Result.FAILED, Result.APPLIED]
    assert report.to_dict()["changes"][0]["error"] == "forbidden"
    assert not report.converged


def test_conflict_rereads_and_replans() -> None:
    conns = StubConns(aws=RecordingAws(fail_on={"a": ConflictError("409")}))
    calls: list[int] = []
    base = runner_for("a")

    def counting(r: Run) -> Plan:
        calls.append(1)
        return base(r)

    report = reconcile(conns, Scope.of("routes"), "apply", runners={Invariant.ROUTES: counting})  # type: ignore[arg-type]
    assert len(calls) == 2
    assert conns.aws.written == ["a"]
    assert report.converged


def test_endless_conflicts_fail_after_bounded_attempts() -> None:
    class AlwaysConflict(RecordingAws):
        def enable_route_propagation(self, rt: str, gw: str) -> None:
            raise ConflictError("409 again")

    conns = StubConns(aws=AlwaysConflict())
    report = reconcile(
        conns, Scope.of("routes"), "apply", runners={Invariant.ROUTES: runner_for("a")}
    )  # type: ignore[arg-type]
    assert [c.result for c in report.changes] == [Result.FAILED]


def test_unreachable_onprem_defers_and_other_invariants_still_run() -> None:
    def onprem_runner(r: Run) -> Plan:
        raise UnreachableError("connection refused", target="onprem")

    conns = StubConns()
    report = reconcile(  # type: ignore[arg-type]
        conns,
        Scope.of("routes", "ippools"),
        "apply",
        runners={Invariant.ROUTES: runner_for("a"), Invariant.IPPOOLS: onprem_runner},
    )
    assert conns.aws.written == ["a"]
    assert report.to_dict()["deferred"] == [{"target": "onprem", "reason": "connection refused"}]
    assert not report.converged


def test_errors_are_classified_retryable_or_permanent() -> None:
    def throttled(r: Run) -> Plan:
        raise RetryableError("Throttling")

    def forbidden(r: Run) -> Plan:
        raise PermanentError("AccessDenied")

    report = reconcile(  # type: ignore[arg-type]
        StubConns(),
        Scope.of("routes", "snat"),
        "apply",
        runners={Invariant.ROUTES: throttled, Invariant.SNAT: forbidden},
    )
    assert [e["retryable"] for e in report.to_dict()["errors"]] == [True, False]


def test_plan_is_a_kill_switch(example_config: FederationConfig) -> None:
    assert effective_mode("apply", example_config, None) == "apply"
    assert effective_mode("apply", example_config, "plan") == "plan"
    planned = example_config.model_copy(update={"mode": Mode.PLAN})
    assert effective_mode("apply", planned, None) == "plan"
