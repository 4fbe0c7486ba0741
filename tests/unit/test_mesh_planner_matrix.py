"""The federation's status matrix (pairs × clusters) and per-cluster summaries, pure."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from fedkeeper.invariants.matrix import split_plan, status_matrix
from fedkeeper.invariants.rcc import issued_token_name, plan_mesh_rcc
from tests.unit.mesh_world import NAMES, World, full_mesh

CLUSTERS = ["c0", "c1", "c2", "c3"]
PAIRS = full_mesh(CLUSTERS)


def converged() -> World:
    world = World()
    world.converge(CLUSTERS, PAIRS)
    return world


def matrix_of(world: World, pairs: list[tuple[str, str]] = PAIRS, down: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    obs = world.observe(CLUSTERS, pairs, down=down)
    return status_matrix(obs, {"rcc": split_plan(plan_mesh_rcc(obs), CLUSTERS)})


def test_given_a_converged_mesh_when_its_matrix_is_built_then_every_pair_is_present_matching_and_reachable() -> (
    None
):
    m = matrix_of(converged())
    assert {(p.rcc_present, p.secret_matches, p.remote_reachable) for p in m.pairs.values()} == {
        (True, True, True)
    }
    assert {s.state for s in m.summaries.values()} == {"ok"}


def test_given_one_cluster_down_when_its_matrix_is_built_then_only_its_row_is_unknown_and_its_column_unreachable() -> (
    None
):
    m = matrix_of(converged(), down=("c2",))
    for (left, right), p in m.pairs.items():
        if left == "c2":
            assert (p.rcc_present, p.secret_matches) == (None, None)
        elif right == "c2":
            assert (p.rcc_present, p.secret_matches, p.remote_reachable) == (True, None, False)
        else:
            assert (p.rcc_present, p.secret_matches, p.remote_reachable) == (True, True, True)
    assert m.summaries["c2"].state == "unreachable"
    assert m.summaries["c0"].invariants["rcc"].state == "deferred"


def test_given_one_consumers_token_rotated_when_its_matrix_is_built_then_only_that_cell_does_not_match() -> (
    None
):
    world = converged()
    world.rotate("c1", issued_token_name(NAMES, "c3"))
    m = matrix_of(world)
    assert [k for k, p in m.pairs.items() if not p.secret_matches] == [("c3", "c1")]
    assert m.summaries["c3"].invariants["rcc"].state == "pending"
    assert m.summaries["c3"].invariants["rcc"].changes == 1


def test_given_an_rcc_deleted_by_hand_when_its_matrix_is_built_then_its_cell_says_absent() -> None:
    world = converged()
    del world.stores["c0"][("RemoteClusterConfiguration", "", "c3")]
    p = matrix_of(world).pairs[("c0", "c3")]
    assert (p.rcc_present, p.secret_matches) == (False, False)


def test_given_a_pair_not_in_the_topology_when_rendered_then_its_cell_is_a_dot_and_the_text_matches_the_json() -> (
    None
):
    pairs = [p for p in PAIRS if set(p) != {"c0", "c3"}]
    world = World()
    world.converge(CLUSTERS, pairs)
    m = matrix_of(world, pairs)
    text = m.render()
    row = next(line for line in text.splitlines() if line.startswith("c0 "))
    assert row.split()[1:] == [".", "R+S+U+", "R+S+U+", "."]
    data = json.loads(json.dumps(m.to_dict()))
    assert len(data["pairs"]) == len(pairs)
    assert {(p["from"], p["to"]) for p in data["pairs"]} == set(pairs)
    assert data["clusters_status"]["c0"]["state"] == "ok"


@given(st.sets(st.sampled_from(CLUSTERS)))
@settings(max_examples=20, deadline=None)
def test_given_any_clusters_down_when_the_matrix_is_built_then_reachability_is_each_clusters_one_observation(
    down: set[str],
) -> None:
    world = converged()
    m = matrix_of(world, down=tuple(down))
    for (_, right), p in m.pairs.items():
        assert p.remote_reachable == (right not in down)
    assert {n for n, s in m.summaries.items() if s.state == "unreachable"} == down
