"""Persistent trouble through the deployed path: the repair function on its schedule."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fedkeeper.adapters.aws import ALERT_ATTEMPTS, ALERT_CONNECT_TIMEOUT, ALERT_READ_TIMEOUT
from fedkeeper.config import load_config
from fedkeeper.lambda_runtime import (
    DEADLINE_MARGIN_S,
    _Memories,
    finish,
    handle_repair,
    use_runtime,
)
from fedkeeper.sandbox import Sandbox, event_factory
from fedkeeper.sandbox.lambda_context import FakeLambdaContext
from fedkeeper.status import federation_status
from tests.conftest import EXAMPLE


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox.start(load_config(EXAMPLE)) as sandbox:
        yield sandbox


def test_a_two_hour_onprem_outage_with_tunnels_up_notifies_once_and_once_on_recovery(
    sb: Sandbox,
) -> None:
    """A wrong address or CA: the tunnels are up, yet on-prem never answers."""
    sb.connections().kube_timeout = (0.2, 0.3)
    sb.onprem_server.set_unreachable(True)
    try:
        for _ in range(0, 120, 15):  # the schedule, every 15 minutes, for two hours
            sb.dispatch(event_factory.scheduled(sb.config.aws.region))
            sb.advance_time(15 * 60)
        during = list(sb.notifications())
        facts = [f for sec in federation_status(sb.connections()).sections for f in sec.facts]
        assert any(
            f.startswith("notified: onprem: failing for") and "(since " in f for f in facts
        ), facts
    finally:
        sb.onprem_server.set_unreachable(False)
    sb.dispatch(event_factory.scheduled(sb.config.aws.region))
    subjects = [s for s, _ in sb.notifications()]
    assert [s for s, _ in during] == ["fedkeeper fed-demo: persistent trouble: target:onprem"]
    assert subjects == [
        "fedkeeper fed-demo: persistent trouble: target:onprem",
        "fedkeeper fed-demo: recovered: target:onprem",
    ]


SCHEDULE_S = 15 * 60


def _scheduled(sb: Sandbox) -> None:
    delivery = sb.dispatch(event_factory.scheduled(sb.config.aws.region))
    assert delivery.dead_letters == []


def _subjects(sb: Sandbox) -> list[str]:
    return [s.removeprefix("fedkeeper fed-demo: ") for s, _ in sb.notifications()]


@pytest.fixture
def fresh_container() -> Iterator[None]:
    """A new Lambda container: its memory of trouble starts empty."""
    _Memories.by_table.clear()
    yield
    _Memories.by_table.clear()


def test_one_root_cause_gives_one_notification(sb: Sandbox) -> None:
    # On-prem refuses every request (403) for 45 minutes: ippools, rcc and checks all fail.
    sb.onprem_server.fail_next(403, times=10**6, message="forbidden")
    for _ in range(4):
        _scheduled(sb)
        sb.advance_time(SCHEDULE_S)
    assert _subjects(sb) == ["persistent trouble: target:onprem"]


def test_only_a_successful_call_to_ec2_declares_it_recovered(sb: Sandbox) -> None:
    sb.aws.fail_next("ec2", "DescribeVpcs", "ServiceUnavailable", status=503, times=10**6)
    for _ in range(3):  # 30 minutes of the schedule (5xx: Lambda retries each, by design)
        sb.dispatch(event_factory.scheduled(sb.config.aws.region))
        sb.advance_time(SCHEDULE_S)
    assert _subjects(sb) == ["persistent trouble: target:aws/ec2"]
    # An add-on event looks at snat and rcc: it calls EKS, never EC2, so it says nothing of it.
    cluster = sb.config.sole_eks().cluster_name
    sb.dispatch(
        event_factory.addon_event(
            "EKS Add-On Update Succeeded", cluster, "vpc-cni", sb.config.aws.region
        )
    )
    assert _subjects(sb) == ["persistent trouble: target:aws/ec2"]
    sb.aws.clear_faults()
    _scheduled(sb)  # DescribeVpcs answers again
    assert _subjects(sb)[-1] == "recovered: target:aws/ec2"


def test_a_failed_publish_is_tried_again_by_the_next_run(sb: Sandbox) -> None:
    sb.connections().kube_timeout = (0.2, 0.3)
    sb.onprem_server.set_unreachable(True)
    try:
        for _ in range(2):
            _scheduled(sb)
            sb.advance_time(SCHEDULE_S)
        sb.aws.fail_next("sns", "Publish", "InternalError", status=500, times=2)
        _scheduled(sb)  # due now: the publish fails, nothing is recorded as notified
        assert _subjects(sb) == []
        sb.advance_time(SCHEDULE_S)
        _scheduled(sb)
        assert _subjects(sb) == ["persistent trouble: target:onprem"]
    finally:
        sb.onprem_server.set_unreachable(False)


def test_a_sixty_minute_onprem_outage_with_the_episode_store_down_still_notifies(
    sb: Sandbox, fresh_container: None
) -> None:
    sb.connections().kube_timeout = (0.2, 0.3)
    for operation in ("GetItem", "PutItem"):
        sb.aws.fail_next("dynamodb", operation, "InternalServerError", status=500, times=10**6)
    sb.onprem_server.set_unreachable(True)
    try:
        for _ in range(0, 61, 15):  # the schedule, every 15 minutes, for an hour
            _scheduled(sb)
            sb.advance_time(SCHEDULE_S)
    finally:
        sb.onprem_server.set_unreachable(False)
    onprem = [(s, m) for s, m in sb.notifications() if "target:onprem" in s]
    assert [s for s, _ in onprem] == [
        "fedkeeper fed-demo: persistent trouble: target:onprem (store down)"
    ]
    assert f"The episode store {sb.episodes_table} cannot be read" in onprem[0][1]


def _hang_sns_and_dynamodb(sb: Sandbox) -> None:
    """SNS and DynamoDB stop answering: each attempt costs the alerting client's read
    timeout on the sandbox clock."""
    for service, operation in (
        ("sns", "Publish"),
        ("dynamodb", "GetItem"),
        ("dynamodb", "PutItem"),
    ):
        sb.aws.time_out_next(service, operation, times=10**6, seconds=ALERT_READ_TIMEOUT)


def test_with_dynamodb_and_sns_hung_the_repair_function_finishes_within_its_margin(
    sb: Sandbox, fresh_container: None
) -> None:
    # A repair to publish and trouble to record, then SNS and DynamoDB hang.
    sb.aws.reset_addon_configuration(sb.config.sole_eks().cluster_name, "vpc-cni", "{}")
    sb.onprem_server.fail_next(403, times=10**6, message="forbidden")
    _hang_sns_and_dynamodb(sb)
    context = FakeLambdaContext.for_handler("repair", clock=sb.clock.monotonic)
    context.timeout_s = 300  # the repair function's timeout
    start = sb.clock.monotonic()
    with use_runtime(sb.runtime()):
        handle_repair(event_factory.scheduled(sb.config.aws.region), context)
    # The run itself costs no emulated time here: what passed is finish()'s, within the
    # margin the run leaves the invocation (it was 60 s and more with 10-s, 3-attempt calls).
    assert sb.clock.monotonic() - start <= DEADLINE_MARGIN_S


def test_calls_after_the_run_take_two_short_attempts() -> None:
    # docs/DEPLOY.md: "2 attempts of 2 s connect and 3 s read"
    assert (ALERT_ATTEMPTS, ALERT_CONNECT_TIMEOUT, ALERT_READ_TIMEOUT) == (2, 2, 3)


def test_finish_makes_no_call_that_would_not_fit_its_budget(
    sb: Sandbox, fresh_container: None
) -> None:
    sb.aws.reset_addon_configuration(sb.config.sole_eks().cluster_name, "vpc-cni", "{}")
    report = sb.reconcile(None, "apply")
    _hang_sns_and_dynamodb(sb)
    start = sb.clock.monotonic()
    finish(sb.runtime(), report, "repair", budget_s=8.0)
    assert sb.clock.monotonic() - start <= 8.0
