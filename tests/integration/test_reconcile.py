"""The engine through the real clients: boto3 against moto, kubernetes against the fake API.

Writes are counted from the emulators' own request logs, not from fedkeeper's counters.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from fedkeeper.invariants.ippools import pool_name
from fedkeeper.invariants.snat import EXTERNAL_SNAT, daemonset_env
from fedkeeper.model import Result
from fedkeeper.sandbox import Sandbox

CALICO = "projectcalico.org/v3"
ACCESS_NS = "fedkeeper-access"  # federation.example.yaml: the access Secrets' own namespace


def _pool(sb: Sandbox) -> dict[str, Any] | None:
    return sb.onprem_server.get_object(
        CALICO, "IPPool", pool_name(str(sb.config.sole_eks().network.cidr))
    )


def _disable_propagation(sb: Sandbox) -> str:
    b = sb.baseline
    assert b is not None
    rt = b.private_route_table_ids[0]
    sb.aws_session().client("ec2").disable_vgw_route_propagation(
        RouteTableId=rt, GatewayId=b.vgw_id
    )
    sb.clear_logs()
    return rt


def test_converged_reconcile_makes_zero_writes(sandbox: Sandbox) -> None:
    report = sandbox.reconcile(None, "apply")
    assert report.changes == []
    assert report.converged
    assert sandbox.emulator_writes().total == 0
    assert report.writes == 0


def test_plan_then_apply_repairs_disabled_propagation(sandbox: Sandbox) -> None:
    rt = _disable_propagation(sandbox)
    plan = sandbox.reconcile(["routes"], "plan")
    assert [c.change.target for c in plan.changes] == [f"aws/RouteTable/{rt}"]
    assert plan.changes[0].result is Result.PLANNED
    assert sandbox.emulator_writes().total == 0

    applied = sandbox.reconcile(["routes"], "apply")
    assert applied.changes[0].result is Result.APPLIED
    assert sandbox.baseline is not None
    assert sandbox.baseline.vgw_id in sandbox.aws.propagations(rt)

    sandbox.clear_logs()
    again = sandbox.reconcile(["routes"], "apply")
    assert again.changes == [] and sandbox.emulator_writes().total == 0


def test_plan_mode_writes_nothing_anywhere(sandbox: Sandbox) -> None:
    _disable_propagation(sandbox)
    sandbox.aws.reset_addon_configuration(sandbox.config.sole_eks().cluster_name, "vpc-cni", "{}")
    sandbox.onprem_server.delete_object(CALICO, "RemoteClusterConfiguration", "fed-eks")
    sandbox.clear_logs()
    report = sandbox.reconcile(None, "plan")
    assert len(report.changes) >= 3
    assert all(c.result is Result.PLANNED for c in report.changes)
    assert sandbox.emulator_writes().total == 0


def test_addon_reset_is_restored_keeping_other_keys(sandbox: Sandbox) -> None:
    cluster = sandbox.config.sole_eks().cluster_name
    sandbox.aws.reset_addon_configuration(
        cluster,
        "vpc-cni",
        json.dumps({"env": {"WARM_IP_TARGET": "5"}, "resources": {"requests": {"cpu": "25m"}}}),
    )
    report = sandbox.reconcile(["snat"], "apply")
    assert [c.result for c in report.changes] == [Result.APPLIED]
    addon = sandbox.aws.addon(cluster, "vpc-cni")
    assert addon is not None
    assert json.loads(addon["configurationValues"]) == {
        "env": {"WARM_IP_TARGET": "5", EXTERNAL_SNAT: "true"},
        "resources": {"requests": {"cpu": "25m"}},
    }
    sandbox.advance_time(sandbox.aws.addon_seconds_left())  # EKS rolls the update out
    ds = sandbox.eks_server.get_object("apps/v1", "DaemonSet", "aws-node", "kube-system")
    assert ds is not None and daemonset_env(ds) == "true"


def test_self_managed_env_reset_is_patched_keeping_image_and_containers(sandbox: Sandbox) -> None:
    sandbox.aws.delete_addon_state(sandbox.config.sole_eks().cluster_name, "vpc-cni")

    def reset(ds: dict[str, Any]) -> None:
        c = ds["spec"]["template"]["spec"]["containers"][0]
        c["env"] = [e for e in c["env"] if e["name"] != EXTERNAL_SNAT]

    sandbox.eks_server.mutate("apps/v1", "DaemonSet", "aws-node", "kube-system", reset)
    before = sandbox.eks_server.get_object("apps/v1", "DaemonSet", "aws-node", "kube-system")
    assert before is not None
    report = sandbox.reconcile(["snat"], "apply")
    assert [c.change.target for c in report.changes] == ["fed-eks/DaemonSet/kube-system/aws-node"]
    after = sandbox.eks_server.get_object("apps/v1", "DaemonSet", "aws-node", "kube-system")
    assert after is not None and daemonset_env(after) == "true"
    b_containers = before["spec"]["template"]["spec"]["containers"]
    a_containers = after["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in a_containers] == [c["name"] for c in b_containers]
    assert [c["image"] for c in a_containers] == [c["image"] for c in b_containers]
    assert {e["name"] for e in a_containers[0]["env"]} == {
        "AWS_VPC_K8S_CNI_LOGLEVEL",
        "WARM_ENI_TARGET",
        EXTERNAL_SNAT,
    }


def test_conflict_on_a_write_is_reread_and_succeeds(sandbox: Sandbox) -> None:
    def drift(p: dict[str, Any]) -> None:
        p["spec"]["natOutgoing"] = True

    sandbox.onprem_server.mutate(CALICO, "IPPool", pool_name("10.100.0.0/16"), None, drift)
    sandbox.onprem_server.conflict_next(1, path_contains="/ippools/")
    report = sandbox.reconcile(["ippools"], "apply")
    assert [c.result for c in report.changes] == [Result.APPLIED]
    conflicts = [r for r in sandbox.onprem_server.requests if r.status == 409]
    assert len(conflicts) == 1
    pool = _pool(sandbox)
    assert pool is not None and "natOutgoing" not in pool["spec"]  # served without false


def test_out_of_band_edit_between_read_and_write_gets_409_then_converges(sandbox: Sandbox) -> None:
    """A stale resourceVersion is a real 409 from the server, not an injected one."""

    def drift(p: dict[str, Any]) -> None:
        p["spec"]["natOutgoing"] = True

    name = pool_name("10.100.0.0/16")
    sandbox.onprem_server.mutate(CALICO, "IPPool", name, None, drift)
    conns = sandbox.connections()
    onprem = conns.onprem()
    stale = next(p for p in onprem.list("IPPool") if p["metadata"]["name"] == name)
    sandbox.onprem_server.mutate(
        CALICO,
        "IPPool",
        name,
        None,
        lambda p: p["metadata"].setdefault("annotations", {}).update({"x": "y"}),
    )
    import pytest

    from fedkeeper.errors import ConflictError

    with pytest.raises(ConflictError):
        onprem.patch(
            "IPPool",
            name,
            {"spec": {"natOutgoing": False}},
            resource_version=stale["metadata"]["resourceVersion"],
        )
    report = sandbox.reconcile(["ippools"], "apply")
    assert report.converged
    pool = _pool(sandbox)
    assert pool is not None and "natOutgoing" not in pool["spec"]  # served without false
    assert pool["metadata"]["annotations"] == {"x": "y"}  # the other actor's edit survives


def test_opt_out_annotation_is_respected(sandbox: Sandbox) -> None:
    def drift_and_opt_out(p: dict[str, Any]) -> None:
        p["spec"]["natOutgoing"] = True
        p["metadata"].setdefault("annotations", {})["fedkeeper.io/ignore"] = "true"

    sandbox.onprem_server.mutate(
        CALICO, "IPPool", pool_name("10.100.0.0/16"), None, drift_and_opt_out
    )
    sandbox.clear_logs()
    report = sandbox.reconcile(None, "apply")
    assert report.changes == []
    assert sandbox.emulator_writes().total == 0
    pool = _pool(sandbox)
    assert pool is not None and pool["spec"]["natOutgoing"] is True


def test_unreachable_onprem_defers_its_work_and_eks_is_still_reconciled(sandbox: Sandbox) -> None:
    sandbox.aws.reset_addon_configuration(sandbox.config.sole_eks().cluster_name, "vpc-cni", "{}")
    sandbox.eks_server.delete_object(CALICO, "RemoteClusterConfiguration", "onprem")
    sandbox.onprem_server.set_unreachable(True)
    conns = sandbox.connections()
    conns.forget_onprem()
    report = sandbox.reconcile(None, "apply")
    targets = {c.change.target: c.result for c in report.changes}
    assert targets["aws/Addon/fed-eks/vpc-cni"] is Result.APPLIED
    assert targets["fed-eks/RemoteClusterConfiguration/onprem"] is Result.APPLIED
    assert not any(t.startswith("onprem/") for t in targets)
    assert "onprem" in [d.target for d in report.deferred]
    assert not report.converged
    sandbox.onprem_server.set_unreachable(False)
    sandbox.advance_time(sandbox.aws.addon_seconds_left())  # the add-on update rolls out
    healed = sandbox.reconcile(None, "apply")
    assert healed.converged


def test_rotated_token_updates_the_access_secret_and_nothing_else(sandbox: Sandbox) -> None:
    sa = sandbox.config.federation.remote_service_account
    new = sandbox.onprem_server.rotate_token(sa.namespace, sa.name)
    sandbox.clear_logs()
    report = sandbox.reconcile(["rcc"], "apply")
    assert [c.change.target for c in report.changes] == [
        f"fed-eks/Secret/{ACCESS_NS}/remote-cluster-secret-onprem"
    ]
    writes = sandbox.emulator_writes()
    assert (writes.aws, writes.eks, writes.onprem) == (0, 1, 0)
    secret = sandbox.eks_server.get_object(
        "v1", "Secret", "remote-cluster-secret-onprem", ACCESS_NS
    )
    assert secret is not None
    assert new in base64.b64decode(secret["data"]["kubeconfig"]).decode()
    assert new not in json.dumps(report.to_dict())  # secrets never reach the report


def test_rcc_points_at_its_secret_with_overlay_routing_disabled(sandbox: Sandbox) -> None:
    rcc = sandbox.eks_server.get_object(CALICO, "RemoteClusterConfiguration", "onprem")
    assert rcc is not None
    assert rcc["spec"] == {
        "clusterAccessSecret": {
            "name": "remote-cluster-secret-onprem",
            "namespace": ACCESS_NS,
            "kind": "Secret",
        },
        "syncOptions": {"overlayRoutingMode": "Disabled"},
    }
    secret = sandbox.onprem_server.get_object(
        "v1", "Secret", "remote-cluster-secret-fed-eks", ACCESS_NS
    )
    assert secret is not None
    assert base64.b64decode(secret["data"]["datastoreType"]) == b"kubernetes"
    binding = sandbox.onprem_server.get_object(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        "remote-cluster-secret-access",
        ACCESS_NS,
    )
    assert binding is not None
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "calico-typha", "namespace": "calico-system"}
    ]


def test_unowned_rcc_with_wrong_mode_is_reported_not_written(sandbox: Sandbox) -> None:
    sandbox.eks_server.delete_object(CALICO, "RemoteClusterConfiguration", "onprem")
    sandbox.eks_server.seed(
        {
            "apiVersion": CALICO,
            "kind": "RemoteClusterConfiguration",
            "metadata": {"name": "onprem"},
            "spec": {
                "clusterAccessSecret": {
                    "name": "remote-cluster-secret-onprem",
                    "namespace": ACCESS_NS,
                    "kind": "Secret",
                },
                "syncOptions": {"overlayRoutingMode": "Enabled"},
            },
        }
    )
    sandbox.clear_logs()
    report = sandbox.reconcile(["rcc"], "apply")
    assert report.changes == []
    assert sandbox.emulator_writes().total == 0
    assert any(
        f.check == "rcc.foreign" and "overlayRoutingMode is Enabled" in f.message
        for f in report.findings
    )


def test_full_reconcile_reads_do_not_depend_on_unrelated_objects(sandbox: Sandbox) -> None:
    for i in range(20):
        sandbox.onprem_server.seed(
            {
                "apiVersion": CALICO,
                "kind": "IPPool",
                "metadata": {"name": f"extra-{i}"},
                "spec": {"cidr": f"172.{16 + i}.0.0/16", "disabled": False},
            }
        )
    sandbox.clear_logs()
    report = sandbox.reconcile(None, "apply")
    assert report.changes == []
    baseline_calls = report.api.totals()
    sandbox.clear_logs()
    again = sandbox.reconcile(None, "apply")
    assert again.api.totals() == baseline_calls


def test_the_stacks_vpn_connection_id_narrows_the_vpn_check(sandbox: Sandbox) -> None:
    from fedkeeper.model import Scope
    from fedkeeper.service import Connections, Targets, reconcile

    b = sandbox.baseline
    assert b is not None
    sandbox.aws_session().client("ec2").create_vpn_connection(
        Type="ipsec.1", CustomerGatewayId=b.cgw_id, VpnGatewayId=b.vgw_id
    )  # a second VPN on the same VGW, not the federation's
    only = Connections(
        sandbox.config,
        sandbox.aws_session(),
        targets=Targets(vpn_connection_id=b.vpn_connection_id),
    )
    report = reconcile(only, Scope.of("vpn"), "plan")
    assert report.tunnels_up == 2
    everything = reconcile(
        Connections(sandbox.config, sandbox.aws_session()), Scope.of("vpn"), "plan"
    )
    assert everything.tunnels_up == 4


def test_pools_served_without_their_false_booleans_converge_with_zero_writes(
    sandbox: Sandbox,
) -> None:
    pool = _pool(sandbox)
    assert pool is not None
    assert pool["spec"]["disabled"] is True
    assert "natOutgoing" not in pool["spec"]  # false: omitted by the Calico API server
    sandbox.clear_logs()
    report = sandbox.reconcile(["ippools"], "apply")
    assert report.changes == []
    assert sandbox.emulator_writes().total == 0
