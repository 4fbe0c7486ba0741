"""The emulated AWS side: moto plus the sandbox's gap fills, exercised through boto3.

Each test drives boto3 clients built from ``SandboxAws.session()``, exactly as production
code would with an injected session.
"""

from __future__ import annotations

import gc
import ipaddress
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import botocore.endpoint
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from fedkeeper.config import FederationConfig, load_config
from fedkeeper.sandbox.aws import SandboxAws
from fedkeeper.sandbox.aws_baseline import AwsBaseline, carve_subnets, deploy_aws_baseline

REGION = "eu-west-1"
EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "federation.example.yaml")
SNAT = "AWS_VPC_K8S_CNI_EXTERNALSNAT"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def _warm_heap() -> Iterator[None]:
    """Load botocore's models and moto's backends once, then freeze the heap.

    Every full garbage collection would otherwise walk the ~300k long-lived objects of the
    service models (about 0.2 s each on a 2-core machine); frozen objects are skipped.
    Speed only: the tests behave the same without it.
    """
    with SandboxAws(REGION) as sb:
        session = sb.session()
        session.client("ec2").describe_vpcs()
        session.client("eks").list_clusters()
        session.client("iam").list_roles()
        session.client("secretsmanager").list_secrets()
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


def _local_api_server(name: str) -> tuple[str, str]:
    return f"https://127.0.0.1:7443/{name}", "Q0E="


@pytest.fixture
def sandbox() -> Iterator[SandboxAws]:
    with SandboxAws(REGION, eks_endpoint=_local_api_server) as sb:
        yield sb


@pytest.fixture
def session(sandbox: SandboxAws) -> Any:
    return sandbox.session()


@pytest.fixture
def ec2(session: Any) -> Any:
    return session.client("ec2")


@pytest.fixture
def eks(session: Any) -> Any:
    return session.client("eks")


@dataclass
class Net:
    vpc_id: str
    route_table_id: str
    vgw_id: str
    vpn_id: str


@pytest.fixture
def net(ec2: Any) -> Net:
    """A VPC with one route table, a VGW attached to it and a BGP VPN connection."""
    vpc = ec2.create_vpc(CidrBlock="10.100.0.0/16")["Vpc"]["VpcId"]
    rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    vgw = ec2.create_vpn_gateway(Type="ipsec.1", AmazonSideAsn=64512)["VpnGateway"]["VpnGatewayId"]
    ec2.attach_vpn_gateway(VpcId=vpc, VpnGatewayId=vgw)
    cgw = ec2.create_customer_gateway(Type="ipsec.1", PublicIp="203.0.113.10", BgpAsn=65010)[
        "CustomerGateway"
    ]["CustomerGatewayId"]
    vpn = ec2.create_vpn_connection(
        Type="ipsec.1", CustomerGatewayId=cgw, VpnGatewayId=vgw, Options={"StaticRoutesOnly": False}
    )["VpnConnection"]["VpnConnectionId"]
    return Net(vpc, rt, vgw, vpn)


def _create_cluster(session: Any) -> str:
    """An EKS cluster named fed-eks in two subnets of a new VPC; returns the VPC id."""
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.100.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.100.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    role = session.client("iam").create_role(RoleName="eks", AssumeRolePolicyDocument="{}")
    session.client("eks").create_cluster(
        name="fed-eks",
        version="1.33",
        roleArn=role["Role"]["Arn"],
        resourcesVpcConfig={"subnetIds": subnets},
    )
    return str(vpc)


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _table(ec2: Any, rt_id: str) -> dict[str, Any]:
    return dict(ec2.describe_route_tables(RouteTableIds=[rt_id])["RouteTables"][0])


def _propagated(table: dict[str, Any]) -> dict[str, str]:
    return {
        r["DestinationCidrBlock"]: r["State"]
        for r in table["Routes"]
        if r.get("Origin") == "EnableVgwRoutePropagation"
    }


def _vpn(ec2: Any, vpn_id: str) -> dict[str, Any]:
    return dict(ec2.describe_vpn_connections(VpnConnectionIds=[vpn_id])["VpnConnections"][0])


# --------------------------------------------------------------------------- sessions, calls


def test_sessions_share_one_emulated_account(sandbox: SandboxAws) -> None:
    # Given a VPC created through one sandbox session
    vpc = sandbox.session().client("ec2").create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    # When another session lists VPCs
    vpcs = sandbox.session().client("ec2").describe_vpcs()["Vpcs"]
    # Then it sees the same VPC
    assert vpc in {v["VpcId"] for v in vpcs}


