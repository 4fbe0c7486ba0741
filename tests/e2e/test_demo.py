"""Every demo scenario, end to end: fault in, event delivered, repaired, rerun writes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fedkeeper.config import load_config
from fedkeeper.sandbox import Sandbox
from fedkeeper.sandbox.scenarios import SCENARIOS, run_scenario
from tests.conftest import EXAMPLE

pytestmark = pytest.mark.xdist_group("demo")


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[Sandbox]:
    with Sandbox.start(load_config(EXAMPLE)) as sb:
        yield sb


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_is_detected_repaired_and_converges(shared_sandbox: Sandbox, name: str) -> None:
    result = run_scenario(shared_sandbox, SCENARIOS[name])
    assert result.detected, result.report.to_dict()
    assert result.repaired, result.report.to_dict()
    assert result.converged, result.rerun.to_dict()
    assert result.writes_on_rerun == 0
    for change in result.report.changes:
        assert len(change.change.reason) > 30  # says the drift in words


CLUSTER_SIDE = [name for name, s in SCENARIOS.items() if s.watched]


def test_every_cluster_side_drift_the_issue_names_is_a_watched_scenario() -> None:
    assert set(CLUSTER_SIDE) == {
        "onprem-pool-drifted",
        "rcc-deleted-onprem",
        "rcc-deleted-eks",
        "token-rotated",
        "snat-reset-self-managed",
    }


@pytest.mark.parametrize("name", CLUSTER_SIDE)
def test_cluster_side_drift_is_repaired_by_the_watch_in_under_5_seconds(
    shared_sandbox: Sandbox, name: str
) -> None:
    result = run_scenario(shared_sandbox, SCENARIOS[name])
    assert result.ok
    assert result.trigger == "watch" and result.report.trigger == "watch"
    assert not result.modelled
    assert 0 < result.time_to_repair_s < 5


def test_aws_side_times_add_the_triggers_documented_latency_to_the_handlers_time(
    shared_sandbox: Sandbox,
) -> None:
    result = run_scenario(shared_sandbox, SCENARIOS["route-propagation-disabled"])
    out = result.to_dict()
    assert out["trigger"] == "cloudtrail" and out["modelled"] is True
    assert out["time_to_repair_s"] == pytest.approx(300 + result.handler_s, abs=0.01)
    assert "cloudtrail/faqs" in out["latency_source"]


def test_refused_scenario_writes_nothing(shared_sandbox: Sandbox) -> None:
    result = run_scenario(shared_sandbox, SCENARIOS["foreign-overlapping-pool"])
    assert result.writes == 0
    assert result.report.changes == []
