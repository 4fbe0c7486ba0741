"""Named faults the real world inflicts on a federation, and how the demo proves each repair.

A scenario breaks the sandbox through the emulated APIs (as an operator, an add-on update or
a network event would), names the EventBridge event AWS would emit, and says how to tell the
world is whole again. :func:`run_scenario` delivers that event through the deployed patterns,
then re-runs a full reconcile and counts the writes the emulators saw: a repaired federation
needs none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fedkeeper.model import Report, Result
from fedkeeper.sandbox import event_factory as ev
from fedkeeper.sandbox.world import Sandbox


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    inject: Callable[[Sandbox], None]
    event: Callable[[Sandbox], dict[str, Any]]
    verify: Callable[[Sandbox], bool]
    cleanup: Callable[[Sandbox], None] | None = None
    # False when fedkeeper must refuse to write (e.g. a pool it does not own) and only report.
    expects_repair: bool = True


@dataclass
class ScenarioResult:
    scenario: str
    description: str
    detected: bool
    repaired: bool
    converged: bool
    writes_on_rerun: int
    report: Report
    rerun: Report
    writes: int

    @property
    def ok(self) -> bool:
        return self.detected and self.repaired and self.converged and self.writes_on_rerun == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "detected": self.detected,
            "repaired": self.repaired,
            "converged": self.converged,
            "writes_on_rerun": self.writes_on_rerun,
            "report": self.report.to_dict(),
        }


def _baseline(sb: Sandbox) -> Any:
    assert sb.baseline is not None, "sandbox not started"
    return sb.baseline


# --- routes ----------------------------------------------------------------------------------


def _disable_propagation(sb: Sandbox) -> None:
    b = _baseline(sb)
    sb.aws_session().client("ec2").disable_vgw_route_propagation(
        RouteTableId=b.private_route_table_ids[0], GatewayId=b.vgw_id
    )


def _propagation_event(sb: Sandbox) -> dict[str, Any]:
    b = _baseline(sb)
    return ev.cloudtrail(
        "ec2",
        "DisableVgwRoutePropagation",
        {"routeTableId": b.private_route_table_ids[0], "gatewayId": b.vgw_id},
        sb.config.aws.region,
    )


def _propagation_restored(sb: Sandbox) -> bool:
    b = _baseline(sb)
    return all(b.vgw_id in sb.aws.propagations(rt) for rt in b.private_route_table_ids)


SCENARIOS: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    SCENARIOS[scenario.name] = scenario
    return scenario


register(
    Scenario(
        name="route-propagation-disabled",
        description="someone turns off VGW route propagation on a private route table",
        inject=_disable_propagation,
        event=_propagation_event,
        verify=_propagation_restored,
    )
)


def run_scenario(sb: Sandbox, scenario: Scenario) -> ScenarioResult:
    """Inject, deliver the event, verify, then prove convergence with a full rerun."""
    scenario.inject(sb)
    sb.clear_logs()
    report = sb.deliver(scenario.event(sb))
    writes = sb.emulator_writes().total
    verified = scenario.verify(sb)
    sb.clear_logs()
    rerun = sb.reconcile(None, "apply")
    writes_on_rerun = sb.emulator_writes().total
    if scenario.cleanup is not None:
        scenario.cleanup(sb)
        sb.reconcile(None, "apply")
    sb.clear_logs()
    if scenario.expects_repair:
        detected = bool(report.changes)
        repaired = verified and all(c.result is Result.APPLIED for c in report.changes)
    else:
        detected = bool(report.findings)
        repaired = verified and writes == 0
    converged = rerun.converged and not rerun.changes and writes_on_rerun == 0
    return ScenarioResult(
        scenario=scenario.name,
        description=scenario.description,
        detected=detected,
        repaired=repaired,
        converged=converged,
        writes_on_rerun=writes_on_rerun,
        report=report,
        rerun=rerun,
        writes=writes,
    )
