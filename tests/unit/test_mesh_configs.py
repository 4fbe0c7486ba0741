"""The sandbox's generated federations: full meshes of N clusters, one joining, one leaving."""

from __future__ import annotations

import pytest

from fedkeeper.errors import ConfigError
from fedkeeper.sandbox.mesh_configs import MAX_SITES, departed, full_mesh, joined


@pytest.mark.parametrize("n", [2, 4, 8, 16, 32])
def test_a_full_mesh_of_n_clusters_is_valid_and_pairs_every_cluster_with_every_other(
    n: int,
) -> None:
    config = full_mesh(n)

    assert len(config.clusters) == n
    assert len(config.pairs()) == n * (n - 1)
    assert len(config.sites()) == min(n // 2, MAX_SITES)


def test_a_joining_cluster_is_peered_with_every_eks_cluster_and_reached_by_every_site() -> None:
    config = full_mesh(4)

    bigger, name = joined(config)

    assert bigger.names() == [*config.names(), name]
    assert set(bigger.peered_with(name)) == {e.name for e in config.eks_clusters()}
    assert {s.name for s in bigger.sites_of(name)} == {s.name for s in config.sites()}
    assert len(bigger.pairs()) == 5 * 4


def test_a_departed_cluster_leaves_every_link_and_is_listed_under_departed() -> None:
    smaller = departed(full_mesh(8), "eks-01")

    assert "eks-01" not in smaller.names()
    assert smaller.departed == ["eks-01"]
    assert all("eks-01" not in p for p in smaller.peerings())
    assert all(v.eks != "eks-01" for v in smaller.vpns())


def test_leaving_that_strands_a_site_is_refused() -> None:
    with pytest.raises(ConfigError, match="vpns"):
        departed(full_mesh(2), "eks-00")


def test_fewer_than_two_clusters_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        full_mesh(1)
