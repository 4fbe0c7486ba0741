"""Full meshes of N = 2, 4, 8, 16, 32 clusters in the sandbox: the world, then the engine.

Per N (a full mesh from fedkeeper.sandbox.mesh_configs.full_mesh: as many sites as EKS
clusters, at most 10): the time to build the world (every fake API server, VPC, VPN and
peering, the reconciler's identity on every cluster), what it holds per cluster, the
threads it runs; then, where the engine runs this federation, a converged full run's
Kubernetes calls per cluster (fewest-most), its writes and wall time, and the writes of one
join and one leave. Where the engine refuses the federation, those cells say "not run" and
the engine's reason is printed: never a figure it did not measure.

    .venv/bin/python -m bench.mesh [--n 2 4 8 16 32]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fedkeeper.errors import ConfigError
from fedkeeper.render import table
from fedkeeper.sandbox import mesh_scenarios
from fedkeeper.sandbox.mesh_configs import full_mesh
from fedkeeper.sandbox.world import Sandbox

SIZES = (2, 4, 8, 16, 32)
NOT_RUN = "not run"
HEADERS = [
    "N",
    "EKS+sites",
    "pairs",
    "VPNs",
    "peerings",
    "build s",
    "objects/cluster",
    "threads",
    "calls/cluster",
    "writes",
    "run s",
    "join writes",
    "leave writes",
]


@dataclass
class MeshFigures:
    """What one N measured; None where the engine did not run (``refused`` says why)."""

    n: int
    eks: int
    sites: int
    pairs: int
    vpns: int
    peerings: int
    build_s: float
    objects: tuple[int, int]  # fewest, most objects on one cluster's API server
    threads: int
    calls: tuple[int, int] | None = None  # fewest, most Kubernetes calls on one cluster
    writes: int | None = None
    run_s: float | None = None
    join_writes: int | None = None
    leave_writes: int | None = None
    refused: list[str] = field(default_factory=list)


def _engine(sb: Sandbox, figures: MeshFigures, step: str) -> bool:
    """One full apply run through the engine; False (and why, in ``figures``) when the
    engine refuses this federation or its run ends in errors: its figures would not be
    those of a working run."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            report = sb.reconcile(None, "apply")
    except ConfigError as exc:
        figures.refused.append(f"{step}: {exc.errors[0] if exc.errors else exc}")
        return False
    if report.errors:
        first = report.errors[0]
        figures.refused.append(
            f"{step}: {len(report.errors)} errors, e.g. {first.invariant}: {first.message[:160]}"
        )
        return False
    return True


def measure(n: int) -> MeshFigures:
    """Build a full mesh of ``n`` and measure it (see the module docstring)."""
    config = full_mesh(n)
    started = time.perf_counter()
    sb = Sandbox(config)
    try:
        sb.up(converge=False)
        build_s = time.perf_counter() - started
        per_cluster = [sum(s.object_counts().values()) for s in sb.servers.values()]
        figures = MeshFigures(
            n=n,
            eks=len(config.eks_clusters()),
            sites=len(config.sites()),
            pairs=len(config.pairs()),
            vpns=len(sb.mesh_baseline.vpns),
            peerings=len(sb.mesh_baseline.peerings),
            build_s=build_s,
            objects=(min(per_cluster), max(per_cluster)),
            threads=threading.active_count(),
        )
        if not _engine(sb, figures, "converge"):
            return figures
        sb.clear_logs()
        started = time.perf_counter()
        if not _engine(sb, figures, "converged run"):
            return figures
        figures.run_s = time.perf_counter() - started
        calls = [len(s.requests) for s in sb.servers.values()]
        figures.calls = (min(calls), max(calls))
        figures.writes = sb.emulator_writes().total
        mesh_scenarios.join(sb)
        sb.clear_logs()
        if not _engine(sb, figures, "join"):
            return figures
        figures.join_writes = sb.emulator_writes().total
        mesh_scenarios.leave_unreachable(sb, config.sites()[-1].name)
        sb.clear_logs()
        if _engine(sb, figures, "leave"):
            figures.leave_writes = sb.emulator_writes().total
        return figures
    finally:
        sb.down()


def _span(pair: tuple[int, int] | None) -> str:
    if pair is None:
        return NOT_RUN
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}-{pair[1]}"


def _cell(value: float | int | None, fmt: str = "{}") -> str:
    return NOT_RUN if value is None else fmt.format(value)


def rows(figures: list[MeshFigures]) -> list[list[str]]:
    """The table's rows, one per N."""
    return [
        [
            str(f.n),
            f"{f.eks}+{f.sites}",
            str(f.pairs),
            str(f.vpns),
            str(f.peerings),
            f"{f.build_s:.1f}",
            _span(f.objects),
            str(f.threads),
            _span(f.calls),
            _cell(f.writes),
            _cell(f.run_s, "{:.2f}"),
            _cell(f.join_writes),
            _cell(f.leave_writes),
        ]
        for f in figures
    ]


def render(figures: list[MeshFigures]) -> str:
    """The table, then each engine refusal that left cells "not run"."""
    out = [table(HEADERS, rows(figures))]
    refusals = dict.fromkeys(r for f in figures for r in f.refused)
    if refusals:
        out.append("")
        out.append(
            f'"{NOT_RUN}": the engine refused the federation or its run ended in errors, '
            "so nothing was measured:"
        )
        out += [f"  {r}" for r in refusals]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--n", type=int, nargs="+", default=list(SIZES), help="mesh sizes")
    args = p.parse_args(argv)
    figures: list[MeshFigures] = []
    for n in args.n:
        print(f"N={n} ...", flush=True)
        figures.append(measure(n))
    print(render(figures))
    return 0


def as_data(figures: list[MeshFigures]) -> list[dict[str, Any]]:
    """The figures as plain data (for docs/BENCHMARKS.md's generator)."""
    return [f.__dict__ for f in figures]


if __name__ == "__main__":
    raise SystemExit(main())
