"""Bad input to every handler, through the sandbox: random, truncated, wrong types, huge.

Each answer is a Report (often a no-op) or an "invalid request" response — never a traceback,
and never a write (the sandbox starts converged, so any write would be a bug).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedkeeper.config import load_config
from fedkeeper.events import HANDLERS
from fedkeeper.sandbox import Sandbox
from tests.conftest import EXAMPLE

pytestmark = pytest.mark.xdist_group("fuzz-handlers")

EVENTS = Path(__file__).resolve().parent.parent / "events"
REAL = [json.loads(p.read_text()) for p in sorted(EVENTS.glob("*.json"))]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.integers(min_value=10_000, max_value=1_000_000).map(lambda n: "x" * n),  # huge
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=15,
)
# Dicts shaped like the inputs we expect, with keys the parsers look at.
shaped = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["plan", "status", "apply", "APPLY", "", "delete"]) | json_values,
        "scope": json_values | st.lists(st.sampled_from(["routes", "vpn", "x", ""]), max_size=3),
        "source": st.sampled_from(
            ["aws.ec2", "aws.eks", "aws.cloudwatch", "aws.health", "aws.events"]
        )
        | json_values,
        "detail-type": st.sampled_from(
            ["AWS API Call via CloudTrail", "Scheduled Event", "CloudWatch Alarm State Change"]
        )
        | json_values,
        "detail": json_values,
        "version": json_values,
        "id": json_values,
    },
)


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox.start(load_config(EXAMPLE)) as sandbox:
        yield sandbox


def _mutilate(event: dict[str, Any], path: list[Any], value: Any, drop: bool) -> dict[str, Any]:
    out = copy.deepcopy(event)
    cur: Any = out
    for p in path[:-1]:
        cur = cur[p]
    if drop:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return out


def _paths(d: Any, prefix: list[Any] | None = None) -> list[list[Any]]:
    prefix = prefix or []
    out = [prefix] if prefix else []
    if isinstance(d, dict):
        for k, v in d.items():
            out += _paths(v, [*prefix, k])
    return out


def _safe_answer(sb: Sandbox, handler: str, event: Any) -> None:
    sb.clear_logs()
    response = sb.invoke(handler, event)
    assert isinstance(response, dict)
    assert "mode" in response or response.get("error") == "invalid request"
    assert sb.emulator_writes().total == 0, sb.emulator_writes().detail
    assert not any("Traceback" in line for line in sb.function_logs)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(handler=st.sampled_from(HANDLERS), event=json_values | shaped)
def test_random_input_is_a_report_or_a_clear_refusal(sb: Sandbox, handler: str, event: Any) -> None:
    _safe_answer(sb, handler, event)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), handler=st.sampled_from(HANDLERS))
def test_real_events_with_a_field_dropped_or_retyped(
    sb: Sandbox, data: st.DataObject, handler: str
) -> None:
    event = data.draw(st.sampled_from(REAL))
    paths = _paths(event)
    path = data.draw(st.sampled_from(paths))
    mutated = _mutilate(event, path, data.draw(json_values), data.draw(st.booleans()))
    _safe_answer(sb, handler, mutated)
