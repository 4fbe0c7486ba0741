"""The automation: Lambdas that notice drift and repair it, and what watches them.

Four functions share one code asset (``stacks.bundling``), each invoked through its ``live``
alias (SnapStart applies to published versions): ``on_tunnel_state``, ``on_route_change``,
``on_cluster_event`` and ``repair``. EventBridge rules come from
:func:`fedkeeper.events.rules`, so the deployed patterns are the ones the sandbox routes
with. Per VPN tunnel a ``TunnelState`` alarm (named by :func:`fedkeeper.events.
tunnel_alarm_name`) feeds the tunnel rule. Failures go to one encrypted dead-letter queue
and to an SNS topic (whose policy lets CloudWatch publish for exactly these alarms); a
dashboard shows tunnels and the ``Fedkeeper`` metrics. With ``aws.cloudtrail: create`` a
write-only management-events trail makes the API-call rules' events arrive at all.

The Lambdas run as the reconciler role created by the cluster stack (its EKS access entry
needs the ARN there); its permissions live here, in one least-privilege policy, so neither
stack refers back to the other.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aws_cdk as cdk
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from aws_cdk import custom_resources as cr
from constructs import Construct

from fedkeeper.config import CloudTrailMode, FederationConfig, OnPremConfig
from fedkeeper.events import (
    HANDLERS,
    FederationNetwork,
    RuleSpec,
    route_change_detail,
    rules,
    tunnel_alarm_name,
    tunnel_alarm_prefix,
)
from fedkeeper.topology import OnPremCluster
from fedkeeper.watch import state_parameter_name
from fedkeeper.watch_function import MEMORY_MB, SCHEDULE, TIMEOUT_S
from stacks.bundling import LambdaBundle, lambda_code
from stacks.cluster import ClusterStack
from stacks.compliance import acknowledge
from stacks.network import (
    LAMBDA_VPC_DESCRIBE_ACTIONS,
    LAMBDA_VPC_ENI_ACTIONS,
    PRIVATE,
    NetworkStack,
    lambda_vpc_statements,
)
from stacks.site import construct_name

# The newest Python runtime aws-cdk-lib knows (cdk-nag AwsSolutions-L1 accepts only that);
# it supports SnapStart, and every dependency ships manylinux wheels for it.
RUNTIME = lambda_.Runtime.PYTHON_3_14
ALIAS_NAME = "live"
HANDLER_TIMEOUT = cdk.Duration.minutes(5)
HANDLER_EVENT_AGE = cdk.Duration.hours(1)
CONFIG_PATH_IN_LAMBDA = "/var/task/federation.yaml"
METRICS_NAMESPACE = "Fedkeeper"
METRICS_DIMENSIONS = {"service": "fedkeeper"}
FEDKEEPER_METRICS = ("DriftRepaired", "DriftFound", "Deferred", "Failures", "TunnelsUp")
TUNNELS = (1, 2)
# How long the trail's log files stay in S3 (CloudTrail's console keeps 90 days of history).
TRAIL_LOG_DAYS = 90
CLOUDTRAIL_REQUIREMENT = (
    "EventBridge delivers the route-change and cluster-api-call rules' events (AWS API Call "
    "via CloudTrail) only while a CloudTrail trail with logging covers this region; "
    "fedkeeper's checks report when none does"
)
# Secrets Manager appends "-" and six characters to a secret's name in its complete ARN.
_COMPLETE_SECRET_ARN = re.compile(r"-[A-Za-z0-9]{6}$")
# What fedkeeper's AWS adapter reads (fedkeeper/adapters/aws.py). EC2 Describe* calls
# support no resource-level permissions.
EC2_READ_ACTIONS = (
    "ec2:DescribeVpcs",
    "ec2:DescribeVpnGateways",
    "ec2:DescribeVpnConnections",
    "ec2:DescribeCustomerGateways",  # a mesh tells its sites' VPNs apart by these
    "ec2:DescribeRouteTables",
)
# What Lambda does with the role to attach the functions to the VPC (scoped to the VPC where
# IAM allows it: stacks.network.lambda_vpc_statements).
LAMBDA_VPC_ACTIONS = (
    "ec2:CreateNetworkInterface",
    *LAMBDA_VPC_DESCRIBE_ACTIONS,
    *LAMBDA_VPC_ENI_ACTIONS,
)
# Actions the reconciler role needs that fedkeeper's code never calls: Lambda itself uses
# them on the role's behalf. tests/infra/test_iam_exactness.py holds the policy to exactly
# these plus the calls the code makes (and what those calls imply).
RUNTIME_ACTIONS: dict[str, str] = {
    **dict.fromkeys(LAMBDA_VPC_ACTIONS, "Lambda attaches the function to the VPC"),
    "logs:CreateLogStream": "Lambda writes the function's logs",
    "logs:PutLogEvents": "Lambda writes the function's logs",
    "xray:PutTraceSegments": "active tracing",
    "xray:PutTelemetryRecords": "active tracing",
    "sqs:SendMessage": "Lambda sends failed async invocations to the dead-letter queue",
    "kms:GenerateDataKey": "the dead-letter queue is KMS-encrypted",
}
# What a call the code makes needs besides its own action (encrypted targets).
IMPLIED_ACTIONS: dict[str, tuple[str, ...]] = {
    "sns:Publish": ("kms:GenerateDataKey", "kms:Decrypt"),
    "secretsmanager:GetSecretValue": ("kms:Decrypt",),
}


@dataclass(frozen=True)
class WatchedVpn:
    """A VPN connection whose tunnels the automation alarms on.

    ``label`` is ``<site>-<eks>`` in a mesh; empty for a two-cluster federation's one VPN,
    whose alarms and constructs keep the names they always had.
    """

    vpn_id: str
    label: str = ""


@dataclass(frozen=True)
class HandlerFunction:
    """One deployed handler: the function, its live alias and its log group."""

    name: str
    function: lambda_.Function
    alias: lambda_.Alias
    log_group: logs.LogGroup


class AutomationStack(cdk.Stack):
    """Lambdas, EventBridge rules, alarms, DLQ, SNS, dashboard, on-prem secret, IAM."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: FederationConfig,
        config_file: Path,
        project_root: Path,
        networks: Sequence[NetworkStack],
        clusters: Sequence[ClusterStack],
        sites: Sequence[OnPremCluster],
        vpns: Sequence[WatchedVpn],
        rule_networks: Sequence[FederationNetwork],
        skip_deps: bool = False,
        **kwargs: Any,
    ) -> None:
        """The automation of the whole federation, in the home network (``networks[0]``,
        the VPC of ``clusters[0]``, whose view ``config`` is): its Lambdas reach every other
        EKS cluster's public endpoint and every site over the site's VPN to the home VPC."""
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.networks = list(networks)
        self.clusters = list(clusters)
        self.vpns = list(vpns)
        self.sites = list(sites)
        network = self.network = self.networks[0]
        cluster = self.clusters[0]

        messaging_key = self._messaging_key()
        self.topic = sns.Topic(
            self,
            "Notifications",
            topic_name=f"{config.name}-fedkeeper",
            display_name="fedkeeper failures and findings",
            master_key=messaging_key,
            enforce_ssl=True,
        )
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            queue_name=f"{config.name}-fedkeeper-dlq",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=messaging_key,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        # One kubeconfig secret per site; the first keeps the construct ids it always had,
        # the others' end in "Site" (so a site named "onprem" cannot clash with them).
        self.site_secrets = [
            self._onprem_secret(site, _site_construct(index, site.name))
            for index, site in enumerate(self.sites)
        ]
        self.onprem_secret = self.site_secrets[0][0]
        # Open episodes of persistent trouble (fedkeeper.episodes): one small item, written
        # with a version condition so two functions finishing at once notify only once.
        self.episodes = dynamodb.Table(
            self,
            "Episodes",
            table_name=f"{config.name}-fedkeeper-episodes",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )

        self.security_group = self._lambda_security_group()
        # The Lambdas reach the home EKS API on its private endpoint, guarded by the cluster
        # SG; every other EKS cluster's on its public one.
        ec2.CfnSecurityGroupIngress(
            self,
            "ClusterApiFromLambdas",
            group_id=cluster.cluster.cluster_security_group_id,
            source_security_group_id=self.security_group.security_group_id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="fedkeeper Lambdas to the EKS API server",
        )

        # Grants that constructs would add on their own are dropped (immutable import):
        # every permission is in the one policy below.
        role = iam.Role.from_role_arn(
            self, "ReconcilerRole", cluster.reconciler_role.role_arn, mutable=False
        )
        code = lambda_code(
            LambdaBundle(
                project_root=project_root,
                config_file=config_file,
                python_version=RUNTIME.name.removeprefix("python"),
                skip_deps=skip_deps,
            )
        )
        environment = {
            "FEDKEEPER_CONFIG_PATH": CONFIG_PATH_IN_LAMBDA,
            "FEDKEEPER_MODE": config.mode.value,
            "FEDKEEPER_VPC_ID": network.vpc.vpc_id,
            "FEDKEEPER_VGW_ID": network.vpn_gateway_id,
            "FEDKEEPER_VPN_CONNECTION_ID": self.vpns[0].vpn_id if self.vpns else "",
            "FEDKEEPER_CLUSTER_NAME": cluster.cluster.cluster_name,
            "FEDKEEPER_ONPREM_SECRET_ARN": self.onprem_secret.secret_arn,
            "FEDKEEPER_TOPIC_ARN": self.topic.topic_arn,
            "FEDKEEPER_EPISODES_TABLE": self.episodes.table_name,
            "POWERTOOLS_SERVICE_NAME": "fedkeeper",
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        self.handlers: dict[str, HandlerFunction] = {
            name: self._handler_function(name, code, role, environment) for name in HANDLERS
        }
        self.watch_state = self._watch_function(code, role, environment)
        self.policy = self._reconciler_policy(cluster, messaging_key)
        for handler in self.handlers.values():
            # Lambda checks the role's VPC and DLQ permissions when it creates the function.
            handler.function.node.add_dependency(self.policy)

        self.trail = self._api_call_trail()
        self.rules = [self._rule(spec) for spec in federation_rules(config, rule_networks)]
        self.tunnel_alarms = self._tunnel_alarms()
        self.alarms = [*self.tunnel_alarms, *self._failure_alarms()]
        self._allow_alarms_to_notify(self.alarms)
        self._dashboard()

        cdk.CfnOutput(self, "RepairAliasArn", value=self.handlers["repair"].alias.function_arn)
        cdk.CfnOutput(self, "NotificationTopicArn", value=self.topic.topic_arn)
        for index, (site, (secret, _)) in enumerate(
            zip(self.sites, self.site_secrets, strict=True)
        ):
            cdk.CfnOutput(
                self, f"{_site_construct(index, site.name)}SecretArn", value=secret.secret_arn
            )

    # --- encryption, notifications, secret ------------------------------------------------

    def _messaging_key(self) -> kms.Key:
        key = kms.Key(
            self,
            "MessagingKey",
            description="fedkeeper SNS topic and dead-letter queue",
            enable_key_rotation=True,
        )
        # CloudWatch alarms publish to the topic and EventBridge writes failed deliveries
        # to the queue; both need the key (AWS-managed keys would refuse them).
        for service in ("cloudwatch.amazonaws.com", "events.amazonaws.com"):
            key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"Allow{service.split('.')[0].capitalize()}",
                    principals=[iam.ServicePrincipal(service)],
                    actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                    resources=["*"],
                    conditions={"StringEquals": {"aws:SourceAccount": self.account}},
                )
            )
        return key

    def _onprem_secret(
        self, site: OnPremConfig, prefix: str
    ) -> tuple[secretsmanager.ISecret, kms.IKey | None]:
        """A site's kubeconfig secret: created with a placeholder, filled by the operator.

        ``credentials_secret`` may instead be the ARN of an existing secret; it is then only
        read (its key is unknown here, so decryption goes through Secrets Manager's
        ``kms:ViaService`` condition).
        """
        name = site.credentials_secret
        if name.startswith("arn:"):
            if _COMPLETE_SECRET_ARN.search(name):
                return secretsmanager.Secret.from_secret_complete_arn(
                    self, f"{prefix}Kubeconfig", name
                ), None
            return secretsmanager.Secret.from_secret_partial_arn(
                self, f"{prefix}Kubeconfig", name
            ), None
        key = kms.Key(
            self,
            f"{prefix}SecretKey",
            description="fedkeeper on-prem kubeconfig secret",
            enable_key_rotation=True,
        )
        secret = secretsmanager.Secret(
            self,
            f"{prefix}Kubeconfig",
            secret_name=name,
            description=f"kubeconfig (service-account token) of on-prem cluster "
            f"{site.cluster_name}; put by the operator (docs/DEPLOY.md)",
            encryption_key=key,
            # A random placeholder: no credential ever appears in the template.
            generate_secret_string=secretsmanager.SecretStringGenerator(
                exclude_punctuation=True, password_length=32
            ),
        )
        acknowledge(
            secret,
            "AwsSolutions-SMG4",
            reason="The value is a kubeconfig with a Kubernetes service-account token minted "
            "on-prem; no rotation Lambda can create it. The operator rotates the token and "
            "puts the new kubeconfig (docs/DEPLOY.md).",
        )
        return secret, key

    # --- network ----------------------------------------------------------------------------

    def _lambda_security_group(self) -> ec2.SecurityGroup:
        sg = ec2.SecurityGroup(
            self,
            "LambdaSecurityGroup",
            vpc=self.network.vpc,
            description="fedkeeper Lambdas: HTTPS to AWS APIs and EKS, the on-prem API server",
            allow_all_outbound=False,
        )
        sg.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs (via NAT) and the EKS API"
        )
        for site in self.sites:
            for peer, port in onprem_api_destinations(site):
                sg.add_egress_rule(peer, ec2.Port.tcp(port), "on-prem Kubernetes API over the VPN")
        return sg

    # --- functions ----------------------------------------------------------------------------

    def _handler_function(
        self,
        name: str,
        code: lambda_.Code,
        role: iam.IRole,
        environment: dict[str, str],
        *,
        timeout: cdk.Duration = HANDLER_TIMEOUT,
        memory_mb: int = 512,
        max_event_age: cdk.Duration = HANDLER_EVENT_AGE,
    ) -> HandlerFunction:
        construct = "".join(part.capitalize() for part in name.split("_"))
        function_name = f"{self.config.name}-{name.replace('_', '-')}"
        log_group = logs.LogGroup(
            self,
            f"{construct}Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        function = lambda_.Function(
            self,
            f"{construct}Function",
            function_name=function_name,
            description=f"fedkeeper {name}: reconcile the federation (lambdas/{name}.py)",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,  # matches the bundled wheels
            handler=f"lambdas.{name}.handler",
            code=code,
            role=role,
            memory_size=memory_mb,
            timeout=timeout,
            # No reserved concurrency: an account whose concurrency quota is still a new
            # account's (10 or 50) refuses any reservation at CreateFunction, since Lambda
            # keeps 100 unreserved. Concurrent runs are safe: writes carry resourceVersion,
            # episodes are written with a condition.
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS,
            dead_letter_queue=self.dead_letters,
            vpc=self.network.vpc,
            vpc_subnets=PRIVATE,
            security_groups=[self.security_group],
            environment=environment,
        )
        acknowledge(
            function,
            "Annotation::@aws-cdk/aws-lambda:snapStartRequirePublish",
            "The function is only invoked through its alias on a published version.",
        )
        alias = lambda_.Alias(
            self,
            f"{construct}Alias",
            alias_name=ALIAS_NAME,
            version=function.current_version,
            # Events are hints and the schedule repairs anyway: give up on stale ones.
            max_event_age=max_event_age,
            retry_attempts=2,
        )
        return HandlerFunction(name, function, alias, log_group)

    def _watch_function(
        self, code: lambda_.Code, role: iam.IRole, environment: dict[str, str]
    ) -> ssm.StringParameter:
        """lambdas/watch.py: one invocation always watching (fedkeeper/watch_function.py).

        Started every minute with no reserved concurrency: a lease (an item of the episodes
        table, written conditionally with the role's dynamodb:PutItem) lets exactly one
        watch; a start that finds it held returns at once, so no start is throttled,
        expires or is dead-lettered.
        """
        state = ssm.StringParameter(
            self,
            "WatchState",
            parameter_name=state_parameter_name(self.config),
            description="fedkeeper watch: last resourceVersion per watch, cluster liveness",
            string_value="{}",
        )
        env = {**environment, "FEDKEEPER_WATCH_STATE_PARAMETER": state.parameter_name}
        watch = self._handler_function(
            "watch",
            code,
            role,
            env,
            timeout=cdk.Duration.seconds(TIMEOUT_S),
            memory_mb=MEMORY_MB,
            # A start that could not begin within its minute is stale: the next one comes.
            max_event_age=cdk.Duration.seconds(60),
        )  # no reserved concurrency: the lease, not throttling, keeps one watcher
        self.handlers["watch"] = watch
        events.Rule(
            self,
            "WatchScheduleRule",
            rule_name=f"{self.config.name}-watch",
            description="start the watch function; its lease lets one invocation watch",
            schedule=events.Schedule.expression(SCHEDULE),
        ).add_target(
            targets.LambdaFunction(
                watch.alias, max_event_age=cdk.Duration.seconds(60), retry_attempts=0
            )
        )
        return state

    def _reconciler_policy(self, cluster: ClusterStack, messaging_key: kms.IKey) -> iam.Policy:
        stack = cdk.Stack.of(self)
        vpc_arns = [
            stack.format_arn(service="ec2", resource="vpc", resource_name=n.vpc.vpc_id)
            for n in self.networks
        ]
        # Literal names (each cluster is named by the config) keep the ARNs readable.
        cluster_names = [c.cluster_name for c in self.clusters]
        cluster_arns = [
            stack.format_arn(service="eks", resource="cluster", resource_name=name)
            for name in cluster_names
        ]
        addon_arns = [
            stack.format_arn(service="eks", resource="addon", resource_name=f"{name}/vpc-cni/*")
            for name in cluster_names
        ]
        secret_keys = [key for _, key in self.site_secrets]
        statements = [
            iam.PolicyStatement(
                sid="ReadNetwork",
                actions=list(EC2_READ_ACTIONS),
                resources=["*"],
            ),
            *lambda_vpc_statements(
                stack,
                self.network.vpc.vpc_id,
                [s.subnet_id for s in self.network.vpc.private_subnets],
                [self.security_group.security_group_id],
            ),
            iam.PolicyStatement(
                sid="PropagateVgwRoutesIntoVpcRouteTables",
                actions=["ec2:EnableVgwRoutePropagation"],
                resources=[
                    stack.format_arn(service="ec2", resource="route-table", resource_name="*")
                ],
                # Every VPC of the federation (one ARN, not a list, for a single VPC).
                conditions={
                    "ArnEquals": {"ec2:Vpc": vpc_arns[0] if len(vpc_arns) == 1 else vpc_arns}
                },
            ),
            iam.PolicyStatement(
                sid="PropagateFromTheVgw",
                actions=["ec2:EnableVgwRoutePropagation"],
                resources=[
                    stack.format_arn(
                        service="ec2", resource="vpn-gateway", resource_name=n.vpn_gateway_id
                    )
                    for n in self.networks
                ],
            ),
            iam.PolicyStatement(
                sid="ReadCluster",
                actions=["eks:DescribeCluster"],
                resources=cluster_arns,
            ),
            iam.PolicyStatement(
                sid="ManageVpcCniAddon",
                actions=["eks:DescribeAddon", "eks:UpdateAddon"],
                resources=addon_arns,
            ),
            iam.PolicyStatement(
                sid="ReadOnpremKubeconfig",
                actions=["secretsmanager:GetSecretValue"],
                resources=[_secret_policy_arn(secret) for secret, _ in self.site_secrets],
            ),
            iam.PolicyStatement(
                sid="WatchResumePoint",
                actions=["ssm:GetParameter", "ssm:PutParameter"],
                resources=[self.watch_state.parameter_arn],
            ),
            iam.PolicyStatement(
                sid="Notify",
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
            ),
            iam.PolicyStatement(
                sid="RememberTrouble",
                actions=["dynamodb:GetItem", "dynamodb:PutItem"],
                resources=[self.episodes.table_arn],
            ),
            iam.PolicyStatement(
                sid="DeadLetter",
                actions=["sqs:SendMessage"],
                resources=[self.dead_letters.queue_arn],
            ),
            iam.PolicyStatement(
                sid="EncryptMessages",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[messaging_key.key_arn],
            ),
            iam.PolicyStatement(
                sid="WriteLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[h.log_group.log_group_arn for h in self.handlers.values()],
            ),
            iam.PolicyStatement(
                # invariants/checks: a logging trail must cover the region. Trails may be
                # organization trails of another account, so their ARNs are unknown here.
                sid="ReadCloudTrailStatus",
                actions=["cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="Trace",
                actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                resources=["*"],
            ),
        ]
        via_secrets_manager = {
            "StringEquals": {"kms:ViaService": f"secretsmanager.{stack.region}.amazonaws.com"}
        }
        statements.append(
            iam.PolicyStatement(
                sid="DecryptOnpremKubeconfig",
                actions=["kms:Decrypt"],
                # An existing secret's key is unknown here: then any key, through Secrets
                # Manager only.
                resources=[key.key_arn for key in secret_keys if key is not None]
                if all(secret_keys)
                else ["*"],
                conditions=via_secrets_manager,
            )
        )
        policy = iam.Policy(
            self,
            "ReconcilerPolicy",
            roles=[
                iam.Role.from_role_name(
                    self, "ReconcilerRoleByName", cluster.reconciler_role.role_name
                )
            ],
            statements=statements,
        )
        for finding, reason in self._policy_wildcards(cluster_names).items():
            acknowledge(policy, f"AwsSolutions-IAM5[{finding}]", reason=reason)
        return policy

    def _policy_wildcards(self, cluster_names: Sequence[str]) -> dict[str, str]:
        """cdk-nag IAM5 findings of the reconciler policy, each with why it is needed."""
        stack = cdk.Stack.of(self)
        # cdk-nag shows unresolved parts as <AWS::...>; partition and region are literals
        # once the region is known.
        partition = (
            "<AWS::Partition>" if cdk.Token.is_unresolved(stack.partition) else stack.partition
        )
        region = "<AWS::Region>" if cdk.Token.is_unresolved(stack.region) else stack.region
        arn = f"arn:{partition}:{{service}}:{region}:<AWS::AccountId>:{{resource}}"
        reasons = {
            "Resource::"
            + arn.format(service="ec2", resource="network-interface/*"): "Lambda's own network "
            "interfaces get ids only when it creates them; the ec2:Vpc condition keeps them "
            "to the federation's VPC.",
            "Resource::*": "EC2 Describe* (Lambda's DescribeNetworkInterfaces/Subnets too), and "
            "X-Ray PutTraceSegments/PutTelemetryRecords and CloudTrail DescribeTrails "
            "support no resource-level permissions (AWS requires Resource *); "
            "GetTrailStatus reads whichever trail covers the region, often an organization "
            "trail owned by another account, so its ARN is not known at deploy time. "
            "With an existing on-prem secret (an ARN in the config) its KMS key is unknown: "
            "kms:Decrypt is then limited to calls made through Secrets Manager "
            "(kms:ViaService).",
            "Resource::" + arn.format(service="ec2", resource="route-table/*"): "Every route "
            "table of the federation's VPC, enforced by the ec2:Vpc condition: invariant 1 "
            "also covers route tables added after deployment.",
        }
        for cluster_name in cluster_names:
            reasons[
                "Resource::" + arn.format(service="eks", resource=f"addon/{cluster_name}/vpc-cni/*")
            ] = (
                "The vpc-cni add-on ARN ends in an id EKS assigns (it changes if the add-on is "
                "re-created); scoped to this cluster's vpc-cni add-on."
            )
        for secret, _ in self.site_secrets:
            secret_arn = _secret_policy_arn(secret)
            if secret_arn.endswith("-??????"):
                reasons[f"Resource::{secret_arn}"] = (
                    "The configured secret ARN is partial; Secrets Manager appends six random "
                    "characters, matched by -?????? (one secret)."
                )
        return reasons

    # --- CloudTrail ------------------------------------------------------------------------

    def _api_call_trail(self) -> cloudtrail.Trail | None:
        """A minimal trail, so that "AWS API Call via CloudTrail" events reach EventBridge.

        Write-only management events of this region (the rules watch writes only), log file
        validation, an S3-encrypted bucket refusing plain HTTP whose files expire after
        ``TRAIL_LOG_DAYS``. The bucket is retained on ``cdk destroy``: it holds audit logs.
        With ``aws.cloudtrail: existing`` nothing is created; the output states the
        requirement and ``checks`` verifies it.
        """
        if self.config.aws.cloudtrail is CloudTrailMode.EXISTING:
            cdk.CfnOutput(
                self,
                "CloudTrailRequirement",
                value="existing",
                description=CLOUDTRAIL_REQUIREMENT,
            )
            return None
        bucket = s3.Bucket(
            self,
            "TrailBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=False,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-trail-logs",
                    expiration=cdk.Duration.days(TRAIL_LOG_DAYS),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        acknowledge(
            bucket,
            "AwsSolutions-S1",
            "Only CloudTrail writes to this bucket; its log files are integrity-checked by "
            "CloudTrail log file validation, and a second access-log bucket would only log "
            "CloudTrail's own deliveries.",
        )
        trail = cloudtrail.Trail(
            self,
            "ApiCallTrail",
            trail_name=f"{self.config.name}-api-calls",
            bucket=bucket,
            is_multi_region_trail=False,
            include_global_service_events=False,
            management_events=cloudtrail.ReadWriteType.WRITE_ONLY,
            enable_file_validation=True,
            send_to_cloud_watch_logs=False,
        )
        cdk.CfnOutput(
            self, "CloudTrailTrailArn", value=trail.trail_arn, description=CLOUDTRAIL_REQUIREMENT
        )
        return trail

    # --- events -------------------------------------------------------------------------------

    def _rule(self, spec: RuleSpec) -> events.Rule:
        construct = "".join(part.capitalize() for part in spec.name.split("-"))
        rule = events.Rule(
            self,
            f"{construct}Rule",
            rule_name=f"{self.config.name}-{spec.name}",
            description=spec.description,
            event_pattern=event_pattern(spec.pattern) if spec.pattern else None,
            schedule=events.Schedule.expression(spec.schedule) if spec.schedule else None,
        )
        rule.add_target(
            targets.LambdaFunction(
                self.handlers[spec.handler].alias,
                dead_letter_queue=self.dead_letters,
                max_event_age=cdk.Duration.hours(1),
                retry_attempts=4,
            )
        )
        return rule

    def _tunnel_alarms(self) -> list[cw.Alarm]:
        """Two ``TunnelState`` alarms per VPN connection, named so the tunnel rule (by the
        prefix :func:`fedkeeper.events.tunnel_alarm_prefix`) covers every VPN."""
        alarms = [alarm for vpn in self.vpns for alarm in self._vpn_tunnel_alarms(vpn)]
        if self.vpns:
            provider = self.node.find_child(
                "AWS" + cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", "")
            )
            acknowledge(
                provider,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]",
                "CDK's AwsCustomResource provider (deploy-time only) writes its logs with AWS's "
                "basic execution policy; its role is managed by aws-cdk-lib.",
            )
        return alarms

    def _vpn_tunnel_alarms(self, vpn: WatchedVpn) -> list[cw.Alarm]:
        vpn_id = vpn.vpn_id
        prefix = construct_name(vpn.label)
        # AWS::EC2::VPNConnection does not return the tunnels' outside addresses (the
        # TunnelIpAddress dimension), so read them once at deploy time.
        telemetry = cr.AwsCustomResource(
            self,
            f"{prefix}TunnelAddresses",
            on_update=cr.AwsSdkCall(
                service="EC2",
                action="DescribeVpnConnections",
                parameters={"VpnConnectionIds": [vpn_id]},
                physical_resource_id=cr.PhysicalResourceId.of(vpn_id),
                output_paths=[
                    f"VpnConnections.0.VgwTelemetry.{i - 1}.OutsideIpAddress" for i in TUNNELS
                ],
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["ec2:DescribeVpnConnections"], resources=["*"])]
            ),
            install_latest_aws_sdk=False,
        )
        acknowledge(
            telemetry,
            "AwsSolutions-IAM5[Resource::*]",
            "ec2:DescribeVpnConnections supports no resource-level permissions; the call "
            "runs once per deployment to read the tunnels' outside addresses.",
        )
        alarms = []
        for index in TUNNELS:
            metric = tunnel_metric(
                vpn_id,
                telemetry.get_response_field(
                    f"VpnConnections.0.VgwTelemetry.{index - 1}.OutsideIpAddress"
                ),
            )
            if vpn.label:
                name = f"{tunnel_alarm_prefix(self.config)}{vpn.label}-{index}-state"
                description = f"VPN tunnel {index} of {vpn.label} is not UP (BGP)"
            else:
                name = tunnel_alarm_name(self.config, index)
                description = f"VPN tunnel {index} of the federation is not UP (BGP)"
            alarm = cw.Alarm(
                self,
                f"{prefix}Tunnel{index}StateAlarm",
                alarm_name=name,
                alarm_description=description,
                metric=metric,
                threshold=1,
                comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=1,
                # A tunnel that reports nothing is not carrying traffic.
                treat_missing_data=cw.TreatMissingData.BREACHING,
            )
            alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
            alarm.add_ok_action(cw_actions.SnsAction(self.topic))
            alarms.append(alarm)
        return alarms

    def _allow_alarms_to_notify(self, alarms: list[cw.Alarm]) -> None:
        """Let CloudWatch publish this stack's alarm actions to the topic.

        ``enforce_ssl`` gives the topic a resource policy; from then on a service principal
        needs an explicit Allow there (AWS: "Amazon SNS topic policy for CloudWatch alarms"),
        else every alarm action fails with "not authorized to perform SNS:Publish". Scoped to
        this account and exactly these alarms (confused-deputy conditions).
        """
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisStacksAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnEquals": {"aws:SourceArn": [alarm.alarm_arn for alarm in alarms]},
                },
            )
        )

    def _failure_alarms(self) -> list[cw.Alarm]:
        action = cw_actions.SnsAction(self.topic)
        dlq = cw.Alarm(
            self,
            "DeadLettersAlarm",
            alarm_name=f"{self.config.name}-fedkeeper-dead-letters",
            alarm_description="Events or invocations fedkeeper could not process",
            metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        dlq.add_alarm_action(action)
        # The functions notify each episode themselves (once when it starts, once when it
        # ends); this alarm is the same state for dashboards and composite alarms, without
        # an action of its own so operators are not told twice.
        self.trouble_alarm = cw.Alarm(
            self,
            "PersistentTroubleAlarm",
            alarm_name=f"{self.config.name}-fedkeeper-persistent-trouble",
            alarm_description=(
                "A cluster or AWS service has failed for longer than the alert window, or an "
                "invariant has failed several runs in a row (see the topic's notifications)"
            ),
            metric=cw.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name="PersistentTrouble",
                dimensions_map=METRICS_DIMENSIONS,
                statistic="Maximum",
                period=cdk.Duration.minutes(15),
            ),
            threshold=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            actions_enabled=False,
        )
        alarms = [dlq]
        for handler in self.handlers.values():
            alarm = cw.Alarm(
                self,
                f"{handler.function.node.id.removesuffix('Function')}ErrorsAlarm",
                alarm_name=f"{self.config.name}-fedkeeper-{handler.name.replace('_', '-')}-errors",
                alarm_description=f"fedkeeper {handler.name} failed",
                metric=handler.function.metric_errors(period=cdk.Duration.minutes(5)),
                threshold=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(action)
            alarms.append(alarm)
        return alarms

    def _dashboard(self) -> cw.Dashboard:
        def fedkeeper_metric(name: str, statistic: str = "Sum") -> cw.Metric:
            return cw.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=name,
                dimensions_map=METRICS_DIMENSIONS,
                statistic=statistic,
                period=cdk.Duration.minutes(5),
            )

        dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"{self.config.name}-fedkeeper")
        dashboard.add_widgets(
            cw.GraphWidget(
                title="VPN tunnel state (1 = up)",
                left=[alarm.metric for alarm in self.tunnel_alarms],
                left_y_axis=cw.YAxisProps(min=0, max=1),
                width=12,
            ),
            cw.GraphWidget(
                title="Tunnels up (fedkeeper)",
                left=[fedkeeper_metric("TunnelsUp", "Minimum")],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Drift",
                left=[fedkeeper_metric("DriftFound"), fedkeeper_metric("DriftRepaired")],
                width=12,
            ),
            cw.GraphWidget(
                title="Deferred and failed",
                left=[fedkeeper_metric("Deferred"), fedkeeper_metric("Failures")],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Lambda errors",
                left=[h.function.metric_errors() for h in self.handlers.values()],
                width=12,
            ),
            cw.GraphWidget(
                title="Dead letters",
                left=[self.dead_letters.metric_approximate_number_of_messages_visible()],
                width=12,
            ),
        )
        return dashboard


