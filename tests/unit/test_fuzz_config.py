"""Hypothesis-driven bad input for federation.yaml: a clear ConfigError or a valid config,
never a traceback."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedkeeper.config import load_config, parse_config
from fedkeeper.errors import ConfigError
from tests.conftest import EXAMPLE

EXAMPLE_DATA: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.text(min_size=5000, max_size=6000),  # huge
    st.sampled_from(["10.0.0.0/8", "10.100.0.0/16", "::/0", "256.1.1.1/24", "1.2.3.4/33", "abc"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def paths(d: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(d, dict):
        for k, v in d.items():
            out += paths(v, (*prefix, k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out += paths(v, (*prefix, i))
    return out


ALL_PATHS = paths(EXAMPLE_DATA)


def check(data: Any) -> None:
    try:
        parse_config(data)
    except ConfigError as exc:
        assert exc.errors
        for line in exc.errors:
            assert isinstance(line, str) and ":" in line and "Traceback" not in line


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_any_document_is_accepted_or_clearly_refused(data: Any) -> None:
    check(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(ALL_PATHS), values, st.booleans())
def test_mutating_one_field_of_the_example(path: tuple[Any, ...], value: Any, delete: bool) -> None:
    data = copy.deepcopy(EXAMPLE_DATA)
    parent: Any = data
    for p in path[:-1]:
        parent = parent[p]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    check(data)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=len(EXAMPLE.read_text())))
def test_truncated_files(tmp_path_factory: Any, cut: int) -> None:
    path: Path = tmp_path_factory.mktemp("cfg") / "federation.yaml"
    path.write_text(EXAMPLE.read_text()[:cut])
    try:
        load_config(path)
    except ConfigError as exc:
        assert exc.errors


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(tmp_path_factory: Any, raw: bytes) -> None:
    path: Path = tmp_path_factory.mktemp("cfg") / "federation.yaml"
    path.write_bytes(raw)
    try:
        load_config(path)
    except ConfigError as exc:
        assert exc.errors
