"""Persistent trouble notifies once when an episode starts and once when it ends (pure)."""

from __future__ import annotations

from fedkeeper.episodes import Episode, parse_store, step
from fedkeeper.model import Deferred, Report, RunError, Scope

MIN = 60.0


def run(
    *, onprem_down: bool = False, rcc_error: bool = False, scope: Scope | None = None
) -> Report:
    report = Report(mode="apply", scope=scope or Scope.everything())
    if onprem_down:
        report.deferred.append(Deferred("onprem", "onprem: API server unreachable"))
    if rcc_error:
        report.errors.append(RunError("rcc", "eks: HTTP 403", retryable=False))
    return report


def test_a_two_hour_onprem_outage_notifies_twice() -> None:
    episodes: dict[str, Episode] = {}
    opened = closed = 0
    for minute in range(0, 125, 5):  # a run every 5 minutes, for two hours
        s = step(episodes, run(onprem_down=True), minute * MIN)
        episodes, opened, closed = s.episodes, opened + len(s.opened), closed + len(s.closed)
    assert (opened, closed) == (1, 0)
    assert episodes["target:onprem"].since == 0.0
    s = step(episodes, run(), 125 * MIN)
    assert (len(s.opened), len(s.closed)) == (0, 1)
    assert s.episodes == {}


def test_a_short_outage_notifies_nothing() -> None:
    s = step({}, run(onprem_down=True), 0)
    s = step(s.episodes, run(onprem_down=True), 20 * MIN)
    s = step(s.episodes, run(), 25 * MIN)
    assert s.opened == [] and s.closed == [] and s.episodes == {}


def test_an_invariant_failing_three_runs_in_a_row_notifies_on_the_third() -> None:
    s1 = step({}, run(rcc_error=True), 0)
    s2 = step(s1.episodes, run(rcc_error=True), MIN)
    s3 = step(s2.episodes, run(rcc_error=True), 2 * MIN)
    assert [len(s.opened) for s in (s1, s2, s3)] == [0, 0, 1]
    assert s3.opened[0].key == "invariant:rcc"


def test_a_run_that_did_not_look_keeps_the_episode_open() -> None:
    s = step({}, run(onprem_down=True), 0)
    s = step(s.episodes, run(scope=Scope.of("vpn")), 40 * MIN)
    assert "target:onprem" in s.episodes and s.closed == []


def test_a_configuration_error_notifies_on_the_first_run_only() -> None:
    config = Report(mode="plan", scope=Scope(frozenset()))
    config.errors.append(RunError("config", "mode: 'x' is not a mode", retryable=False))
    s1 = step({}, config, 0)
    s2 = step(s1.episodes, config, 5 * MIN)
    assert (len(s1.opened), len(s2.opened)) == (1, 0)


def test_a_store_of_any_shape_is_read_without_crashing() -> None:
    for data in (None, [], "x", {"k": 1}, {"k": {"since": "x"}}, {"k": {"since": 1}}):
        assert parse_store(data) == {}