def event_pattern(pattern: dict[str, Any]) -> events.EventPattern:
    """An EventBridge pattern written as in AWS's JSON, as CDK's EventPattern."""
    keys = {
        "source": "source",
        "detail-type": "detail_type",
        "detail": "detail",
        "account": "account",
        "region": "region",
        "resources": "resources",
        "id": "id",
        "time": "time",
        "version": "version",
    }
    unknown = set(pattern) - set(keys)
    if unknown:
        raise ValueError(f"unsupported event pattern keys: {', '.join(sorted(unknown))}")
    return events.EventPattern(**{keys[k]: v for k, v in pattern.items()})


def tunnel_metric(vpn_id: str, tunnel_ip: str) -> cw.Metric:
    """``AWS/VPN TunnelState`` of one tunnel: 1 while its BGP session is up, else 0."""
    return cw.Metric(
        namespace="AWS/VPN",
        metric_name="TunnelState",
        dimensions_map={"VpnId": vpn_id, "TunnelIpAddress": tunnel_ip},
        statistic="Maximum",
        period=cdk.Duration.minutes(5),
    )


def onprem_api_destinations(site: OnPremConfig) -> list[tuple[ec2.IPeer, int]]:
    """Where a site's API server is: its address (or the host CIDRs) and port."""
    url = urlsplit(site.api_endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    host = url.hostname or ""
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        # A DNS name resolves only at run time: allow the port towards the site's hosts.
        return [(ec2.Peer.ipv4(str(cidr)), port) for cidr in site.host_cidrs]
    return [(ec2.Peer.ipv4(f"{address}/32"), port)]


def federation_rules(
    config: FederationConfig, networks: Sequence[FederationNetwork]
) -> list[RuleSpec]:
    """:func:`fedkeeper.events.rules`, the route-change rule narrowed to every network.

    Each network (a VPC with one of its VPNs, ``vpn`` empty for none) narrows the rule to
    its ids; the rule's alternatives take the union of all of them, so one rule covers every
    VPC's route tables and every VPN connection. One network gives the rule of
    :func:`~fedkeeper.events.rules` unchanged.
    """
    specs = rules(config, networks[0])
    if len(networks) == 1:
        return specs
    details = [route_change_detail(n) for n in networks]
    alternatives: list[dict[str, Any]] = []
    for index, alternative in enumerate(details[0]["$or"]):
        params = alternative.get("requestParameters")
        if params is None:
            alternatives.append(alternative)
            continue
        union = {
            key: [
                i
                for i in dict.fromkeys(
                    i for d in details for i in d["$or"][index]["requestParameters"][key]
                )
                if i
            ]
            for key in params
        }
        if all(union.values()):
            alternatives.append({**alternative, "requestParameters": union})
    detail = {**details[0], "$or": alternatives}
    return [
        replace(spec, pattern={**spec.pattern, "detail": detail})
        if spec.name == "route-change" and spec.pattern is not None
        else spec
        for spec in specs
    ]


def _site_construct(index: int, site: str) -> str:
    """The construct-id prefix of a site's secret: ``Onprem`` for the first (as always)."""
    return "Onprem" if index == 0 else f"{construct_name(site)}Site"


def _secret_policy_arn(secret: secretsmanager.ISecret) -> str:
    """The secret's ARN for a policy; a partial ARN matches the real one with ``-??????``."""
    return secret.secret_full_arn or f"{secret.secret_arn}-??????"
