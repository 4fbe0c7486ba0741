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


def test_refused_scenario_writes_nothing(shared_sandbox: Sandbox) -> None:
    result = run_scenario(shared_sandbox, SCENARIOS["foreign-overlapping-pool"])
    assert result.writes == 0
    assert result.report.changes == []
