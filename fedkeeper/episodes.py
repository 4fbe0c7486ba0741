"""Persistent trouble: one notification when an episode starts, one when it ends (pure).

An *episode* is a run of consecutive runs in which the same thing is wrong:

* a target (a cluster or an AWS service) that failed or could not be reached — notified
  once it has been in trouble for ``window_s`` (default 30 minutes);
* an invariant whose work failed, an error finding that stands, or an object that stays
  malformed (one episode per object) — notified after ``after_runs`` runs in a row
  (default 3);
* the configuration the function was deployed with — notified on the first run;
* a fight (``fight:<target>``): an owned object the watch keeps repairing against another
  writer — notified at once. Only the watch's report of its fights (trigger
  :data:`FIGHTS_TRIGGER`) opens, continues or ends one, and that report looks at nothing else.

One root cause gives one notification: an invariant's error or failed write whose cause
is a failed target folds into that target's episode, and a write skipped because another
failed folds into that failure. Work deferred because its target is busy (an add-on update
rolling out) is no trouble at all.

Each open episode keeps when it started, so the next run (another container, an hour
later) knows. Only a run that reached the target (a successful call to it) or looked at
the invariant and found it well closes the episode; if it had been notified, the recovery
is notified too. A notification is *claimed* in the store before it is published and
recorded as sent only after the publish succeeded: a failed publish is tried again by the
next run, and a claim another run holds is left to it (for :data:`CLAIM_S`).

When the store cannot be read, :class:`Memory` stands in: the function's own memory of
what it saw and sent, at most one notification an hour per episode, saying the store is
down. Nothing else is ever published by this module: a 2-hour outage of on-prem gives
exactly two notifications.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from fedkeeper.model import Report, Result, Severity, is_cluster_target

WINDOW_S = 30 * 60.0
AFTER_RUNS = 3
FIGHT = "fight:"  # episode key prefix: an owned object fought over by another writer
FIGHTS_TRIGGER = "watch: fights"
# A claim to publish that was not confirmed in this long (its run died mid-way) is taken over.
CLAIM_S = 10 * 60.0
# From memory (the store down): the same episode is notified at most once in this long.
MEMORY_REPEAT_S = 60 * 60.0
STORE_TARGET = "target:aws/dynamodb"  # the episode store's own trouble, from memory


@dataclass(frozen=True)
class Episode:
    key: str  # "target:onprem", "invariant:rcc", "finding:rcc.name-taken", "config"
    since: float  # epoch seconds of the first run that saw it
    runs: int  # consecutive runs that saw it
    notified: bool  # its start was published
    reason: str
    claimed: float | None = None  # a run is publishing it (since then)
    recovered: bool = False  # well again: kept until its recovery is published

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "since": self.since,
            "runs": self.runs,
            "notified": self.notified,
            "reason": self.reason[:500],
        }
        if self.claimed is not None:
            out["claimed"] = self.claimed
        if self.recovered:
            out["recovered"] = True
        return out

    @classmethod
    def from_json(cls, key: str, data: Any) -> Episode | None:
        """None for an entry of any other shape (a hand-edited or foreign store)."""
        if not isinstance(data, dict):
            return None
        try:
            claimed = data.get("claimed")
            return cls(
                key,
                float(data["since"]),
                int(data["runs"]),
                bool(data["notified"]),
                str(data.get("reason", "")),
                None if claimed is None else float(claimed),
                bool(data.get("recovered", False)),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def claimable(self, now: float) -> bool:
        return self.claimed is None or now - self.claimed >= CLAIM_S


@dataclass
class Step:
    episodes: dict[str, Episode]
    opened: list[Episode] = field(default_factory=list)  # to publish: trouble persists
    closed: list[Episode] = field(default_factory=list)  # to publish: recovered


def troubles(report: Report) -> dict[str, str]:
    """What is wrong in this run, by episode key, with the reason to tell: one per root
    cause (see the module docstring)."""
    out: dict[str, str] = {}
    for f in report.failed_targets:
        out.setdefault(f"target:{f.target}", f"{f.reason}" + (f" — {f.fix}" if f.fix else ""))
    for d in report.deferred:
        if is_cluster_target(d.target) and not d.retry:
            out.setdefault(f"target:{d.target}", d.reason)
    roots = {key.removeprefix("target:") for key in out}
    for e in report.errors:
        if e.invariant == "config" or e.invariant.startswith(FIGHT):
            out.setdefault(e.invariant, e.message)
        elif e.target not in roots:
            out.setdefault(f"invariant:{e.invariant}", e.message)
    for c in report.changes:
        # SKIPPED waits for a failure counted already; DEFERRED (busy) is no trouble.
        if c.result is Result.FAILED and c.cause not in roots:
            out.setdefault(f"invariant:{c.change.invariant.value}", f"{c.change.target}: {c.error}")
    for finding in report.findings:
        if finding.severity is Severity.ERROR:
            out.setdefault(f"finding:{finding.check}", finding.message)
        elif finding.subject and finding.check.endswith(".malformed"):
            # A malformed object that stays so (someone else's): told once per episode.
            out.setdefault(f"finding:{finding.check}:{finding.subject}", finding.message)
    return out


def looked_at(report: Report, key: str) -> bool:
    """Whether this run could have seen ``key`` well (so its absence means recovery).

    A target only when a call to it succeeded in this run: any AWS call is no news of EC2,
    and a run that did not reach on-prem knows nothing of it. A fight is looked at only by
    the watch's report of its fights, and that report looks at nothing else.
    """
    if key.startswith(FIGHT) or report.trigger == FIGHTS_TRIGGER:
        return key.startswith(FIGHT) and report.trigger == FIGHTS_TRIGGER
    if key == "config":
        return True
    kind, _, name = key.partition(":")
    if kind == "invariant":
        return name in report.scope.names()
    if kind == "finding":
        return name.split(".", 1)[0] in report.scope.names()
    return name in report.reached


def _due(ep: Episode, now: float, window_s: float, after_runs: int) -> bool:
    if ep.key == "config" or ep.key.startswith(FIGHT):
        return True
    if ep.key.startswith("target:"):
        return now - ep.since >= window_s
    return ep.runs >= after_runs


def step(
    old: dict[str, Episode],
    report: Report,
    now: float,
    *,
    window_s: float = WINDOW_S,
    after_runs: int = AFTER_RUNS,
) -> Step:
    """The episodes after this run, and which of them to publish (opened or closed).

    What is to be published is claimed (``claimed=now``); :func:`confirm` records it as
    sent once the publish succeeded, or frees the claim when it failed.
    """
    out = Step({})
    for key, reason in troubles(report).items():
        prev = old.get(key)
        ep = (
            replace(prev, runs=prev.runs + 1, reason=reason, recovered=False)
            if prev
            else Episode(key, now, 1, False, reason)
        )
        if _due(ep, now, window_s, after_runs) and not ep.notified and ep.claimable(now):
            ep = replace(ep, claimed=now)
            out.opened.append(ep)
        out.episodes[key] = ep
    for key, ep in old.items():
        if key in out.episodes:
            continue
        if not looked_at(report, key):
            out.episodes[key] = ep  # this run could not tell: the episode goes on
        elif ep.notified:
            # Well again: its recovery is published, and the episode kept until it is.
            well = replace(ep, recovered=True, claimed=now) if ep.claimable(now) else ep
            if well is not ep:
                out.closed.append(well)
            out.episodes[key] = well
    return out


def confirm(episodes: dict[str, Episode], sent: set[str], unsent: set[str]) -> dict[str, Episode]:
    """The store after publishing: what was sent is recorded (an opened episode notified,
    a recovered one gone), what was not is unclaimed for the next run to try again."""
    out = dict(episodes)
    for key in sent:
        ep = out.get(key)
        if ep is None:
            continue
        if ep.recovered:
            del out[key]
        else:
            out[key] = replace(ep, notified=True, claimed=None)
    for key in unsent:
        ep = out.get(key)
        if ep is not None:
            out[key] = replace(ep, claimed=None)
    return out


@dataclass
class Memory:
    """The function's own memory of trouble, for when the episode store is down.

    Kept by the process (a warm Lambda container): the episodes it saw, and when it last
    published each, so it notifies at most once every :data:`MEMORY_REPEAT_S` per episode.
    """

    episodes: dict[str, Episode] = field(default_factory=dict)
    sent: dict[str, float] = field(default_factory=dict)

    def sent_lately(self, key: str, now: float) -> bool:
        return now - self.sent.get(key, -math.inf) < MEMORY_REPEAT_S

    def step(
        self,
        report: Report,
        now: float,
        store_error: str,
        *,
        window_s: float = WINDOW_S,
        after_runs: int = AFTER_RUNS,
    ) -> list[Episode]:
        """Advance the remembered episodes by this run (the store being down is one of
        them); the ones to publish now."""
        current = troubles(report)
        current[STORE_TARGET] = f"the episode store cannot be read or written: {store_error}"
        kept: dict[str, Episode] = {}
        for key, reason in current.items():
            prev = self.episodes.get(key)
            kept[key] = (
                replace(prev, runs=prev.runs + 1, reason=reason)
                if prev
                else Episode(key, now, 1, False, reason)
            )
        for key, ep in self.episodes.items():
            if key not in kept and not looked_at(report, key):
                kept[key] = ep  # could not tell: remembered
        self.episodes = kept
        return [
            ep
            for key, ep in kept.items()
            if key in current
            and _due(ep, now, window_s, after_runs)
            and not self.sent_lately(key, now)
        ]


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
