"""Properties of the topology over generated inputs: overlap detection agrees with ipaddress,
pairs are symmetric and honour exclusions, and any input is clearly refused or loaded (and
then rendered back unchanged)."""

from __future__ import annotations

import copy
import ipaddress
from itertools import combinations
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedkeeper.errors import ConfigError
from fedkeeper.topology import parse_mesh, render_mesh
from fedkeeper.topology.rules import overlapping
from tests.conftest import EXAMPLE
from tests.unit.test_fuzz_config import paths
from tests.unit.topology_meshes import full_mesh, mesh_example

# Small address space and short prefixes, so that overlaps, nesting and equal blocks are common.
cidrs = st.builds(
    lambda address, prefix: ipaddress.ip_network(f"10.0.{address}.0/{prefix}", strict=False),
    st.integers(min_value=0, max_value=255),
    st.integers(min_value=16, max_value=26),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(cidrs, max_size=24))
def test_overlap_detection_agrees_with_ipaddress(nets: list[ipaddress.IPv4Network]) -> None:
    expected = [(i, j) for i, j in combinations(range(len(nets)), 2) if nets[i].overlaps(nets[j])]
    assert overlapping(nets) == expected


@st.composite
def meshes_with_exclusions(draw: st.DrawFn) -> tuple[dict[str, Any], set[frozenset[str]]]:
    """A routable full mesh of 2-5 EKS clusters and 0-4 sites, and pairs to leave out."""
    data = full_mesh(draw(st.integers(2, 5)), draw(st.integers(0, 4)))
    names = [c["name"] for c in data["clusters"]]
    every = [frozenset(p) for p in combinations(names, 2)]
    excluded = draw(st.sets(st.sampled_from(every), max_size=len(every) - 1))
    data["topology"] = {"exclude": [sorted(p) for p in excluded]}
    return data, excluded


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(meshes_with_exclusions())
def test_pairs_are_symmetric_and_leave_out_exactly_the_exclusions(
    drawn: tuple[dict[str, Any], set[frozenset[str]]],
) -> None:
    data, excluded = drawn
    mesh = parse_mesh(data)
    pairs = mesh.pairs()
    names = mesh.names()
    assert pairs == sorted(pairs) and len(set(pairs)) == len(pairs)
    assert all((b, a) in pairs for a, b in pairs)
    assert {frozenset(p) for p in pairs} == {
        frozenset(p) for p in combinations(names, 2)
    } - excluded
    for name in names:
        assert mesh.peers(name) == sorted(b for a, b in pairs if a == name)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.text(max_size=12),
    st.sampled_from(
        ["all", "eks-a", "dc1", "onprem", "eks", "10.100.0.0/16", "1.2.3.4/33", "::/0", "65010"]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


EXAMPLES = {"mesh": mesh_example(), "two-cluster": yaml.safe_load(EXAMPLE.read_text())}
PATHS = [(form, path) for form, data in EXAMPLES.items() for path in paths(data)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), values, st.booleans())
def test_any_change_to_either_example_loads_or_is_clearly_refused(
    where: tuple[str, tuple[Any, ...]], value: Any, delete: bool
) -> None:
    form, path = where
    data = copy.deepcopy(EXAMPLES[form])
    parent: Any = data
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    try:
        mesh = parse_mesh(data)
    except ConfigError as exc:
        assert exc.errors
        for line in exc.errors:
            assert isinstance(line, str) and ": " in line and "\n" not in line
            if form == "two-cluster":
                assert "clusters[" not in line, line
    else:
        # Whatever loads, render_mesh (`fedkeeper config migrate`) writes back unchanged.
        assert parse_mesh(yaml.safe_load(render_mesh(mesh))) == mesh
