"""EventBridge: the patterns fedkeeper reacts to, and event → Scope.

The patterns live here once: the automation stack deploys exactly :func:`rules`, and the
sandbox routes events with the same patterns (through moto's EventBridge pattern matcher).

Events are hints, never state: parsing only decides *which* invariants to re-read. Parsing is
tolerant of fields AWS adds later (every model allows extra keys), and an event that is
irrelevant or malformed yields ``None`` — a no-op — rather than an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fedkeeper.config import FederationConfig
from fedkeeper.model import Invariant, Scope

HandlerName = Literal["on_tunnel_state", "on_route_change", "on_cluster_event", "repair"]
HANDLERS: tuple[HandlerName, ...] = (
    "on_tunnel_state",
    "on_route_change",
    "on_cluster_event",
    "repair",
)

# CloudTrail EC2 calls that can break invariant 1 (routes) or 3 (ippools).
ROUTE_EVENT_NAMES: tuple[str, ...] = (
    "EnableVgwRoutePropagation",
    "DisableVgwRoutePropagation",
    "CreateRoute",
    "DeleteRoute",
    "ReplaceRoute",
    "CreateRouteTable",
    "DeleteRouteTable",
    "AssociateRouteTable",
    "DisassociateRouteTable",
    "ReplaceRouteTableAssociation",
    "AssociateVpcCidrBlock",
    "DisassociateVpcCidrBlock",
    "ModifyVpnConnection",
    "ModifyVpnTunnelOptions",
    "DetachVpnGateway",
    "AttachVpnGateway",
)
# How the route-change rule narrows each call to the federation's network: the
# ``requestParameters`` key that names one of its resources (AWS EC2 API parameter names, as
# CloudTrail records them). Calls that carry only an association id cannot be narrowed.
ROUTE_EVENTS_BY_PARAMETER: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("gatewayId", "vgw", ("EnableVgwRoutePropagation", "DisableVgwRoutePropagation")),
    (
        "routeTableId",
        "route_tables",
        ("CreateRoute", "DeleteRoute", "ReplaceRoute", "DeleteRouteTable", "AssociateRouteTable"),
    ),
    ("subnetId", "subnets", ("AssociateRouteTable",)),
    (
        "vpcId",
        "vpc",
        ("CreateRouteTable", "AssociateVpcCidrBlock", "AttachVpnGateway", "DetachVpnGateway"),
    ),
    ("vpnGatewayId", "vgw", ("AttachVpnGateway", "DetachVpnGateway")),
    ("vpnConnectionId", "vpn", ("ModifyVpnConnection", "ModifyVpnTunnelOptions")),
)
# ReplaceRouteTableAssociation names the *new* table (possibly a foreign one) and the old
# association; the disassociations name only an association id.
UNNARROWED_ROUTE_EVENTS: tuple[str, ...] = (
    "DisassociateRouteTable",
    "ReplaceRouteTableAssociation",
    "DisassociateVpcCidrBlock",
)
CIDR_EVENT_NAMES: frozenset[str] = frozenset({"AssociateVpcCidrBlock", "DisassociateVpcCidrBlock"})
VPN_EVENT_NAMES: frozenset[str] = frozenset(
    {"ModifyVpnConnection", "ModifyVpnTunnelOptions", "DetachVpnGateway", "AttachVpnGateway"}
)
# CloudTrail EKS calls after which the vpc-cni configuration or the cluster may have changed.
CLUSTER_EVENT_NAMES: tuple[str, ...] = (
    "CreateAddon",
    "UpdateAddon",
    "DeleteAddon",
    "UpdateClusterVersion",
    "UpdateClusterConfig",
    "CreateNodegroup",
    "UpdateNodegroupVersion",
    "UpdateNodegroupConfig",
)
# Native EKS events (EventBridge reference: Amazon EKS service events).
EKS_ADDON_DETAIL_TYPES: tuple[str, ...] = (
    "EKS Addon Creation Failed",
    "EKS Addon Creation Succeeded",
    "EKS Addon Update Failed",
    "EKS Addon Update Succeeded",
    "EKS Addon Deletion Failed",
    "EKS Addon Deletion Succeeded",
    "EKS Addon Health Degraded",
    "EKS Addon Health Restored",
)


@dataclass(frozen=True)
class RuleSpec:
    """One EventBridge rule: its pattern and the handler it targets."""

    name: str
    handler: HandlerName
    description: str
    pattern: dict[str, Any] | None = None
    schedule: str | None = None


@dataclass(frozen=True)
class FederationNetwork:
    """The ids of the federation's network, as the network stack deploys them.

    In the stack these are CloudFormation tokens; the route-change rule is narrowed to them.
    """

    vpc: str
    vgw: str
    vpn: str
    route_tables: Sequence[str]
    subnets: Sequence[str]

    def ids(self, kind: str) -> list[str]:
        value = getattr(self, kind)
        return [value] if isinstance(value, str) else list(value)


def route_change_detail(network: FederationNetwork | None) -> dict[str, Any]:
    """The ``detail`` of the route-change pattern, narrowed to ``network`` when known.

    Without ids (a config alone, the sandbox's example events) every such call of the
    account and region matches; the handler re-reads the VPC either way.
    """
    detail: dict[str, Any] = {"eventSource": ["ec2.amazonaws.com"]}
    if network is None:
        return {**detail, "eventName": list(ROUTE_EVENT_NAMES)}
    alternatives: list[dict[str, Any]] = [
        {"eventName": list(names), "requestParameters": {key: network.ids(kind)}}
        for key, kind, names in ROUTE_EVENTS_BY_PARAMETER
    ]
    alternatives.append({"eventName": list(UNNARROWED_ROUTE_EVENTS)})
    return {**detail, "$or": alternatives}


def tunnel_alarm_prefix(config: FederationConfig) -> str:
    """Alarm names of the TunnelState alarms start with this (the stack names them)."""
    return f"{config.name}-tunnel-"


def tunnel_alarm_name(config: FederationConfig, index: int) -> str:
    return f"{tunnel_alarm_prefix(config)}{index}-state"


def rules(config: FederationConfig, network: FederationNetwork | None = None) -> list[RuleSpec]:
    """The rules the automation stack deploys (narrowed to ``network``), in a stable order."""
    return [
        RuleSpec(
            name="tunnel-state",
            handler="on_tunnel_state",
            description="TunnelState alarm of a VPN tunnel changed state",
            pattern={
                "source": ["aws.cloudwatch"],
                "detail-type": ["CloudWatch Alarm State Change"],
                "detail": {"alarmName": [{"prefix": tunnel_alarm_prefix(config)}]},
            },
        ),
        RuleSpec(
            name="vpn-health",
            handler="on_tunnel_state",
            description="AWS Health event for Site-to-Site VPN",
            pattern={
                "source": ["aws.health"],
                "detail-type": ["AWS Health Event"],
                "detail": {"service": ["VPN"]},
            },
        ),
        RuleSpec(
            name="route-change",
            handler="on_route_change",
            description="EC2 route, propagation, association or VPC CIDR call (CloudTrail)",
            pattern={
                "source": ["aws.ec2"],
                "detail-type": ["AWS API Call via CloudTrail"],
                "detail": route_change_detail(network),
            },
        ),
        RuleSpec(
            name="cluster-api-call",
            handler="on_cluster_event",
            description="EKS add-on, cluster or node group call (CloudTrail)",
            pattern={
                "source": ["aws.eks"],
                "detail-type": ["AWS API Call via CloudTrail"],
                "detail": {
                    "eventSource": ["eks.amazonaws.com"],
                    "eventName": list(CLUSTER_EVENT_NAMES),
                },
            },
        ),
        RuleSpec(
            name="cluster-addon-event",
            handler="on_cluster_event",
            description="Native EKS add-on event",
            pattern={"source": ["aws.eks"], "detail-type": list(EKS_ADDON_DETAIL_TYPES)},
        ),
        RuleSpec(
            name="schedule",
            handler="repair",
            description="Periodic full reconcile",
            schedule=config.reconcile.schedule,
        ),
    ]


def schedule_pattern() -> dict[str, Any]:
    """The shape of a scheduled event (for routing in the sandbox)."""
    return {"source": ["aws.events"], "detail-type": ["Scheduled Event"]}


# --- parsing -------------------------------------------------------------------------------


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class AlarmState(_Tolerant):
    value: str
    reason: str | None = None
    timestamp: str | None = None


class AlarmDetail(_Tolerant):
    alarm_name: str = Field(alias="alarmName")
    state: AlarmState
    previous_state: AlarmState | None = Field(default=None, alias="previousState")


class HealthDetail(_Tolerant):
    service: str
    event_type_code: str | None = Field(default=None, alias="eventTypeCode")
    status_code: str | None = Field(default=None, alias="statusCode")


class CloudTrailDetail(_Tolerant):
    event_source: str = Field(alias="eventSource")
    event_name: str = Field(alias="eventName")
    error_code: str | None = Field(default=None, alias="errorCode")
    request_parameters: dict[str, Any] | None = Field(default=None, alias="requestParameters")


class AddonEventDetail(_Tolerant):
    cluster_name: str | None = Field(default=None, alias="clusterName")
    addon_name: str | None = Field(default=None, alias="addonName")


class EventEnvelope(EventBridgeModel):
    """Powertools' EventBridge model, tolerant of keys AWS adds later."""

    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class Trigger:
    """What an event asks for: the scope to reconcile and why, in words for the Report."""

    scope: Scope
    reason: str
    tunnel_state: Literal["up", "down"] | None = None


def parse_envelope(event: Any) -> EventEnvelope | None:
    """The EventBridge envelope, or None when ``event`` is not one."""
    if not isinstance(event, dict):
        return None
    try:
        return EventEnvelope.model_validate(event)
    except ValidationError:
        return None


def is_eventbridge_event(event: Any) -> bool:
    """True when ``event`` is an EventBridge envelope (not, say, a manual payload)."""
    return parse_envelope(event) is not None


def event_summary(event: Any) -> str:
    """A short, secret-free description of an event for a Report: what arrived, never values.

    Example: ``aws.ec2 "AWS API Call via CloudTrail" DisableVgwRoutePropagation (failed:
    Client.UnauthorizedOperation)``.
    """
    if not isinstance(event, dict):
        return f"a {type(event).__name__}, not an EventBridge event"
    source, detail_type = event.get("source"), event.get("detail-type")
    if not isinstance(source, str) or not isinstance(detail_type, str):
        return "not an EventBridge event (no source or detail-type)"
    text = f'{source} "{detail_type}"'
    detail = event.get("detail")
    if isinstance(detail, dict):
        for key in ("eventName", "alarmName", "eventTypeCode", "addonName"):
            value = detail.get(key)
            if isinstance(value, str):
                text += f" {value[:80]}"
                break
        error = detail.get("errorCode")
        if isinstance(error, str):
            text += f" (failed: {error[:80]})"
    return text


def trigger_for(event: Any, config: FederationConfig) -> Trigger | None:
    """The scope an EventBridge event asks for, or None if fedkeeper has nothing to do.

    Never raises on bad input: an unknown or malformed event is simply not a trigger. An
    event that names another EKS cluster is not a trigger either (accounts often hold
    several); an event that names no cluster is one (its keys are not guaranteed).
    """
    env = parse_envelope(event)
    if env is None or not isinstance(env.detail, dict):
        return None
    detail = env.detail
    try:
        if env.source == "aws.cloudwatch" and env.detail_type == "CloudWatch Alarm State Change":
            return _alarm_trigger(AlarmDetail.model_validate(detail), config)
        if env.source == "aws.health" and env.detail_type == "AWS Health Event":
            health = HealthDetail.model_validate(detail)
            if health.service.upper() != "VPN":
                return None
            code = health.event_type_code or "unknown"
            return Trigger(Scope.of(Invariant.VPN), f"AWS Health VPN event {code}")
        if env.detail_type == "AWS API Call via CloudTrail":
            return _cloudtrail_trigger(env.source, CloudTrailDetail.model_validate(detail), config)
        if env.source == "aws.eks" and env.detail_type in EKS_ADDON_DETAIL_TYPES:
            addon = AddonEventDetail.model_validate(detail)
            if _other_cluster(addon.cluster_name, config):
                return None
            return Trigger(
                Scope.of(Invariant.SNAT, Invariant.RCC),
                f"{env.detail_type} ({addon.addon_name or 'add-on'})",
            )
        if env.source == "aws.events" and env.detail_type == "Scheduled Event":
            return Trigger(Scope.everything(), "scheduled reconcile")
    except ValidationError:
        return None
    return None


def _alarm_trigger(alarm: AlarmDetail, config: FederationConfig) -> Trigger | None:
    if not alarm.alarm_name.startswith(tunnel_alarm_prefix(config)):
        return None
    value = alarm.state.value.upper()
    if value == "OK":
        # On-prem may have drifted while it was cut off: reconcile everything.
        return Trigger(
            Scope.everything(), f"tunnel alarm {alarm.alarm_name} is OK", tunnel_state="up"
        )
    if value == "ALARM":
        return Trigger(
            Scope.of(Invariant.VPN),
            f"tunnel alarm {alarm.alarm_name} is in ALARM",
            tunnel_state="down",
        )
    return Trigger(Scope.of(Invariant.VPN), f"tunnel alarm {alarm.alarm_name} is {value}")


def _other_cluster(name: Any, config: FederationConfig) -> bool:
    return isinstance(name, str) and bool(name) and name != config.sole_eks().cluster_name


def _cloudtrail_trigger(
    source: str, detail: CloudTrailDetail, config: FederationConfig
) -> Trigger | None:
    if detail.error_code:
        # The call failed, so nothing changed; the schedule still catches anything else.
        return None
    name = detail.event_name
    if source == "aws.ec2" and detail.event_source == "ec2.amazonaws.com":
        if name in CIDR_EVENT_NAMES:
            return Trigger(
                Scope.of(Invariant.ROUTES, Invariant.IPPOOLS, Invariant.CHECKS),
                f"CloudTrail {name}",
            )
        if name in VPN_EVENT_NAMES:
            return Trigger(Scope.of(Invariant.VPN, Invariant.ROUTES), f"CloudTrail {name}")
        if name in ROUTE_EVENT_NAMES:
            return Trigger(Scope.of(Invariant.ROUTES), f"CloudTrail {name}")
    if (
        source == "aws.eks"
        and detail.event_source == "eks.amazonaws.com"
        and name in CLUSTER_EVENT_NAMES
    ):
        params = detail.request_parameters or {}
        if _other_cluster(params.get("clusterName"), config):
            return None
        return Trigger(Scope.of(Invariant.SNAT, Invariant.RCC), f"CloudTrail {name}")
    return None