def test_sandbox_sets_fake_credentials_and_restores_environment(monkeypatch: Any) -> None:
    # Given a caller environment with a profile and no region
    monkeypatch.setenv("AWS_PROFILE", "someone-real")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    # When the sandbox runs and stops
    with SandboxAws(REGION):
        inside = (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_DEFAULT_REGION"])
        profile_inside = os.environ.get("AWS_PROFILE")
    # Then it used fake credentials and its region inside, and restored everything after
    assert inside == ("testing", REGION)
    assert profile_inside is None
    assert os.environ["AWS_PROFILE"] == "someone-real"
    assert "AWS_DEFAULT_REGION" not in os.environ


def test_calls_records_each_api_call_in_order(sandbox: SandboxAws, ec2: Any) -> None:
    # Given a sandbox whose call log was cleared
    sm = sandbox.session().client("secretsmanager")
    sandbox.clear_calls()
    # When a client makes three calls, one of them a gap-filled operation that fails
    ec2.describe_vpcs()
    sm.list_secrets()
    with pytest.raises(ClientError):
        ec2.enable_vgw_route_propagation(RouteTableId="rtb-0", GatewayId="vgw-0")
    # Then each is recorded once, as (service, OperationName), in order
    assert sandbox.calls == [
        ("ec2", "DescribeVpcs"),
        ("secretsmanager", "ListSecrets"),
        ("ec2", "EnableVgwRoutePropagation"),
    ]


# --------------------------------------------------------------------------- fault injection


@pytest.fixture
def no_backoff(monkeypatch: Any) -> list[float]:
    """Record botocore's retry sleeps instead of sleeping."""
    sleeps: list[float] = []
    monkeypatch.setattr(botocore.endpoint.time, "sleep", sleeps.append)
    return sleeps


def test_injected_throttling_is_retried_by_standard_retries(
    sandbox: SandboxAws, no_backoff: list[float]
) -> None:
    # Given a client with standard retries (max_attempts counts retries) and one throttle
    ec2 = sandbox.session().client(
        "ec2", config=Config(retries={"max_attempts": 2, "mode": "standard"})
    )
    sandbox.fail_next("ec2", "DescribeVpcs", "RequestLimitExceeded")
    sandbox.clear_calls()
    # When the client calls
    response = ec2.describe_vpcs()
    # Then botocore retried once after backing off, and the call counts once
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert len(no_backoff) == 1
    assert sandbox.calls == [("ec2", "DescribeVpcs")]


def test_injected_errors_beyond_the_retry_budget_raise_client_error(
    sandbox: SandboxAws, no_backoff: list[float]
) -> None:
    # Given three injected 500s and a client allowed two retries (three attempts)
    eks = sandbox.session().client(
        "eks", config=Config(retries={"max_attempts": 2, "mode": "standard"})
    )
    sandbox.fail_next("eks", "ListClusters", "InternalError", times=3, status=500)
    # When the client calls
    with pytest.raises(ClientError) as exc:
        eks.list_clusters()
    # Then the last error surfaces with its code and status, after two retries
    assert _code(exc) == "InternalError"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert exc.value.response["ResponseMetadata"]["RetryAttempts"] == 2


@pytest.mark.parametrize(
    ("service", "client_name", "operation", "call"),
    [
        ("ec2", "ec2", "DescribeVpcs", lambda c: c.describe_vpcs()),
        ("iam", "iam", "ListRoles", lambda c: c.list_roles()),
        ("secrets-manager", "secretsmanager", "ListSecrets", lambda c: c.list_secrets()),
        ("eks", "eks", "ListClusters", lambda c: c.list_clusters()),
    ],
)
def test_injected_error_is_written_in_the_service_protocol(
    sandbox: SandboxAws, service: str, client_name: str, operation: str, call: Any
) -> None:
    # Given a client without retries and an injected error for its service (ec2 XML, query
    # XML, JSON, REST-JSON), named by client name or service id
    client = sandbox.session().client(client_name, config=Config(retries={"max_attempts": 0}))
    sandbox.fail_next(service, operation, "AccessDenied", status=403, message="nope")
    # When the operation is called
    with pytest.raises(ClientError) as exc:
        call(client)
    # Then botocore parsed the code and message from the wire format
    assert _code(exc) == "AccessDenied"
    assert exc.value.response["Error"]["Message"] == "nope"


def test_faulted_request_never_reaches_moto(sandbox: SandboxAws) -> None:
    # Given an injected error on CreateVpc and a client that does not retry
    ec2 = sandbox.session().client("ec2", config=Config(retries={"max_attempts": 0}))
    sandbox.fail_next("ec2", "CreateVpc", "InternalError", status=500)
    # When CreateVpc fails
    with pytest.raises(ClientError):
        ec2.create_vpc(CidrBlock="10.9.0.0/16")
    # Then no VPC was created, and the fault was used up
    assert "10.9.0.0/16" not in {v["CidrBlock"] for v in ec2.describe_vpcs()["Vpcs"]}
    assert ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["CidrBlock"] == "10.9.0.0/16"


# --------------------------------------------------------------------------- VGW propagation


def test_enable_vgw_route_propagation_is_recorded_and_described(
    sandbox: SandboxAws, ec2: Any, net: Net
) -> None:
    # Given a route table in the VPC the VGW is attached to
    # When propagation is enabled
    response = ec2.enable_vgw_route_propagation(
        RouteTableId=net.route_table_id, GatewayId=net.vgw_id
    )
    # Then EC2's empty answer comes back, and the table lists the VGW as propagating
    assert set(response) == {"ResponseMetadata"}
    assert sandbox.propagations(net.route_table_id) == {net.vgw_id}
    assert _table(ec2, net.route_table_id)["PropagatingVgws"] == [{"GatewayId": net.vgw_id}]


def test_enable_propagation_into_an_unknown_route_table_is_not_found(ec2: Any, net: Net) -> None:
    # Given a route table id that does not exist
    # When propagation into it is enabled
    with pytest.raises(ClientError) as exc:
        ec2.enable_vgw_route_propagation(RouteTableId="rtb-0123456789abcdef0", GatewayId=net.vgw_id)
    # Then EC2 answers InvalidRouteTableID.NotFound
    assert _code(exc) == "InvalidRouteTableID.NotFound"


def test_enable_propagation_from_an_unknown_vgw_is_not_found(ec2: Any, net: Net) -> None:
    # Given a VGW id that does not exist
    # When propagation from it is enabled
    with pytest.raises(ClientError) as exc:
        ec2.enable_vgw_route_propagation(
            RouteTableId=net.route_table_id, GatewayId="vgw-0123456789abcdef0"
        )
    # Then EC2 answers InvalidVpnGatewayID.NotFound
    assert _code(exc) == "InvalidVpnGatewayID.NotFound"


def test_enable_propagation_from_a_vgw_not_attached_to_the_vpc_is_refused(
    sandbox: SandboxAws, ec2: Any, net: Net
) -> None:
    # Given a VGW that exists but is attached to no VPC
    lone = ec2.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]["VpnGatewayId"]
    # When propagation from it is enabled
    with pytest.raises(ClientError) as exc:
        ec2.enable_vgw_route_propagation(RouteTableId=net.route_table_id, GatewayId=lone)
    # Then EC2 answers Gateway.NotAttached and nothing is recorded
    assert _code(exc) == "Gateway.NotAttached"
    assert sandbox.propagations(net.route_table_id) == set()


