"""``fedkeeper demo``: start the sandbox, break it every way the real world does, watch it heal."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import time
from collections.abc import Sequence
from typing import Any

from fedkeeper.config import FederationConfig
from fedkeeper.events import ROUTE_EVENTS_BY_PARAMETER, FederationNetwork
from fedkeeper.render import colour_wanted, paint, render_report, table, yes_no
from fedkeeper.sandbox.scenarios import SCENARIOS, ScenarioResult, run_scenario


class DemoInputError(ValueError):
    """A bad demo argument (unknown scenario, unreadable event): nothing was started."""


def _say(text: str, *, quiet: bool) -> None:
    if not quiet:
        print(text, flush=True)


def _unknown(names: Sequence[str]) -> DemoInputError:
    return DemoInputError(
        f"unknown scenario(s): {', '.join(names)}; choose from: {', '.join(SCENARIOS)}"
    )


def summary_table(results: Sequence[ScenarioResult], *, colour: bool) -> str:
    """One row per scenario; aligned whether or not the cells are coloured."""
    rows = [
        [
            r.scenario,
            yes_no(r.detected, colour),
            yes_no(r.repaired, colour),
            yes_no(r.converged, colour),
            str(r.writes_on_rerun),
            r.trigger,
            repair_time(r),
        ]
        for r in results
    ]
    headers = ["scenario", "detected", "repaired", "converged", "rerun writes", "trigger"]
    return table([*headers, "time to repair"], rows)


def repair_time(r: ScenarioResult) -> str:
    """Measured for the watch; for the others the handler's time plus the trigger's
    documented delivery latency, marked modelled."""
    if r.modelled:
        return f"≈{r.time_to_repair_s:.0f} s (modelled; handler {r.handler_s:.2f} s)"
    return f"{r.time_to_repair_s:.2f} s"


def run_demo(
    config: FederationConfig,
    *,
    scenarios: Sequence[str] | None = None,
    as_json: bool = False,
    list_only: bool = False,
    header: str | None = None,
) -> int:
    """Run the named scenarios (default all); 0 only if each converged with no rerun writes.

    A federation of more than one EKS cluster and one site runs the mesh scenarios
    (:mod:`fedkeeper.sandbox.mesh_demo`)."""
    if len(config.eks_clusters()) != 1 or len(config.sites()) != 1:
        from fedkeeper.sandbox.mesh_demo import run_mesh_demo

        return run_mesh_demo(config, scenarios=scenarios, as_json=as_json, list_only=list_only)
    if list_only:
        if as_json:
            listing = [
                {"scenario": s.name, "description": s.description} for s in SCENARIOS.values()
            ]
            print(json.dumps(listing, indent=2))
            return 0
        for s in SCENARIOS.values():
            print(f"{s.name:<28} {s.description}")
        return 0
    names = list(scenarios or SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise _unknown(unknown)
    from fedkeeper.sandbox.world import Sandbox

    quiet = as_json
    colour = colour_wanted()
    started = time.perf_counter()
    _say(header or f"fedkeeper demo · federation {config.name}", quiet=quiet)
    _say(f"{len(names)} scenario(s)", quiet=quiet)
    _say(
        "starting the sandbox: emulated AWS (moto + gap fills), EKS and on-prem API servers…",
        quiet=quiet,
    )
    results: list[ScenarioResult] = []
    # With --json, stdout carries the JSON alone: what the functions print while the
    # scenarios run (the watch's metric lines) is set aside.
    aside = contextlib.redirect_stdout(io.StringIO()) if as_json else contextlib.nullcontext()
    with aside, Sandbox.start(config, converge=False) as sb:
        base = sb.reconcile(None, "apply")
        _say(
            f"baseline laid down and converged: {len(base.changes)} change(s) made by fedkeeper "
            f"in {base.duration_ms} ms",
            quiet=quiet,
        )
        sb.clear_logs()
        for i, name in enumerate(names, 1):
            scenario = SCENARIOS[name]
            _say(f"\n[{i}/{len(names)}] {name}: {scenario.description}", quiet=quiet)
            result = run_scenario(sb, scenario)
            results.append(result)
            if not quiet:
                print(render_report(result.report, title="  repair run", colour=colour))
                verdict = paint("OK" if result.ok else "FAILED", _ok(result.ok), colour)
                print(
                    f"  → {verdict}: detected {yes_no(result.detected, colour)} · repaired "
                    f"{yes_no(result.repaired, colour)} · converged "
                    f"{yes_no(result.converged, colour)} · writes on rerun "
                    f"{result.writes_on_rerun} · {result.trigger}: time to repair "
                    f"{repair_time(result)}",
                    flush=True,
                )
    ok = all(r.ok for r in results)
    if as_json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print()
        print(summary_table(results, colour=colour))
        total = time.perf_counter() - started
        summary = f"{sum(r.ok for r in results)}/{len(results)} scenarios healed in {total:.1f} s"
        print(paint(summary, _ok(ok), colour))
    return 0 if ok else 1


def _ok(value: bool) -> str:
    return "green" if value else "red"


def load_event(path: str) -> dict[str, Any]:
    """An EventBridge event from a JSON file; DemoInputError says what is wrong with it."""
    try:
        with open(path, encoding="utf-8") as fh:
            event = json.load(fh)
    except OSError as exc:
        raise DemoInputError(
            f"--event {path}: cannot be read ({exc.strerror or exc}); give the path of an event "
            "JSON file, e.g. tests/events/scheduled_event.json"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f"line {exc.lineno}: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else exc
        raise DemoInputError(
            f"--event {path}: not valid JSON ({where}); fix the JSON syntax"
        ) from None
    if not isinstance(event, dict):
        raise DemoInputError(
            f"--event {path}: an event is a JSON object, not a {type(event).__name__}; give "
            "one event as a JSON object"
        )
    # EventBridge delivers nothing without these; a rule pattern tests source and detail-type.
    for key, kind in (("source", str), ("detail-type", str), ("detail", dict)):
        if not isinstance(event.get(key), kind):
            what = "absent" if key not in event else f"a {type(event[key]).__name__}"
            raise DemoInputError(
                f"--event {path}: not an EventBridge event: {key!r} is {what}, it must be a "
                f"{'JSON object' if kind is dict else 'string'}; give the event as EventBridge "
                "delivers it (source, detail-type, detail; e.g. tests/events/scheduled_event.json)"
            )
    return event


def _metric_values(lines: Sequence[str]) -> dict[str, float]:
    """The metric values in the handlers' EMF lines (what CloudWatch would record)."""
    values: dict[str, float] = {}
    for line in lines:
        try:
            blob = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        for directive in blob["_aws"].get("CloudWatchMetrics", []):
            for metric in directive.get("Metrics", []):
                name = metric["Name"]
                raw = blob.get(name)
                value = raw[-1] if isinstance(raw, list) and raw else raw
                if isinstance(value, int | float):
                    values[name] = value
    return values


