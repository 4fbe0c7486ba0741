"""The pair breakers on a converged federation (the two-cluster example, whose pairs are set
up): each breaks exactly the one pair it names."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedkeeper.config import load_config
from fedkeeper.sandbox import mesh_scenarios as breakers
from fedkeeper.sandbox.world import Sandbox

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.xdist_group("sandbox-mesh-breakers-pairs")
RCC = "RemoteClusterConfiguration"


@pytest.fixture
def converged() -> Iterator[Sandbox]:
    with Sandbox.start(load_config(ROOT / "federation.example.yaml")) as sb:
        yield sb


def test_pair_broken_deletes_one_rcc_and_keeps_the_reverse_pair(converged: Sandbox) -> None:
    eks, site = converged.config.sole_eks().name, converged.config.sole_site().name
    calico = "projectcalico.org/v3"

    done = breakers.break_pair(converged, eks, site)

    assert done.touched == (f"{eks}/{RCC}/{site}",)
    assert converged.server(eks).get_object(calico, RCC, site) is None
    assert converged.server(site).get_object(calico, RCC, eks) is not None
    assert converged.emulator_writes().total == 0  # a write by another actor, not logged


def test_pair_broken_corrupts_only_that_pairs_access_secret(converged: Sandbox) -> None:
    eks, site = converged.config.sole_eks().name, converged.config.sole_site().name

    done = breakers.break_pair(converged, site, eks, how="corrupt-secret")

    (target,) = done.touched
    _, _, namespace, name = target.split("/")
    secret = converged.server(site).get_object("v1", "Secret", name, namespace)
    assert secret is not None
    assert base64.b64decode(secret["data"]["token"]) == b"not-a-token"
    rcc = converged.server(eks).get_object("projectcalico.org/v3", RCC, site)
    assert rcc is not None  # the reverse pair is untouched


def test_token_rotated_reissues_the_token_for_one_consumer(converged: Sandbox) -> None:
    eks, site = converged.config.sole_eks().name, converged.config.sole_site().name
    namespace, name = breakers.token_secret_for(converged, site, eks)
    old = converged.server(site).get_object("v1", "Secret", name, namespace)
    assert old is not None

    breakers.rotate_token(converged, site, eks)

    new = converged.server(site).get_object("v1", "Secret", name, namespace)
    assert new is not None and new["data"]["token"] != old["data"]["token"]
    old_token = base64.b64decode(old["data"]["token"]).decode()
    assert converged.server(site).authenticate(old_token) is None