def test_disable_vgw_route_propagation_removes_it(sandbox: SandboxAws, ec2: Any, net: Net) -> None:
    # Given a table propagating from the VGW, which learned a route
    ec2.enable_vgw_route_propagation(RouteTableId=net.route_table_id, GatewayId=net.vgw_id)
    sandbox.set_learned_routes(net.vgw_id, ["192.168.0.0/16"])
    # When propagation is disabled
    ec2.disable_vgw_route_propagation(RouteTableId=net.route_table_id, GatewayId=net.vgw_id)
    # Then the table neither lists the VGW nor holds its routes
    table = _table(ec2, net.route_table_id)
    assert sandbox.propagations(net.route_table_id) == set()
    assert table.get("PropagatingVgws", []) == []
    assert _propagated(table) == {}


def test_learned_routes_appear_as_active_propagated_routes(
    sandbox: SandboxAws, ec2: Any, net: Net
) -> None:
    # Given a propagating table and a VGW that learned two CIDRs over BGP, tunnels UP
    ec2.enable_vgw_route_propagation(RouteTableId=net.route_table_id, GatewayId=net.vgw_id)
    sandbox.set_learned_routes(net.vgw_id, ["192.168.0.0/16", "10.244.0.0/16"])
    # When the table is described
    table = _table(ec2, net.route_table_id)
    # Then both CIDRs are propagated routes via the VGW, active
    assert _propagated(table) == {"192.168.0.0/16": "active", "10.244.0.0/16": "active"}
    assert {
        r["GatewayId"] for r in table["Routes"] if "Origin" in r and "vgw" in r["GatewayId"]
    } == {net.vgw_id}


def test_learned_routes_blackhole_when_no_tunnel_is_up(
    sandbox: SandboxAws, ec2: Any, net: Net
) -> None:
    # Given a propagating table with a learned route
    ec2.enable_vgw_route_propagation(RouteTableId=net.route_table_id, GatewayId=net.vgw_id)
    sandbox.set_learned_routes(net.vgw_id, ["192.168.0.0/16"])
    # When both tunnels go DOWN
    for tunnel in sandbox.tunnels(net.vpn_id):
        sandbox.set_tunnel(net.vpn_id, tunnel["OutsideIpAddress"], up=False)
    # Then the propagated route is a blackhole
    assert _propagated(_table(ec2, net.route_table_id)) == {"192.168.0.0/16": "blackhole"}


def test_a_table_without_propagation_gets_no_learned_routes(
    sandbox: SandboxAws, ec2: Any, net: Net
) -> None:
    # Given a VGW with learned routes but a table that does not propagate from it
    sandbox.set_learned_routes(net.vgw_id, ["192.168.0.0/16"])
    # When the table is described
    table = _table(ec2, net.route_table_id)
    # Then it has neither PropagatingVgws nor propagated routes
    assert "PropagatingVgws" not in table or table["PropagatingVgws"] == []
    assert _propagated(table) == {}


# --------------------------------------------------------------------------- VPN telemetry


