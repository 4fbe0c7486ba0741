"""Persistent trouble through the deployed path: the repair function on its schedule."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fedkeeper.config import load_config
from fedkeeper.sandbox import Sandbox, event_factory
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
