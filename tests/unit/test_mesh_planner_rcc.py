"""Invariant 4 (rcc) for N clusters: plan_mesh_rcc, pure, as specifications."""

from __future__ import annotations

import base64

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedkeeper.invariants.rcc import (
    CONSUMER_LABEL,
    desired_rcc,
    issued_token_name,
    plan_mesh_rcc,
)
from fedkeeper.model import Action, Severity
from tests.unit.mesh_world import NAMES, World, endpoint, full_mesh, token_of, writes

SA_NS = NAMES.remote_sa_namespace


def names(n: int) -> list[str]:
    return [f"c{i}" for i in range(n)]


def converged(n: int) -> tuple[World, list[str], list[tuple[str, str]]]:
    world = World()
    clusters = names(n)
    pairs = full_mesh(clusters)
    world.converge(clusters, pairs)
    return world, clusters, pairs


def issued_token(world: World, issuer: str, consumer: str) -> str:
    secret = world.get(issuer, "Secret", issued_token_name(NAMES, consumer), SA_NS)
    return base64.b64decode(secret["data"]["token"]).decode()


@pytest.mark.parametrize("n", range(2, 9))
def test_given_an_empty_full_mesh_of_n_when_converged_then_each_pair_has_one_rcc_reading_its_peer(
    n: int,
) -> None:
    world, clusters, pairs = converged(n)
    for left in clusters:
        assert sorted(
            r["metadata"]["name"] for r in world.objects(left, "RemoteClusterConfiguration")
        ) == sorted(c for c in clusters if c != left)
    for left, right in pairs:
        secret = world.get(left, "Secret", f"remote-cluster-secret-{right}", NAMES.access_namespace)
        kc = yaml.safe_load(base64.b64decode(secret["data"]["kubeconfig"]))
        assert kc["clusters"][0]["cluster"]["server"] == endpoint(right)
        assert token_of(world, left, right) == issued_token(world, right, left)


@pytest.mark.parametrize("n", range(2, 9))
def test_given_a_converged_mesh_of_n_when_planned_again_then_nothing_is_written_or_reported(
    n: int,
) -> None:
    world, clusters, pairs = converged(n)
    plan = plan_mesh_rcc(world.observe(clusters, pairs))
    assert (plan.changes, plan.findings, plan.deferred) == ([], [], [])


def test_given_a_converged_mesh_when_counting_token_secrets_then_each_consumer_has_its_own_labelled_one() -> (
    None
):
    world, clusters, _ = converged(4)
    for issuer in clusters:
        tokens = [
            s
            for s in world.objects(issuer, "Secret")
            if s.get("type") == "kubernetes.io/service-account-token"
        ]
        assert sorted(s["metadata"]["labels"][CONSUMER_LABEL] for s in tokens) == sorted(
            c for c in clusters if c != issuer
        )