def test_vpn_telemetry_defaults_to_two_tunnels_up_accepting_learned_routes(
    sandbox: SandboxAws, ec2: Any, net: Net
) -> None:
    # Given a VGW that learned three routes
    sandbox.set_learned_routes(net.vgw_id, ["192.168.0.0/16", "10.244.0.0/16", "10.96.0.0/16"])
    # When the VPN connection is described
    telemetry = _vpn(ec2, net.vpn_id)["VgwTelemetry"]
    # Then both tunnels are UP, each accepting the three routes, with AWS's field set
    assert [t["Status"] for t in telemetry] == ["UP", "UP"]
    assert [t["AcceptedRouteCount"] for t in telemetry] == [3, 3]
    for tunnel in telemetry:
        assert set(tunnel) >= {
            "OutsideIpAddress",
            "Status",
            "LastStatusChange",
            "StatusMessage",
            "AcceptedRouteCount",
        }


def test_tunnel_outside_ips_are_stable_distinct_and_consistent(
    sandbox: SandboxAws, ec2: Any, net: Net
) -> None:
    # Given a VPN connection
    # When it is described twice
    first, second = _vpn(ec2, net.vpn_id), _vpn(ec2, net.vpn_id)
    # Then the two tunnel IPs are distinct public IPv4 addresses, the same each time, and the
    # same in telemetry, tunnel options and the customer gateway configuration
    ips = [t["OutsideIpAddress"] for t in first["VgwTelemetry"]]
    assert len(set(ips)) == 2
    assert all(ipaddress.IPv4Address(ip).is_global for ip in ips)
    assert ips == [t["OutsideIpAddress"] for t in second["VgwTelemetry"]]
    assert ips == [t["OutsideIpAddress"] for t in first["Options"]["TunnelOptions"]]
    assert all(ip in first["CustomerGatewayConfiguration"] for ip in ips)
    assert ips == [t["OutsideIpAddress"] for t in sandbox.tunnels(net.vpn_id)]


def test_set_tunnel_down_is_reported_by_describe(sandbox: SandboxAws, ec2: Any, net: Net) -> None:
    # Given a VPN with both tunnels UP and a learned route
    sandbox.set_learned_routes(net.vgw_id, ["192.168.0.0/16"])
    before = _vpn(ec2, net.vpn_id)["VgwTelemetry"]
    ip = before[1]["OutsideIpAddress"]
    # When the second tunnel goes DOWN
    sandbox.set_tunnel(net.vpn_id, ip, up=False, message="IPSEC IS DOWN")
    # Then describe shows it DOWN, accepting nothing, with a later status change; the other
    # tunnel is untouched
    after = _vpn(ec2, net.vpn_id)["VgwTelemetry"]
    assert after[1]["Status"] == "DOWN"
    assert after[1]["AcceptedRouteCount"] == 0
    assert after[1]["StatusMessage"] == "IPSEC IS DOWN"
    assert after[1]["LastStatusChange"] > before[1]["LastStatusChange"]
    assert after[0] == before[0]


def test_set_tunnel_with_an_unknown_ip_is_refused(sandbox: SandboxAws, net: Net) -> None:
    # Given a VPN connection
    # When a tunnel IP it does not have is set
    # Then the sandbox refuses, naming the real tunnels
    with pytest.raises(ValueError, match="has no tunnel"):
        sandbox.set_tunnel(net.vpn_id, "198.51.100.1", up=False)


def test_vpn_connection_looks_like_a_bgp_vpn(ec2: Any, net: Net) -> None:
    # Given a VPN connection created with StaticRoutesOnly false
    # When it is described
    vpn = _vpn(ec2, net.vpn_id)
    # Then its options say dynamic (BGP) routing and it has no static routes
    assert vpn["Options"]["StaticRoutesOnly"] is False
    assert vpn["Routes"] == []
    assert vpn["Category"] == "VPN"


# --------------------------------------------------------------------------- EKS add-ons


