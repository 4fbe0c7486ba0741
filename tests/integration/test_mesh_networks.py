"""The engine's network invariants on a mesh: vpn and routes over the VPC and VGW of each EKS
cluster (federation.mesh.example.yaml: two VPCs, two sites each with a VPN to both), in the
sandbox (moto and its gap fills: tunnels, propagated routes).

Given: the sandbox's mesh baseline, not converged; the reconciler runs as its own IAM role.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fedkeeper.config import load_config
from fedkeeper.model import Scope
from fedkeeper.sandbox import mesh_scenarios as breakers
from fedkeeper.sandbox.world import Sandbox

ROOT = Path(__file__).resolve().parents[2]
NETWORKS = Scope.of("vpn", "routes")
pytestmark = pytest.mark.xdist_group("sandbox-mesh-networks")


@pytest.fixture(scope="module")
def mesh() -> Iterator[Sandbox]:
    with Sandbox.start(load_config(ROOT / "federation.mesh.example.yaml"), converge=False) as sb:
        yield sb


def test_given_a_mesh_when_vpn_and_routes_apply_then_they_converge_with_no_error(
    mesh: Sandbox,
) -> None:
    report = mesh.reconcile(NETWORKS, "apply")
    assert not report.errors and not report.failed_targets, report.to_dict()
    assert not [f for f in report.findings if f.severity.value == "error"], report.to_dict()
    # Both sites' VPNs to the home network (eks-a) count: two tunnels each, all UP.
    assert report.tunnels_up == 4
    assert report.deferred == []


def test_given_a_converged_mesh_when_vpn_and_routes_run_again_then_nothing_is_written(
    mesh: Sandbox,
) -> None:
    mesh.reconcile(NETWORKS, "apply")
    mesh.clear_logs()
    report = mesh.reconcile(NETWORKS, "apply")
    assert report.changes == [], report.to_dict()
    assert mesh.emulator_writes().total == 0


def test_given_a_mesh_then_its_vpcs_are_found_with_one_describe_vpcs_per_run(
    mesh: Sandbox,
) -> None:
    mesh.clear_logs()
    mesh.reconcile(NETWORKS, "plan")
    # Each EKS cluster's VPC is picked by CIDR from one tag-filtered read, whatever N.
    assert mesh.aws.calls.count(("ec2", "DescribeVpcs")) == 1
    # One VGW read per VPC.
    assert mesh.aws.calls.count(("ec2", "DescribeVpnGateways")) == 2


def test_given_one_sites_tunnels_down_when_the_mesh_runs_then_only_that_site_waits(
    mesh: Sandbox,
) -> None:
    breakers.vpn_down(mesh, "dc2")
    try:
        report = mesh.reconcile(Scope.of("vpn", "routes", "rcc"), "apply")
    finally:
        breakers.vpn_up(mesh, "dc2")
    assert not report.errors, report.to_dict()
    waiting = {d.target: d.reason for d in report.deferred}
    assert "VPN to eks-a" in waiting["dc2"]
    # What waits is dc2 and its pairs (its peers' access Secrets for it); dc1 is not cut off.
    assert all(t == "dc2" or t.endswith(("-dc2", "/dc2")) for t in waiting), list(waiting)
    assert report.tunnels_up == 2  # dc1's two
    assert "dc1" in report.reached
