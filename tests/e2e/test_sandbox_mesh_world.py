"""The sandbox side of a federation of N clusters, outside the engine: the persistent world
and the demo do not refuse a mesh on their own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fedkeeper.config import load_config
from fedkeeper.sandbox import persistent
from fedkeeper.sandbox.demo import DemoInputError, run_demo
from fedkeeper.sandbox.mesh_scenarios import MESH_SCENARIOS
from tests.conftest import ROOT

MESH = ROOT / "federation.mesh.example.yaml"


@pytest.mark.slow
@pytest.mark.xdist_group("persistent-sandbox")
def test_a_persistent_world_of_four_clusters_serves_each_cluster_on_its_own_port(
    tmp_path: Path,
) -> None:
    home = tmp_path / "sandbox"
    persistent.start_world(str(MESH), load_config(MESH), 0, home=home)
    try:
        state = persistent.WorldState.read(home)
        assert state is not None
        assert list(state.cluster_urls) == ["eks-a", "eks-b", "dc1", "dc2"]
        assert len(set(state.cluster_urls.values())) == 4
        kubeconfig = yaml.safe_load(Path(state.kubeconfig).read_text())
        assert [c["name"] for c in kubeconfig["contexts"]] == [
            "sandbox-eks-a",
            "sandbox-eks-b",
            "sandbox-dc1",
            "sandbox-dc2",
        ]
    finally:
        assert "nothing is left running" in persistent.stop_world(home)


def test_a_world_of_n_clusters_takes_the_aws_port_and_one_port_per_cluster() -> None:
    assert persistent.world_ports(4570) == (4570, 4571, 4572)
    assert persistent.world_ports(4570, 4) == (4570, 4571, 4572, 4573, 4574)
    assert persistent.world_ports(0, 4) == (0, 0, 0, 0, 0)


def test_the_demo_of_a_mesh_lists_the_mesh_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo(load_config(MESH), list_only=True, as_json=True) == 0

    listed = json.loads(capsys.readouterr().out)
    assert [s["scenario"] for s in listed] == [s.name for s in MESH_SCENARIOS]


def test_the_demo_of_a_mesh_refuses_an_unknown_scenario_before_starting_anything() -> None:
    with pytest.raises(DemoInputError, match=r"unknown scenario.*rcc-deleted-eks.*pair-broken"):
        run_demo(load_config(MESH), scenarios=["rcc-deleted-eks"])
