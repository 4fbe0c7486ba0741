"""What-if, through the sandbox: coverage counts (pools and routes), one RCC per cluster,
and VPC CIDRs checked against the on-prem ranges."""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

import pytest
import yaml

from fedkeeper.invariants.ippools import pool_name
from fedkeeper.invariants.rcc import access_secret_name
from fedkeeper.model import Action, Severity
from fedkeeper.sandbox import Sandbox

pytestmark = pytest.mark.xdist_group("whatif-coverage")
CALICO = "projectcalico.org/v3"


def _vpc(sb: Sandbox) -> str:
    return str(sb.config.sole_eks().network.cidr)


def _pools(sb: Sandbox) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in sb.onprem_server.list_objects(CALICO, "IPPool")}


def _replace_owned_pool_with(sb: Sandbox, name: str, cidr: str, **spec: Any) -> None:
    """Before fedkeeper came, someone made this pool by hand."""
    sb.onprem_server.delete_object(CALICO, "IPPool", pool_name(_vpc(sb)))
    sb.onprem_server.seed(
        {
            "apiVersion": CALICO,
            "kind": "IPPool",
            "metadata": {"name": name},
            "spec": {"cidr": cidr, "disabled": True, "natOutgoing": False, **spec},
        }
    )
    sb.clear_logs()


def test_full_coverage_by_a_hand_made_pool_writes_nothing_and_is_healthy(sandbox: Sandbox) -> None:
    _replace_owned_pool_with(sandbox, "aws-vpc", _vpc(sandbox))
    report = sandbox.reconcile(None, "apply")
    assert report.changes == [] and sandbox.emulator_writes().total == 0
    [info] = [f for f in report.findings if f.check == "ippools.coverage"]
    assert info.severity is Severity.INFO and "aws-vpc" in info.message
    assert report.converged


def test_partial_coverage_gets_a_pool_for_exactly_the_other_half(sandbox: Sandbox) -> None:
    half, other = ipaddress.ip_network(_vpc(sandbox)).subnets(prefixlen_diff=1)
    _replace_owned_pool_with(sandbox, "aws-vpc-half", str(half))
    report = sandbox.reconcile(None, "apply")
    assert [(c.change.action, c.change.name) for c in report.changes] == [
        (Action.CREATE, pool_name(str(other)))
    ]
    assert _pools(sandbox)[pool_name(str(other))]["spec"]["cidr"] == str(other)
    sandbox.clear_logs()
    assert sandbox.reconcile(None, "apply").writes == 0


def test_a_disabled_pool_that_still_nats_keeps_the_aws_pools(sandbox: Sandbox) -> None:
    # An on-prem pool migration: the old pool is disabled but its pods still NAT.
    sandbox.onprem_server.mutate(
        CALICO, "IPPool", "default-ipv4-ippool", None, lambda p: p["spec"].update(disabled=True)
    )
    sandbox.onprem_server.seed(
        {
            "apiVersion": CALICO,
            "kind": "IPPool",
            "metadata": {"name": "new-pool"},
            "spec": {"cidr": "10.245.0.0/16", "natOutgoing": False},
        }
    )
    sandbox.clear_logs()
    report = sandbox.reconcile(None, "apply")
    assert report.changes == [] and sandbox.emulator_writes().total == 0
    assert pool_name(_vpc(sandbox)) in _pools(sandbox)


def test_a_covering_pool_that_nats_is_an_error_with_the_fix_and_never_converged(
    sandbox: Sandbox,
) -> None:
    _replace_owned_pool_with(sandbox, "aws-vpc", _vpc(sandbox), natOutgoing=True)
    report = sandbox.reconcile(None, "apply")
    assert report.changes == []
    [error] = [f for f in report.findings if f.severity is Severity.ERROR]
    assert "kubectl patch ippool aws-vpc" in error.message
    assert not report.converged


def test_a_same_server_rcc_under_another_name_is_not_duplicated(sandbox: Sandbox) -> None:
    ns = sandbox.config.federation.access_secret_namespace
    ours = sandbox.config.sole_eks().name
    secret = sandbox.onprem_server.get_object("v1", "Secret", access_secret_name(ours), ns)
    assert secret is not None
    sandbox.onprem_server.delete_object(CALICO, "RemoteClusterConfiguration", ours)
    sandbox.onprem_server.delete_object("v1", "Secret", access_secret_name(ours), ns)
    kubeconfig = yaml.safe_load(base64.b64decode(secret["data"]["kubeconfig"]))
    server = kubeconfig["clusters"][0]["cluster"]["server"]
    kubeconfig["clusters"][0]["cluster"]["server"] = server.upper().replace("HTTPS", "https") + "/"
    sandbox.onprem_server.seed(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "eks-kubeconfig", "namespace": ns},
            "data": {
                "datastoreType": secret["data"]["datastoreType"],
                "kubeconfig": base64.b64encode(yaml.safe_dump(kubeconfig).encode()).decode(),
            },
        }
    )
    sandbox.onprem_server.seed(
        {
            "apiVersion": CALICO,
            "kind": "RemoteClusterConfiguration",
            "metadata": {"name": "aws-cluster"},
            "spec": {
                "clusterAccessSecret": {
                    "name": "eks-kubeconfig",
                    "namespace": ns,
                    "kind": "Secret",
                },
                "syncOptions": {"overlayRoutingMode": "Disabled"},
            },
        }
    )
    sandbox.clear_logs()
    report = sandbox.reconcile(None, "apply")
    assert sandbox.emulator_writes().onprem == 0
    rccs = sandbox.onprem_server.list_objects(CALICO, "RemoteClusterConfiguration")
    assert [r["metadata"]["name"] for r in rccs] == ["aws-cluster"]
    assert any("aws-cluster" in f.message and f.check == "rcc.adoptable" for f in report.findings)


def test_a_secondary_cidr_overlapping_the_onprem_services_gets_no_pool(sandbox: Sandbox) -> None:
    service = str(sandbox.config.sole_site().service_cidrs[0])
    ec2 = sandbox.aws_session().client("ec2")
    ec2.associate_vpc_cidr_block(VpcId=sandbox.baseline.vpc_id, CidrBlock=service)
    sandbox.clear_logs()
    report = sandbox.reconcile(None, "apply")
    assert report.changes == [] and pool_name(service) not in _pools(sandbox)
    [error] = [f for f in report.findings if f.check == "ippools.overlap"]
    assert error.severity is Severity.ERROR and f"service range {service}" in error.message
    assert not report.converged


def test_per_node_26_routes_count_as_advertised(sandbox: Sandbox) -> None:
    pods = ipaddress.ip_network(str(sandbox.config.sole_site().pod_cidrs[0]))
    first = next(pods.subnets(new_prefix=24))
    # The edge router advertises Calico's per-node /26 blocks for the first /24, and the
    # rest of the pod range as larger blocks: no single route contains the pod range.
    learned = [
        *(str(c) for c in sandbox.config.sole_site().host_cidrs),
        *(str(n) for n in first.subnets(new_prefix=26)),
        *(str(n) for n in pods.address_exclude(first)),
    ]
    sandbox.aws.set_learned_routes(sandbox.baseline.vgw_id, learned)
    report = sandbox.reconcile(["routes"], "plan")
    routes = [f for f in report.findings if f.check.startswith("routes.")]
    assert routes and all(f.check == "routes.coverage" for f in routes), routes
    assert all(f.severity is Severity.INFO for f in routes)
    assert f"on-prem {pods} is covered" in routes[0].message
    assert f"by {len(learned) - 1} propagated routes" in routes[0].message
    assert "limit of 100 dynamic routes per VPN connection" in routes[0].message
