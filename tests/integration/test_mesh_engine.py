"""The engine on a mesh: four clusters (federation.mesh.example.yaml), one fake Kubernetes API
server each, the reconciler as itself (its own RBAC, a token of its own), AWS in moto.

Given per cluster: a fresh API server holding only the reconciler's RBAC (as `cdk deploy` and
`fedkeeper onprem-bootstrap` leave it). The rcc invariant runs over every directed pair.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws

from fedkeeper.config import FederationConfig, load_config
from fedkeeper.model import Result, Scope
from fedkeeper.rbac import RECONCILER_GROUP, reconciler_objects
from fedkeeper.sandbox.kube_server import FakeKubeServer
from fedkeeper.sandbox.kube_server.authn import AUTHENTICATED, Identity
from fedkeeper.service import Connections, reconcile
from tests.conftest import ROOT

MESH = ROOT / "federation.mesh.example.yaml"
RECONCILER_TOKEN = "fedkeeper-reconciler-token"
CALICO = "projectcalico.org/v3"


@dataclass
class Mesh:
    config: FederationConfig
    servers: dict[str, FakeKubeServer]
    session: boto3.Session

    def connections(self) -> Connections:
        """The reconciler's connections: one kubeconfig per cluster name, its own token."""
        return Connections(
            self.config,
            self.session,
            kubeconfigs={n: s.kubeconfig(token=RECONCILER_TOKEN) for n, s in self.servers.items()},
        )

    def rccs(self, name: str) -> list[str]:
        return sorted(
            r["metadata"]["name"]
            for r in self.servers[name].list_objects(CALICO, "RemoteClusterConfiguration")
        )


def _reconciler_on(server: FakeKubeServer, config: FederationConfig, kind: str) -> None:
    subject = {"kind": "Group", "name": RECONCILER_GROUP, "apiGroup": "rbac.authorization.k8s.io"}
    for obj in reconciler_objects(config, "eks" if kind == "eks" else "onprem", subject):
        server.seed(obj)
    me = Identity("fedkeeper-reconciler", (RECONCILER_GROUP, AUTHENTICATED))
    server.token_reviews.append(lambda token, now: me if token == RECONCILER_TOKEN else None)


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    config = load_config(MESH)
    with mock_aws():
        session = boto3.Session(region_name=config.aws.region)
        eks = session.client("eks")
        for cluster in config.eks_clusters():
            eks.create_cluster(
                name=cluster.cluster_name,
                roleArn="arn:aws:iam::123456789012:role/eks",
                resourcesVpcConfig={"subnetIds": []},
            )
        servers = {c.name: FakeKubeServer(c.name).start() for c in config.clusters}
        try:
            for c in config.clusters:
                _reconciler_on(servers[c.name], config, c.kind)
            for site in config.sites():
                servers[site.name].seed(
                    {  # the site's own pool, as its install made it: Felix NATs from it
                        "apiVersion": CALICO,
                        "kind": "IPPool",
                        "metadata": {"name": "default-ipv4-ippool"},
                        "spec": {"cidr": str(site.pod_cidrs[0]), "natOutgoing": True},
                    }
                )
            yield Mesh(config, servers, session)
        finally:
            for server in servers.values():
                server.stop()


def test_given_a_fresh_mesh_when_rcc_is_applied_then_every_cluster_holds_one_rcc_per_peer(
    mesh: Mesh,
) -> None:
    conns = mesh.connections()
    report = reconcile(conns, Scope.of("rcc"), "apply")
    assert not report.errors and not report.failed_targets, report.to_dict()
    for name in mesh.config.names():
        assert mesh.rccs(name) == mesh.config.peers(name), name
    # Targets name the cluster they land on by its mesh name.
    backends = {c.change.backend for c in report.changes}
    assert backends == set(mesh.config.names())
    assert all(c.result is Result.APPLIED for c in report.changes)


def test_given_a_converged_mesh_when_rcc_runs_again_then_it_writes_nothing(mesh: Mesh) -> None:
    reconcile(mesh.connections(), Scope.of("rcc"), "apply")
    conns = mesh.connections()
    report = reconcile(conns, Scope.of("rcc"), "apply")
    assert report.changes == [], report.to_dict()
    assert report.api.total_writes() == 0


def _reads_per_cluster(mesh: Mesh) -> dict[str, int]:
    conns = mesh.connections()
    report = reconcile(conns, Scope.of("rcc"), "plan")
    assert report.changes == [], report.to_dict()
    return {n: report.api.reads.get(n, 0) for n in mesh.config.names()}


def test_given_a_converged_mesh_then_each_cluster_is_read_with_the_same_calls(
    mesh: Mesh,
) -> None:
    reconcile(mesh.connections(), Scope.of("rcc"), "apply")
    reads = _reads_per_cluster(mesh)
    # Label-selected lists and gets by fixed name: as many calls on a cluster with three
    # peers as the two-cluster engine makes on one with a single peer.
    assert len(set(reads.values())) == 1, reads


def test_given_one_site_down_when_rcc_runs_then_only_its_pairs_wait(mesh: Mesh) -> None:
    reconcile(mesh.connections(), Scope.of("rcc"), "apply")
    down = mesh.servers["dc2"]
    victim = mesh.servers["eks-a"]
    assert victim.delete_object(CALICO, "RemoteClusterConfiguration", "dc1")
    down.set_unreachable(True)
    try:
        report = reconcile(mesh.connections(), Scope.of("rcc"), "apply")
    finally:
        down.set_unreachable(False)
    # dc2 waits, and so do its peers' access Secrets for it (kept as they are).
    deferred = {d.target for d in report.deferred}
    assert deferred == {
        *(
            f"{p}/Secret/fedkeeper-access/remote-cluster-secret-dc2"
            for p in ("dc1", "eks-a", "eks-b")
        ),
        "dc2",
    }, report.to_dict()
    applied = {c.change.target for c in report.changes if c.result is Result.APPLIED}
    assert "eks-a/RemoteClusterConfiguration/dc1" in applied
    assert not any(t.startswith("dc2/") for t in applied)


def test_given_nating_sites_when_ippools_is_applied_then_each_covers_every_peer_cidr(
    mesh: Mesh,
) -> None:
    report = reconcile(mesh.connections(), Scope.of("ippools"), "apply")
    assert not report.errors and not report.failed_targets, report.to_dict()
    for site in mesh.config.sites():
        pools = mesh.servers[site.name].list_objects(CALICO, "IPPool")
        covered = {p["spec"]["cidr"] for p in pools if p["spec"].get("disabled")}
        assert covered == {str(c) for c in mesh.config.peer_cidrs(site.name)}, site.name
    again = reconcile(mesh.connections(), Scope.of("ippools"), "apply")
    assert again.changes == [] and again.api.total_writes() == 0, again.to_dict()


def test_given_a_mesh_when_everything_is_planned_then_one_failing_invariant_stops_no_other(
    mesh: Mesh,
) -> None:
    # moto serves no EKS add-ons (snat fails on AWS) and the checks are not wired for N
    # clusters yet: both are errors of their own, and rcc and ippools are planned all the same
    # (each cluster read).
    report = reconcile(mesh.connections(), Scope.everything(), "plan")
    assert {e.invariant for e in report.errors} == {"snat", "checks"}, report.to_dict()
    assert all(e.target == "aws/eks" for e in report.errors if e.invariant == "snat")
    assert set(mesh.config.names()) <= report.reached  # every cluster was read
