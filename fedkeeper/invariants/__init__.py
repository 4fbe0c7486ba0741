"""Pure invariants: observation in, planned changes and findings out. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field

from fedkeeper.model import Change, Deferred, Finding


@dataclass
class Plan:
    """What one invariant wants written, what it only reports, and what must wait.

    ``settle``: a change in this plan unblocks another (a token Secret the other cluster's
    access Secret needs); the engine re-reads and plans again within the same run.
    """

    changes: list[Change] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    deferred: list[Deferred] = field(default_factory=list)
    settle: bool = False
