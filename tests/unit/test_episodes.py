"""Persistent trouble notifies once when an episode starts and once when it ends (pure)."""

from __future__ import annotations

from fedkeeper.episodes import (
    MEMORY_REPEAT_S,
    STORE_TARGET,
    Episode,
    Memory,
    Step,
    confirm,
    parse_store,
    step,
    troubles,
)
from fedkeeper.model import (
    Action,
    Change,
    ChangeOutcome,
    Deferred,
    Finding,
    Invariant,
    Report,
    Result,
    RunError,
    Scope,
    Severity,
    TargetFailure,
)

MIN = 60.0


def run(
    *,
    onprem_down: bool = False,
    rcc_error: bool = False,
    scope: Scope | None = None,
    reached: set[str] | None = None,
) -> Report:
    report = Report(mode="apply", scope=scope or Scope.everything())
    report.reached = {"eks", "aws/ec2"} | (set() if onprem_down else {"onprem"})
    if reached is not None:
        report.reached = reached
    if onprem_down:
        report.deferred.append(Deferred("onprem", "onprem: API server unreachable"))
    if rcc_error:
        report.errors.append(RunError("rcc", "eks: HTTP 403", retryable=False))
    return report


def published(s: Step) -> dict[str, Episode]:
    """The store after every claimed notification was published."""
    return confirm(s.episodes, {e.key for e in [*s.opened, *s.closed]}, set())


def test_a_two_hour_onprem_outage_notifies_twice() -> None:
    episodes: dict[str, Episode] = {}
    opened = closed = 0
    for minute in range(0, 125, 5):  # a run every 5 minutes, for two hours
        s = step(episodes, run(onprem_down=True), minute * MIN)
        episodes, opened, closed = published(s), opened + len(s.opened), closed + len(s.closed)
    assert (opened, closed) == (1, 0)
    assert episodes["target:onprem"].since == 0.0
    s = step(episodes, run(), 125 * MIN)
    assert (len(s.opened), len(s.closed)) == (0, 1)
    assert published(s) == {}


def test_a_short_outage_notifies_nothing() -> None:
    s = step({}, run(onprem_down=True), 0)
    s = step(published(s), run(onprem_down=True), 20 * MIN)
    s = step(published(s), run(), 25 * MIN)
    assert s.opened == [] and s.closed == [] and published(s) == {}


def test_an_invariant_failing_three_runs_in_a_row_notifies_on_the_third() -> None:
    s1 = step({}, run(rcc_error=True), 0)
    s2 = step(published(s1), run(rcc_error=True), MIN)
    s3 = step(published(s2), run(rcc_error=True), 2 * MIN)
    assert [len(s.opened) for s in (s1, s2, s3)] == [0, 0, 1]
    assert s3.opened[0].key == "invariant:rcc"


def test_a_run_that_did_not_look_keeps_the_episode_open() -> None:
    s = step({}, run(onprem_down=True), 0)
    s = step(published(s), run(scope=Scope.of("vpn"), reached={"aws/ec2"}), 40 * MIN)
    assert "target:onprem" in s.episodes and s.closed == []


def test_a_configuration_error_notifies_on_the_first_run_only() -> None:
    config = Report(mode="plan", scope=Scope(frozenset()))
    config.errors.append(RunError("config", "mode: 'x' is not a mode", retryable=False))
    s1 = step({}, config, 0)
    s2 = step(published(s1), config, 5 * MIN)
    assert (len(s1.opened), len(s2.opened)) == (1, 0)


def test_a_store_of_any_shape_is_read_without_crashing() -> None:
    for data in (None, [], "x", {"k": 1}, {"k": {"since": "x"}}, {"k": {"since": 1}}):
        assert parse_store(data) == {}


def _ec2_down(reached: set[str]) -> Report:
    report = run(reached=reached)
    report.failed_targets.append(TargetFailure("aws/ec2", "DescribeVpcs: 503", None, ["routes"]))
    return report


def test_only_a_successful_call_to_a_service_declares_it_recovered() -> None:
    # Given an episode for EC2 that was notified
    s = step({}, _ec2_down({"eks"}), 0)
    s = step(published(s), _ec2_down({"eks"}), 31 * MIN)
    stored = published(s)
    assert stored["target:aws/ec2"].notified
    # When a run calls other AWS services (snat: EKS) but not EC2, EC2 is not recovered
    snat_only = run(scope=Scope.of("snat"), reached={"aws/eks", "eks"})
    assert step(stored, snat_only, 40 * MIN).closed == []
    # Then only a run whose EC2 call succeeded closes it
    assert [e.key for e in step(stored, run(), 45 * MIN).closed] == ["target:aws/ec2"]