class TestEks:
    """EKS gap fills, on one cluster shared by the class (moto's cluster creation is slow);
    the add-ons and the hook are reset after each test."""

    @pytest.fixture(scope="class")
    @classmethod
    def sandbox(cls) -> Iterator[SandboxAws]:
        with SandboxAws(REGION, eks_endpoint=_local_api_server) as sb:
            yield sb

    @pytest.fixture(scope="class")
    @classmethod
    def session(cls, sandbox: SandboxAws) -> Any:
        return sandbox.session()

    @pytest.fixture(scope="class")
    @classmethod
    def eks(cls, session: Any) -> Any:
        return session.client("eks")

    @pytest.fixture(scope="class")
    @classmethod
    def cluster(cls, session: Any) -> str:
        return _create_cluster(session)

    @pytest.fixture(autouse=True)
    def _fresh_addons(self, sandbox: SandboxAws, eks: Any, cluster: str) -> Iterator[None]:
        yield
        sandbox.on_addon_configured = None
        for name in eks.list_addons(clusterName="fed-eks")["addons"]:
            sandbox.delete_addon_state("fed-eks", name)

    def test_create_addon_stores_the_addon_in_eks_shape(self, eks: Any, cluster: str) -> None:
        # Given a cluster
        config = json.dumps({"env": {SNAT: "true"}})
        # When the vpc-cni add-on is created with configuration values
        created = eks.create_addon(
            clusterName="fed-eks",
            addonName="vpc-cni",
            configurationValues=config,
            resolveConflicts="OVERWRITE",
            tags={"a": "b"},
        )["addon"]
        # Then describe returns it ACTIVE with EKS's fields and the configuration as a string
        addon = eks.describe_addon(clusterName="fed-eks", addonName="vpc-cni")["addon"]
        assert created["status"] in ("CREATING", "ACTIVE")
        assert addon["status"] == "ACTIVE"
        assert addon["configurationValues"] == config
        assert addon["addonArn"].startswith("arn:aws:eks:eu-west-1:")
        assert addon["tags"] == {"a": "b"}
        assert {"addonName", "clusterName", "addonVersion", "createdAt", "modifiedAt"} <= set(addon)

    def test_create_addon_that_exists_is_resource_in_use(self, eks: Any, cluster: str) -> None:
        # Given an existing vpc-cni add-on
        eks.create_addon(clusterName="fed-eks", addonName="vpc-cni")
        # When it is created again
        with pytest.raises(ClientError) as exc:
            eks.create_addon(clusterName="fed-eks", addonName="vpc-cni")
        # Then EKS answers ResourceInUseException (409)
        assert _code(exc) == "ResourceInUseException"
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409

    def test_addon_calls_on_a_missing_cluster_are_not_found(self, eks: Any) -> None:
        # Given no cluster
        # When an add-on is created on it
        with pytest.raises(ClientError) as exc:
            eks.create_addon(clusterName="nope", addonName="vpc-cni")
        # Then EKS answers ResourceNotFoundException
        assert _code(exc) == "ResourceNotFoundException"

    def test_describe_of_a_missing_addon_is_not_found(self, eks: Any, cluster: str) -> None:
        # Given a cluster without add-ons (vpc-cni self-managed)
        # When vpc-cni is described
        with pytest.raises(ClientError) as exc:
            eks.describe_addon(clusterName="fed-eks", addonName="vpc-cni")
        # Then EKS answers ResourceNotFoundException, a modeled error class
        assert _code(exc) == "ResourceNotFoundException"
        assert isinstance(exc.value, eks.exceptions.ResourceNotFoundException)

    def test_invalid_configuration_values_are_rejected(self, eks: Any, cluster: str) -> None:
        # Given a cluster, and configuration values EKS would not accept: neither JSON nor YAML,
        # not an object, a vpc-cni env value that is not a string
        invalid = ["env: [unclosed", "[1, 2]", json.dumps({"env": {SNAT: True}})]
        # When vpc-cni is created with each of them
        codes = []
        for values in invalid:
            with pytest.raises(ClientError) as exc:
                eks.create_addon(
                    clusterName="fed-eks", addonName="vpc-cni", configurationValues=values
                )
            codes.append(_code(exc))
        # Then EKS answers InvalidParameterException each time and no add-on exists
        assert codes == ["InvalidParameterException"] * 3
        assert eks.list_addons(clusterName="fed-eks")["addons"] == []

    def test_update_addon_returns_an_addon_update_and_rolls_it_out_for_a_while(
        self, sandbox: SandboxAws, eks: Any, cluster: str
    ) -> None:
        # Given a vpc-cni add-on without configuration, on an emulated clock
        now = [1_800_000_000.0]
        sandbox.clock = lambda: now[0]
        eks.create_addon(clusterName="fed-eks", addonName="vpc-cni")
        config = json.dumps({"env": {SNAT: "true", "WARM_IP_TARGET": "5"}})
        # When its configuration is updated with OVERWRITE
        update = eks.update_addon(
            clusterName="fed-eks",
            addonName="vpc-cni",
            configurationValues=config,
            resolveConflicts="OVERWRITE",
        )["update"]
        # Then the answer is an InProgress AddonUpdate listing the params, and the add-on
        # already carries the new configuration and the recorded resolveConflicts
        assert update["status"] == "InProgress"
        assert update["type"] == "AddonUpdate"
        assert update["errors"] == []
        assert {"type": "ConfigurationValues", "value": config} in update["params"]
        assert {"type": "ResolveConflicts", "value": "OVERWRITE"} in update["params"]
        addon = eks.describe_addon(clusterName="fed-eks", addonName="vpc-cni")["addon"]
        assert addon["configurationValues"] == config
        assert addon["status"] == "UPDATING"
        assert sandbox.addon_resolve_conflicts("fed-eks", "vpc-cni") == "OVERWRITE"
        # And once the rollout's time has passed, the add-on is ACTIVE
        now[0] += sandbox.addon_update_s
        addon = eks.describe_addon(clusterName="fed-eks", addonName="vpc-cni")["addon"]
        assert addon["status"] == "ACTIVE"

    def test_describe_update_reports_the_addon_update_in_progress_then_successful(
        self, sandbox: SandboxAws, eks: Any, cluster: str
    ) -> None:
        # Given an add-on update, on an emulated clock
        now = [1_800_000_000.0]
        sandbox.clock = lambda: now[0]
        eks.create_addon(clusterName="fed-eks", addonName="vpc-cni")
        update_id = eks.update_addon(
            clusterName="fed-eks", addonName="vpc-cni", configurationValues="{}"
        )["update"]["id"]

        def described() -> Any:
            return eks.describe_update(name="fed-eks", updateId=update_id, addonName="vpc-cni")[
                "update"
            ]

        # When it is described during the rollout, then after it
        during = described()
        now[0] += sandbox.addon_update_s
        after = described()
        # Then it was in progress, and has succeeded
        assert (during["id"], during["status"]) == (update_id, "InProgress")
        assert after["status"] == "Successful"

    def test_addon_configuration_hook_follows_create_update_and_reset(
        self, sandbox: SandboxAws, eks: Any, cluster: str
    ) -> None:
        # Given a hook standing in for the add-on manager that rewrites aws-node
        seen: list[tuple[str, str, dict[str, Any]]] = []
        sandbox.on_addon_configured = lambda c, n, v, _resolve: seen.append((c, n, v))
        sandbox.addon_update_s = 0  # a rollout of no length: applied when accepted
        # When the add-on is created, updated, and its configuration lost in a version update
        eks.create_addon(
            clusterName="fed-eks",
            addonName="vpc-cni",
            configurationValues=json.dumps({"env": {SNAT: "true"}}),
        )
        eks.update_addon(clusterName="fed-eks", addonName="vpc-cni", configurationValues="env: {}")
        sandbox.reset_addon_configuration("fed-eks", "vpc-cni")
        # Then the hook saw each parsed configuration in turn
        assert seen == [
            ("fed-eks", "vpc-cni", {"env": {SNAT: "true"}}),
            ("fed-eks", "vpc-cni", {"env": {}}),
            ("fed-eks", "vpc-cni", {}),
        ]

    def test_reset_addon_configuration_is_visible_through_describe(
        self, sandbox: SandboxAws, eks: Any, cluster: str
    ) -> None:
        # Given vpc-cni configured for external SNAT
        eks.create_addon(
            clusterName="fed-eks",
            addonName="vpc-cni",
            configurationValues=json.dumps({"env": {SNAT: "true"}}),
        )
        # When a version update loses the configuration
        sandbox.reset_addon_configuration("fed-eks", "vpc-cni")
        # Then describe echoes the empty configuration
        addon = eks.describe_addon(clusterName="fed-eks", addonName="vpc-cni")["addon"]
        assert addon["configurationValues"] == ""
        assert sandbox.addon("fed-eks", "vpc-cni") is not None

    def test_delete_addon_removes_it_from_list_and_describe(self, eks: Any, cluster: str) -> None:
        # Given two add-ons
        eks.create_addon(clusterName="fed-eks", addonName="vpc-cni")
        eks.create_addon(clusterName="fed-eks", addonName="coredns")
        # When vpc-cni is deleted
        deleted = eks.delete_addon(clusterName="fed-eks", addonName="vpc-cni")["addon"]
        # Then the answer says DELETING and only coredns is left
        assert deleted["status"] == "DELETING"
        assert eks.list_addons(clusterName="fed-eks")["addons"] == ["coredns"]
        with pytest.raises(ClientError):
            eks.describe_addon(clusterName="fed-eks", addonName="vpc-cni")

    def test_list_addons_pages_with_next_token(self, eks: Any, cluster: str) -> None:
        # Given three add-ons
        for name in ("vpc-cni", "coredns", "kube-proxy"):
            eks.create_addon(clusterName="fed-eks", addonName=name)
        # When they are listed through the paginator two at a time
        pages = eks.get_paginator("list_addons").paginate(
            clusterName="fed-eks", PaginationConfig={"PageSize": 2}
        )
        # Then every add-on comes back once, in name order
        assert [n for page in pages for n in page["addons"]] == ["coredns", "kube-proxy", "vpc-cni"]

    def test_delete_addon_state_makes_vpc_cni_self_managed(
        self, sandbox: SandboxAws, eks: Any, cluster: str
    ) -> None:
        # Given a vpc-cni add-on and a hook
        eks.create_addon(clusterName="fed-eks", addonName="vpc-cni")
        seen: list[Any] = []
        sandbox.on_addon_configured = lambda *a: seen.append(a)
        # When its state is dropped by the sandbox
        sandbox.delete_addon_state("fed-eks", "vpc-cni")
        # Then EKS no longer knows the add-on and no hook ran
        assert sandbox.addon("fed-eks", "vpc-cni") is None
        assert eks.list_addons(clusterName="fed-eks")["addons"] == []
        assert seen == []

    # EKS cluster

    def test_describe_cluster_points_at_the_local_api_server_and_names_its_vpc(
        self, eks: Any, cluster: str
    ) -> None:
        # Given a cluster created in two subnets of a VPC
        # When it is described
        described = eks.describe_cluster(name="fed-eks")["cluster"]
        # Then endpoint and CA come from eks_endpoint, and the VPC id, status and auth mode are set
        assert described["endpoint"] == "https://127.0.0.1:7443/fed-eks"
        assert described["certificateAuthority"]["data"] == "Q0E="
        assert described["resourcesVpcConfig"]["vpcId"] == cluster
        assert described["status"] == "ACTIVE"
        assert described["accessConfig"]["authenticationMode"] == "API"


