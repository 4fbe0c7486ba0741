"""Every log group keeps logs for a bounded time; the VPN's tunnel options are explicit."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.network import DH_GROUPS, INTEGRITY, PHASE1_ENCRYPTION, PHASE2_ENCRYPTION
from tests.infra.conftest import Synth

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("infra")]


def _of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def test_every_log_group_of_every_stack_has_a_retention(
    templates: dict[str, dict[str, Any]],
) -> None:
    groups = {
        (stack, gid): g
        for stack, template in templates.items()
        for gid, g in _of_type(template, "AWS::Logs::LogGroup").items()
    }

    assert groups
    assert [k for k, g in groups.items() if not g["Properties"].get("RetentionInDays")] == []


def test_every_function_logs_to_a_log_group_the_stack_creates(
    templates: dict[str, dict[str, Any]],
) -> None:
    # A function without one gets /aws/lambda/<name> from Lambda, kept forever.
    for stack, template in templates.items():
        groups = _of_type(template, "AWS::Logs::LogGroup")
        named = {str(g["Properties"].get("LogGroupName")): gid for gid, g in groups.items()}
        for fid, function in _of_type(template, "AWS::Lambda::Function").items():
            target = function["Properties"].get("LoggingConfig", {}).get("LogGroup")
            own = str({"Fn::Join": ["", ["/aws/lambda/", {"Ref": fid}]]})
            assert (isinstance(target, dict) and target.get("Ref") in groups) or own in named, (
                f"{stack}: {fid} logs to a group the stack does not create"
            )


def test_eks_control_plane_logs_go_to_a_group_with_retention_created_first(
    synth: Synth,
) -> None:
    name = synth.config.sole_eks().cluster_name
    groups = synth.cluster.find_resources(
        "AWS::Logs::LogGroup", {"Properties": {"LogGroupName": f"/aws/eks/{name}/cluster"}}
    )
    (group_id,) = groups
    (cluster,) = synth.cluster.find_resources("AWS::EKS::Cluster").values()

    assert groups[group_id]["Properties"]["RetentionInDays"] == 90
    assert group_id in cluster["DependsOn"]
    assert cluster["Properties"]["Logging"]["ClusterLogging"]["EnabledTypes"]


def _tunnels(synth: Synth) -> list[dict[str, Any]]:
    (vpn,) = synth.network.find_resources("AWS::EC2::VPNConnection").values()
    tunnels: list[dict[str, Any]] = vpn["Properties"]["VpnTunnelOptionsSpecifications"]
    return tunnels


def _values(items: list[dict[str, Any]]) -> list[Any]:
    return [i["Value"] for i in items]


def test_both_tunnels_offer_only_the_configured_ike_versions_and_strong_algorithms(
    synth: Synth,
) -> None:
    tunnels = _tunnels(synth)

    assert len(tunnels) == 2
    for tunnel in tunnels:
        assert (
            _values(tunnel["IKEVersions"])
            == synth.config.sole_site().vpns[0].ike_versions
            == ["ikev2"]
        )
        assert _values(tunnel["Phase1EncryptionAlgorithms"]) == list(PHASE1_ENCRYPTION)
        assert _values(tunnel["Phase2EncryptionAlgorithms"]) == list(PHASE2_ENCRYPTION)
        assert _values(tunnel["Phase1IntegrityAlgorithms"]) == list(INTEGRITY)
        assert _values(tunnel["Phase2IntegrityAlgorithms"]) == list(INTEGRITY)
        assert _values(tunnel["Phase1DHGroupNumbers"]) == list(DH_GROUPS)
        assert _values(tunnel["Phase2DHGroupNumbers"]) == list(DH_GROUPS)
        assert tunnel["DPDTimeoutAction"] == "restart"


def test_tunnel_and_bgp_logs_go_to_the_stacks_log_group_with_retention(synth: Synth) -> None:
    groups = synth.network.find_resources("AWS::Logs::LogGroup")
    for tunnel in _tunnels(synth):
        options = tunnel["LogOptions"]["CloudwatchLogOptions"]
        assert options["LogEnabled"] is True
        assert options["BgpLogEnabled"] is True
        assert options["LogOutputFormat"] == options["BgpLogOutputFormat"] == "json"
        assert options["LogGroupArn"] == options["BgpLogGroupArn"]
        joined = str(options["LogGroupArn"])
        (group_id,) = [gid for gid in groups if f"'Ref': '{gid}'" in joined]
        assert ":log-group:" in joined
        assert groups[group_id]["Properties"]["RetentionInDays"] == 90