@given(
    n=st.integers(2, 8),
    chosen=st.data(),
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_given_any_topology_when_converged_from_empty_then_a_rerun_writes_nothing_and_only_pairs_hold_rccs(
    n: int, chosen: st.DataObject
) -> None:
    clusters = names(n)
    unordered = [(a, b) for i, a in enumerate(clusters) for b in clusters[i + 1 :]]
    picked = chosen.draw(st.lists(st.sampled_from(unordered), min_size=1, unique=True))
    pairs = sorted({(a, b) for a, b in picked} | {(b, a) for a, b in picked})
    world = World()
    world.converge(clusters, pairs)
    assert plan_mesh_rcc(world.observe(clusters, pairs)).changes == []
    held = {
        (c, r["metadata"]["name"])
        for c in clusters
        for r in world.objects(c, "RemoteClusterConfiguration")
    }
    assert held == set(pairs)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_given_a_converged_mesh_when_a_cluster_joins_then_only_its_objects_and_its_peers_objects_for_it_are_written(
    n: int,
) -> None:
    world, clusters, _ = converged(n)
    new = "joiner"
    grown = [*clusters, new]
    made = world.converge(grown, full_mesh(grown))
    for change in made:
        assert change.action is Action.CREATE
        on_new = change.backend == new
        for_new = change.name in (
            new,
            f"remote-cluster-secret-{new}",
            issued_token_name(NAMES, new),
        )
        assert on_new or for_new, change.target
    # Exactly: per old cluster one token Secret, one RCC, one access Secret for the joiner.
    assert sum(c.backend != new for c in made) == 3 * n


def test_given_a_converged_mesh_when_a_departed_cluster_is_unreachable_then_every_reachable_cluster_drops_what_it_held_for_it() -> (
    None
):
    world, clusters, _ = converged(4)
    gone = "c3"
    rest = [c for c in clusters if c != gone]
    plan = plan_mesh_rcc(world.observe(rest, full_mesh(rest), departed=[gone]))
    assert sorted(writes(plan.changes)) == sorted(
        (Action.DELETE, target)
        for c in rest
        for target in (
            f"{c}/RemoteClusterConfiguration/{gone}",
            f"{c}/Secret/calico-system/remote-cluster-secret-{gone}",
            f"{c}/Secret/{SA_NS}/{issued_token_name(NAMES, gone)}",
        )
    )
    for change in plan.changes:
        if change.name == f"remote-cluster-secret-{gone}":
            assert change.after == (f"{change.backend}/RemoteClusterConfiguration/{gone}",)
    world.apply(plan.changes)
    assert plan_mesh_rcc(world.observe(rest, full_mesh(rest), departed=[gone])).changes == []


def test_given_a_cluster_removed_without_departed_when_planned_then_its_objects_are_reported_never_deleted() -> (
    None
):
    world, _, _ = converged(3)
    rest = ["c0", "c1"]
    plan = plan_mesh_rcc(world.observe(rest, full_mesh(rest)))
    assert plan.changes == []
    unknown = [f for f in plan.findings if f.check == "rcc.unknown-peer"]
    assert unknown and all("c2" in f.message for f in unknown)
    assert {f.severity for f in unknown} == {Severity.WARNING}


def test_given_one_consumers_token_rotated_when_planned_then_only_its_access_secret_changes_once() -> (
    None
):
    world, clusters, pairs = converged(5)
    world.rotate("c2", issued_token_name(NAMES, "c0"))
    plan = plan_mesh_rcc(world.observe(clusters, pairs))
    assert writes(plan.changes) == [
        (Action.UPDATE, "c0/Secret/calico-system/remote-cluster-secret-c2")
    ]
    assert "token rotated" in plan.changes[0].reason
    world.apply(plan.changes)
    assert plan_mesh_rcc(world.observe(clusters, pairs)).changes == []


def test_given_every_token_on_one_cluster_rotated_when_planned_then_each_consumer_is_written_once_in_one_block() -> (
    None
):
    world, clusters, pairs = converged(4)
    for consumer in ("c0", "c2", "c3"):
        world.rotate("c1", issued_token_name(NAMES, consumer))
    plan = plan_mesh_rcc(world.observe(clusters, pairs))
    assert sorted(c.backend for c in plan.changes) == ["c0", "c2", "c3"]
    assert all(c.name == "remote-cluster-secret-c1" for c in plan.changes)


def test_given_an_unreachable_consumer_when_planned_then_nothing_is_written_on_it_and_its_readers_keep_their_secrets() -> (
    None
):
    world, clusters, pairs = converged(4)
    # c1's token for c0 rotated while c1 is cut off: c0's access Secret stays as it is.
    world.rotate("c1", issued_token_name(NAMES, "c0"))
    before = world.get("c0", "Secret", "remote-cluster-secret-c1", "calico-system")
    plan = plan_mesh_rcc(world.observe(clusters, pairs, down=["c1"]))
    assert all(c.backend != "c1" for c in plan.changes)
    assert plan.changes == []
    assert "c0/Secret/calico-system/remote-cluster-secret-c1" in [d.target for d in plan.deferred]
    assert world.get("c0", "Secret", "remote-cluster-secret-c1", "calico-system") == before


def test_given_a_foreign_rcc_named_for_a_peer_reading_another_configured_cluster_when_planned_then_it_is_reported_as_name_taken() -> (
    None
):
    world, clusters, pairs = converged(3)
    store = world.stores["c0"]
    del store[("RemoteClusterConfiguration", "", "c1")]
    foreign = desired_rcc(NAMES, "c1", ("calico-system", "hand-made"))
    foreign["metadata"]["labels"] = {}
    world.put("c0", foreign)
    # Its Secret reads c2's API server.
    hand = dict(world.get("c0", "Secret", "remote-cluster-secret-c2", "calico-system"))
    hand["metadata"] = {"name": "hand-made", "namespace": "calico-system"}
    world.put("c0", hand)
    plan = plan_mesh_rcc(world.observe(clusters, pairs))
    assert [c.target for c in plan.changes if c.backend == "c0" and "c1" in c.name] == []
    [taken] = [f for f in plan.findings if f.check == "rcc.name-taken"]
    assert taken.severity is Severity.ERROR
    assert "c0 RCC c1" in taken.message and "https://c2.example:6443" in taken.message
    assert "rcc_name" not in taken.message


def test_given_an_owned_rcc_whose_secret_reads_another_configured_cluster_when_planned_then_the_secret_is_repointed() -> (
    None
):
    world, clusters, pairs = converged(3)
    wrong = world.get("c0", "Secret", "remote-cluster-secret-c2", "calico-system")
    secret = dict(world.get("c0", "Secret", "remote-cluster-secret-c1", "calico-system"))
    secret["data"] = dict(wrong["data"])
    world.put("c0", secret)
    plan = plan_mesh_rcc(world.observe(clusters, pairs))
    [change] = plan.changes
    assert change.target == "c0/Secret/calico-system/remote-cluster-secret-c1"
    assert "different server" in change.reason


def test_given_a_pair_excluded_from_the_topology_when_planned_then_both_ends_drop_their_objects_for_it() -> (
    None
):
    world, clusters, pairs = converged(3)
    kept = [p for p in pairs if set(p) != {"c0", "c1"}]
    plan = plan_mesh_rcc(world.observe(clusters, kept))
    assert sorted(writes(plan.changes)) == sorted(
        (Action.DELETE, t)
        for a, b in (("c0", "c1"), ("c1", "c0"))
        for t in (
            f"{a}/RemoteClusterConfiguration/{b}",
            f"{a}/Secret/calico-system/remote-cluster-secret-{b}",
            f"{a}/Secret/{SA_NS}/{issued_token_name(NAMES, b)}",
        )
    )


def test_given_a_failed_observation_of_a_cluster_when_planned_then_nothing_is_pruned_for_it() -> (
    None
):
    world, clusters, pairs = converged(3)
    plan = plan_mesh_rcc(world.observe(clusters, pairs, down=["c2"]))
    assert [c for c in plan.changes if c.action is Action.DELETE] == []


def test_given_a_two_cluster_deployment_when_planned_as_a_mesh_then_nothing_is_written_and_a_joiner_leaves_the_old_pair_alone() -> (
    None
):
    world = World()
    old = ["eks", "dc1"]
    world.converge(old, full_mesh(old), legacy=True)
    legacy_tokens = {c: world.get(c, "Secret", NAMES.remote_sa, SA_NS) for c in old}
    assert all(
        s is not None and CONSUMER_LABEL not in s["metadata"]["labels"]
        for s in legacy_tokens.values()
    )
    assert plan_mesh_rcc(world.observe(old, full_mesh(old))).changes == []
    grown = [*old, "eks-b"]
    made = world.converge(grown, full_mesh(grown))
    assert all(c.backend == "eks-b" or "eks-b" in c.name for c in made)
    assert (
        token_of(world, "eks", "dc1")
        == base64.b64decode(legacy_tokens["dc1"]["data"]["token"]).decode()
    )


def test_given_an_unlabelled_two_cluster_token_and_its_holder_unreachable_when_a_cluster_joins_then_the_holders_token_waits() -> (
    None
):
    world = World()
    old = ["eks", "dc1"]
    world.converge(old, full_mesh(old), legacy=True)
    grown = [*old, "eks-b"]
    world.add("eks-b")
    plan = plan_mesh_rcc(world.observe(grown, full_mesh(grown), down=["eks"]))
    targets = [c.target for c in plan.changes]
    assert f"dc1/Secret/{SA_NS}/{issued_token_name(NAMES, 'eks-b')}" in targets
    assert f"dc1/Secret/{SA_NS}/{issued_token_name(NAMES, 'eks')}" not in targets
    assert f"dc1/Secret/{SA_NS}/{issued_token_name(NAMES, 'eks')}" in [
        d.target for d in plan.deferred
    ]


def test_given_a_token_secret_issued_for_a_departed_consumer_when_that_token_was_the_legacy_one_then_it_is_revoked() -> (
    None
):
    world = World()
    old = ["eks", "dc1"]
    world.converge(old, full_mesh(old), legacy=True)
    secret = world.get("dc1", "Secret", NAMES.remote_sa, SA_NS)
    secret["metadata"]["labels"][CONSUMER_LABEL] = "eks"
    world.add("dc2")
    rest = ["dc1", "dc2"]
    plan = plan_mesh_rcc(world.observe(rest, full_mesh(rest), departed=["eks"]))
    assert (Action.DELETE, f"dc1/Secret/{SA_NS}/{NAMES.remote_sa}") in writes(plan.changes)