# --------------------------------------------------------------------------- VPC CIDRs (moto)


def test_secondary_vpc_cidr_is_listed_as_associated(ec2: Any) -> None:
    # Given a VPC (moto implements CIDR associations; no gap fill, this guards the reliance)
    vpc = ec2.create_vpc(CidrBlock="10.100.0.0/16")["Vpc"]["VpcId"]
    # When a secondary CIDR is associated
    ec2.associate_vpc_cidr_block(VpcId=vpc, CidrBlock="10.101.0.0/16")
    # Then describe lists both CIDRs as associated
    assoc = ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["CidrBlockAssociationSet"]
    assert {(a["CidrBlock"], a["CidrBlockState"]["State"]) for a in assoc} == {
        ("10.100.0.0/16", "associated"),
        ("10.101.0.0/16", "associated"),
    }


# --------------------------------------------------------------------------- baseline


@pytest.fixture(scope="module")
def config() -> FederationConfig:
    return load_config(EXAMPLE)


def test_carve_subnets_places_disjoint_subnets_inside_the_vpc() -> None:
    # Given a /16 VPC with 3 AZs of /24 public and /19 private subnets
    vpc = ipaddress.IPv4Network("10.100.0.0/16")
    # When subnets are carved
    public, private = carve_subnets(vpc, 3, 24, 19)
    # Then there are three of each, of the right sizes, disjoint and inside the VPC
    nets = public + private
    assert [n.prefixlen for n in public] == [24] * 3
    assert [n.prefixlen for n in private] == [19] * 3
    assert all(n.subnet_of(vpc) for n in nets)
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])


