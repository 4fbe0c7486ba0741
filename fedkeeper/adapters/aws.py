"""AWS, through boto3 on an injected session: EC2 (VPC, routes, VPN), EKS, Secrets Manager.

One shared botocore retry ``Config`` for every client; every ``ClientError`` and connection
failure is turned into the project's own errors (:mod:`fedkeeper.errors`). Calls are counted
per backend (``aws``) as reads or writes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, ParamSpec, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from fedkeeper.errors import (
    AnswerTimeoutError,
    BusyError,
    FedkeeperError,
    NotFoundError,
    PermanentError,
    RetryableError,
    UnreachableError,
)
from fedkeeper.guard import RunGuard
from fedkeeper.model import (
    Addon,
    ApiCounter,
    Route,
    RouteTable,
    Trail,
    Tunnel,
    Vpc,
    VpnConnection,
)

EPISODES_ITEM = "episodes"  # the one item of the episodes table
AWS_ATTEMPTS = 3
AWS_CONNECT_TIMEOUT = 3
AWS_READ_TIMEOUT = 10
# The worst case of one AWS call: every attempt times out, plus standard-mode backoff
# (at most 2^attempt s, jittered, between attempts).
AWS_WORST_CALL_S = AWS_ATTEMPTS * (AWS_CONNECT_TIMEOUT + AWS_READ_TIMEOUT) + 2 + 4
RETRY_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": AWS_ATTEMPTS},
    connect_timeout=AWS_CONNECT_TIMEOUT,
    read_timeout=AWS_READ_TIMEOUT,
    user_agent_extra="fedkeeper",
)

# The calls after a run (SNS notifications, the episode store) fit in the margin the run
# leaves: two short attempts each, so a hung SNS or DynamoDB cannot hold the function.
ALERT_ATTEMPTS = 2
ALERT_CONNECT_TIMEOUT = 2
ALERT_READ_TIMEOUT = 3
ALERT_WORST_CALL_S = ALERT_ATTEMPTS * (ALERT_CONNECT_TIMEOUT + ALERT_READ_TIMEOUT) + 2
ALERT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": ALERT_ATTEMPTS},
    connect_timeout=ALERT_CONNECT_TIMEOUT,
    read_timeout=ALERT_READ_TIMEOUT,
    user_agent_extra="fedkeeper",
)

_THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
_READ_PREFIXES = ("Describe", "List", "Get")

P = ParamSpec("P")
T = TypeVar("T")


def translate_client_error(exc: ClientError) -> Exception:
    """Map a botocore ClientError to a RetryableError or PermanentError."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    op = getattr(exc, "operation_name", "call")
    text = f"AWS {op} failed: {code}: {error.get('Message', '')}".rstrip(": ")
    err: FedkeeperError
    if code in _THROTTLE_CODES or status >= 500 or code in {"InternalError", "ServiceUnavailable"}:
        err = RetryableError(text)
    elif code.endswith("NotFound") or code in {"ResourceNotFoundException", "NoSuchEntity"}:
        err = NotFoundError(text)
    elif code == "ResourceInUseException":
        err = BusyError(text)  # e.g. an add-on update still rolling out
    else:
        err = PermanentError(text)
    err.status = status or None
    return err


@contextmanager
def aws_errors() -> Iterator[None]:
    """Translate SDK failures inside the block into fedkeeper errors."""
    try:
        yield
    except ClientError as exc:
        raise translate_client_error(exc) from exc
    except NoCredentialsError as exc:
        raise PermanentError(f"AWS credentials not found: {exc}") from exc
    except ReadTimeoutError as exc:
        raise AnswerTimeoutError(f"AWS endpoint did not answer in time: {exc}") from exc
    except BotoConnectionError as exc:
        raise UnreachableError(f"AWS endpoint unreachable: {exc}") from exc
    except BotoCoreError as exc:
        raise PermanentError(f"AWS SDK error: {exc}") from exc


def _translated(fn: Callable[P, T]) -> Callable[P, T]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        adapter = args[0] if args and isinstance(args[0], AwsAdapter) else None
        try:
            with aws_errors():
                return fn(*args, **kwargs)
        except FedkeeperError as exc:
            if adapter is not None:
                adapter.failed(exc)
            raise

    return wrapper


