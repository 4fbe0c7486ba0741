"""The checks' preconditions kept between runs of one process (fedkeeper.run.Preconditions)."""

from __future__ import annotations

import pytest

from fedkeeper.errors import RetryableError
from fedkeeper.run import Preconditions

GROUPS = ("eks", "onprem", "cloudtrail")


class Reads:
    """Counts the reads of each group; a run is any new object."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def run(self, kept: Preconditions, *, fresh: bool = False) -> list[str]:
        """One run asking for every group; the groups it read."""
        start, token = len(self.log), object()
        for group in GROUPS:
            kept.get(token, group, lambda g=group: self.log.append(g) or g, fresh=fresh)
        return self.log[start:]


def test_without_rotation_every_run_reads_every_group() -> None:
    kept, reads = Preconditions(), Reads()

    assert [reads.run(kept) for _ in range(3)] == [list(GROUPS)] * 3


def test_a_rotating_process_reads_all_once_then_one_group_per_run_oldest_first() -> None:
    kept, reads = Preconditions(rotate=True), Reads()

    runs = [reads.run(kept) for _ in range(7)]

    assert runs == [
        list(GROUPS),
        ["eks"],
        ["onprem"],
        ["cloudtrail"],
        ["eks"],
        ["onprem"],
        ["cloudtrail"],
    ]


def test_a_fresh_run_reads_every_group_and_rotation_goes_on_from_there() -> None:
    kept, reads = Preconditions(rotate=True), Reads()
    reads.run(kept)
    reads.run(kept)  # eks

    assert reads.run(kept, fresh=True) == list(GROUPS)
    assert reads.run(kept) == ["eks"]


def test_kept_values_are_served_as_read() -> None:
    kept, first = Preconditions(rotate=True), object()
    kept.get(first, "eks", lambda: "eks as read")
    kept.get(first, "onprem", lambda: {"peers": ["router"]})

    # The next run re-reads eks (read longest ago, first) and serves on-prem as it was read
    assert kept.get(object(), "onprem", lambda: {"peers": []}) == {"peers": ["router"]}


def test_a_failed_read_is_raised_forgotten_and_read_first_thing_next_run() -> None:
    kept, reads = Preconditions(rotate=True), Reads()
    reads.run(kept)  # all three kept

    def failing() -> str:
        raise RetryableError("503")

    with pytest.raises(RetryableError):
        kept.get(object(), "cloudtrail", failing, fresh=True)

    # eks is the oldest kept group; cloudtrail is no longer kept at all
    assert reads.run(kept) == ["eks", "cloudtrail"]


def test_while_the_due_group_cannot_be_asked_for_the_others_stay_at_most_three_runs_old() -> None:
    # Given a rotating process whose EKS group is due, and EKS is down (never asked for)
    kept, log, first = Preconditions(rotate=True), [], object()
    for group in GROUPS:
        kept.get(first, group, lambda g=group: log.append(g))
    read_in_run: list[list[str]] = []
    for _ in range(6):
        run, start = object(), len(log)
        for group in ("onprem", "cloudtrail"):
            kept.get(run, group, lambda g=group: log.append(g))
        read_in_run.append(log[start:])

    # Then on-prem and CloudTrail are still read again every third run
    assert read_in_run == [[], [], ["onprem", "cloudtrail"], [], [], ["onprem", "cloudtrail"]]
