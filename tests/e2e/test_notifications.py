"""Operators hear about repairs and failures on the SNS topic; a quiet run stays quiet.
A write that fails in a retryable way makes the handler raise, so Lambda retries it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from fedkeeper.config import load_config
from fedkeeper.invariants.ippools import pool_name
from fedkeeper.sandbox import Sandbox, event_factory
from tests.conftest import EXAMPLE


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox.start(load_config(EXAMPLE)) as sandbox:
        yield sandbox


def test_a_repair_is_published_and_a_quiet_run_is_not(sb: Sandbox) -> None:
    assert sb.deliver(event_factory.scheduled(sb.config.aws.region)).changes == []
    assert sb.notifications() == []
    b = sb.baseline
    assert b is not None
    sb.aws_session().client("ec2").disable_vgw_route_propagation(
        RouteTableId=b.private_route_table_ids[0], GatewayId=b.vgw_id
    )
    sb.deliver(
        event_factory.cloudtrail(
            "ec2",
            "DisableVgwRoutePropagation",
            {"routeTableId": b.private_route_table_ids[0], "gatewayId": b.vgw_id},
            sb.config.aws.region,
        )
    )
    [(subject, message)] = sb.notifications()
    assert subject == "fedkeeper fed-demo: 1 repaired, 0 failed, 0 error finding(s)"
    report = json.loads(message)
    assert report["changes"][0]["target"] == f"aws/RouteTable/{b.private_route_table_ids[0]}"


def test_a_retryable_failed_write_is_retried_by_lambda_then_succeeds(sb: Sandbox) -> None:
    def drift(p: dict[str, Any]) -> None:
        p["spec"]["natOutgoing"] = True

    sb.onprem_server.mutate(
        "projectcalico.org/v3", "IPPool", pool_name("10.100.0.0/16"), None, drift
    )
    # Every write of the first invocation's three conflict attempts fails: the change FAILS
    # with a retryable cause, the handler raises, Lambda's async retry runs it again.
    sb.onprem_server.conflict_next(3, path_contains="/ippools/")
    delivery = sb.dispatch(event_factory.scheduled(sb.config.aws.region))
    assert delivery.attempts["repair"] == 2
    assert delivery.dead_letters == []
    assert delivery.report.converged
    pool = sb.onprem_server.get_object("projectcalico.org/v3", "IPPool", pool_name("10.100.0.0/16"))
    assert pool is not None and "natOutgoing" not in pool["spec"]  # served without false
