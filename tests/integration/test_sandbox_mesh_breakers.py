"""The mesh scenarios' breakers on a federation of four clusters (federation.mesh.example.yaml,
not converged): each breaks exactly what it says, and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from urllib3.exceptions import MaxRetryError

from fedkeeper.config import load_config
from fedkeeper.sandbox import mesh_scenarios as breakers
from fedkeeper.sandbox.world import Sandbox

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.xdist_group("sandbox-mesh-breakers")


@pytest.fixture(scope="module")
def mesh() -> Iterator[Sandbox]:
    with Sandbox.start(load_config(ROOT / "federation.mesh.example.yaml"), converge=False) as sb:
        yield sb


@pytest.fixture
def clean(mesh: Sandbox) -> Sandbox:
    mesh.clear_logs()
    return mesh


def _tunnels(sb: Sandbox) -> dict[tuple[str, str], list[str]]:
    ec2 = sb.aws_session().client("ec2")
    out = {}
    for key, vpn in sb.mesh_baseline.vpns.items():
        conn = ec2.describe_vpn_connections(VpnConnectionIds=[vpn.vpn_connection_id])
        out[key] = [t["Status"] for t in conn["VpnConnections"][0]["VgwTelemetry"]]
    return out


def test_site_vpn_down_takes_down_only_that_sites_tunnels_and_api(clean: Sandbox) -> None:
    try:
        done = breakers.vpn_down(clean, "dc1")

        tunnels = _tunnels(clean)
        assert {k: v for k, v in tunnels.items() if k[0] == "dc1"} == {
            ("dc1", "eks-a"): ["DOWN", "DOWN"],
            ("dc1", "eks-b"): ["DOWN", "DOWN"],
        }
        assert all(v == ["UP", "UP"] for k, v in tunnels.items() if k[0] != "dc1")
        assert done.touched[-1] == "dc1"
        with pytest.raises(MaxRetryError, match="Connection refused"):
            clean.client("dc1").call_api(
                "/version", "GET", _request_timeout=1, _preload_content=False
            )
        assert clean.emulator_writes().total == 0
    finally:
        breakers.vpn_up(clean, "dc1")


def test_peering_route_removed_from_one_table_only(clean: Sandbox) -> None:
    ec2 = clean.aws_session().client("ec2")

    def peer_routes() -> dict[str, list[str]]:
        out = {}
        for net in clean.mesh_baseline.networks.values():
            for table in net.vpc.private_route_table_ids:
                found = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]
                out[table] = sorted(
                    r["DestinationCidrBlock"]
                    for r in found["Routes"]
                    if r.get("VpcPeeringConnectionId")
                )
        return out

    before = peer_routes()
    done = breakers.remove_peering_route(clean, "eks-a", "eks-b")
    after = peer_routes()

    table = clean.mesh_baseline.networks["eks-a"].vpc.private_route_table_ids[0]
    assert after == {**before, table: []}
    assert done.touched == (f"aws/RouteTable/{table}/10.101.0.0/16",)
    assert clean.emulator_writes().aws == 1


def test_pair_broken_on_a_pair_not_set_up_is_a_clear_error(clean: Sandbox) -> None:
    with pytest.raises(LookupError, match="eks-a holds no RemoteClusterConfiguration dc1"):
        breakers.break_pair(clean, "eks-a", "dc1")


def test_a_cluster_joins_with_its_own_world_and_nothing_existing_is_written(
    clean: Sandbox,
) -> None:
    before = set(clean.servers)

    done = breakers.join(clean)

    (name,) = done.touched
    assert set(clean.servers) == before | {name}
    assert name in clean.config.names()
    assert clean.mesh_baseline.networks[name].cluster_name == name
    assert {p for p in clean.mesh_baseline.peerings if name in p} == {
        tuple(sorted((e.name, name))) for e in clean.config.eks_clusters() if e.name != name
    }
    assert {s for s, e in clean.mesh_baseline.vpns if e == name} == {
        s.name for s in clean.config.sites()
    }
    assert set(clean.emulator_writes().clusters) <= {name}  # nothing on the others


def test_a_cluster_leaves_while_unreachable(clean: Sandbox) -> None:
    done = breakers.leave_unreachable(clean, "dc2")

    assert done.touched == ("dc2",)
    assert clean.config.departed == ["dc2"]
    assert "dc2" not in clean.config.names()
    assert all("dc2" not in pair for pair in clean.config.pairs())
    with pytest.raises(MaxRetryError, match="Connection refused"):
        clean.client("dc2").call_api("/version", "GET", _request_timeout=1, _preload_content=False)
    assert clean.emulator_writes().total == 0