def onto_network(
    event: dict[str, Any], network: FederationNetwork
) -> tuple[dict[str, Any], list[str]]:
    """``event`` with the federation ids in its request parameters replaced by the sandbox's.

    An event file names another account's VPC, VGW or route tables; the deployed
    route-change rule is narrowed to the federation's own ids, so the file's event is
    re-aimed at the sandbox's network (and says so) to show what it would do there.
    """
    detail = event.get("detail")
    params = detail.get("requestParameters") if isinstance(detail, dict) else None
    if not isinstance(params, dict):
        return event, []
    out = copy.deepcopy(event)
    new_params = out["detail"]["requestParameters"]
    lines = []
    for key, kind, _names in ROUTE_EVENTS_BY_PARAMETER:
        value = new_params.get(key)
        ids = network.ids(kind)
        if isinstance(value, str) and ids and value not in ids:
            new_params[key] = ids[-1]
            lines.append(f"the event's {key} {value} is mapped onto the sandbox's {ids[-1]}")
    return out, lines


def run_event_demo(
    config: FederationConfig,
    event_path: str,
    *,
    scenario: str | None = None,
    as_json: bool = False,
    header: str | None = None,
) -> int:
    """Deliver one EventBridge event (from a file) to the sandbox through the deployed rules.

    With ``scenario``, its fault is applied first (its own events are not delivered). Prints
    the handler's Report; 0 unless a handler failed or its retries ran out.
    """
    event = load_event(event_path)
    if scenario is not None and scenario not in SCENARIOS:
        raise _unknown([scenario])
    from fedkeeper.events import event_summary
    from fedkeeper.events import rules as deployed_rules
    from fedkeeper.sandbox.world import Sandbox, matching_rules, rule_mismatch

    colour = colour_wanted()
    quiet = as_json
    _say(header or f"fedkeeper demo · federation {config.name}", quiet=quiet)
    _say(f"event {event_path}", quiet=quiet)
    _say("starting the sandbox and converging the baseline…", quiet=quiet)
    with Sandbox.start(config) as sb:
        if scenario is not None:
            SCENARIOS[scenario].inject(sb)
            _say(f"fault injected ({scenario}): {SCENARIOS[scenario].description}", quiet=quiet)
        sb.clear_logs()
        network = sb.network()
        event, mapped = onto_network(event, network)
        for line in mapped:
            _say(line, quiet=quiet)
        _say(f"delivering {event_summary(event)}", quiet=quiet)
        rules = matching_rules(config, event, network)
        all_rules = deployed_rules(config, network)
        delivery = sb.dispatch(event)
        writes = sb.emulator_writes()
        repaired = SCENARIOS[scenario].verify(sb) if scenario is not None else None
    failed = bool(delivery.dead_letters) or any(
        "errorType" in r or r.get("errors") for r in delivery.responses.values()
    )
    if as_json:
        responses = list(delivery.responses.values())
        print(json.dumps(responses[-1] if responses else delivery.report.to_dict(), indent=2))
        return 1 if failed else 0
    if not rules:
        print("no deployed rule matches this event: nothing is invoked (a no-op)")
        for rule in all_rules:
            print(f"  rule {rule.name} ({rule.handler}): {rule_mismatch(rule, event)}")
        print(render_report(delivery.report, title="  no-op", colour=colour))
        return 0
    for rule in rules:
        attempts = delivery.attempts.get(rule.handler, 1)
        tries = f" ({attempts} attempts)" if attempts > 1 else ""
        print(f"rule {rule.name} → lambdas/{rule.handler}.py{tries}")
    for name in delivery.dead_letters:
        print(
            paint(
                f"  {name}: retries exhausted; the event goes to the dead-letter queue",
                "red",
                colour,
            )
        )
    print(render_report(delivery.report, title="  handler Report", colour=colour))
    metrics = _metric_values(delivery.logs)
    if metrics:
        print("  metrics: " + ", ".join(f"{k} {v:g}" for k, v in metrics.items()))
    print(f"  emulators saw {writes.total} write(s)" + "".join(f"\n    {d}" for d in writes.detail))
    if repaired is not None:
        print(f"  the scenario's check of a repaired world: {yes_no(repaired, colour)}")
    return 1 if failed else 0
