"""``fedkeeper demo``: start the sandbox, break it every way the real world does, watch it heal."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence

from fedkeeper.config import FederationConfig
from fedkeeper.sandbox.scenarios import SCENARIOS, ScenarioResult, run_scenario
from fedkeeper.sandbox.world import Sandbox


def _say(text: str, *, quiet: bool) -> None:
    if not quiet:
        print(text, flush=True)


def _colour(ok: bool, text: str) -> str:
    if not sys.stdout.isatty():
        return text
    return f"\033[32m{text}\033[0m" if ok else f"\033[31m{text}\033[0m"


def _tick(v: bool) -> str:
    return _colour(v, "yes" if v else "NO")


def run_demo(
    config: FederationConfig,
    *,
    scenarios: Sequence[str] | None = None,
    as_json: bool = False,
    list_only: bool = False,
) -> int:
    """Run the named scenarios (default all); 0 only if each converged with no rerun writes."""
    if list_only:
        for s in SCENARIOS.values():
            print(f"{s.name:<28} {s.description}")
        return 0
    names = list(scenarios or SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(
            f"unknown scenario(s): {', '.join(unknown)}; choose from: {', '.join(SCENARIOS)}",
            file=sys.stderr,
        )
        return 2
    quiet = as_json
    started = time.perf_counter()
    _say(f"fedkeeper demo · federation {config.name} · {len(names)} scenario(s)", quiet=quiet)
    _say(
        "starting the sandbox: emulated AWS (moto + gap fills), EKS and on-prem API servers…",
        quiet=quiet,
    )
    results: list[ScenarioResult] = []
    with Sandbox.start(config, converge=False) as sb:
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
                from fedkeeper.cli import render_report

                print(render_report(result.report, title="  repair run"))
                verdict = _colour(result.ok, "OK" if result.ok else "FAILED")
                print(
                    f"  → {verdict}: detected {_tick(result.detected)} · repaired "
                    f"{_tick(result.repaired)} · converged {_tick(result.converged)} · writes on "
                    f"rerun {result.writes_on_rerun}"
                )
    ok = all(r.ok for r in results)
    if as_json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print("\nscenario                       detected  repaired  converged  rerun writes")
        for r in results:
            print(
                f"{r.scenario:<30} {_tick(r.detected):<9} {_tick(r.repaired):<9} "
                f"{_tick(r.converged):<10} {r.writes_on_rerun}"
            )
        total = time.perf_counter() - started
        summary = f"{sum(r.ok for r in results)}/{len(results)} scenarios healed in {total:.1f} s"
        print(_colour(ok, summary))
    return 0 if ok else 1
