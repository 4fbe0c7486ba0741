"""The sandbox's AWS account over HTTP answers a boto3 client in the same words as the
in-process sandbox: gap fills, completed answers, injected faults."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

from fedkeeper.sandbox import Sandbox
from fedkeeper.sandbox.aws_endpoint import AwsEndpoint

pytestmark = pytest.mark.xdist_group("aws-endpoint")


@pytest.fixture(scope="module")
def world(example_config: Any) -> Iterator[tuple[Sandbox, str]]:
    with Sandbox.start(example_config) as sb:
        endpoint = AwsEndpoint(sb.aws).start()
        try:
            yield sb, endpoint.url
        finally:
            endpoint.stop()


@pytest.fixture(scope="module")
def example_config() -> Any:
    from fedkeeper.config import load_config
    from tests.conftest import EXAMPLE

    return load_config(EXAMPLE)


def remote(url: str, service: str, attempts: int = 3) -> Any:
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1"
    )
    config = Config(retries={"mode": "standard", "total_max_attempts": attempts})
    return session.client(service, endpoint_url=url, config=config)


def test_completed_answers_are_the_in_process_ones(world: tuple[Sandbox, str]) -> None:
    sb, url = world
    assert sb.baseline is not None
    tables = sb.baseline.private_route_table_ids
    local = sb.aws_session().client("ec2")

    over_http = remote(url, "ec2").describe_route_tables(RouteTableIds=tables)["RouteTables"]
    in_process = local.describe_route_tables(RouteTableIds=tables)["RouteTables"]

    assert over_http == in_process
    assert all(t["PropagatingVgws"] == [{"GatewayId": sb.baseline.vgw_id}] for t in over_http)


def test_the_vpn_telemetry_and_options_come_over_http(world: tuple[Sandbox, str]) -> None:
    sb, url = world
    assert sb.baseline is not None
    conn = remote(url, "ec2").describe_vpn_connections()["VpnConnections"][0]
    assert [t["Status"] for t in conn["VgwTelemetry"]] == ["UP", "UP"]
    assert {t["OutsideIpAddress"] for t in conn["VgwTelemetry"]} == set(
        sb.baseline.tunnel_outside_ips
    )
    assert conn["Options"]["StaticRoutesOnly"] is False


def test_the_eks_cluster_points_at_the_fake_api_server(world: tuple[Sandbox, str]) -> None:
    sb, url = world
    cluster = remote(url, "eks").describe_cluster(name=sb.config.sole_eks().cluster_name)["cluster"]
    assert cluster["endpoint"] == sb.eks_server.url
    assert cluster["resourcesVpcConfig"]["vpcId"] == (sb.baseline and sb.baseline.vpc_id)


def test_a_gap_filled_write_changes_the_world(world: tuple[Sandbox, str]) -> None:
    sb, url = world
    assert sb.baseline is not None
    table, vgw = sb.baseline.private_route_table_ids[0], sb.baseline.vgw_id
    remote(url, "ec2").disable_vgw_route_propagation(RouteTableId=table, GatewayId=vgw)
    assert vgw not in sb.aws.propagations(table)
    remote(url, "ec2").enable_vgw_route_propagation(RouteTableId=table, GatewayId=vgw)
    assert vgw in sb.aws.propagations(table)


def test_an_emulated_refusal_reaches_the_client_as_its_error_code(
    world: tuple[Sandbox, str],
) -> None:
    sb, url = world
    assert sb.baseline is not None
    with pytest.raises(ClientError) as exc:
        remote(url, "ec2").enable_vgw_route_propagation(
            RouteTableId="rtb-0000000000000000", GatewayId=sb.baseline.vgw_id
        )
    assert exc.value.response["Error"]["Code"] == "InvalidRouteTableID.NotFound"


def test_an_injected_fault_is_retried_by_the_remote_client(world: tuple[Sandbox, str]) -> None:
    sb, url = world
    sb.aws.fail_next("ec2", "DescribeVpcs", "Throttling", times=1)
    assert remote(url, "ec2").describe_vpcs()["Vpcs"]
    sb.aws.fail_next("ec2", "DescribeVpcs", "Throttling", times=3)
    with pytest.raises(ClientError) as exc:
        remote(url, "ec2", attempts=2).describe_vpcs()
    sb.aws.clear_faults()
    assert exc.value.response["Error"]["Code"] == "Throttling"


def test_an_injected_timeout_closes_the_connection_unanswered(world: tuple[Sandbox, str]) -> None:
    sb, url = world
    sb.aws.time_out_next("ec2", "DescribeVpcs", times=1)
    with pytest.raises(ConnectionClosedError):
        remote(url, "ec2", attempts=1).describe_vpcs()


def test_a_request_that_is_no_aws_call_gets_400(world: tuple[Sandbox, str]) -> None:
    _, url = world
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"{url}/hello", timeout=5)
    assert exc.value.code == 400
    assert "SigV4" in json.loads(exc.value.read())["message"]
