"""Time to repair per demo scenario: before the watch (its event or the sweep) and now.

"now" is what the demo reports: the watch function measured end to end in the sandbox for
drift inside a cluster, and for AWS-side drift the handler's measured time plus the
documented delivery latency of its trigger (modelled). "before" is the same scenario's
event path without the watch: the handler's measured time plus its trigger's latency (for
drift inside a cluster that was the schedule's sweep, or a CloudTrail event when one exists).

Run: ``.venv/bin/python -m bench.time_to_repair`` (one run per scenario, in demo order: some
scenarios build on the world the previous one left).
"""

from __future__ import annotations

import time

from fedkeeper.config import load_config
from fedkeeper.render import table
from fedkeeper.sandbox import Sandbox
from fedkeeper.sandbox.scenarios import (
    SCENARIOS,
    Scenario,
    delivery_latency,
    run_scenario,
    trigger_of,
)
from tests.conftest import EXAMPLE


def _before(sb: Sandbox, scenario: Scenario) -> tuple[str, float]:
    """The event path alone (no watch running): its trigger and time to repair."""
    scenario.inject(sb)
    event = scenario.event(sb)
    trigger = "manual" if scenario.act else trigger_of(event)
    started = time.perf_counter()
    if scenario.act:
        scenario.act(sb)
    else:
        sb.deliver(event)
    handler = time.perf_counter() - started
    if scenario.cleanup is not None:
        scenario.cleanup(sb)
    sb.reconcile(None, "apply")
    sb.clear_logs()
    return trigger, delivery_latency(sb, trigger)[0] + handler


HEADERS = ["scenario", "before: trigger", "time to repair", "now: trigger", "time to repair"]


def rows() -> list[list[str]]:
    """One row per demo scenario, in demo order."""
    out = []
    with Sandbox.start(load_config(EXAMPLE)) as sb:
        for name, scenario in SCENARIOS.items():
            result = run_scenario(sb, scenario)
            after = result.time_to_repair_s
            if scenario.watched:
                trigger_before, before = _before(sb, scenario)
            else:
                trigger_before, before = result.trigger, after
            modelled = "" if scenario.watched else " (modelled)"
            out.append(
                [
                    name,
                    trigger_before,
                    f"{before:.1f} s (modelled)",
                    result.trigger,
                    f"{after:.2f} s{modelled}",
                ]
            )
    return out


def main() -> None:
    print(table(HEADERS, rows()))


if __name__ == "__main__":
    main()
