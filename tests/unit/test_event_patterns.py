"""The deployed EventBridge patterns and event → scope, against realistic AWS deliveries.

Patterns are matched with moto's EventBridge matcher (the one the sandbox routes with), and
one rule end to end through moto's EventBridge API (put_rule/put_targets/put_events → SQS).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.events.models import EventPattern

from fedkeeper.config import FederationConfig, load_config
from fedkeeper.events import (
    ROUTE_EVENT_NAMES,
    ROUTE_EVENTS_BY_PARAMETER,
    UNNARROWED_ROUTE_EVENTS,
    FederationNetwork,
    RuleSpec,
    event_summary,
    is_eventbridge_event,
    rules,
    schedule_pattern,
    trigger_for,
    tunnel_alarm_name,
)
from tests.conftest import EXAMPLE
from tests.lambda_support import EVENT_RULES, load_event

CONFIG = load_config(EXAMPLE)  # hypothesis tests cannot take function-scoped fixtures


def pattern_of(rule: RuleSpec) -> dict[str, Any]:
    return rule.pattern if rule.pattern is not None else schedule_pattern()


def matching(config: FederationConfig, event: dict[str, Any]) -> list[str]:
    return [
        r.name
        for r in rules(config)
        if EventPattern.load(json.dumps(pattern_of(r))).matches_event(event)  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize(("name", "rule"), EVENT_RULES.items())
def test_each_event_matches_its_own_rule_and_no_other(
    example_config: FederationConfig, name: str, rule: str | None
) -> None:
    # Given a delivery as AWS sends it / When the deployed patterns see it
    matched = matching(example_config, load_event(name))
    # Then exactly its own rule fires (or none, for an event fedkeeper does not watch)
    assert matched == ([rule] if rule else [])


def test_every_rule_has_an_event_file(example_config: FederationConfig) -> None:
    assert {r.name for r in rules(example_config)} <= set(EVENT_RULES.values())


def test_the_alarm_files_name_the_stacks_tunnel_alarm(example_config: FederationConfig) -> None:
    for name in ("cloudwatch_tunnel_alarm_ALARM.json", "cloudwatch_tunnel_alarm_OK.json"):
        assert load_event(name)["detail"]["alarmName"] == tunnel_alarm_name(example_config, 1)


def test_an_alarm_of_another_federation_matches_no_rule(example_config: FederationConfig) -> None:
    event = load_event("cloudwatch_tunnel_alarm_ALARM.json")
    event["detail"]["alarmName"] = "other-fed-tunnel-1-state"
    assert matching(example_config, event) == []


def test_a_health_event_of_another_service_matches_no_rule(
    example_config: FederationConfig,
) -> None:
    event = load_event("health_vpn_redundancy_loss.json")
    event["detail"]["service"] = "EC2"
    assert matching(example_config, event) == []


def test_a_read_only_ec2_call_matches_no_rule(example_config: FederationConfig) -> None:
    event = load_event("cloudtrail_ec2_DisableVgwRoutePropagation.json")
    event["detail"]["eventName"] = "DescribeRouteTables"
    assert matching(example_config, event) == []


@mock_aws
def test_a_rule_deployed_through_the_eventbridge_api_routes_only_its_events(
    example_config: FederationConfig,
) -> None:
    # Given the route-change rule deployed with an SQS target (as the stack targets Lambda)
    rule = next(r for r in rules(example_config) if r.name == "route-change")
    events = boto3.client("events", region_name="eu-west-1")
    sqs = boto3.client("sqs", region_name="eu-west-1")
    queue = sqs.create_queue(QueueName="route-change")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name=rule.name, EventPattern=json.dumps(rule.pattern))
    events.put_targets(Rule=rule.name, Targets=[{"Id": "handler", "Arn": arn}])

    # When a matching and a non-matching event are put on the bus
    def put(name: str) -> None:
        e = load_event(name)
        entry = {
            "Source": e["source"],
            "DetailType": e["detail-type"],
            "Detail": json.dumps(e["detail"]),
            "Resources": e["resources"],
        }
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0

    put("cloudtrail_ec2_DisableVgwRoutePropagation.json")
    put("cloudtrail_eks_UpdateAddon.json")
    put("ec2_instance_state_change.json")

    # Then only the route change reaches the target
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    delivered = [json.loads(m["Body"]) for m in messages]
    assert [d["detail"]["eventName"] for d in delivered] == ["DisableVgwRoutePropagation"]


# --- event → scope ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "scope", "tunnel_state"),
    [
        ("cloudwatch_tunnel_alarm_ALARM.json", ["vpn"], "down"),
        (
            "cloudwatch_tunnel_alarm_OK.json",
            ["vpn", "routes", "snat", "ippools", "rcc", "checks"],
            "up",
        ),
        ("health_vpn_redundancy_loss.json", ["vpn"], None),
        ("cloudtrail_ec2_DisableVgwRoutePropagation.json", ["routes"], None),
        ("cloudtrail_ec2_AssociateVpcCidrBlock.json", ["routes", "ippools", "checks"], None),
        ("cloudtrail_eks_UpdateAddon.json", ["snat", "rcc"], None),
        ("eks_addon_update_succeeded.json", ["snat", "rcc"], None),
        ("scheduled_event.json", ["vpn", "routes", "snat", "ippools", "rcc", "checks"], None),
    ],
)
def test_each_event_asks_for_its_scope(
    example_config: FederationConfig, name: str, scope: list[str], tunnel_state: str | None
) -> None:
    trigger = trigger_for(load_event(name), example_config)
    assert trigger is not None
    assert trigger.scope.names() == scope
    assert trigger.tunnel_state == tunnel_state
    assert trigger.reason  # said in words for the Report


@pytest.mark.parametrize(
    "name",
    ["cloudtrail_ec2_DisableVgwRoutePropagation_denied.json", "ec2_instance_state_change.json"],
)
def test_a_failed_call_or_an_unwatched_event_is_no_trigger(
    example_config: FederationConfig, name: str
) -> None:
    assert trigger_for(load_event(name), example_config) is None


def test_an_event_about_another_cluster_is_no_trigger(example_config: FederationConfig) -> None:
    call = load_event("cloudtrail_eks_UpdateAddon.json")
    call["detail"]["requestParameters"]["clusterName"] = "someone-elses-cluster"
    addon = load_event("eks_addon_update_succeeded.json")
    addon["detail"]["clusterName"] = "someone-elses-cluster"
    assert trigger_for(call, example_config) is None
    assert trigger_for(addon, example_config) is None


def test_an_eks_call_without_a_cluster_name_still_triggers(
    example_config: FederationConfig,
) -> None:
    # requestParameters keys are not guaranteed: when in doubt, re-read
    call = load_event("cloudtrail_eks_UpdateAddon.json")
    del call["detail"]["requestParameters"]["clusterName"]
    assert trigger_for(call, example_config) is not None


def test_a_malformed_alarm_is_no_trigger(example_config: FederationConfig) -> None:
    event = load_event("cloudwatch_tunnel_alarm_ALARM.json")
    del event["detail"]["state"]
    assert trigger_for(event, example_config) is None


def test_the_summary_names_the_call_and_its_failure_without_parameters() -> None:
    summary = event_summary(load_event("cloudtrail_ec2_DisableVgwRoutePropagation_denied.json"))
    assert summary == (
        'aws.ec2 "AWS API Call via CloudTrail" DisableVgwRoutePropagation '
        "(failed: Client.UnauthorizedOperation)"
    )
    assert "rtb-" not in summary


def test_manual_payloads_are_not_eventbridge_events() -> None:
    assert is_eventbridge_event(load_event("scheduled_event.json"))
    assert not is_eventbridge_event(load_event("manual/apply_routes_ippools.json"))
    assert not is_eventbridge_event(["apply"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
envelope_keys = st.sampled_from(
    ["version", "id", "source", "detail-type", "account", "time", "region", "resources", "detail"]
)


@settings(max_examples=200, deadline=None)
@given(
    event=json_values
    | st.dictionaries(envelope_keys, json_values, max_size=9)
    | st.builds(
        lambda detail, source, dt: (
            {**load_event("scheduled_event.json"), "detail": detail}
            | {"source": source, "detail-type": dt}
        ),
        json_values,
        st.sampled_from(["aws.ec2", "aws.eks", "aws.cloudwatch", "aws.health", "aws.events"]),
        st.sampled_from(
            [
                "AWS API Call via CloudTrail",
                "CloudWatch Alarm State Change",
                "AWS Health Event",
                "EKS Addon Update Succeeded",
                "Scheduled Event",
            ]
        ),
    )
)
def test_no_event_makes_parsing_raise(event: Any) -> None:
    trigger_for(event, CONFIG)
    assert isinstance(event_summary(event), str)


# --- the route-change rule narrowed to the federation's network ------------------------------

NETWORK = FederationNetwork(
    vpc="vpc-0abc1234def567890",
    vgw="vgw-0123456789abcdef0",
    vpn="vpn-0aaa1111bbbb2222c",
    route_tables=("rtb-0f1e2d3c4b5a69788", "rtb-0public000000000"),
    subnets=("subnet-0private00000000",),
)


def route_rule_matches(event: dict[str, Any], network: FederationNetwork | None = NETWORK) -> bool:
    (rule,) = [r for r in rules(CONFIG, network) if r.name == "route-change"]
    return bool(EventPattern.load(json.dumps(rule.pattern)).matches_event(event))  # type: ignore[arg-type]


def ec2_call(name: str, **params: str) -> dict[str, Any]:
    event = load_event("cloudtrail_ec2_DisableVgwRoutePropagation.json")
    event["detail"]["eventName"] = name
    event["detail"]["requestParameters"] = params
    return event


def test_every_route_event_name_is_narrowed_or_listed_as_unnarrowable() -> None:
    narrowed = {n for _, _, names in ROUTE_EVENTS_BY_PARAMETER for n in names}

    assert narrowed | set(UNNARROWED_ROUTE_EVENTS) == set(ROUTE_EVENT_NAMES)


def test_propagation_calls_match_only_for_the_federations_vgw() -> None:
    assert route_rule_matches(
        ec2_call("DisableVgwRoutePropagation", routeTableId="rtb-new", gatewayId=NETWORK.vgw)
    )
    assert not route_rule_matches(
        ec2_call("DisableVgwRoutePropagation", routeTableId="rtb-x", gatewayId="vgw-other")
    )


def test_route_calls_match_only_on_the_federations_route_tables() -> None:
    table = NETWORK.route_tables[0]
    for name in ("CreateRoute", "DeleteRoute", "ReplaceRoute", "DeleteRouteTable"):
        assert route_rule_matches(ec2_call(name, routeTableId=table)), name
        assert not route_rule_matches(ec2_call(name, routeTableId="rtb-other")), name


def test_associating_the_federations_subnet_with_any_table_matches() -> None:
    assert route_rule_matches(
        ec2_call("AssociateRouteTable", routeTableId="rtb-other", subnetId=NETWORK.subnets[0])
    )
    assert not route_rule_matches(
        ec2_call("AssociateRouteTable", routeTableId="rtb-other", subnetId="subnet-other")
    )


def test_vpc_and_vpn_calls_match_only_for_the_federations_vpc_and_vpn() -> None:
    assert route_rule_matches(ec2_call("AssociateVpcCidrBlock", vpcId=NETWORK.vpc))
    assert route_rule_matches(ec2_call("CreateRouteTable", vpcId=NETWORK.vpc))
    assert not route_rule_matches(ec2_call("AssociateVpcCidrBlock", vpcId="vpc-other"))
    assert route_rule_matches(ec2_call("ModifyVpnTunnelOptions", vpnConnectionId=NETWORK.vpn))
    assert not route_rule_matches(ec2_call("ModifyVpnConnection", vpnConnectionId="vpn-other"))
    assert route_rule_matches(
        ec2_call("DetachVpnGateway", vpcId="vpc-other", vpnGatewayId=NETWORK.vgw)
    )


def test_calls_naming_only_an_association_id_always_match() -> None:
    for name in UNNARROWED_ROUTE_EVENTS:
        assert route_rule_matches(ec2_call(name, associationId="rtbassoc-0123")), name


def test_a_call_without_request_parameters_matches_only_if_unnarrowable() -> None:
    event = ec2_call("CreateRoute")
    event["detail"].pop("requestParameters")

    assert not route_rule_matches(event)


def test_without_network_ids_every_route_call_matches_by_name() -> None:
    assert route_rule_matches(ec2_call("CreateRoute", routeTableId="rtb-other"), network=None)
