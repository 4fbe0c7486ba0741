"""The automation stack: Lambdas, rules, alarms, DLQ, SNS, dashboard, secret and IAM."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match

from fedkeeper.events import HANDLERS, rules, tunnel_alarm_name
from fedkeeper.watch_function import MEMORY_MB, SCHEDULE, TIMEOUT_S
from stacks.automation import FEDKEEPER_METRICS, RUNTIME
from tests.infra.conftest import Synth

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("infra")]

FUNCTIONS = (*HANDLERS, "watch")  # the EventBridge handlers and the watch function
ENV_NAMES = {
    "FEDKEEPER_CONFIG_PATH",
    "FEDKEEPER_MODE",
    "FEDKEEPER_VPC_ID",
    "FEDKEEPER_VGW_ID",
    "FEDKEEPER_VPN_CONNECTION_ID",
    "FEDKEEPER_CLUSTER_NAME",
    "FEDKEEPER_ONPREM_SECRET_ARN",
    "FEDKEEPER_TOPIC_ARN",
    "FEDKEEPER_EPISODES_TABLE",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
}


def _functions(synth: Synth) -> dict[str, dict[str, Any]]:
    """Handler name → properties of the fedkeeper function running it."""
    found = synth.automation.find_resources(
        "AWS::Lambda::Function",
        {"Properties": {"Handler": Match.string_like_regexp(r"^lambdas\.")}},
    )
    return {
        r["Properties"]["Handler"].split(".")[1]: {"id": rid, **r["Properties"]}
        for rid, r in found.items()
    }


def _aliases(synth: Synth) -> dict[str, str]:
    """Function logical id → logical id of its alias."""
    aliases = synth.automation.find_resources("AWS::Lambda::Alias")
    return {a["Properties"]["FunctionName"]["Ref"]: aid for aid, a in aliases.items()}


def _id_of(synth: Synth, resource_type: str, props: Any | None = None) -> str:
    found = synth.automation.find_resources(
        resource_type, {"Properties": props} if props is not None else None
    )
    assert len(found) == 1, sorted(found)
    return next(iter(found))


def _policy_statements(synth: Synth) -> dict[str, dict[str, Any]]:
    policy_id = _id_of(
        synth, "AWS::IAM::Policy", {"PolicyName": Match.string_like_regexp("Reconciler")}
    )
    policy = synth.automation.find_resources("AWS::IAM::Policy")[policy_id]
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- functions ------------------------------------------------------------------------------


def test_one_function_per_handler_with_its_handler_string(synth: Synth) -> None:
    functions = _functions(synth)

    assert set(functions) == set(FUNCTIONS)
    for name, props in functions.items():
        assert props["Handler"] == f"lambdas.{name}.handler"


def test_all_functions_share_one_code_asset(synth: Synth) -> None:
    keys = {json.dumps(p["Code"], sort_keys=True) for p in _functions(synth).values()}

    assert len(keys) == 1


def test_runtime_is_the_newest_python_cdk_knows(synth: Synth) -> None:
    def version(runtime: lambda_.Runtime) -> tuple[int, ...]:
        return tuple(int(x) for x in runtime.name.removeprefix("python").split("."))

    pythons = [r for r in lambda_.Runtime.ALL if r.name.startswith("python3")]
    newest = max(pythons, key=version)

    assert RUNTIME.name == newest.name
    assert RUNTIME.supports_snap_start
    for props in _functions(synth).values():
        assert props["Runtime"] == newest.name


@pytest.mark.parametrize("handler", FUNCTIONS)
def test_function_is_traced_with_snapstart_and_a_dead_letter_queue(
    synth: Synth, handler: str
) -> None:
    props = _functions(synth)[handler]
    queue_id = _id_of(synth, "AWS::SQS::Queue")

    # No function reserves concurrency (a new account may have too little to spare); the
    # watch keeps one invocation watching with a lease.
    assert "ReservedConcurrentExecutions" not in props
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert props["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    assert props["Architectures"] == ["x86_64"]


@pytest.mark.parametrize("handler", FUNCTIONS)
def test_function_logs_to_its_own_group_with_retention(synth: Synth, handler: str) -> None:
    props = _functions(synth)[handler]
    group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
    group = synth.automation.find_resources("AWS::Logs::LogGroup")[group_id]["Properties"]

    assert group["RetentionInDays"] > 0
    assert group["LogGroupName"] == f"/aws/lambda/{props['FunctionName']}"


@pytest.mark.parametrize("handler", FUNCTIONS)
def test_function_runs_in_the_private_subnets_with_the_lambda_security_group(
    synth: Synth, handler: str
) -> None:
    vpc_config = _functions(synth)[handler]["VpcConfig"]
    sg_id = _id_of(
        synth,
        "AWS::EC2::SecurityGroup",
        {"GroupDescription": Match.string_like_regexp("fedkeeper Lambdas")},
    )

    assert vpc_config["SecurityGroupIds"] == [{"Fn::GetAtt": [sg_id, "GroupId"]}]
    outputs = [s["Fn::GetStackOutput"]["OutputName"] for s in vpc_config["SubnetIds"]]
    assert len(outputs) == synth.config.sole_eks().network.az_count
    assert all("privateSubnet" in o for o in outputs)


@pytest.mark.parametrize("handler", FUNCTIONS)
def test_function_gets_exactly_the_environment_the_lambda_code_reads(
    synth: Synth, handler: str
) -> None:
    env = _functions(synth)[handler]["Environment"]["Variables"]

    assert set(env) == ENV_NAMES | (
        {"FEDKEEPER_WATCH_STATE_PARAMETER"} if handler == "watch" else set()
    )
    assert env["FEDKEEPER_CONFIG_PATH"] == "/var/task/federation.yaml"
    assert env["FEDKEEPER_MODE"] == synth.config.mode.value
    assert env["POWERTOOLS_SERVICE_NAME"] == "fedkeeper"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Fedkeeper"
    assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
    assert env["FEDKEEPER_TOPIC_ARN"] == {"Ref": _id_of(synth, "AWS::SNS::Topic")}
    assert env["FEDKEEPER_ONPREM_SECRET_ARN"] == {
        "Ref": _id_of(synth, "AWS::SecretsManager::Secret")
    }
    for name, output in (
        ("FEDKEEPER_VPC_ID", "RefVpc8"),
        ("FEDKEEPER_VGW_ID", "VpnGateway"),
        ("FEDKEEPER_VPN_CONNECTION_ID", "VpcOnprem"),
        ("FEDKEEPER_CLUSTER_NAME", "RefCluster"),
    ):
        assert output in env[name]["Fn::GetStackOutput"]["OutputName"], name


@pytest.mark.parametrize("handler", FUNCTIONS)
def test_function_runs_as_the_reconciler_role_of_the_cluster_stack(
    synth: Synth, handler: str
) -> None:
    role = _functions(synth)[handler]["Role"]["Fn::GetStackOutput"]

    assert role["StackName"] == synth.stacks.cluster.stack_name
    assert "ReconcilerRole" in role["OutputName"]


def test_each_function_has_a_live_alias_on_a_published_version(synth: Synth) -> None:
    aliases = synth.automation.find_resources("AWS::Lambda::Alias")
    versions = synth.automation.find_resources("AWS::Lambda::Version")
    functions = _functions(synth)

    assert len(aliases) == len(versions) == len(functions)
    for alias in aliases.values():
        props = alias["Properties"]
        assert props["Name"] == "live"
        version_id = props["FunctionVersion"]["Fn::GetAtt"][0]
        assert versions[version_id]["Properties"]["FunctionName"] == props["FunctionName"]


def test_async_invocations_of_each_alias_retry_and_expire(synth: Synth) -> None:
    configs = synth.automation.find_resources("AWS::Lambda::EventInvokeConfig")

    assert len(configs) == len(FUNCTIONS)
    ages = sorted(c["Properties"]["MaximumEventAgeInSeconds"] for c in configs.values())
    assert ages == [60] + [3600] * len(HANDLERS)  # a watch start a minute late is stale
    for config in configs.values():
        assert config["Properties"]["MaximumRetryAttempts"] == 2


# --- network --------------------------------------------------------------------------------


def test_lambda_security_group_allows_only_https_and_the_onprem_api(synth: Synth) -> None:
    sg_id = _id_of(
        synth,
        "AWS::EC2::SecurityGroup",
        {"GroupDescription": Match.string_like_regexp("fedkeeper Lambdas")},
    )
    group = synth.automation.find_resources("AWS::EC2::SecurityGroup")[sg_id]["Properties"]
    egress = {
        (r["CidrIp"], r["IpProtocol"], r["FromPort"], r["ToPort"])
        for r in group["SecurityGroupEgress"]
    }

    assert egress == {
        ("0.0.0.0/0", "tcp", 443, 443),
        ("192.168.10.10/32", "tcp", 6443, 6443),  # federation.example.yaml's api_endpoint
    }
    assert "SecurityGroupIngress" not in group


def test_lambdas_may_reach_the_eks_api_through_the_cluster_security_group(synth: Synth) -> None:
    sg_id = _id_of(
        synth,
        "AWS::EC2::SecurityGroup",
        {"GroupDescription": Match.string_like_regexp("fedkeeper Lambdas")},
    )

    synth.automation.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "SourceSecurityGroupId": {"Fn::GetAtt": [sg_id, "GroupId"]},
            "GroupId": {
                "Fn::GetStackOutput": Match.object_like(
                    {"OutputName": Match.string_like_regexp("ClusterSecurityGroupId")}
                )
            },
        },
    )


# --- events ---------------------------------------------------------------------------------


def test_every_rule_of_fedkeeper_events_is_deployed_with_its_pattern_or_schedule(
    synth: Synth,
) -> None:
    deployed = {
        r["Properties"]["Name"]: r["Properties"]
        for r in synth.automation.find_resources("AWS::Events::Rule").values()
    }
    network = synth.stacks.network
    specs = rules(synth.config, network.federation_network(network.vpn_connection_id()))

    watch_rule = f"{synth.config.name}-watch"
    assert set(deployed) - {watch_rule} == {f"{synth.config.name}-{spec.name}" for spec in specs}
    for spec in specs:
        props = deployed[f"{synth.config.name}-{spec.name}"]
        if spec.pattern is not None:
            assert props["EventPattern"] == synth.stacks.automation.resolve(spec.pattern)
        else:
            assert props["ScheduleExpression"] == spec.schedule


def test_every_rule_targets_its_handlers_alias_with_a_dlq_and_a_retry_policy(
    synth: Synth,
) -> None:
    aliases = _aliases(synth)
    functions = _functions(synth)
    queue_id = _id_of(synth, "AWS::SQS::Queue")
    deployed = {
        r["Properties"]["Name"]: r["Properties"]
        for r in synth.automation.find_resources("AWS::Events::Rule").values()
    }

    for spec in rules(synth.config):
        (target,) = deployed[f"{synth.config.name}-{spec.name}"]["Targets"]
        assert target["Arn"] == {"Ref": aliases[functions[spec.handler]["id"]]}
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] > 0


def test_the_schedule_rule_runs_repair_and_the_health_rule_watches_vpn(synth: Synth) -> None:
    specs = {spec.name: spec for spec in rules(synth.config)}

    synth.automation.has_resource_properties(
        "AWS::Events::Rule",
        {"ScheduleExpression": synth.config.reconcile.schedule},
    )
    assert specs["schedule"].handler == "repair"
    synth.automation.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": Match.object_like(
                {"source": ["aws.health"], "detail": {"service": ["VPN"]}}
            )
        },
    )


def test_eventbridge_may_invoke_only_the_aliases(synth: Synth) -> None:
    aliases = set(_aliases(synth).values())
    permissions = synth.automation.find_resources(
        "AWS::Lambda::Permission", {"Properties": {"Principal": "events.amazonaws.com"}}
    )

    assert len(permissions) == len(rules(synth.config)) + 1  # + the watch schedule
    for permission in permissions.values():
        assert permission["Properties"]["FunctionName"]["Ref"] in aliases


# --- alarms, notifications, dashboard -------------------------------------------------------


@pytest.mark.parametrize("index", [1, 2])
def test_each_tunnel_has_a_tunnel_state_alarm_the_tunnel_rule_matches(
    synth: Synth, index: int
) -> None:
    name = tunnel_alarm_name(synth.config, index)
    alarms = synth.automation.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"AlarmName": name}}
    )
    (alarm,) = alarms.values()
    props = alarm["Properties"]
    (tunnel_rule,) = [s for s in rules(synth.config) if s.name == "tunnel-state"]
    assert tunnel_rule.pattern is not None
    prefix = tunnel_rule.pattern["detail"]["alarmName"][0]["prefix"]

    assert name.startswith(prefix)
    assert (props["Namespace"], props["MetricName"]) == ("AWS/VPN", "TunnelState")
    assert props["Statistic"] == "Maximum"
    assert props["ComparisonOperator"] == "LessThanThreshold"
    assert props["Threshold"] == 1
    dims = {d["Name"]: d["Value"] for d in props["Dimensions"]}
    assert set(dims) == {"VpnId", "TunnelIpAddress"}
    assert "VpcOnprem" in dims["VpnId"]["Fn::GetStackOutput"]["OutputName"]
    # The outside address is read at deploy time (VPNConnection does not return it).
    resource, path = dims["TunnelIpAddress"]["Fn::GetAtt"]
    assert path == f"VpnConnections.0.VgwTelemetry.{index - 1}.OutsideIpAddress"
    assert synth.automation.find_resources("Custom::AWS")[resource]


def test_tunnel_addresses_are_read_with_describe_vpn_connections(synth: Synth) -> None:
    (lookup,) = synth.automation.find_resources("Custom::AWS").values()
    call = json.dumps(lookup["Properties"]["Update"])

    assert "DescribeVpnConnections" in call
    synth.automation.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": [
                    Match.object_like({"Action": "ec2:DescribeVpnConnections", "Resource": "*"})
                ]
            }
        },
    )


def test_topic_is_kms_encrypted_and_refuses_plain_http(synth: Synth) -> None:
    topic_id = _id_of(synth, "AWS::SNS::Topic")

    synth.automation.has_resource_properties(
        "AWS::SNS::Topic",
        {"KmsMasterKeyId": {"Fn::GetAtt": [Match.string_like_regexp("MessagingKey"), "Arn"]}},
    )
    synth.automation.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": topic_id}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )


# What publishes an alarm action of each kind (CloudWatch alarm actions run as this service).
ALARM_ACTION_PRINCIPALS = {"AWS::SNS::Topic": "cloudwatch.amazonaws.com"}


def _allows(statement: dict[str, Any], service: str, alarm_id: str, account: Any) -> bool:
    """Whether ``statement`` lets ``service`` publish for alarm ``alarm_id`` of ``account``."""
    conditions = statement.get("Condition", {})
    source_arns = _as_list(
        conditions.get("ArnEquals", {}).get("aws:SourceArn")
        or conditions.get("ArnLike", {}).get("aws:SourceArn")
        or []
    )
    return (
        statement["Effect"] == "Allow"
        and service in _as_list(statement.get("Principal", {}).get("Service", []))
        and "sns:Publish" in _as_list(statement["Action"])
        and conditions.get("StringEquals", {}).get("aws:SourceAccount") == account
        and {"Fn::GetAtt": [alarm_id, "Arn"]} in source_arns
    )


def test_every_alarm_actions_principal_may_publish_to_its_topic(synth: Synth) -> None:
    # Given every alarm of the stack and every topic policy
    resources = synth.automation.to_json()["Resources"]
    alarms = synth.automation.find_resources("AWS::CloudWatch::Alarm")
    policies = synth.automation.find_resources("AWS::SNS::TopicPolicy").values()
    checked = 0
    for alarm_id, alarm in alarms.items():
        props = alarm["Properties"]
        for action in [*props.get("AlarmActions", []), *props.get("OKActions", [])]:
            # When the action targets a topic of this stack
            target = resources[action["Ref"]]
            service = ALARM_ACTION_PRINCIPALS[target["Type"]]
            statements = [
                s
                for p in policies
                if action in p["Properties"]["Topics"]
                for s in p["Properties"]["PolicyDocument"]["Statement"]
            ]
            # Then the topic's policy lets CloudWatch publish for exactly this alarm
            assert any(
                _allows(s, service, alarm_id, {"Ref": "AWS::AccountId"}) for s in statements
            ), alarm_id
            checked += 1
    notifying = [a for a in alarms.values() if a["Properties"].get("AlarmActions")]
    assert checked == len(notifying) + 2  # the tunnel alarms also notify when they clear


def test_persistent_trouble_has_a_table_an_alarm_and_no_second_notification(
    synth: Synth,
) -> None:
    # Given the automation stack
    tables = synth.automation.find_resources("AWS::DynamoDB::Table")
    [table] = tables.values()
    # Then the episodes table is keyed by one string and recoverable
    assert table["Properties"]["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    spec = table["Properties"]["PointInTimeRecoverySpecification"]
    assert spec == {"PointInTimeRecoveryEnabled": True}
    # And the alarm watches the metric the functions publish, without notifying again
    [alarm] = synth.automation.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"MetricName": "PersistentTrouble"}}
    ).values()
    assert alarm["Properties"]["ActionsEnabled"] is False
    assert "AlarmActions" not in alarm["Properties"]


def test_no_other_service_may_publish_to_the_topic(synth: Synth) -> None:
    (policy,) = synth.automation.find_resources("AWS::SNS::TopicPolicy").values()
    services = {
        service
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow"
        for service in _as_list(s.get("Principal", {}).get("Service", []))
    }

    assert services == {"cloudwatch.amazonaws.com"}


def test_dead_letter_queue_is_kms_encrypted_and_refuses_plain_http(synth: Synth) -> None:
    queue_id = _id_of(synth, "AWS::SQS::Queue")

    synth.automation.has_resource_properties(
        "AWS::SQS::Queue",
        {"KmsMasterKeyId": {"Fn::GetAtt": [Match.string_like_regexp("MessagingKey"), "Arn"]}},
    )
    synth.automation.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": queue_id}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_cloudwatch_and_eventbridge_may_use_the_messaging_key(synth: Synth) -> None:
    key_id = _id_of(synth, "AWS::KMS::Key", {"Description": Match.string_like_regexp("SNS")})
    key = synth.automation.find_resources("AWS::KMS::Key")[key_id]["Properties"]
    services = {
        s["Principal"]["Service"]
        for s in key["KeyPolicy"]["Statement"]
        if "Service" in s.get("Principal", {})
    }

    assert services == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    assert key["EnableKeyRotation"] is True


def test_dead_letters_and_function_errors_alarm_to_the_topic(synth: Synth) -> None:
    topic = {"Ref": _id_of(synth, "AWS::SNS::Topic")}
    queue_id = _id_of(synth, "AWS::SQS::Queue")
    alarms = [
        a["Properties"] for a in synth.automation.find_resources("AWS::CloudWatch::Alarm").values()
    ]

    dlq = [a for a in alarms if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"]
    assert len(dlq) == 1
    assert dlq[0]["Dimensions"][0]["Value"] == {"Fn::GetAtt": [queue_id, "QueueName"]}
    errors = [a for a in alarms if a.get("MetricName") == "Errors"]
    assert len(errors) == len(FUNCTIONS)
    for alarm in [*dlq, *errors]:
        assert alarm["AlarmActions"] == [topic]
    for index in (1, 2):
        (tunnel,) = [a for a in alarms if a["AlarmName"] == tunnel_alarm_name(synth.config, index)]
        assert tunnel["AlarmActions"] == [topic]


def test_dashboard_shows_tunnel_state_and_the_fedkeeper_metrics(synth: Synth) -> None:
    (dashboard,) = synth.automation.find_resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])

    assert r"\"AWS/VPN\",\"TunnelState\"" in body
    for metric in FEDKEEPER_METRICS:
        assert rf"[\"Fedkeeper\",\"{metric}\",\"service\",\"fedkeeper\"" in body


# --- the on-prem secret ---------------------------------------------------------------------


def test_onprem_secret_is_named_by_the_config_and_holds_no_value(synth: Synth) -> None:
    secret_id = _id_of(synth, "AWS::SecretsManager::Secret")
    secret = synth.automation.find_resources("AWS::SecretsManager::Secret")[secret_id]["Properties"]
    key_id = secret["KmsKeyId"]["Fn::GetAtt"][0]

    assert secret["Name"] == synth.config.sole_site().credentials_secret
    assert "SecretString" not in secret
    assert "GenerateSecretString" in secret
    key = synth.automation.find_resources("AWS::KMS::Key")[key_id]["Properties"]
    assert key["EnableKeyRotation"] is True


# --- IAM ------------------------------------------------------------------------------------


def test_reconciler_policy_is_attached_to_the_reconciler_role(synth: Synth) -> None:
    policy_id = _id_of(
        synth, "AWS::IAM::Policy", {"PolicyName": Match.string_like_regexp("Reconciler")}
    )
    policy = synth.automation.find_resources("AWS::IAM::Policy")[policy_id]
    (role,) = policy["Properties"]["Roles"]

    assert "ReconcilerRole" in role["Fn::GetStackOutput"]["OutputName"]
    for props in _functions(synth).values():
        assert (
            policy_id
            in synth.automation.find_resources("AWS::Lambda::Function")[props["id"]]["DependsOn"]
        )


def test_reconciler_policy_has_no_action_wildcards_and_no_metric_writes(synth: Synth) -> None:
    actions = [a for s in _policy_statements(synth).values() for a in _as_list(s["Action"])]

    assert all("*" not in a for a in actions)
    assert "cloudwatch:PutMetricData" not in actions
    assert not [a for a in actions if a.startswith("iam:")]


def test_route_propagation_is_limited_to_the_vpcs_route_tables_and_the_vgw(synth: Synth) -> None:
    statements = _policy_statements(synth)
    tables = statements["PropagateVgwRoutesIntoVpcRouteTables"]
    vgw = statements["PropagateFromTheVgw"]
    propagation = ["ec2:EnableVgwRoutePropagation"]  # fedkeeper never disables propagation

    assert sorted(_as_list(tables["Action"])) == propagation
    assert json.dumps(tables["Resource"]).endswith(':route-table/*"]]}')
    vpc_arn = json.dumps(tables["Condition"]["ArnEquals"]["ec2:Vpc"])
    assert ":vpc/" in vpc_arn
    assert "RefVpc8" in vpc_arn
    assert sorted(_as_list(vgw["Action"])) == propagation
    assert "VpnGateway" in json.dumps(vgw["Resource"])


def test_eks_permissions_are_scoped_to_the_cluster_and_its_vpc_cni_addon(synth: Synth) -> None:
    statements = _policy_statements(synth)
    name = synth.config.sole_eks().cluster_name

    assert _as_list(statements["ReadCluster"]["Action"]) == ["eks:DescribeCluster"]
    assert json.dumps(statements["ReadCluster"]["Resource"]).endswith(f':cluster/{name}"]]}}')
    assert sorted(_as_list(statements["ManageVpcCniAddon"]["Action"])) == [
        "eks:DescribeAddon",
        "eks:UpdateAddon",
    ]
    assert json.dumps(statements["ManageVpcCniAddon"]["Resource"]).endswith(
        f':addon/{name}/vpc-cni/*"]]}}'
    )


def test_secret_topic_and_queue_permissions_name_their_resources(synth: Synth) -> None:
    statements = _policy_statements(synth)
    secret_id = _id_of(synth, "AWS::SecretsManager::Secret")
    secret_key = synth.automation.find_resources("AWS::SecretsManager::Secret")[secret_id][
        "Properties"
    ]["KmsKeyId"]

    assert statements["ReadOnpremKubeconfig"]["Action"] == "secretsmanager:GetSecretValue"
    assert statements["ReadOnpremKubeconfig"]["Resource"] == {"Ref": secret_id}
    decrypt = statements["DecryptOnpremKubeconfig"]
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Resource"] == secret_key
    assert re.fullmatch(
        r"secretsmanager\.[a-z0-9-]+\.amazonaws\.com",
        decrypt["Condition"]["StringEquals"]["kms:ViaService"],
    )
    assert statements["Notify"]["Action"] == "sns:Publish"
    assert statements["Notify"]["Resource"] == {"Ref": _id_of(synth, "AWS::SNS::Topic")}
    assert statements["DeadLetter"]["Resource"] == {
        "Fn::GetAtt": [_id_of(synth, "AWS::SQS::Queue"), "Arn"]
    }


def test_only_aws_apis_without_resource_scoping_use_resource_star(synth: Synth) -> None:
    starred = {
        a
        for s in _policy_statements(synth).values()
        if s["Resource"] == "*"
        for a in _as_list(s["Action"])
    }

    assert starred == {
        "ec2:DescribeVpcs",
        "ec2:DescribeVpnGateways",
        "ec2:DescribeVpnConnections",
        "ec2:DescribeCustomerGateways",
        "ec2:DescribeRouteTables",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetTrailStatus",
    }


# --- CloudTrail ---------------------------------------------------------------------------


def test_a_write_only_management_events_trail_with_validation_covers_the_region(
    synth: Synth,
) -> None:
    (trail,) = synth.automation.find_resources("AWS::CloudTrail::Trail").values()
    props = trail["Properties"]

    assert props["IsLogging"] is True
    assert props["IsMultiRegionTrail"] is False
    assert props["EnableLogFileValidation"] is True
    (selector,) = props["EventSelectors"]
    assert selector == {"IncludeManagementEvents": True, "ReadWriteType": "WriteOnly"}


def test_the_trail_bucket_is_encrypted_private_expiring_and_retained(synth: Synth) -> None:
    (trail,) = synth.automation.find_resources("AWS::CloudTrail::Trail").values()
    bucket_id = trail["Properties"]["S3BucketName"]["Ref"]
    bucket = synth.automation.find_resources("AWS::S3::Bucket")[bucket_id]
    props = bucket["Properties"]

    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert all(props["PublicAccessBlockConfiguration"].values())
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] == 90
    # Audit logs outlive the stack (docs/DEPLOY.md, "What cdk destroy deletes, and what survives").
    assert bucket["DeletionPolicy"] == "Retain"
    synth.automation.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": bucket_id},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ),
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                                "Action": "s3:PutObject",
                            }
                        ),
                    ]
                )
            },
        },
    )


def test_the_route_change_rule_names_the_federations_vpc_vgw_vpn_and_route_tables(
    synth: Synth,
) -> None:
    (rule,) = synth.automation.find_resources(
        "AWS::Events::Rule", {"Properties": {"Name": f"{synth.config.name}-route-change"}}
    ).values()
    alternatives = rule["Properties"]["EventPattern"]["detail"]["$or"]
    by_key = {
        key: json.dumps(alt["requestParameters"][key])
        for alt in alternatives
        for key in alt.get("requestParameters", {})
    }
    outputs = json.dumps(by_key)

    # Each id is the network stack's resource, imported from its outputs.
    assert "RefVpc8" in by_key["vpcId"]
    assert "VpnGateway" in by_key["gatewayId"] and "VpnGateway" in by_key["vpnGatewayId"]
    assert "VpnConnection" in by_key["vpnConnectionId"] or "Onprem" in by_key["vpnConnectionId"]
    route_tables = json.loads(by_key["routeTableId"])
    assert len(route_tables) == 2 * synth.config.sole_eks().network.az_count
    assert "RouteTable" in outputs
    assert [a["eventName"] for a in alternatives if "requestParameters" not in a] == [
        ["DisassociateRouteTable", "ReplaceRouteTableAssociation", "DisassociateVpcCidrBlock"]
    ]


# --- the watch function ---------------------------------------------------------------------


def test_the_watch_function_reserves_no_concurrency_and_runs_lambdas_longest_time(
    synth: Synth,
) -> None:
    props = _functions(synth)["watch"]

    assert "ReservedConcurrentExecutions" not in props  # starts are never throttled
    assert props["Timeout"] == TIMEOUT_S == 900
    assert props["MemorySize"] == MEMORY_MB


def test_a_schedule_starts_the_watch_every_minute_and_drops_a_start_older_than_a_minute(
    synth: Synth,
) -> None:
    aliases = _aliases(synth)
    functions = _functions(synth)
    (rule,) = [
        r["Properties"]
        for r in synth.automation.find_resources("AWS::Events::Rule").values()
        if r["Properties"]["Name"] == f"{synth.config.name}-watch"
    ]

    assert rule["ScheduleExpression"] == SCHEDULE == "rate(1 minute)"
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": aliases[functions["watch"]["id"]]}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 0}


def test_the_watch_lease_is_an_item_of_the_episodes_table_the_functions_already_write(
    synth: Synth,
) -> None:
    env = _functions(synth)["watch"]["Environment"]["Variables"]
    (table_id,) = synth.automation.find_resources("AWS::DynamoDB::Table")
    statement = _policy_statements(synth)["RememberTrouble"]

    assert env["FEDKEEPER_EPISODES_TABLE"] == {"Ref": table_id}
    # A conditional PutItem takes, renews and gives up the lease: no action beyond these
    assert sorted(_as_list(statement["Action"])) == ["dynamodb:GetItem", "dynamodb:PutItem"]
    assert table_id in json.dumps(statement["Resource"])


def test_the_watch_state_is_one_ssm_parameter_the_reconciler_alone_may_read_and_write(
    synth: Synth,
) -> None:
    (param_id,) = synth.automation.find_resources("AWS::SSM::Parameter")
    param = synth.automation.find_resources("AWS::SSM::Parameter")[param_id]["Properties"]
    env = _functions(synth)["watch"]["Environment"]["Variables"]
    statement = _policy_statements(synth)["WatchResumePoint"]

    assert param["Type"] == "String"
    assert param["Name"] == f"/fedkeeper/{synth.config.name}/watch-state"
    assert env["FEDKEEPER_WATCH_STATE_PARAMETER"] == {"Ref": param_id}
    assert sorted(_as_list(statement["Action"])) == ["ssm:GetParameter", "ssm:PutParameter"]
    assert "Fn::Join" in statement["Resource"]
    assert param_id in json.dumps(statement["Resource"])


# --- fresh accounts and the Lambda VPC permissions -------------------------------------------


def test_no_function_of_any_stack_reserves_concurrency(synth: Synth) -> None:
    # A new account's concurrency quota (10 or 50) refuses any reservation: Lambda keeps 100
    # unreserved. The watch keeps one invocation watching with a lease instead.
    functions = {
        **synth.automation.find_resources("AWS::Lambda::Function"),
        **synth.calico.find_resources("AWS::Lambda::Function"),
        **synth.cluster.find_resources("AWS::Lambda::Function"),
        **synth.network.find_resources("AWS::Lambda::Function"),
    }
    reserving = {
        f["Properties"].get("Handler"): f["Properties"]["ReservedConcurrentExecutions"]
        for f in functions.values()
        if "ReservedConcurrentExecutions" in f["Properties"]
    }

    assert set(HANDLERS) <= set(_functions(synth))
    assert reserving == {}


def test_preflight_counts_what_the_stacks_reserve(synth: Synth) -> None:
    from fedkeeper.preflight import STACK_RESERVED_CONCURRENCY

    reserved = sum(
        f["Properties"].get("ReservedConcurrentExecutions", 0)
        for f in synth.automation.find_resources("AWS::Lambda::Function").values()
    )

    assert reserved == STACK_RESERVED_CONCURRENCY


def test_lambda_network_interfaces_are_scoped_to_the_federations_vpc(synth: Synth) -> None:
    statements = _policy_statements(synth)
    create = statements["CreateLambdaEnisInTheFederationSubnets"]
    manage = statements["ManageLambdaEnisInTheFederationVpc"]
    vpc_condition = {"ArnEquals": {"ec2:Vpc": Match.any_value()}}

    assert create["Action"] == "ec2:CreateNetworkInterface"
    resources = json.dumps(create["Resource"])
    assert ":subnet/" in resources and ":security-group/" in resources
    assert ":network-interface/*" in resources
    assert set(create["Condition"]) == set(vpc_condition)
    assert sorted(manage["Action"]) == [
        "ec2:AssignPrivateIpAddresses",
        "ec2:DeleteNetworkInterface",
        "ec2:UnassignPrivateIpAddresses",
    ]
    assert ":network-interface/*" in json.dumps(manage["Resource"])
    assert "ec2:Vpc" in manage["Condition"]["ArnEquals"]
    assert "ec2:DescribeSubnets" in _as_list(statements["DescribeLambdaNetwork"]["Action"])