class TestBaseline:
    """The baseline, deployed once for the class; its tests only read."""

    @pytest.fixture(scope="class")
    @classmethod
    def sandbox(cls) -> Iterator[SandboxAws]:
        with SandboxAws(REGION) as sb:
            yield sb

    @pytest.fixture(scope="class")
    @classmethod
    def session(cls, sandbox: SandboxAws) -> Any:
        return sandbox.session()

    @pytest.fixture(scope="class")
    @classmethod
    def ec2(cls, session: Any) -> Any:
        return session.client("ec2")

    @pytest.fixture(scope="class")
    @classmethod
    def baseline(cls, sandbox: SandboxAws, session: Any, config: FederationConfig) -> AwsBaseline:
        return deploy_aws_baseline(
            session, sandbox, config, onprem_kubeconfig="apiVersion: v1\nkind: Config\n"
        )

    def test_baseline_builds_the_network_as_the_cdk_stack_would(
        self, ec2: Any, baseline: AwsBaseline, config: FederationConfig
    ) -> None:
        # Given the example config deployed
        # When the VPC and its subnets are read back
        vpc = ec2.describe_vpcs(VpcIds=[baseline.vpc_id])["Vpcs"][0]
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [baseline.vpc_id]}])
        by_id = {s["SubnetId"]: s for s in subnets["Subnets"]}
        tags = {t["Key"]: t["Value"] for t in vpc["Tags"]}
        # Then the VPC has the config CIDR and tags, and each AZ a public and a private subnet
        assert vpc["CidrBlock"] == str(config.sole_eks().network.cidr)
        assert tags["Name"] == "fed-demo-vpc"
        assert tags["fedkeeper:federation"] == "fed-demo"
        assert len(baseline.public_subnet_ids) == len(baseline.private_subnet_ids) == 2
        for sid in baseline.private_subnet_ids:
            stags = {t["Key"]: t["Value"] for t in by_id[sid]["Tags"]}
            assert stags["aws-cdk:subnet-type"] == "Private"
            assert stags["kubernetes.io/role/internal-elb"] == "1"
            assert by_id[sid]["CidrBlock"].endswith("/19")
        for sid in baseline.public_subnet_ids:
            stags = {t["Key"]: t["Value"] for t in by_id[sid]["Tags"]}
            assert stags["aws-cdk:subnet-type"] == "Public"
            assert stags["kubernetes.io/role/elb"] == "1"
        assert len({by_id[s]["AvailabilityZone"] for s in baseline.private_subnet_ids}) == 2

    def test_baseline_routes_public_via_igw_and_private_via_nat_and_vgw(
        self, ec2: Any, baseline: AwsBaseline
    ) -> None:
        # Given the example config deployed
        # When the route tables are read back
        public = _table(ec2, baseline.public_route_table_id)
        privates = [_table(ec2, rt) for rt in baseline.private_route_table_ids]
        # Then public defaults to the IGW; each private table defaults to a NAT gateway, is
        # associated with its own private subnet, propagates from the VGW and holds the on-prem
        # host and pod CIDRs as active propagated routes
        assert {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": baseline.igw_id}.items() <= next(
            r for r in public["Routes"] if r["DestinationCidrBlock"] == "0.0.0.0/0"
        ).items()
        assert {a["SubnetId"] for a in public["Associations"]} == set(baseline.public_subnet_ids)
        for table, subnet in zip(privates, baseline.private_subnet_ids, strict=True):
            default = next(r for r in table["Routes"] if r["DestinationCidrBlock"] == "0.0.0.0/0")
            assert default["NatGatewayId"] in baseline.nat_gateway_ids
            assert [a["SubnetId"] for a in table["Associations"]] == [subnet]
            assert table["PropagatingVgws"] == [{"GatewayId": baseline.vgw_id}]
            assert _propagated(table) == {"192.168.0.0/16": "active", "10.244.0.0/16": "active"}
            assert ("fedkeeper:federation", "fed-demo") in {
                (t["Key"], t["Value"]) for t in table["Tags"]
            }

    def test_baseline_vpn_is_bgp_with_both_tunnels_up(
        self, ec2: Any, baseline: AwsBaseline
    ) -> None:
        # Given the example config deployed
        # When the VGW, CGW and VPN connection are read back
        vgw = ec2.describe_vpn_gateways(VpnGatewayIds=[baseline.vgw_id])["VpnGateways"][0]
        cgw = ec2.describe_customer_gateways(CustomerGatewayIds=[baseline.cgw_id])[
            "CustomerGateways"
        ][0]
        vpn = _vpn(ec2, baseline.vpn_connection_id)
        # Then the VGW (ASN 64512) is attached, the CGW is the on-prem router, and the VPN uses
        # BGP with both tunnels UP at the IPs the baseline returned
        assert vgw["AmazonSideAsn"] == 64512
        assert vgw["VpcAttachments"] == [{"VpcId": baseline.vpc_id, "State": "attached"}]
        assert (cgw["IpAddress"], cgw["BgpAsn"]) == ("203.0.113.10", "65010")
        assert vpn["Options"]["StaticRoutesOnly"] is False
        assert [t["Status"] for t in vpn["VgwTelemetry"]] == ["UP", "UP"]
        assert (
            tuple(t["OutsideIpAddress"] for t in vpn["VgwTelemetry"]) == baseline.tunnel_outside_ips
        )

    def test_baseline_eks_cluster_has_external_snat_addon_and_onprem_secret(
        self, sandbox: SandboxAws, baseline: AwsBaseline
    ) -> None:
        # Given the example config deployed
        session = sandbox.session()
        # When the cluster, its vpc-cni add-on and the on-prem secret are read back
        described = session.client("eks").describe_cluster(name=baseline.cluster_name)["cluster"]
        addon = session.client("eks").describe_addon(
            clusterName=baseline.cluster_name, addonName="vpc-cni"
        )["addon"]
        secret = session.client("secretsmanager").get_secret_value(
            SecretId="fed-demo/onprem-kubeconfig"
        )
        # Then the cluster sits in the private subnets of the VPC, vpc-cni does external SNAT,
        # and the secret holds the on-prem kubeconfig
        assert described["arn"] == baseline.cluster_arn
        assert described["version"] == load_config(EXAMPLE).sole_eks().kubernetes_version
        assert sorted(described["resourcesVpcConfig"]["subnetIds"]) == sorted(
            baseline.private_subnet_ids
        )
        assert described["resourcesVpcConfig"]["vpcId"] == baseline.vpc_id
        assert json.loads(addon["configurationValues"]) == {"env": {SNAT: "true"}}
        assert secret["ARN"] == baseline.onprem_secret_arn
        assert secret["SecretString"] == "apiVersion: v1\nkind: Config\n"


