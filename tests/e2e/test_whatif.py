"""A what-if test written only against the documented Sandbox API (docs/SANDBOX.md)."""

from __future__ import annotations

from kubernetes.client import CustomObjectsApi

from fedkeeper.config import load_config
from fedkeeper.sandbox import Sandbox, event_factory
from tests.conftest import EXAMPLE


def test_nat_off_on_prem_removes_the_disabled_pools() -> None:
    with Sandbox.start(load_config(EXAMPLE)) as sb:
        CustomObjectsApi(sb.onprem_client()).patch_cluster_custom_object(
            "projectcalico.org",
            "v3",
            "ippools",
            "default-ipv4-ippool",
            {"spec": {"natOutgoing": False}},
        )
        sb.clear_logs()

        report = sb.deliver(event_factory.scheduled(sb.config.aws.region))

        assert [(c.change.action.value, c.change.target) for c in report.changes] == [
            ("delete", "onprem/IPPool/fedkeeper-aws-10-100-0-0-16")
        ]
        assert sb.emulator_writes().onprem == 1
        sb.clear_logs()
        assert sb.reconcile(None, "apply").changes == []
        assert sb.emulator_writes().total == 0


def test_boto3_fault_shows_in_a_plan_without_writing() -> None:
    with Sandbox.start(load_config(EXAMPLE)) as sb:
        b = sb.baseline
        assert b is not None
        sb.aws_session().client("ec2").disable_vgw_route_propagation(
            RouteTableId=b.private_route_table_ids[1], GatewayId=b.vgw_id
        )
        sb.clear_logs()
        report = sb.reconcile(["routes"], "plan")
        assert [c.change.target for c in report.changes] == [
            f"aws/RouteTable/{b.private_route_table_ids[1]}"
        ]
        assert sb.emulator_writes().total == 0
