"""``fedkeeper demo`` for a federation of more than two clusters: the mesh scenarios.

The sandbox is built for every cluster, converged once by the engine, then each mesh scenario
breaks the world (fedkeeper.sandbox.mesh_scenarios) and the engine runs: a scenario passes
when its repair run ends without errors and a rerun writes nothing. The checks of what each
repair must (and must not) write belong with the engine for N clusters; until then a
scenario's row says what the engine did, never more.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from fedkeeper.config import FederationConfig
from fedkeeper.render import table
from fedkeeper.sandbox import mesh_scenarios as breakers

if TYPE_CHECKING:
    from fedkeeper.sandbox.world import Sandbox


@dataclass(frozen=True)
class MeshResult:
    """What one mesh scenario did and what the engine did after it."""

    scenario: str
    broke: str
    writes: int  # the repair run's writes, as the emulators saw them
    errors: list[str]  # the repair run's errors
    writes_on_rerun: int

    @property
    def ok(self) -> bool:
        return not self.errors and self.writes_on_rerun == 0


def _first_pair(config: FederationConfig) -> tuple[str, str]:
    return config.pairs()[0]


def _steps(config: FederationConfig) -> dict[str, Callable[[Sandbox], breakers.MeshBreak]]:
    """Each scenario's breaker, with its target chosen from the federation."""
    left, right = _first_pair(config)
    site = config.sites()[0].name
    peerings = config.peerings()

    def peering(sb: Sandbox) -> breakers.MeshBreak:
        if not peerings:
            raise LookupError("the federation declares no peering")
        return breakers.remove_peering_route(sb, *peerings[0])

    def leave(sb: Sandbox) -> breakers.MeshBreak:
        return breakers.leave_unreachable(sb, sb.config.names()[-1])

    return {
        "pair-broken": lambda sb: breakers.break_pair(sb, left, right),
        "token-rotated": lambda sb: breakers.rotate_token(sb, right, left),
        "site-vpn-down": lambda sb: breakers.vpn_down(sb, site),
        "peering-route-removed": peering,
        "cluster-joins": breakers.join,
        "cluster-leaves-unreachable": leave,
    }


def _run(sb: Sandbox) -> tuple[int, list[str]]:
    sb.clear_logs()
    report = sb.reconcile(None, "apply")
    return sb.emulator_writes().total, [f"{e.invariant}: {e.message}" for e in report.errors]


def run_mesh_scenario(sb: Sandbox, name: str) -> MeshResult:
    """Break the world as ``name`` says, run the engine, run it again."""
    try:
        broke = _steps(sb.config)[name](sb).what
    except LookupError as exc:
        return MeshResult(name, f"not broken: {exc}", 0, [str(exc)], 0)
    writes, errors = _run(sb)
    rerun, rerun_errors = _run(sb)
    if name == "site-vpn-down":  # the site comes back for the scenarios after this one
        breakers.vpn_up(sb, sb.config.sites()[0].name)
        _run(sb)
    return MeshResult(name, broke, writes, errors + rerun_errors, rerun)


def run_mesh_demo(
    config: FederationConfig,
    *,
    scenarios: Sequence[str] | None = None,
    as_json: bool = False,
    list_only: bool = False,
) -> int:
    """The mesh scenarios (default all, in order); 0 only if each passed."""
    known = {s.name: s for s in breakers.MESH_SCENARIOS}
    if list_only:
        if as_json:
            print(
                json.dumps([{"scenario": s.name, "description": s.breaks} for s in known.values()])
            )
        else:
            for s in known.values():
                print(f"{s.name:<28} {s.breaks}")
        return 0
    names = list(scenarios or known)
    unknown = [n for n in names if n not in known]
    if unknown:
        from fedkeeper.sandbox.demo import DemoInputError

        raise DemoInputError(
            f"unknown scenario(s): {', '.join(unknown)}; choose from: {', '.join(known)}"
        )
    from fedkeeper.sandbox.world import Sandbox

    def say(text: str) -> None:
        if not as_json:
            print(text, flush=True)

    say(f"fedkeeper demo · federation {config.name} · {len(config.clusters)} clusters")
    results: list[MeshResult] = []
    aside = contextlib.redirect_stdout(io.StringIO()) if as_json else contextlib.nullcontext()
    with aside, Sandbox.start(config, converge=False) as sb:
        writes, errors = _run(sb)
        say(f"baseline laid down; converging run: {writes} write(s), {len(errors)} error(s)")
        for e in errors[:3]:
            say(f"  {e}")
        for i, name in enumerate(names, 1):
            say(f"\n[{i}/{len(names)}] {name}: {known[name].breaks}")
            result = run_mesh_scenario(sb, name)
            results.append(result)
            say(
                f"  {result.broke}; repair run {result.writes} write(s), rerun "
                f"{result.writes_on_rerun}; {'OK' if result.ok else 'FAILED'}"
                + (f": {result.errors[0]}" if result.errors else "")
            )
    if as_json:
        print(json.dumps([{**asdict(r), "ok": r.ok} for r in results], indent=2))
    else:
        rows = [
            [r.scenario, str(r.writes), str(r.writes_on_rerun), str(len(r.errors)), str(r.ok)]
            for r in results
        ]
        print()
        print(table(["scenario", "writes", "rerun writes", "errors", "ok"], rows))
        print(f"{sum(r.ok for r in results)}/{len(results)} scenarios passed")
    return 0 if all(r.ok for r in results) else 1
