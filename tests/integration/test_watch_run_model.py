"""The watch function's run model: a schedule every minute, no reserved concurrency, one
lease holder that watches, every other start returning at once - and nobody paged.

The schedule, Lambda's asynchronous invocation and the stack's alarms are emulated by
``fedkeeper.sandbox.watch_schedule`` on the sandbox clock; the function is the real handler.
"""

from __future__ import annotations

import json
import time

import pytest

from fedkeeper.sandbox import Sandbox
from fedkeeper.sandbox.watch_schedule import WatchSchedule
from fedkeeper.watch import state_parameter_name
from fedkeeper.watch_function import MARGIN_S, STATE_LIMIT
from tests.watch_support import calico, owned_pool, pool, wait


def _state_chars(sb: Sandbox) -> int:
    ssm = sb.aws_session().client("ssm")
    return len(ssm.get_parameter(Name=state_parameter_name(sb.config))["Parameter"]["Value"])


def test_a_start_that_finds_the_lease_held_returns_at_once_and_cleanly(sandbox: Sandbox) -> None:
    with WatchSchedule(sandbox) as schedule:
        holder = schedule.minute()
        assert holder is not None and schedule.lease_holder() == holder.request_id
        # When the next minute's start comes while the holder watches
        second = schedule.minute()
        # Then it returned at once, without an error, and never touched a cluster
        assert second is not None and second.response == {"lease": "held elsewhere"}
        assert second.ended is not None and second.ended - second.started < 1
        assert schedule.lease_holder() == holder.request_id
    assert (schedule.errors, schedule.throttles, schedule.dead_letters) == (0, 0, 0)


@pytest.mark.slow
@pytest.mark.xdist_group("watch-day")  # about a minute: 1,440 starts, 94 holders, 26,000 re-opens
def test_24_emulated_hours_of_steady_state_page_nobody_and_keep_the_state_small(
    sandbox: Sandbox,
) -> None:
    sizes: list[int] = []
    with WatchSchedule(sandbox) as schedule:
        for minute in range(24 * 60):
            schedule.minute()
            if minute % 60 == 0:
                sizes.append(_state_chars(sandbox))
    watched = [i for i in schedule.invocations if i.watched]
    assert (schedule.dead_letters, schedule.errors, schedule.throttles) == (0, 0, 0), (
        schedule.failures
    )
    assert schedule.alarm_transitions() == {
        "dead-letters": 0,
        "watch-errors": 0,
        "persistent-trouble": 0,
    }
    assert len(watched) >= 24 * 60 / 16  # a holder for every quarter hour or so
    assert max([*sizes, _state_chars(sandbox)]) <= STATE_LIMIT


def test_with_reserved_concurrency_1_instead_of_the_lease_the_schedule_pages(
    sandbox: Sandbox,
) -> None:
    # The model the stack had: every start while one runs is throttled, expires, and is
    # dead-lettered (what the emulation must refuse to call quiet).
    with WatchSchedule(sandbox, reserved_concurrency=1) as schedule:
        for _ in range(15):
            schedule.minute()
    assert schedule.dead_letters >= 12
    assert schedule.alarm_transitions()["dead-letters"] == 1


def _stored_state(sb: Sandbox) -> dict[str, object]:
    ssm = sb.aws_session().client("ssm")
    return dict(
        json.loads(ssm.get_parameter(Name=state_parameter_name(sb.config))["Parameter"]["Value"])
    )


def _both_live(sb: Sandbox) -> bool:
    clusters = _stored_state(sb).get("clusters")
    return (
        isinstance(clusters, dict)
        and all(c.get("live") for c in clusters.values())
        and len(clusters) == 2
    )


def test_with_onprem_answering_in_9_s_no_repair_passes_the_deadline_and_eks_is_repaired_in_5_s(
    sandbox: Sandbox,
) -> None:
    timeout_s = 120
    with WatchSchedule(sandbox, timeout_s=timeout_s) as schedule:
        holder = schedule.deliver()
        assert holder is not None
        wait(lambda: _both_live(sandbox))
        deadline = holder.started + timeout_s - MARGIN_S
        # Given an on-prem API server that takes 9 s (emulated) to answer
        sandbox.onprem_server.delay_answers(9.0, wait_for_clock=True)
        # When both clusters drift at once: the owned pool on-prem, the RCC on EKS
        assert sandbox.onprem_server.delete_object(calico(sandbox), "IPPool", owned_pool(sandbox))
        drifted = sandbox.clock.time()
        sandbox.eks_server.delete_object(
            calico(sandbox), "RemoteClusterConfiguration", sandbox.config.sole_site().name
        )
        # Then EKS is repaired while the on-prem repair still waits for its answers
        took = wait(
            lambda: (
                sandbox.eks_server.get_object(
                    calico(sandbox), "RemoteClusterConfiguration", sandbox.config.sole_site().name
                )
                is not None
            )
        )
        assert took < 5 and sandbox.clock.time() - drifted < 5
        assert pool(sandbox) is None
        # And as time runs on, every repair ends by the watch's deadline
        while holder.ended is None and sandbox.clock.time() < holder.started + timeout_s:
            sandbox.advance_time(3.0)
            time.sleep(0.03)
        wait(lambda: holder.ended is not None)
    assert holder.ended is not None and holder.ended <= holder.started + timeout_s
    assert schedule.reports and all(at <= deadline for at, _ in schedule.reports)
    assert (schedule.errors, schedule.dead_letters) == (0, 0)


def test_a_holder_that_stopped_renewing_is_replaced_once_its_lease_runs_out(
    sandbox: Sandbox,
) -> None:
    from fedkeeper.watch_function import LEASE_ITEM, LEASE_S

    # Given a holder that died (a lease nobody renews any more)
    sandbox.aws_session().client("dynamodb").put_item(
        TableName=sandbox.episodes_table,
        Item={
            "pk": {"S": LEASE_ITEM},
            "holder": {"S": "a-frozen-invocation"},
            "expires": {"N": str(sandbox.clock.time() + LEASE_S)},
        },
    )
    with WatchSchedule(sandbox) as schedule:
        starts = [schedule.minute() for _ in range(int(LEASE_S // 60) + 1)]
    # Then the starts before it ran out returned at once, and the first one after it watched
    assert [s is not None and s.watched for s in starts] == [False, False, True]
    assert (schedule.errors, schedule.dead_letters) == (0, 0)
