"""The network stack: VPC, subnets, NAT, IGW, VGW, CGW, BGP VPN, propagation, SG, flow logs."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from aws_cdk.assertions import Match

from tests.infra.conftest import Synth

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("infra")]


def _subnets(synth: Synth, kind: str) -> list[dict[str, Any]]:
    subnets = synth.network.find_resources(
        "AWS::EC2::Subnet",
        {"Properties": {"Tags": Match.array_with([{"Key": "aws-cdk:subnet-name", "Value": kind}])}},
    )
    return [s["Properties"] for s in subnets.values()]


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}


def test_vpc_has_the_configured_cidr(synth: Synth) -> None:
    synth.network.resource_count_is("AWS::EC2::VPC", 1)
    synth.network.has_resource_properties(
        "AWS::EC2::VPC", {"CidrBlock": str(synth.config.sole_eks().network.cidr)}
    )


@pytest.mark.parametrize(
    ("kind", "prefix_field"),
    [("public", "public_subnet_prefix"), ("private", "private_subnet_prefix")],
)
def test_each_zone_has_one_subnet_of_each_kind_with_the_configured_prefix(
    synth: Synth, kind: str, prefix_field: str
) -> None:
    vpc = synth.config.sole_eks().network
    subnets = _subnets(synth, kind)

    assert len(subnets) == vpc.az_count
    prefix = getattr(vpc, prefix_field)
    for subnet in subnets:
        network = ipaddress.ip_network(subnet["CidrBlock"])
        assert network.prefixlen == prefix
        assert network.subnet_of(vpc.cidr)
        assert subnet["MapPublicIpOnLaunch"] is False
    zones = [s["AvailabilityZone"]["Fn::Select"][0] for s in subnets]
    assert sorted(zones) == list(range(vpc.az_count))


def test_nat_gateways_and_internet_gateway_follow_the_config(synth: Synth) -> None:
    synth.network.resource_count_is(
        "AWS::EC2::NatGateway", synth.config.sole_eks().network.nat_gateways
    )
    synth.network.resource_count_is("AWS::EC2::InternetGateway", 1)


def test_private_route_tables_default_to_the_nat_gateway(synth: Synth) -> None:
    routes = synth.network.find_resources(
        "AWS::EC2::Route", {"Properties": {"NatGatewayId": Match.any_value()}}
    )
    assert len(routes) == synth.config.sole_eks().network.az_count


def test_vgw_has_the_configured_asn(synth: Synth) -> None:
    synth.network.resource_count_is("AWS::EC2::VPNGateway", 1)
    synth.network.has_resource_properties(
        "AWS::EC2::VPNGateway",
        {"Type": "ipsec.1", "AmazonSideAsn": synth.config.sole_eks().network.vgw_asn},
    )


def test_customer_gateway_has_the_onprem_router_ip_and_asn(synth: Synth) -> None:
    cgw = synth.config.sole_site().customer_gateway
    synth.network.has_resource_properties(
        "AWS::EC2::CustomerGateway",
        {"IpAddress": str(cgw.ip), "BgpAsn": cgw.bgp_asn, "Type": "ipsec.1"},
    )


def test_vpn_connection_uses_bgp(synth: Synth) -> None:
    synth.network.resource_count_is("AWS::EC2::VPNConnection", 1)
    synth.network.has_resource_properties(
        "AWS::EC2::VPNConnection",
        {
            "StaticRoutesOnly": False,
            "CustomerGatewayId": {"Ref": Match.string_like_regexp("CustomerGateway")},
            "VpnGatewayId": {"Ref": Match.string_like_regexp("VpnGateway")},
        },
    )
    synth.network.resource_count_is("AWS::EC2::VPNConnectionRoute", 0)


def test_vgw_propagates_into_exactly_the_private_route_tables(synth: Synth) -> None:
    associations = synth.network.find_resources("AWS::EC2::SubnetRouteTableAssociation")
    private_subnet_ids = set(
        synth.network.find_resources(
            "AWS::EC2::Subnet",
            {
                "Properties": {
                    "Tags": Match.array_with([{"Key": "aws-cdk:subnet-name", "Value": "private"}])
                }
            },
        )
    )
    private_tables = {
        a["Properties"]["RouteTableId"]["Ref"]
        for a in associations.values()
        if a["Properties"]["SubnetId"]["Ref"] in private_subnet_ids
    }

    propagations = synth.network.find_resources("AWS::EC2::VPNGatewayRoutePropagation")

    assert len(propagations) == 1
    (propagation,) = propagations.values()
    tables = {t["Ref"] for t in propagation["Properties"]["RouteTableIds"]}
    assert tables == private_tables
    assert len(tables) == synth.config.sole_eks().network.az_count
    (vgw_id,) = synth.network.find_resources("AWS::EC2::VPNGateway")
    assert propagation["Properties"]["VpnGatewayId"] == {"Ref": vgw_id}


def test_worker_security_group_admits_onprem_host_and_pod_cidrs(synth: Synth) -> None:
    onprem = synth.config.sole_site()
    groups = synth.network.find_resources(
        "AWS::EC2::SecurityGroup",
        {"Properties": {"GroupDescription": Match.string_like_regexp("EKS workers")}},
    )
    assert len(groups) == 1
    (group,) = groups.values()
    ingress = {rule["CidrIp"]: rule for rule in group["Properties"]["SecurityGroupIngress"]}

    expected = {str(c) for c in [*onprem.host_cidrs, *onprem.pod_cidrs]}
    assert set(ingress) == expected
    assert all(rule["IpProtocol"] == "-1" for rule in ingress.values())
    assert not {str(c) for c in onprem.service_cidrs} & set(ingress)


def test_vpc_flow_logs_capture_all_traffic_with_retention(synth: Synth) -> None:
    synth.network.has_resource_properties(
        "AWS::EC2::FlowLog",
        {
            "ResourceType": "VPC",
            "TrafficType": "ALL",
            "ResourceId": {"Ref": Match.string_like_regexp("^Vpc")},
            "LogDestinationType": "cloud-watch-logs",
        },
    )
    synth.network.has_resource_properties(
        "AWS::Logs::LogGroup", {"RetentionInDays": Match.any_value()}
    )


@pytest.mark.parametrize(
    "resource_type",
    [
        "AWS::EC2::VPC",
        "AWS::EC2::VPNGateway",
        "AWS::EC2::VPNConnection",
        "AWS::EC2::RouteTable",
        "AWS::EC2::CustomerGateway",
    ],
)
def test_discoverable_resources_carry_the_federation_tag(synth: Synth, resource_type: str) -> None:
    key, value = synth.config.federation_tag
    resources = synth.network.find_resources(resource_type)

    assert resources
    for resource in resources.values():
        assert _tags(resource).get(key) == value
