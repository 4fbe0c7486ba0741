"""The federation's status as an N×N matrix of directed pairs, plus each cluster's invariants.

Pure: built from what a run already observed and planned. A cell (L, R) says whether L holds
an RCC federating R, whether its access Secret means what R issued for L (server, CA,
token), and whether R could be read. Reachability is one observation per cluster (the
cluster's read succeeded or not), never a probe per pair, so a cluster that is down shows as
down in its whole column (and as unknown in its row).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fedkeeper.invariants import Plan
from fedkeeper.invariants.rcc import MeshRccObservation, PairState, pair_state
from fedkeeper.model import Severity

# Worst first wins a summary: an unreadable cluster, then an error, then work that waits,
# then a warning, then writes planned.
STATES = ("unreachable", "error", "deferred", "warning", "pending", "ok")


@dataclass(frozen=True)
class InvariantSummary:
    """One invariant on one cluster: what its plan holds for that cluster."""

    state: str  # one of STATES
    changes: int = 0
    findings: int = 0
    deferred: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "changes": self.changes,
            "findings": self.findings,
            "deferred": self.deferred,
        }


@dataclass(frozen=True)
class ClusterSummary:
    name: str
    reachable: bool
    invariants: Mapping[str, InvariantSummary] = field(default_factory=dict)

    @property
    def state(self) -> str:
        if not self.reachable:
            return "unreachable"
        states = [s.state for s in self.invariants.values()] or ["ok"]
        return min(states, key=STATES.index)


@dataclass(frozen=True)
class StatusMatrix:
    """Every directed pair of the topology and every cluster's invariants."""

    clusters: tuple[str, ...]
    pairs: Mapping[tuple[str, str], PairState]
    summaries: Mapping[str, ClusterSummary]

    def to_dict(self) -> dict[str, Any]:
        """The same as :meth:`render`, JSON-able (``fedkeeper status --json``)."""
        return {
            "clusters": list(self.clusters),
            "pairs": [
                {
                    "from": p.left,
                    "to": p.right,
                    "rcc_present": p.rcc_present,
                    "secret_matches": p.secret_matches,
                    "remote_reachable": p.remote_reachable,
                }
                for p in self.pairs.values()
            ],
            "clusters_status": {
                name: {
                    "reachable": s.reachable,
                    "state": s.state,
                    "invariants": {k: v.to_dict() for k, v in s.invariants.items()},
                }
                for name, s in self.summaries.items()
            },
        }

    def render(self) -> str:
        """The matrix as text: rows hold the RCCs, columns are the clusters they read."""
        width = max(8, *(len(c) for c in self.clusters)) + 2
        lines = [
            "pairs (row holds an RCC for column): R = RCC present, S = Secret matches, "
            "U = remote reachable; + yes, - no, ? unknown, . not a pair",
            (" " * width + "".join(c.ljust(width) for c in self.clusters)).rstrip(),
        ]
        for left in self.clusters:
            cells = []
            for right in self.clusters:
                state = self.pairs.get((left, right))
                cells.append((_cell(state) if state else ".").ljust(width))
            lines.append(left.ljust(width) + "".join(cells).rstrip())
        lines.append("")
        lines.append("clusters:")
        for name in self.clusters:
            s = self.summaries[name]
            parts = ", ".join(f"{k}: {_summary(v)}" for k, v in s.invariants.items())
            lines.append(f"  {name.ljust(width)}{s.state}" + (f" ({parts})" if parts else ""))
        return "\n".join(lines)


def _flag(value: bool | None) -> str:
    return "?" if value is None else "+" if value else "-"


def _cell(p: PairState) -> str:
    return f"R{_flag(p.rcc_present)}S{_flag(p.secret_matches)}U{_flag(p.remote_reachable)}"


def _summary(s: InvariantSummary) -> str:
    counts = [
        f"{n} {what}"
        for n, what in (
            (s.changes, "to write"),
            (s.findings, "findings"),
            (s.deferred, "deferred"),
        )
        if n
    ]
    return s.state + (f" [{', '.join(counts)}]" if counts else "")


def _owner(text: str | None, clusters: Sequence[str]) -> str | None:
    """The cluster a target or message is about: its first word or path segment."""
    if not text:
        return None
    head = text.replace("/", " ").split(" ", 1)[0]
    return head if head in clusters else None


def split_plan(plan: Plan, clusters: Sequence[str]) -> dict[str, Plan]:
    """One plan over several clusters (the mesh RCC plan) split by the cluster each change,
    deferral and finding is about; what names no cluster is left out."""
    out = {c: Plan() for c in clusters}
    for c in plan.changes:
        if c.backend in out:
            out[c.backend].changes.append(c)
    for d in plan.deferred:
        if (who := _owner(d.target, clusters)) is not None:
            out[who].deferred.append(d)
    for f in plan.findings:
        if (who := _owner(f.subject or f.message, clusters)) is not None:
            out[who].findings.append(f)
    return out


def summarize(plan: Plan) -> InvariantSummary:
    """One invariant's plan for one cluster, as its worst state and its counts."""
    severities = {f.severity for f in plan.findings}
    if Severity.ERROR in severities:
        state = "error"
    elif plan.deferred:
        state = "deferred"
    elif Severity.WARNING in severities:
        state = "warning"
    elif plan.changes:
        state = "pending"
    else:
        state = "ok"
    return InvariantSummary(state, len(plan.changes), len(plan.findings), len(plan.deferred))


def status_matrix(
    rcc: MeshRccObservation,
    plans: Mapping[str, Mapping[str, Plan]] | None = None,
) -> StatusMatrix:
    """The matrix of ``rcc``'s pairs, and per cluster the summary of its plans.

    ``plans``: per invariant name, per cluster, that cluster's plan (a per-cluster planner's
    result, or :func:`split_plan` of a plan over all clusters). A cluster whose observation
    failed (None in ``rcc.clusters``) is ``unreachable`` whatever its plans say.
    """
    clusters = tuple(rcc.clusters)
    pairs = {(left, right): pair_state(rcc, left, right) for left, right in rcc.pairs}
    summaries = {}
    for name in clusters:
        reachable = rcc.clusters[name] is not None
        invariants = {
            inv: summarize(by_cluster[name]) if reachable else InvariantSummary("unreachable")
            for inv, by_cluster in (plans or {}).items()
            if name in by_cluster
        }
        summaries[name] = ClusterSummary(name, reachable, invariants)
    return StatusMatrix(clusters, pairs, summaries)
