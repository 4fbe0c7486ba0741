"""Fights: an owned object that another writer keeps changing back (pure: no SDK).

The watch repairs drift in seconds; a GitOps controller or an operator's script that wants
another value puts it back just as fast, and the two would write thousands of times an hour.
So every watch repair of an owned object is counted:

* An object repaired more than :data:`FIGHT_REPAIRS` times within :data:`FIGHT_WINDOW_S` is
  in a *fight*: the watch opens an episode naming the object and, where its managedFields
  show it, the field manager that changed it (one notification per episode).
* During a fight the watch holds the object's repairs: the first held repair waits
  :data:`HOLD_FIRST_S`, each next one twice as long, up to :data:`HOLD_MAX_S`. When a hold
  runs out the object is checked once: repaired again (the fight goes on, the next hold is
  longer), or found as fedkeeper wants it (the fight is over and its episode closes).

Writes per object, whatever the other writer does (:func:`most_writes_in_an_hour` proves
it by playing the fastest possible opponent): at most :data:`FIGHT_REPAIRS` an hour before a
fight opens, at most 9 in any hour once it has, and one an hour once the holds reach their
ceiling. Times are wall-clock seconds: a fight outlives the invocation that saw it start.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

FIGHT_REPAIRS = 3  # repaired more than this many times...
FIGHT_WINDOW_S = 3600  # ...within this long: a fight
HOLD_FIRST_S = 60
HOLD_MAX_S = 3600
MAX_TRACKED = 6  # objects remembered at once (the oldest is forgotten first)
TARGET_CHARS = 120  # a target is kept (and named in its episode) up to this length


def key_of(target: str) -> str:
    """A short, stable key for a target (the state stays small whatever the names)."""
    return hashlib.sha256(target.encode()).hexdigest()[:12]


@dataclass
class Tracked:
    """What the watch remembers of one object it repaired."""

    invariant: str
    cluster: str
    repairs: list[int] = field(default_factory=list)  # wall seconds, within the window
    level: int = -1  # -1: no fight; n >= 0: in a fight, n held repairs made since it began
    hold_until: int = 0  # no repair before this (wall seconds)
    checking: bool = False  # the hold ran out: the next look decides
    target: str = ""  # kept while in a fight (its episode's name)
    manager: str = ""  # who changed it last, from its managedFields

    @property
    def fighting(self) -> bool:
        return self.level >= 0

    def to_json(self) -> list[Any]:
        return [
            self.invariant,
            self.cluster,
            self.repairs,
            self.level,
            self.hold_until,
            self.target,
            self.manager,
        ]

    @classmethod
    def from_json(cls, data: Any) -> Tracked | None:
        """None for an entry of any other shape. A check in progress is not kept: the
        next invocation looks again once the hold has run out."""
        try:
            inv, cluster, repairs, level, hold, target, manager = data
            return cls(
                str(inv),
                str(cluster),
                [int(t) for t in repairs][-(FIGHT_REPAIRS + 1) :],
                int(level),
                int(hold),
                False,
                str(target)[:TARGET_CHARS],
                str(manager)[:60],
            )
        except (TypeError, ValueError):
            return None


def hold_s(level: int) -> int:
    """How long the watch waits before its (``level`` + 1)-th repair in a fight."""
    return int(min(HOLD_MAX_S, HOLD_FIRST_S * 2 ** max(level, 0)))


class Fights:
    """The objects the watch repaired lately, and the fights among them."""

    def __init__(self, tracked: dict[str, Tracked] | None = None) -> None:
        self.tracked: dict[str, Tracked] = dict(tracked or {})

    # --- what the watch asks ------------------------------------------------------------

    def hold(self, target: str, now: float) -> str | None:
        """Why ``target`` must not be written now (None: write it)."""
        t = self.tracked.get(key_of(target))
        if t is None or not t.fighting or now >= t.hold_until:
            return None
        return (
            "not repaired: another writer keeps changing it (a fight, see its episode); "
            f"the watch repairs it again in {int(t.hold_until - now)} s"
        )

    def due(self, now: float) -> list[Tracked]:
        """Fights whose hold ran out and that have not been looked at since: look now."""
        out = []
        for t in self.tracked.values():
            if t.fighting and not t.checking and now >= t.hold_until:
                t.checking = True
                out.append(t)
        return out

    def active(self) -> list[Tracked]:
        return [t for t in self.tracked.values() if t.fighting]

    # --- what the watch tells -----------------------------------------------------------

    def repaired(
        self, target: str, invariant: str, cluster: str, now: float, manager: str = ""
    ) -> bool:
        """The watch wrote ``target``; True when this repair starts a fight."""
        key = key_of(target)
        t = self.tracked.pop(key, None) or Tracked(invariant, cluster)
        self.tracked[key] = t  # most recent last: the oldest is forgotten first
        t.repairs = [r for r in t.repairs if now - r < FIGHT_WINDOW_S][-FIGHT_REPAIRS:]
        t.repairs.append(int(now))
        if manager:
            t.manager = manager[:60]
        started = False
        if t.fighting:
            t.level += 1
        elif len(t.repairs) > FIGHT_REPAIRS:
            t.level, t.target, started = 0, target[:TARGET_CHARS], True
        if t.fighting:
            t.hold_until = int(now + hold_s(t.level))
            t.checking = False
        while len(self.tracked) > MAX_TRACKED:
            oldest = next(
                (k for k, v in self.tracked.items() if not v.fighting), next(iter(self.tracked))
            )
            del self.tracked[oldest]
        return started

    def looked(
        self, invariants: Iterable[str], clusters: Iterable[str], touched: Iterable[str]
    ) -> list[Tracked]:
        """A run of ``invariants`` on ``clusters`` went through; ``touched`` are the
        targets it repaired or held. Fights being checked that it saw as fedkeeper wants
        them are over: returned (and forgotten)."""
        seen_inv, seen_clusters = set(invariants), set(clusters)
        touched_keys = {key_of(t) for t in touched}
        ended = []
        for key, t in list(self.tracked.items()):
            if (
                t.fighting
                and t.checking
                and t.invariant in seen_inv
                and t.cluster in seen_clusters
                and key not in touched_keys
            ):
                ended.append(self.tracked.pop(key))
        return ended

    # --- words and storage ----------------------------------------------------------------

    @staticmethod
    def reason(t: Tracked) -> str:
        """What the fight's episode says."""
        who = (
            f"field manager {t.manager!r} (its managedFields) keeps changing it"
            if t.manager
            else "another writer keeps changing it (its managedFields do not say who)"
        )
        return (
            f"{t.target}: {who}; fedkeeper repaired it more than {FIGHT_REPAIRS} times in "
            f"{FIGHT_WINDOW_S // 60} min and now waits before each repair "
            f"({HOLD_FIRST_S} s, doubling to {HOLD_MAX_S // 60} min: at most one write an hour); "
            "make the other writer agree with fedkeeper, or mark the object "
            'fedkeeper.io/ignore: "true"'
        )

    def to_json(self) -> dict[str, Any]:
        return {k: t.to_json() for k, t in self.tracked.items()}

    @classmethod
    def from_json(cls, data: Any) -> Fights:
        """Entries of any other shape are dropped."""
        if not isinstance(data, dict):
            return cls()
        out = {}
        for key, value in list(data.items())[-MAX_TRACKED:]:
            t = Tracked.from_json(value)
            if t is not None:
                out[str(key)[:12]] = t
        return cls(out)


def most_writes_in_an_hour(hours: int = 4) -> tuple[int, int]:
    """(most writes of one object in any hour, writes in the last hour) against an
    opponent that undoes every repair at once, for ``hours`` hours."""
    fights = Fights()
    target, now, writes = "onprem/IPPool/x", 0.0, []
    while now < hours * 3600:
        if fights.hold(target, now) is None:
            writes.append(now)
            fights.repaired(target, "ippools", "onprem", now)
            now += 1.0  # the opponent answers within a second
        else:
            now = float(fights.tracked[key_of(target)].hold_until)
    most = max(sum(1 for w in writes if start <= w < start + 3600) for start in writes)
    last = sum(1 for w in writes if w >= hours * 3600 - 3600)
    return most, last
