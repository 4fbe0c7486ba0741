"""Pure invariants: observation in, planned changes and findings out. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field

from fedkeeper.model import Change, Finding


@dataclass
class Plan:
    """What one invariant wants written, and what it only reports."""

    changes: list[Change] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