class AwsAdapter:
    """The AWS calls fedkeeper makes, on one injected ``boto3.Session``."""

    def __init__(
        self,
        session: boto3.Session,
        counter: ApiCounter | None = None,
        *,
        config: Config = RETRY_CONFIG,
        worst_call_s: float = AWS_WORST_CALL_S,
    ) -> None:
        self._session = session
        self.counter = counter if counter is not None else ApiCounter()
        self.config = config
        self.worst_call_s = worst_call_s  # what the guard budgets for one call
        self._clients: dict[str, Any] = {}
        self.guard: RunGuard | None = None  # the current run's deadline and failed targets
        self._service = "aws"  # target of the call in flight: aws/<service>

    def client(self, service: str) -> Any:
        """A cached client with the shared retry config and call counting."""
        if service not in self._clients:
            client = self._session.client(service, config=self.config)
            client.meta.events.register("before-call.*.*", self._count)
            client.meta.events.register("after-call.*.*", self._answered)
            self._clients[service] = client
        return self._clients[service]

    def _count(self, model: Any, **_: Any) -> None:
        # Each call is one AWS service: a failure of one keeps to the work needing it.
        self._service = f"aws/{model.service_model.service_name}"
        if self.guard is not None:
            self.guard.before(self._service, self.worst_call_s)
        self.counter.count("aws", write=not str(model.name).startswith(_READ_PREFIXES))

    def _answered(self, http_response: Any, model: Any, **_: Any) -> None:
        # Only a successful call says a service is well (any other call says nothing of it).
        if self.guard is not None and int(getattr(http_response, "status_code", 500)) < 300:
            self.guard.succeeded(f"aws/{model.service_model.service_name}")

    def failed(self, exc: FedkeeperError) -> None:
        """Record a failed call against its service (see :class:`fedkeeper.guard.RunGuard`)."""
        if exc.target is None:
            exc.target = self._service
        if self.guard is not None and exc.target.startswith("aws"):
            self.guard.failed(exc.target, exc)
            if isinstance(exc, NotFoundError):
                self.guard.succeeded(exc.target)  # it answered

    # --- EC2: VPC and routes ------------------------------------------------------------

    @_translated
    def find_vpc(self, vpc_id: str | None, tag: tuple[str, str]) -> Vpc | None:
        """The federation's VPC by id, or by its federation tag when no id is given."""
        ec2 = self.client("ec2")
        if vpc_id:
            vpcs = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
        else:
            vpcs = ec2.describe_vpcs(Filters=[{"Name": f"tag:{tag[0]}", "Values": [tag[1]]}])[
                "Vpcs"
            ]
        if not vpcs:
            return None
        if len(vpcs) > 1:
            ids = ", ".join(v["VpcId"] for v in vpcs)
            raise PermanentError(
                f"several VPCs carry tag {tag[0]}={tag[1]} ({ids}); set FEDKEEPER_VPC_ID"
            )
        return _vpc(vpcs[0])

    @_translated
    def tagged_vpcs(self, tag: tuple[str, str]) -> list[Vpc]:
        """Every VPC carrying the federation tag: a mesh's networks, one per EKS cluster."""
        vpcs = self.client("ec2").describe_vpcs(
            Filters=[{"Name": f"tag:{tag[0]}", "Values": [tag[1]]}]
        )["Vpcs"]
        return [_vpc(v) for v in vpcs]

    @_translated
    def find_vgw(self, vpc_id: str) -> str | None:
        """The virtual private gateway attached to the VPC, if any."""
        gws = self.client("ec2").describe_vpn_gateways(
            Filters=[
                {"Name": "attachment.vpc-id", "Values": [vpc_id]},
                {"Name": "attachment.state", "Values": ["attached"]},
            ]
        )["VpnGateways"]
        live = [g for g in gws if g.get("State") not in {"deleting", "deleted"}]
        return str(live[0]["VpnGatewayId"]) if live else None

    @_translated
    def route_tables(self, vpc_id: str) -> list[RouteTable]:
        """Every route table of the VPC, with propagation and propagated routes."""
        ec2 = self.client("ec2")
        tables: list[RouteTable] = []
        paginator = ec2.get_paginator("describe_route_tables")
        for page in paginator.paginate(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]):
            tables.extend(_route_table(rt) for rt in page["RouteTables"])
        return tables

    @_translated
    def enable_route_propagation(self, route_table_id: str, gateway_id: str) -> None:
        self.client("ec2").enable_vgw_route_propagation(
            RouteTableId=route_table_id, GatewayId=gateway_id
        )

    @_translated
    def vpn_connections(
        self, vgw_id: str, vpn_connection_id: str | None = None
    ) -> list[VpnConnection]:
        """VPN connections of the VGW (not deleted), with tunnel telemetry."""
        args: dict[str, Any] = {"Filters": [{"Name": "vpn-gateway-id", "Values": [vgw_id]}]}
        if vpn_connection_id:
            args["VpnConnectionIds"] = [vpn_connection_id]
        conns = self.client("ec2").describe_vpn_connections(**args)["VpnConnections"]
        out = []
        for c in conns:
            if c.get("State") in {"deleted", "deleting"}:
                continue
            tunnels = tuple(
                Tunnel(
                    outside_ip=str(t.get("OutsideIpAddress", "")),
                    up=t.get("Status") == "UP",
                    accepted_routes=int(t.get("AcceptedRouteCount", 0) or 0),
                    last_change=_iso(t.get("LastStatusChange")),
                    message=str(t.get("StatusMessage", "") or ""),
                )
                for t in c.get("VgwTelemetry", [])
            )
            out.append(
                VpnConnection(
                    id=c["VpnConnectionId"],
                    state=str(c.get("State", "")),
                    tunnels=tunnels,
                    static_routes_only=bool(c.get("Options", {}).get("StaticRoutesOnly", False)),
                    customer_gateway_id=str(c.get("CustomerGatewayId", "")),
                )
            )
        return out

    @_translated
    def customer_gateway_ips(self) -> dict[str, str]:
        """Customer gateway id -> its public IP, for every gateway not deleted: a mesh tells
        its sites' VPNs on one VGW apart by their customer gateways."""
        gws = self.client("ec2").describe_customer_gateways()["CustomerGateways"]
        return {
            str(g["CustomerGatewayId"]): str(g.get("IpAddress", ""))
            for g in gws
            if g.get("State") not in {"deleting", "deleted"}
        }

    # --- EKS ------------------------------------------------------------------------------

    @_translated
    def describe_cluster(self, name: str) -> dict[str, Any]:
        return dict(self.client("eks").describe_cluster(name=name)["cluster"])

    @_translated
    def describe_addon(self, cluster: str, name: str) -> Addon | None:
        try:
            a = self.client("eks").describe_addon(clusterName=cluster, addonName=name)["addon"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        issues = (a.get("health") or {}).get("issues") or []
        return Addon(
            cluster=cluster,
            name=name,
            version=str(a.get("addonVersion", "")),
            status=str(a.get("status", "")),
            configuration_values=str(a.get("configurationValues", "") or ""),
            issues=tuple(
                f"{i.get('code', '')}: {i.get('message', '')}".strip(": ")
                for i in issues
                if isinstance(i, dict)
            ),
        )

    @_translated
    def update_addon(
        self, cluster: str, name: str, configuration_values: str, resolve_conflicts: str
    ) -> str:
        resp = self.client("eks").update_addon(
            clusterName=cluster,
            addonName=name,
            configurationValues=configuration_values,
            resolveConflicts=resolve_conflicts,
        )
        return str(resp.get("update", {}).get("id", ""))

    # --- CloudTrail ------------------------------------------------------------------------

    @_translated
    def trails(self) -> list[Trail]:
        """Every trail that delivers events of this client's region, with its logging state.

        ``describe_trails`` lists the region's own trails and the shadows of multi-region and
        organization trails; ``get_trail_status`` takes a shadow trail only by its ARN. A
        trail whose status cannot be read is returned with ``logging=None`` and the reason,
        so one unreadable organization trail does not hide the others.
        """
        client = self.client("cloudtrail")
        region = str(client.meta.region_name)
        out: list[Trail] = []
        for t in client.describe_trails(includeShadowTrails=True).get("trailList", []):
            trail = Trail(
                name=str(t.get("Name", "")),
                arn=str(t.get("TrailARN", "")),
                home_region=str(t.get("HomeRegion", "")),
                multi_region=bool(t.get("IsMultiRegionTrail", False)),
                organization=bool(t.get("IsOrganizationTrail", False)),
                logging=None,
            )
            if not trail.covers(region):
                out.append(trail)
                continue
            try:
                status = client.get_trail_status(Name=trail.arn or trail.name)
            except ClientError as exc:
                err = exc.response.get("Error", {})
                reason = f"{err.get('Code', 'error')}: {err.get('Message', '')}".rstrip(": ")
                out.append(replace(trail, status_error=reason))
                continue
            out.append(replace(trail, logging=bool(status.get("IsLogging", False))))
        return out

    # --- SNS --------------------------------------------------------------------------------

    @_translated
    def publish(self, topic_arn: str, subject: str, message: str) -> None:
        self.client("sns").publish(TopicArn=topic_arn, Subject=subject, Message=message)

    # --- SSM Parameter Store (the watch function's resume point) ---------------------------

    @_translated
    def parameter(self, name: str) -> str:
        return str(self.client("ssm").get_parameter(Name=name)["Parameter"]["Value"])

    @_translated
    def put_parameter(self, name: str, value: str) -> None:
        self.client("ssm").put_parameter(Name=name, Value=value, Type="String", Overwrite=True)

    # --- DynamoDB: the open episodes of persistent trouble (fedkeeper.episodes) ------------

    @_translated
    def read_episodes(self, table: str) -> tuple[Any, int]:
        """The stored episodes (parsed JSON, any shape) and the item's version (0: none)."""
        resp = self.client("dynamodb").get_item(
            TableName=table, Key={"pk": {"S": EPISODES_ITEM}}, ConsistentRead=True
        )
        item = resp.get("Item") or {}
        try:
            version = int((item.get("version") or {}).get("N", "0"))
            data = json.loads((item.get("episodes") or {}).get("S", "{}"))
        except (ValueError, TypeError, AttributeError):
            return {}, 0
        return data, version

    @_translated
    def write_episodes(self, table: str, data: Any, version: int) -> bool:
        """Store ``data`` if the item is still at ``version``; False when another run won."""
        try:
            self.client("dynamodb").put_item(
                TableName=table,
                Item={
                    "pk": {"S": EPISODES_ITEM},
                    "version": {"N": str(version + 1)},
                    "episodes": {"S": json.dumps(data, sort_keys=True)},
                },
                ConditionExpression="attribute_not_exists(pk) OR version = :v",
                ExpressionAttributeValues={":v": {"N": str(version)}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # --- DynamoDB: the watch function's lease (one more item of the episodes table) -------

    def take_lease(self, table: str, name: str, holder: str, now: float, seconds: float) -> bool:
        """Hold lease ``name`` until ``now + seconds`` if it is free, expired or already
        ``holder``'s: one conditional write. False when another holder has it."""
        return self._put_if(
            table,
            {"pk": {"S": name}, "holder": {"S": holder}, "expires": {"N": f"{now + seconds:.3f}"}},
            "attribute_not_exists(pk) OR #e < :now OR #h = :me",
            {":now": {"N": f"{now:.3f}"}, ":me": {"S": holder}},
        )

    def release_lease(self, table: str, name: str, holder: str) -> None:
        """Give lease ``name`` up at once, if ``holder`` still has it."""
        self._put_if(
            table,
            {"pk": {"S": name}, "holder": {"S": ""}, "expires": {"N": "0"}},
            "#h = :me",
            {":me": {"S": holder}},
        )

    @_translated
    def _put_if(
        self, table: str, item: dict[str, Any], condition: str, values: dict[str, Any]
    ) -> bool:
        """PutItem if ``condition`` holds (``#e``/``#h`` name the expiry and the holder);
        False when it does not."""
        names = {k: v for k, v in (("#e", "expires"), ("#h", "holder")) if k in condition}
        try:
            self.client("dynamodb").put_item(
                TableName=table,
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # --- Secrets Manager ------------------------------------------------------------------

    @_translated
    def secret_string(self, secret_id: str) -> str:
        resp = self.client("secretsmanager").get_secret_value(SecretId=secret_id)
        if "SecretString" not in resp:
            raise PermanentError(
                f"secret {secret_id} has no SecretString; store the kubeconfig as text"
            )
        return str(resp["SecretString"])


def _vpc(vpc: dict[str, Any]) -> Vpc:
    cidrs = [vpc["CidrBlock"]]
    for assoc in vpc.get("CidrBlockAssociationSet", []):
        state = assoc.get("CidrBlockState", {}).get("State", "associated")
        if state == "associated" and assoc["CidrBlock"] not in cidrs:
            cidrs.append(assoc["CidrBlock"])
    return Vpc(id=vpc["VpcId"], cidrs=tuple(cidrs))


def _route_table(rt: dict[str, Any]) -> RouteTable:
    tags = {t["Key"]: t["Value"] for t in rt.get("Tags", [])}
    assocs = rt.get("Associations", [])
    routes = tuple(
        Route(
            destination=str(r.get("DestinationCidrBlock", r.get("DestinationPrefixListId", ""))),
            target=str(
                r.get("GatewayId")
                or r.get("NatGatewayId")
                or r.get("TransitGatewayId")
                or r.get("NetworkInterfaceId")
                or r.get("VpcPeeringConnectionId")
                or ""
            ),
            origin=str(r.get("Origin", "")),
            state=str(r.get("State", "active")),
        )
        for r in rt.get("Routes", [])
    )
    return RouteTable(
        id=rt["RouteTableId"],
        name=tags.get("Name", ""),
        subnet_ids=tuple(a["SubnetId"] for a in assocs if a.get("SubnetId")),
        main=any(a.get("Main") for a in assocs),
        routes=routes,
        propagating_vgws=frozenset(p["GatewayId"] for p in rt.get("PropagatingVgws", [])),
        tags=tags,
    )


def _iso(value: Any) -> str:
    if value is None:
        return ""
    iso = getattr(value, "isoformat", None)
    return str(iso()) if callable(iso) else str(value)
