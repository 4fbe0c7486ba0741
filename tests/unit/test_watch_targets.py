"""What the watch function watches, and the state it hands the next invocation."""

from __future__ import annotations

from fedkeeper.config import FederationConfig
from fedkeeper.model import Invariant
from fedkeeper.watch import ClusterWatch, WatchState, watch_targets


def test_the_watch_covers_exactly_what_fedkeeper_owns_or_depends_on(
    config: FederationConfig,
) -> None:
    sa = config.federation.remote_service_account.name
    keys = {t.key: t.invariant for t in watch_targets(config)}
    assert keys["onprem/IPPool/*"] is Invariant.IPPOOLS
    # Backends are the clusters' mesh names: "fed-eks" and "onprem" in the example.
    assert keys["fed-eks/DaemonSet/kube-system/aws-node"] is Invariant.SNAT
    for side in ("fed-eks", "onprem"):
        assert keys[f"{side}/RemoteClusterConfiguration/*"] is Invariant.RCC
        assert keys[f"{side}/ClusterRole/{sa}"] is Invariant.RCC
        assert keys[f"{side}/ClusterRoleBinding/{sa}"] is Invariant.RCC
    assert len(keys) == 18
    assert "fed-eks/IPPool/*" not in keys  # EKS pools are only checked, by the sweep


def test_secrets_are_only_ever_watched_by_name_in_a_managed_namespace(
    config: FederationConfig,
) -> None:
    managed = {
        config.federation.access_secret_namespace,
        config.federation.remote_service_account.namespace,
    }
    secrets = [t for t in watch_targets(config) if t.kind == "Secret"]
    assert secrets
    assert all(t.name and t.namespace in managed for t in secrets)


def test_the_state_survives_a_round_trip_and_a_damaged_document_starts_afresh() -> None:
    state = WatchState(
        {"0": "42"},
        {"eks": ClusterWatch(True, "2026-01-01T00:00:00Z", identity="uid-1")},
        federation="demo",
        targets="0123456789ab",
        pending=["eks:rcc"],
    )
    assert WatchState.from_dict(state.to_dict()).to_dict() == state.to_dict()
    assert WatchState.from_dict("not json").resource_versions == {}
    assert WatchState.from_dict({"rv": [1, 2]}).resource_versions == {}


def test_liveness_says_live_only_while_the_state_is_fresh() -> None:
    from datetime import UTC, datetime, timedelta

    from fedkeeper.watch import liveness

    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    state = WatchState(
        clusters={"eks": ClusterWatch(True, "2026-01-01T11:58:00Z")},
        updated=(now - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    assert liveness(state, now)[0].startswith("watch on eks: live")
    assert "last change seen 2026-01-01T11:58:00Z" in liveness(state, now)[0]
    assert liveness(state, now + timedelta(minutes=10))[0].startswith("watch on eks: NOT live")
    assert liveness(WatchState(), now) == [
        "watch: no state stored yet (the watch function has not run)"
    ]
