"""How the watch judges a refused resume point, how fast it relists, and what it hands on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fedkeeper.adapters.kube import refused_resume_point
from fedkeeper.config import FederationConfig
from fedkeeper.fights import TARGET_CHARS
from fedkeeper.model import Report, Scope
from fedkeeper.watch import (
    ERROR_CHARS,
    MAX_LISTS_PER_MINUTE,
    Watcher,
    WatchState,
    relist_wait,
    targets_digest,
    watch_targets,
)
from fedkeeper.watch_function import STATE_BUDGET, STATE_LIMIT, fitted
from tests.watch_support import worst_state


def _calico(message: str) -> dict[str, Any]:
    # projectcalico/calico apiserver/pkg/storage/calico/watcher.go: no code, no status
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "message": message,
        "reason": "InternalError",
    }


@pytest.mark.parametrize(
    ("status", "cause"),
    [
        (_calico("too old resource version: 12 (40)"), "expired"),
        (
            {"code": 410, "reason": "Expired", "message": "too old resource version: 1 (2)"},
            "expired",
        ),
        ({"code": 410, "reason": "Gone", "message": ""}, "expired"),
        (
            {
                "code": 504,
                "reason": "Timeout",
                "message": "Timeout: Too large resource version: 900, current: 40",
                "details": {"causes": [{"reason": "ResourceVersionTooLarge"}]},
            },
            "too-large",
        ),
        (_calico("Timeout: Too large resource version: 900, current: 40"), "too-large"),
        (
            {"code": 400, "reason": "BadRequest", "message": "invalid resource version: 'abc'"},
            "invalid",
        ),
        (
            {
                "code": 422,
                "reason": "Invalid",
                "message": 'resourceVersion: Invalid value: "abc": invalid syntax',
            },
            "invalid",
        ),
        (_calico("etcdserver: leader changed"), "error"),
        ({"code": 403, "reason": "Forbidden", "message": "cannot watch"}, "error"),
    ],
)
def test_a_refused_resume_point_is_judged_by_reason_and_message_not_code_alone(
    status: dict[str, Any], cause: str
) -> None:
    assert refused_resume_point(status) == cause


def _list_times(jitter: float, relists: int) -> list[float]:
    """When a watch refused every time lists, against a server answering at once."""
    times, at = [0.0], 0.0
    for n in range(1, relists + 1):
        at += relist_wait(n, jitter)
        times.append(at)
    return times


@pytest.mark.parametrize("jitter", [0.0, 0.5, 0.999])
def test_a_watch_refused_forever_lists_at_most_12_times_in_any_minute(jitter: float) -> None:
    times = _list_times(jitter, 200)
    busiest = max(sum(1 for t in times if start <= t < start + 60) for start in times)
    assert busiest <= MAX_LISTS_PER_MINUTE
    assert relist_wait(1, jitter) == 0.0  # the first relist is at once
    assert 15.0 <= relist_wait(50, jitter) <= 30.0  # and the longest wait is bounded


def _state(**fields: Any) -> WatchState:
    return WatchState.from_dict(json.loads(json.dumps(fields)))


def _watcher(config: FederationConfig, state: WatchState) -> Watcher:
    def repair(*_: Any) -> Report:
        return Report(mode="plan", scope=Scope(frozenset()))

    def no_cluster(_: Any) -> Any:
        raise AssertionError("no cluster is reached")

    return Watcher(
        no_cluster,
        watch_targets(config),
        repair,
        federation=config.name,
        state=state,
        log=lambda *_: None,
    )


def test_a_state_of_this_federation_and_target_list_is_resumed(
    config: FederationConfig,
) -> None:
    digest = targets_digest(watch_targets(config))
    stored = _state(
        version=2, federation=config.name, targets=digest, rv={"0": "7"}, pending=["onprem:ippools"]
    )
    w = _watcher(config, stored)
    assert w.state.resource_versions == {"0": "7"}
    assert not w.idle()  # the pending repair is queued again


@pytest.mark.parametrize(
    "document",
    [
        {"version": 2, "federation": "another", "targets": "x", "rv": {"0": "7"}},
        {"version": 2, "federation": "FED", "targets": "not-these", "rv": {"0": "7"}},
        {"resource_versions": {"onprem/IPPool/*": "7"}},  # the format before version 2
        ["not", "an", "object"],
    ],
)
def test_a_foreign_older_or_unreadable_state_is_dropped_and_everything_relisted(
    config: FederationConfig, document: Any
) -> None:
    document = json.loads(json.dumps(document).replace("FED", config.name))
    w = _watcher(config, WatchState.from_dict(document))
    assert w.state.resource_versions == {}
    assert w.state.federation == config.name
    assert w.state.targets == targets_digest(watch_targets(config))


def test_the_state_at_its_largest_fits_the_ssm_standard_tier_with_room_to_spare(
    config: FederationConfig,
) -> None:
    doc = worst_state(config).to_json()
    assert len(doc) <= STATE_BUDGET < STATE_LIMIT
    assert STATE_LIMIT - len(doc) >= 1000
    kept = json.loads(doc)
    assert all(len(c["error"]) == ERROR_CHARS for c in kept["clusters"].values())
    assert all(len(f[5]) <= TARGET_CHARS for f in kept["fights"].values())


def test_a_state_over_its_budget_is_trimmed_least_useful_first(config: FederationConfig) -> None:
    state = worst_state(config)
    assert len(fitted(state, budget=2000)) <= 2000
    trimmed = json.loads(fitted(state, budget=2000))
    assert trimmed["federation"] == config.name  # what makes it usable stays
    assert len(fitted(state, budget=400)) <= 400
