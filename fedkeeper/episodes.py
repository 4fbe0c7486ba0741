"""Persistent trouble: one notification when an episode starts, one when it ends (pure).

An *episode* is a run of consecutive runs in which the same thing is wrong:

* a target (a cluster or an AWS service) that failed or could not be reached — notified
  once it has been in trouble for ``window_s`` (default 30 minutes);
* an invariant whose work failed — notified after ``after_runs`` runs in a row (default 3);
* the configuration the function was deployed with — notified on the first run;
* a fight (``fight:<target>``): an owned object the watch keeps repairing against another
  writer — notified at once. Only the watch's report of its fights (trigger
  :data:`FIGHTS_TRIGGER`) opens, continues or ends one, and that report looks at nothing else.

Each open episode keeps when it started, so the next run (another container, an hour
later) knows. A run that looked at the thing and found it well closes the episode; if it
had been notified, the recovery is notified too. Nothing else is ever published by this
module: a 2-hour outage of on-prem gives exactly two notifications.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from fedkeeper.model import Invariant, Report, Result

WINDOW_S = 30 * 60.0
AFTER_RUNS = 3
CLUSTERS = ("eks", "onprem")
FIGHT = "fight:"  # episode key prefix: an owned object fought over by another writer
FIGHTS_TRIGGER = "watch: fights"


@dataclass(frozen=True)
class Episode:
    key: str  # "target:onprem", "invariant:rcc", "config"
    since: float  # epoch seconds of the first run that saw it
    runs: int  # consecutive runs that saw it
    notified: bool
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "runs": self.runs,
            "notified": self.notified,
            "reason": self.reason[:500],
        }

    @classmethod
    def from_json(cls, key: str, data: Any) -> Episode | None:
        """None for an entry of any other shape (a hand-edited or foreign store)."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                key,
                float(data["since"]),
                int(data["runs"]),
                bool(data["notified"]),
                str(data.get("reason", "")),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class Step:
    episodes: dict[str, Episode]
    opened: list[Episode] = field(default_factory=list)  # notify: trouble persists
    closed: list[Episode] = field(default_factory=list)  # notify: recovered


def troubles(report: Report) -> dict[str, str]:
    """What is wrong in this run, by episode key, with the reason to tell."""
    out: dict[str, str] = {}
    for f in report.failed_targets:
        out.setdefault(f"target:{f.target}", f"{f.reason}" + (f" — {f.fix}" if f.fix else ""))
    for d in report.deferred:
        if d.target in CLUSTERS and not d.retry:
            out.setdefault(f"target:{d.target}", d.reason)
    for e in report.errors:
        as_is = e.invariant == "config" or e.invariant.startswith(FIGHT)
        key = e.invariant if as_is else f"invariant:{e.invariant}"
        out.setdefault(key, e.message)
    for c in report.changes:
        if c.result in (Result.FAILED, Result.SKIPPED):
            out.setdefault(f"invariant:{c.change.invariant.value}", f"{c.change.target}: {c.error}")
    return out


def looked_at(report: Report, key: str) -> bool:
    """Whether this run could have seen ``key`` well (so its absence means recovery)."""
    if key.startswith(FIGHT) or report.trigger == FIGHTS_TRIGGER:
        return key.startswith(FIGHT) and report.trigger == FIGHTS_TRIGGER
    if key == "config":
        return True
    kind, _, name = key.partition(":")
    if kind == "invariant":
        return name in report.scope.names()
    whole = {Invariant.RCC, Invariant.CHECKS} & set(report.scope.invariants)
    if name in CLUSTERS:
        return bool(whole)
    return bool(report.api.totals().get("aws", 0))


def step(
    old: dict[str, Episode],
    report: Report,
    now: float,
    *,
    window_s: float = WINDOW_S,
    after_runs: int = AFTER_RUNS,
) -> Step:
    """The episodes after this run, and which of them to notify (opened or closed)."""
    out = Step({})
    for key, reason in troubles(report).items():
        prev = old.get(key)
        ep = (
            replace(prev, runs=prev.runs + 1, reason=reason)
            if prev
            else Episode(key, now, 1, False, reason)
        )
        if key == "config" or key.startswith(FIGHT):
            due = True
        elif key.startswith("target:"):
            due = now - ep.since >= window_s
        else:
            due = ep.runs >= after_runs
        if due and not ep.notified:
            ep = replace(ep, notified=True)
            out.opened.append(ep)
        out.episodes[key] = ep
    for key, ep in old.items():
        if key in out.episodes:
            continue
        if not looked_at(report, key):
            out.episodes[key] = ep  # this run could not tell: the episode goes on
        elif ep.notified:
            out.closed.append(ep)
    return out


def parse_store(data: Any) -> dict[str, Episode]:
    """Episodes from the stored JSON object; entries of any other shape are dropped."""
    if not isinstance(data, dict):
        return {}
    out = {}
    for key, value in data.items():
        ep = Episode.from_json(str(key), value)
        if ep is not None:
            out[ep.key] = ep
    return out


def dump_store(episodes: dict[str, Episode]) -> dict[str, Any]:
    return {k: e.to_json() for k, e in sorted(episodes.items())}


def describe(ep: Episode, now: float) -> str:
    minutes = max(int((now - ep.since) // 60), 0)
    what = ep.key.replace("target:", "").replace("invariant:", "invariant ")
    return f"{what}: failing for {minutes} min ({ep.runs} run(s)): {ep.reason}"
