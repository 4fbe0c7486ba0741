"""Fights: an owned object another writer keeps changing back is held, and its writes back off."""

from __future__ import annotations

from fedkeeper import episodes
from fedkeeper.fights import (
    FIGHT_REPAIRS,
    FIGHT_WINDOW_S,
    HOLD_MAX_S,
    Fights,
    key_of,
    most_writes_in_an_hour,
)
from fedkeeper.model import Report, RunError, Scope

POOL = "onprem/IPPool/fedkeeper-aws-10-100-0-0-16"


def _repair(fights: Fights, at: float, manager: str = "") -> bool:
    return fights.repaired(POOL, "ippools", "onprem", at, manager)


def test_an_object_repaired_more_than_3_times_within_an_hour_is_in_a_fight() -> None:
    fights = Fights()
    assert [_repair(fights, t) for t in (0, 10, 20)] == [False, False, False]
    assert fights.hold(POOL, 21) is None
    assert _repair(fights, 30, "gitops-controller") is True
    assert "another writer keeps changing it" in (fights.hold(POOL, 31) or "")


def test_repairs_spread_over_more_than_an_hour_are_no_fight() -> None:
    fights = Fights()
    for t in range(0, 5 * FIGHT_WINDOW_S, FIGHT_WINDOW_S // 2):
        assert not _repair(fights, t)
    assert fights.active() == []


def test_against_the_fastest_opponent_writes_stay_at_most_9_an_hour_then_1_an_hour() -> None:
    most, last_hour = most_writes_in_an_hour(hours=6)
    assert most == FIGHT_REPAIRS + 6 == 9
    assert last_hour == 1
    assert HOLD_MAX_S == 3600


def test_a_hold_that_runs_out_is_looked_at_once_and_the_fight_ends_if_the_object_stayed() -> None:
    fights = Fights()
    for t in (0, 1, 2, 3):
        _repair(fights, t)
    (fight,) = fights.active()
    assert fights.due(fight.hold_until - 1) == []
    assert [t.target for t in fights.due(fight.hold_until)] == [POOL]
    assert fights.due(fight.hold_until + 1) == []  # asked once
    # A run of another invariant, or on the other cluster, tells nothing about it
    assert fights.looked(["rcc"], ["onprem"], []) == []
    assert fights.looked(["ippools"], ["eks"], []) == []
    # A run that found it as fedkeeper wants it ends the fight
    assert [t.target for t in fights.looked(["ippools"], ["onprem"], [])] == [POOL]
    assert fights.active() == []


def test_a_check_that_has_to_repair_again_waits_twice_as_long_next_time() -> None:
    fights = Fights()
    for t in (0, 1, 2, 3):
        _repair(fights, t)
    first = fights.tracked[key_of(POOL)].hold_until - 3
    at = float(fights.tracked[key_of(POOL)].hold_until)
    fights.due(at)
    _repair(fights, at)
    assert fights.tracked[key_of(POOL)].hold_until - at == 2 * first


def test_the_fights_survive_a_round_trip_and_junk_is_dropped() -> None:
    fights = Fights()
    for t in (0, 1, 2, 3):
        _repair(fights, t, "argocd")
    back = Fights.from_json(fights.to_json())
    assert back.to_json() == fights.to_json()
    assert Fights.from_json({"x": "junk", "y": [1, 2]}).tracked == {}
    assert Fights.from_json("junk").tracked == {}


def test_a_fight_is_an_episode_notified_at_once_and_only_the_fights_report_ends_it() -> None:
    fights = Fights()
    for t in (0, 1, 2, 3):
        _repair(fights, t, "argocd")
    (fight,) = fights.active()
    report = Report(
        mode="apply",
        scope=Scope(frozenset()),
        trigger=episodes.FIGHTS_TRIGGER,
        errors=[RunError(f"{episodes.FIGHT}{fight.target}", Fights.reason(fight), False)],
    )
    opened = episodes.step({}, report, 100.0)
    assert [e.key for e in opened.opened] == [f"fight:{POOL}"]
    assert "'argocd'" in opened.opened[0].reason
    told = episodes.confirm(opened.episodes, {f"fight:{POOL}"}, set())  # published
    # A sweep of everything neither continues nor ends it
    sweep = Report(mode="apply", scope=Scope.everything(), trigger="schedule")
    kept = episodes.step(told, sweep, 200.0)
    assert list(kept.episodes) == [f"fight:{POOL}"] and not kept.closed
    # The watch's report of its fights, without this one, ends it
    over = Report(mode="apply", scope=Scope(frozenset()), trigger=episodes.FIGHTS_TRIGGER)
    ended = episodes.step(kept.episodes, over, 300.0)
    assert [e.key for e in ended.closed] == [f"fight:{POOL}"]
    assert episodes.confirm(ended.episodes, {f"fight:{POOL}"}, set()) == {}