def test_one_root_cause_gives_one_trouble_whatever_it_broke() -> None:
    report = run(reached={"eks"})
    failure = TargetFailure("onprem", "onprem: HTTP 403", "re-apply", ["ippools", "rcc"])
    report.failed_targets.append(failure)
    for inv in ("ippools", "rcc", "checks"):
        report.errors.append(RunError(inv, "onprem: HTTP 403", retryable=False, target="onprem"))
    change = Change("onprem", "IPPool", "p", Action.CREATE, "r", Invariant.IPPOOLS)
    report.changes.append(ChangeOutcome(change, Result.FAILED, "HTTP 403", cause="onprem"))
    report.changes.append(ChangeOutcome(change, Result.SKIPPED, "needs p", cause="onprem"))
    assert list(troubles(report)) == ["target:onprem"]


def test_busy_work_is_no_trouble_and_a_standing_error_finding_is_one() -> None:
    report = run()
    change = Change("aws", "Addon", "c/vpc-cni", Action.UPDATE, "r", Invariant.SNAT)
    report.changes.append(ChangeOutcome(change, Result.DEFERRED, "ResourceInUse"))
    report.deferred.append(Deferred("aws/Addon/c/vpc-cni", "the add-on is UPDATING"))
    report.findings.append(Finding(Severity.ERROR, "rcc.name-taken", "onprem RCC fed-eks ..."))
    assert list(troubles(report)) == ["finding:rcc.name-taken"]


def test_a_notification_counts_only_once_it_was_published() -> None:
    s = step({}, run(rcc_error=True), 0)
    s = step(published(s), run(rcc_error=True), MIN)
    s = step(published(s), run(rcc_error=True), 2 * MIN)
    [claimed] = s.opened
    # The publish failed: the claim is freed and nothing is recorded as notified...
    failed = confirm(s.episodes, set(), {claimed.key})
    assert not failed["invariant:rcc"].notified and failed["invariant:rcc"].claimed is None
    # ...so the next run publishes it again
    assert [e.key for e in step(failed, run(rcc_error=True), 3 * MIN).opened] == ["invariant:rcc"]


def test_a_claim_held_by_another_run_is_left_to_it() -> None:
    s = step({}, run(rcc_error=True), 0)
    s = step(published(s), run(rcc_error=True), MIN)
    s = step(published(s), run(rcc_error=True), 2 * MIN)
    assert len(s.opened) == 1
    # another run steps the same store (the claim stored) a minute later: it does not publish
    assert step(s.episodes, run(rcc_error=True), 3 * MIN).opened == []


def test_with_the_store_down_memory_notifies_at_most_once_an_hour_and_names_the_store() -> None:
    memory = Memory()
    sent: list[tuple[float, str]] = []
    for minute in range(0, 121, 15):  # the schedule, two hours, DynamoDB down throughout
        now = minute * MIN
        for ep in memory.step(run(onprem_down=True), now, "DynamoDB: 500"):
            memory.sent[ep.key] = now
            sent.append((minute, ep.key))
    onprem = [m for m, key in sent if key == "target:onprem"]
    assert onprem == [30, 90]  # due after the 30-minute window, then once an hour
    assert [m for m, key in sent if key == STORE_TARGET] == [30, 90]
    assert MEMORY_REPEAT_S == 3600


def _with_malformed(*subjects: str) -> Report:
    report = run()
    for subject in subjects:
        message = f"{subject} is malformed: spec is a string; it is not fedkeeper's"
        report.findings.append(Finding(Severity.WARNING, "rcc.malformed", message, subject))
    return report


def test_a_foreign_object_that_stays_malformed_is_told_once_per_episode_per_object() -> None:
    episodes: dict[str, Episode] = {}
    told: list[str] = []
    for minute in range(6):  # it stays malformed; another object shows up on the fourth run
        subjects = ["onprem RemoteClusterConfiguration partner"]
        subjects += ["eks Secret x/y"] if minute >= 3 else []
        s = step(episodes, _with_malformed(*subjects), minute * MIN)
        episodes, told = published(s), told + [e.key for e in s.opened]
    assert told == [
        "finding:rcc.malformed:onprem RemoteClusterConfiguration partner",
        "finding:rcc.malformed:eks Secret x/y",
    ]


def test_an_owned_object_restored_in_the_run_that_named_it_is_told_nothing() -> None:
    s = step({}, _with_malformed("onprem Secret ns/ours"), 0)
    s = step(published(s), run(), MIN)  # restored: no longer named
    assert s.opened == [] and s.closed == [] and published(s) == {}
