"""What the Lambda tests share: the event files, a stub runtime, and the functions' output.

Events in ``tests/events/`` are full EventBridge deliveries as AWS sends them; manual
payloads for the repair function are under ``tests/events/manual/``.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from logging import StreamHandler
from pathlib import Path
from typing import Any

from fedkeeper.config import FederationConfig
from fedkeeper.errors import UnreachableError
from fedkeeper.invariants import Plan
from fedkeeper.lambda_runtime import Runtime, Settings
from fedkeeper.model import Action, ApiCounter, Change, Finding, Invariant, Report, Severity
from fedkeeper.sandbox.lambda_context import FakeLambdaContext
from fedkeeper.service import Run

EVENTS = Path(__file__).resolve().parent / "events"

# Each event file, the rule that must route it, and nothing else.
EVENT_RULES: dict[str, str | None] = {
    "cloudwatch_tunnel_alarm_ALARM.json": "tunnel-state",
    "cloudwatch_tunnel_alarm_OK.json": "tunnel-state",
    "health_vpn_redundancy_loss.json": "vpn-health",
    "cloudtrail_ec2_DisableVgwRoutePropagation.json": "route-change",
    "cloudtrail_ec2_DisableVgwRoutePropagation_denied.json": "route-change",
    "cloudtrail_ec2_AssociateVpcCidrBlock.json": "route-change",
    "cloudtrail_eks_UpdateAddon.json": "cluster-api-call",
    "eks_addon_update_succeeded.json": "cluster-addon-event",
    "scheduled_event.json": "schedule",
    "ec2_instance_state_change.json": None,
}
BAD_MANUAL = {
    "manual/bad_unknown_action.json": "action",
    "manual/bad_scope_not_a_list.json": "scope",
    "manual/bad_unknown_scope.json": "scope[1]",
    "manual/bad_extra_key.json": "force",
    "manual/bad_not_an_object.json": "request",
    "manual/bad_missing_action.json": "action",
}


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def context(handler: str = "test") -> Any:
    return FakeLambdaContext.for_handler(handler)


# --- a stub world: the real engine, stub runners, a recording AWS adapter --------------------


@dataclass
class RecordingAws:
    written: list[str] = field(default_factory=list)

    def enable_route_propagation(self, rt: str, gw: str) -> None:
        self.written.append(rt)


@dataclass
class StubConns:
    config: FederationConfig
    aws: RecordingAws = field(default_factory=RecordingAws)
    counter: ApiCounter = field(default_factory=ApiCounter)
    guard: Any = None
    clock: Any = time.monotonic

    def use_guard(self, guard: Any) -> None:
        self.guard = guard


def drifted_routes(*tables: str) -> Callable[[Run], Plan]:
    """A routes runner: each table lacks propagation until the stub AWS enabled it."""

    def run(r: Run) -> Plan:
        aws: RecordingAws = r.conns.aws  # type: ignore[assignment]
        return Plan(
            changes=[
                Change(
                    backend="aws",
                    kind="RouteTable",
                    name=rt,
                    action=Action.UPDATE,
                    reason=f"{rt} does not propagate from the VGW",
                    invariant=Invariant.ROUTES,
                    payload={
                        "op": "enable_vgw_route_propagation",
                        "route_table_id": rt,
                        "gateway_id": "vgw-1",
                    },
                )
                for rt in tables
                if rt not in aws.written
            ]
        )

    return run


def tunnels(up: int) -> Callable[[Run], Plan]:
    """A vpn runner that sees ``up`` tunnels up (of two)."""

    def run(r: Run) -> Plan:
        r.report.tunnels_up = up
        plan = Plan()
        if up == 0:
            r.guard.mark_down("onprem", UnreachableError("no VPN tunnel up", target="onprem"))
            plan.findings.append(Finding(Severity.ERROR, "vpn.tunnels", "no VPN tunnel is up"))
        return plan

    return run


def failing(exc: Exception) -> Callable[[Run], Plan]:
    def run(r: Run) -> Plan:
        raise exc

    return run


@dataclass
class StubWorld:
    """A Runtime over StubConns, recording which invariants ran and every Report."""

    config: FederationConfig
    runners: dict[Invariant, Callable[[Run], Plan]]
    settings: Settings = field(default_factory=lambda: Settings.from_env({}))
    ran: list[str] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)
    conns: StubConns | None = None

    def runtime(self) -> Runtime:
        self.conns = self.conns or StubConns(self.config)
        runners = {inv: self._recording(inv, fn) for inv, fn in self.runners.items()}
        return Runtime(
            self.settings,
            self.config,
            connections=self.conns,  # type: ignore[arg-type]
            runners=runners,
            on_report=self.reports.append,
        )

    def _recording(self, inv: Invariant, fn: Callable[[Run], Plan]) -> Callable[[Run], Plan]:
        def run(r: Run) -> Plan:
            self.ran.append(inv.value)
            return fn(r)

        return run

    @property
    def written(self) -> list[str]:
        return self.conns.aws.written if self.conns else []


# --- what a function writes to CloudWatch Logs -----------------------------------------------


@dataclass
class FunctionOutput:
    """Lines the handlers wrote: JSON log records and EMF metric blobs."""

    buffer: io.StringIO

    @property
    def lines(self) -> list[str]:
        return self.buffer.getvalue().splitlines()

    @property
    def text(self) -> str:
        return self.buffer.getvalue()

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.lines:
            with contextlib.suppress(json.JSONDecodeError):
                blob = json.loads(line)
                if isinstance(blob, dict) and "_aws" not in blob:
                    out.append(blob)
        return out

    def metrics(self) -> dict[str, float]:
        """Metric name → value of the last EMF blob that carried it."""
        values: dict[str, float] = {}
        for line in self.lines:
            with contextlib.suppress(json.JSONDecodeError):
                blob = json.loads(line)
                if not isinstance(blob, dict) or "_aws" not in blob:
                    continue
                for directive in blob["_aws"]["CloudWatchMetrics"]:
                    for metric in directive["Metrics"]:
                        raw = blob[metric["Name"]]
                        values[metric["Name"]] = raw[-1] if isinstance(raw, list) else raw
        return values

    def emf_blobs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.lines:
            with contextlib.suppress(json.JSONDecodeError):
                blob = json.loads(line)
                if isinstance(blob, dict) and "_aws" in blob:
                    out.append(blob)
        return out


@contextlib.contextmanager
def function_output() -> Iterator[FunctionOutput]:
    """Capture the handlers' logger stream and stdout (where Powertools prints EMF).

    In a pytest fixture the stdout redirect does not survive into the test (pytest resets
    sys.stdout between phases); redirect to ``.buffer`` around the call there.
    """
    import lambdas

    buffer = io.StringIO()
    handler = lambdas.logger.registered_handler
    assert isinstance(handler, StreamHandler)
    previous = handler.setStream(buffer)
    try:
        with contextlib.redirect_stdout(buffer):
            yield FunctionOutput(buffer)
    finally:
        handler.setStream(previous)