# --------------------------------------------------------------------------- CloudTrail


def test_trails_reports_a_logging_trail_of_the_region(session: Any) -> None:
    from fedkeeper.adapters.aws import AwsAdapter

    session.client("s3").create_bucket(
        Bucket="fed-trail-logs", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    cloudtrail = session.client("cloudtrail")
    cloudtrail.create_trail(Name="fed-api-calls", S3BucketName="fed-trail-logs")
    cloudtrail.start_logging(Name="fed-api-calls")

    (trail,) = AwsAdapter(session).trails()

    assert (trail.name, trail.home_region, trail.logging) == ("fed-api-calls", REGION, True)
    assert trail.covers(REGION)


def test_trails_reports_a_created_trail_as_not_logging_until_started(session: Any) -> None:
    from fedkeeper.adapters.aws import AwsAdapter

    session.client("s3").create_bucket(
        Bucket="fed-trail-logs", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    session.client("cloudtrail").create_trail(Name="fed-api-calls", S3BucketName="fed-trail-logs")

    (trail,) = AwsAdapter(session).trails()

    assert trail.logging is False


def test_trails_keeps_a_trail_whose_status_cannot_be_read(
    sandbox: SandboxAws, session: Any
) -> None:
    from fedkeeper.adapters.aws import AwsAdapter

    session.client("s3").create_bucket(
        Bucket="fed-trail-logs", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    session.client("cloudtrail").create_trail(Name="org-trail", S3BucketName="fed-trail-logs")
    sandbox.fail_next("cloudtrail", "GetTrailStatus", "AccessDeniedException")

    (trail,) = AwsAdapter(session).trails()

    assert trail.logging is None
    assert trail.status_error.startswith("AccessDeniedException")


def test_the_baseline_deploys_the_stacks_trail_logging(sandbox: SandboxAws, session: Any) -> None:
    from fedkeeper.adapters.aws import AwsAdapter

    config = load_config(EXAMPLE)
    deploy_aws_baseline(session, sandbox, config, onprem_kubeconfig="kubeconfig")

    assert [(t.name, t.logging) for t in AwsAdapter(session).trails()] == [
        (f"{config.name}-api-calls", True)
    ]
