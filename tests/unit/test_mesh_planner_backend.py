"""Backend names: "aws" or a cluster's mesh name, pure."""

from __future__ import annotations

import pytest

from fedkeeper.model import BACKENDS, Action, Change, Invariant, backend


@pytest.mark.parametrize("name", ["aws", "eks", "onprem", "dc1", "eks-a", "a" * 63])
def test_given_aws_or_a_dns_label_when_taken_as_backend_then_it_is_kept(name: str) -> None:
    assert backend(name) == name


@pytest.mark.parametrize("name", ["", "EKS", "-dc1", "dc1-", "dc_1", "a" * 64, "eks.a"])
def test_given_no_dns_label_when_taken_as_backend_then_the_error_names_it_and_the_rule(
    name: str,
) -> None:
    with pytest.raises(ValueError, match="DNS label") as err:
        backend(name)
    assert repr(name) in str(err.value)


def test_given_a_mesh_cluster_name_when_a_change_targets_it_then_the_target_names_the_cluster() -> (
    None
):
    change = Change(
        backend("eks-a"), "RemoteClusterConfiguration", "dc1", Action.CREATE, "r", Invariant.RCC
    )
    assert change.target == "eks-a/RemoteClusterConfiguration/dc1"


def test_given_any_federation_when_its_backends_are_named_then_aws_comes_first() -> None:
    assert BACKENDS == ("aws",)
