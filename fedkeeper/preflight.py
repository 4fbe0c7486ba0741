"""``fedkeeper preflight``: would ``cdk deploy --all`` succeed in this account and region?

Read-only calls only. Each check says what it found and, when the deploy (or the federation
after it) would fail, what would fail and the fix:

- the CDK bootstrap stack and its version;
- the Lambda concurrency quota against what the stacks reserve;
- VPC, internet gateway, Elastic IP, NAT gateway, VPN and VGW quotas against what the
  stacks create;
- the secrets the deploy needs (pull secret, licence, on-prem kubeconfig): present and
  parsable, never printed;
- the EKS version: offered in the region, with at least 6 months of standard support left;
- the on-prem endpoint: an IP routed over the VPN, or a name and what resolving it from the
  VPC needs.

Exit codes: 0 ready, 1 something would fail, 2 bad input (config, credentials, arguments).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from fedkeeper.adapters.auth import parse_kubeconfig
from fedkeeper.calico_install import license_manifest, pull_secret_config
from fedkeeper.config import FederationConfig
from fedkeeper.eks_versions import (
    DEFAULT_VERSION,
    MIN_STANDARD_SUPPORT_LEFT_DAYS,
    standard_support_end,
)
from fedkeeper.errors import FedkeeperError

BOOTSTRAP_STACK = "CDKToolkit"
# The cloud assembly's assets need bootstrap version 6 or newer (aws-cdk-lib's
# DefaultStackSynthesizer writes requiresBootstrapStackVersion: 6 into the manifest;
# tests/infra checks the synthesized manifest against this).
MIN_BOOTSTRAP_VERSION = 6
_BOOTSTRAP_OK = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE")
# What the stacks reserve in total: nothing (the watch keeps one invocation watching with a
# lease, not a reservation). tests/infra checks the templates' sum against this.
STACK_RESERVED_CONCURRENCY = 0
# Lambda keeps this much of the account's concurrency unreserved: a reservation that would
# leave less is refused at CreateFunction (Lambda developer guide, "Configuring reserved
# concurrency").
LAMBDA_UNRESERVED_MINIMUM = 100


@dataclass(frozen=True)
class Quota:
    """One Service Quotas quota, with AWS's documented default if the service does not say."""

    key: str  # the check's name: quota.<key>
    name: str
    service_code: str
    quota_code: str
    default: float


# Codes and defaults: Service Quotas (vpc, ec2) and the Amazon VPC / Site-to-Site VPN quota
# pages (https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html,
# https://docs.aws.amazon.com/vpn/latest/s2svpn/vpn-limits.html). The VPN quotas are looked
# up by name (their codes are not fixed here); when not listed, the default applies.
VPCS = Quota("vpcs", "VPCs per Region", "vpc", "L-F678F1CE", 5)
INTERNET_GATEWAYS = Quota("igws", "Internet gateways per Region", "vpc", "L-A4707A72", 5)
NAT_GATEWAYS = Quota("nat-gateways", "NAT gateways per Availability Zone", "vpc", "L-FE5A380F", 5)
ELASTIC_IPS = Quota("elastic-ips", "EC2-VPC Elastic IPs", "ec2", "L-0263D0A3", 5)
VGWS = Quota("vgws", "Virtual private gateways per Region", "ec2", "", 5)
VPN_CONNECTIONS = Quota("vpns", "Site-to-Site VPN connections per Region", "ec2", "", 50)


@dataclass(frozen=True)
class Check:
    """One finding: ``status`` ok, warn (the deploy works, something later may not) or fail."""

    name: str
    status: str
    message: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return type(exc).__name__


# --- the CDK bootstrap stack -----------------------------------------------------------------


def check_bootstrap(cloudformation: Any, account: str, region: str) -> Check:
    fix = f"cdk bootstrap aws://{account}/{region}"
    try:
        stacks = cloudformation.describe_stacks(StackName=BOOTSTRAP_STACK)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return Check(
                "bootstrap",
                "fail",
                f"no {BOOTSTRAP_STACK} stack: cdk deploy has nowhere to upload the Lambda code "
                "and the Calico chart",
                fix,
            )
        raise
    stack = stacks[0]
    status = str(stack.get("StackStatus"))
    if status not in _BOOTSTRAP_OK:
        return Check(
            "bootstrap", "fail", f"{BOOTSTRAP_STACK} is {status}", f"repair it, then {fix}"
        )
    outputs = {o["OutputKey"]: o.get("OutputValue") for o in stack.get("Outputs") or []}
    try:
        version = int(str(outputs.get("BootstrapVersion")))
    except ValueError:
        return Check("bootstrap", "fail", f"{BOOTSTRAP_STACK} has no BootstrapVersion", fix)
    if version < MIN_BOOTSTRAP_VERSION:
        return Check(
            "bootstrap",
            "fail",
            f"{BOOTSTRAP_STACK} is at version {version}; the assets need "
            f"{MIN_BOOTSTRAP_VERSION} or newer",
            fix,
        )
    return Check("bootstrap", "ok", f"{BOOTSTRAP_STACK} at version {version}")


# --- Lambda concurrency ----------------------------------------------------------------------


def check_lambda_concurrency(
    lambda_client: Any, reserved: int = STACK_RESERVED_CONCURRENCY
) -> Check:
    limits = lambda_client.get_account_settings()["AccountLimit"]
    total = int(limits["ConcurrentExecutions"])
    unreserved = int(limits["UnreservedConcurrentExecutions"])
    if reserved and unreserved - reserved < LAMBDA_UNRESERVED_MINIMUM:
        return Check(
            "lambda-concurrency",
            "fail",
            f"the functions reserve {reserved} of {unreserved} unreserved executions "
            f"(quota {total}); Lambda keeps {LAMBDA_UNRESERVED_MINIMUM} unreserved, so "
            "CreateFunction would be refused",
            "ask for more: Service Quotas, AWS Lambda, Concurrent executions (L-B99A9384), "
            f"to at least {LAMBDA_UNRESERVED_MINIMUM + reserved + (total - unreserved)}",
        )
    return Check(
        "lambda-concurrency",
        "ok",
        f"quota {total}, {unreserved} unreserved; the functions reserve {reserved}",
    )


# --- quotas against what the stacks create ---------------------------------------------------


def quota_value(service_quotas: Any, quota: Quota) -> tuple[float, str]:
    """The account's value of ``quota`` and where it came from."""
    calls: list[Callable[[], Any]] = []
    if quota.quota_code:
        args = {"ServiceCode": quota.service_code, "QuotaCode": quota.quota_code}
        calls = [
            lambda: service_quotas.get_service_quota(**args)["Quota"],
            lambda: service_quotas.get_aws_default_service_quota(**args)["Quota"],
        ]
    else:
        calls = [lambda: _quota_by_name(service_quotas, quota)]
    for call in calls:
        try:
            found = call()
        except (ClientError, BotoCoreError, NotImplementedError):
            # Not listed for this account (or, in the sandbox, not emulated): next source.
            continue
        if found:
            return float(found["Value"]), "Service Quotas"
    return quota.default, "AWS default"


def _quota_by_name(service_quotas: Any, quota: Quota) -> dict[str, Any] | None:
    pages = service_quotas.get_paginator("list_service_quotas")
    for page in pages.paginate(ServiceCode=quota.service_code):
        for item in page.get("Quotas", []):
            if item.get("QuotaName") == quota.name:
                return dict(item)
    return None


def _alive(items: Iterable[dict[str, Any]], key: str = "State") -> list[dict[str, Any]]:
    return [
        i for i in items if str(i.get(key, "")).lower() not in ("deleted", "deleting", "failed")
    ]


def check_quotas(ec2: Any, service_quotas: Any, config: FederationConfig) -> list[Check]:
    """Each quota the stacks draw on: in use + what the stacks add <= the quota."""
    nat = config.sole_eks().network.nat_gateways
    vpcs = len(ec2.describe_vpcs()["Vpcs"])
    igws = len(ec2.describe_internet_gateways()["InternetGateways"])
    eips = len(ec2.describe_addresses()["Addresses"])
    vgws = len(_alive(ec2.describe_vpn_gateways()["VpnGateways"]))
    vpns = len(_alive(ec2.describe_vpn_connections()["VpnConnections"]))
    nat_per_az: dict[str, int] = {}
    subnets = {s["SubnetId"]: s["AvailabilityZone"] for s in ec2.describe_subnets()["Subnets"]}
    for gateway in _alive(ec2.describe_nat_gateways()["NatGateways"]):
        zone = subnets.get(str(gateway.get("SubnetId")), "?")
        nat_per_az[zone] = nat_per_az.get(zone, 0) + 1
    busiest_az = max(nat_per_az.values(), default=0)
    wanted = (
        (VPCS, vpcs, 1, "the network stack's VPC"),
        (INTERNET_GATEWAYS, igws, 1, "its internet gateway"),
        (ELASTIC_IPS, eips, nat, f"{nat} NAT gateway address(es)"),
        (NAT_GATEWAYS, busiest_az, 1, "one NAT gateway in each of the first zones"),
        (VGWS, vgws, 1, "its virtual private gateway"),
        (VPN_CONNECTIONS, vpns, 1, "its Site-to-Site VPN connection"),
    )
    checks = []
    for quota, used, adds, what in wanted:
        limit, source = quota_value(service_quotas, quota)
        name = f"quota.{quota.key}"
        text = f"{quota.name}: {used} in use + {adds} ({what}) of {limit:g} ({source})"
        if used + adds > limit:
            code = f" ({quota.quota_code})" if quota.quota_code else ""
            checks.append(
                Check(
                    name,
                    "fail",
                    text + ": the deploy would be refused",
                    f"free {used + adds - int(limit)}, or raise the quota in Service Quotas "
                    f"({quota.service_code}, {quota.name}{code}) to {used + adds:g}",
                )
            )
        else:
            checks.append(Check(name, "ok", text))
    return checks


# --- secrets -----------------------------------------------------------------------------------


def _secret_text(secrets: Any, name: str) -> tuple[str | None, dict[str, Any] | None, str]:
    """(value, description, problem): the value never leaves this module but parsed."""
    try:
        value = secrets.get_secret_value(SecretId=name)
    except ClientError as exc:
        code = _error_code(exc)
        if code == "ResourceNotFoundException":
            return None, None, "missing"
        return None, None, f"unreadable ({code})"
    described = secrets.describe_secret(SecretId=name)
    return str(value.get("SecretString") or ""), described, ""


def check_secrets(secrets: Any, config: FederationConfig) -> list[Check]:
    calico = config.sole_eks().calico
    checks = []
    parsers: tuple[tuple[str, str, Callable[[str, str], object], str], ...] = (
        ("secret.pull", calico.pull_secret_source, pull_secret_config, "file://config.json"),
        (
            "secret.license",
            calico.license_secret_name,
            lambda text, src: license_manifest(text, src, "projectcalico.org", "v3"),
            "file://license.yaml",
        ),
    )
    for check, name, parse, source in parsers:
        text, _, problem = _secret_text(secrets, name)
        if problem:
            checks.append(
                Check(
                    check,
                    "fail",
                    f"Secrets Manager secret {name} is {problem}: the calico stack's installer "
                    "would fail before the chart",
                    f"aws secretsmanager create-secret --name {name} --secret-string {source}",
                )
            )
            continue
        try:
            parse(text or "", name)
        except FedkeeperError as exc:
            checks.append(Check(check, "fail", str(exc), f"put the right value in {name}"))
            continue
        checks.append(Check(check, "ok", f"Secrets Manager secret {name} present and parsable"))
    checks.append(_check_onprem_secret(secrets, config))
    return checks


def _check_onprem_secret(secrets: Any, config: FederationConfig) -> Check:
    name = config.sole_site().credentials_secret
    text, described, problem = _secret_text(secrets, name)
    put = (
        f"`fedkeeper onprem-bootstrap --apply --context <on-prem>` prints the "
        f"`aws secretsmanager put-secret-value --secret-id {name}` command"
    )
    if not name.startswith("arn:"):
        if problem == "missing":
            return Check(
                "secret.onprem",
                "ok",
                f"{name} does not exist yet: the automation stack creates it (put the on-prem "
                "kubeconfig after the deploy)",
            )
        tag_key, tag_value = config.federation_tag
        tags = {t["Key"]: t["Value"] for t in (described or {}).get("Tags") or []}
        if tags.get(tag_key) != tag_value:
            return Check(
                "secret.onprem",
                "fail",
                f"a secret named {name} exists and is not this federation's: the automation "
                "stack could not create it",
                "put its ARN in onprem.credentials_secret (the stack then only reads it), or "
                "choose another name",
            )
    elif problem:
        return Check(
            "secret.onprem",
            "fail",
            f"the on-prem kubeconfig secret {name} is {problem}",
            "create it, or name an existing secret's ARN in onprem.credentials_secret",
        )
    try:
        kubeconfig = parse_kubeconfig(text or "", f"secret {name}")
    except FedkeeperError:
        # A kubeconfig is put after the first deploy (step 7): not a reason to stop it.
        return Check("secret.onprem", "warn", f"{name} holds no kubeconfig yet", put)
    users = [u.get("user") or {} for u in kubeconfig.get("users") or []]
    if not any(u.get("token") for u in users):
        return Check(
            "secret.onprem",
            "warn",
            f"the kubeconfig in {name} has no service-account token (an exec plugin cannot "
            "run in the Lambdas)",
            put,
        )
    return Check("secret.onprem", "ok", f"{name} holds a kubeconfig with a token")


# --- EKS version -------------------------------------------------------------------------------


def check_eks_version(eks: Any, config: FederationConfig, today: date) -> Check:
    version = config.sole_eks().kubernetes_version
    fix = f'set eks.kubernetes_version to "{DEFAULT_VERSION}"'
    try:
        offered = eks.describe_cluster_versions(clusterVersions=[version])["clusterVersions"]
    except ClientError as exc:
        end = standard_support_end(version)
        offered = None
        source = f"fedkeeper's calendar (DescribeClusterVersions: {_error_code(exc)})"
    else:
        if not offered:
            return Check(
                "eks-version",
                "fail",
                f"EKS does not offer {version} in {config.aws.region}: CreateCluster would "
                "be refused",
                fix,
            )
        raw = offered[0].get("endOfStandardSupportDate")
        end = raw.date() if isinstance(raw, datetime) else standard_support_end(version)
        source = "DescribeClusterVersions"
    if end is None:
        return Check("eks-version", "warn", f"no standard-support date known for {version}", fix)
    left = (end - today).days
    if left < MIN_STANDARD_SUPPORT_LEFT_DAYS:
        return Check(
            "eks-version",
            "fail",
            f"{version} leaves standard support on {end.isoformat()} ({left} days; "
            f"{source}): within months the cluster needs an upgrade or is billed extended "
            "support",
            fix,
        )
    return Check(
        "eks-version",
        "ok",
        f"{version} offered, standard support until {end.isoformat()} ({left} days; {source})",
    )


# --- the on-prem endpoint ----------------------------------------------------------------------


def check_onprem_endpoint(resolver: Any, config: FederationConfig) -> Check:
    host = urlsplit(config.sole_site().api_endpoint).hostname or ""
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        address = None
    if address is not None:
        covering = [c for c in config.sole_site().host_cidrs if address in c]
        if not covering:
            return Check(
                "onprem-endpoint",
                "fail",
                f"{address} is in no onprem.host_cidrs: the VPN routes and the Lambdas' "
                "security group cover only those, so no repair could reach on-prem",
                "add its CIDR to onprem.host_cidrs, or correct onprem.api_endpoint",
            )
        return Check(
            "onprem-endpoint", "ok", f"{address} is reached over the VPN (in {covering[0]})"
        )
    rules = []
    for page in resolver.get_paginator("list_resolver_rules").paginate():
        rules += page.get("ResolverRules", [])
    forwarding = [
        r
        for r in rules
        if r.get("RuleType") == "FORWARD"
        and (
            host == r.get("DomainName", "").rstrip(".")
            or host.endswith("." + r.get("DomainName", "").rstrip("."))
        )
    ]
    if forwarding:
        rule = forwarding[0]
        return Check(
            "onprem-endpoint",
            "warn",
            f"{host} resolves through Route 53 Resolver rule {rule.get('Id')} "
            f"({rule.get('DomainName')}) once it is associated with the VPC",
            f"after the deploy: aws route53resolver associate-resolver-rule --resolver-rule-id "
            f"{rule.get('Id')} --vpc-id <VpcId output>",
        )
    return Check(
        "onprem-endpoint",
        "warn",
        f"{host} is a name: the Lambdas resolve it with the VPC's resolver, which knows public "
        "names only; the Lambdas' security group opens the port towards onprem.host_cidrs",
        "for a private name, add a Route 53 Resolver outbound endpoint and a forwarding rule "
        "for its domain to the on-prem DNS, associated with the VPC; or write the API "
        "server's IP in onprem.api_endpoint",
    )


# --- all of it ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preflight:
    checks: list[Check]

    @property
    def ready(self) -> bool:
        return not any(c.status == "fail" for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ready": self.ready, "checks": [c.to_dict() for c in self.checks]}


def _guarded(name: str, check: Callable[[], Check | list[Check]]) -> list[Check]:
    """Run one check; a call the caller may not make (or that fails) is a failed check."""
    try:
        result = check()
    except (ClientError, BotoCoreError) as exc:
        operation = exc.operation_name if isinstance(exc, ClientError) else ""
        return [
            Check(
                name,
                "fail",
                f"could not check: {operation or type(exc).__name__} failed ({_error_code(exc)})",
                "run preflight as a principal with read access to it (e.g. ReadOnlyAccess)",
            )
        ]
    return result if isinstance(result, list) else [result]


def run_preflight(session: Any, config: FederationConfig, account: str, today: date) -> Preflight:
    """Every check, against ``session`` (read-only calls only)."""
    region = session.region_name
    client = session.client
    checks: list[tuple[str, Callable[[], Check | list[Check]]]] = [
        ("bootstrap", lambda: check_bootstrap(client("cloudformation"), account, region)),
        ("lambda-concurrency", lambda: check_lambda_concurrency(client("lambda"))),
        ("quota", lambda: check_quotas(client("ec2"), client("service-quotas"), config)),
        ("secret", lambda: check_secrets(client("secretsmanager"), config)),
        ("eks-version", lambda: check_eks_version(client("eks"), config, today)),
        ("onprem-endpoint", lambda: check_onprem_endpoint(client("route53resolver"), config)),
    ]
    return Preflight([c for name, check in checks for c in _guarded(name, check)])


def render_preflight(result: Preflight) -> str:
    """One line per check (the fix under a failing one), then the verdict."""
    lines = []
    for check in result.checks:
        lines.append(f"{check.status:<4}  {check.name:<22} {check.message}")
        if check.fix and check.status != "ok":
            lines.append(f"{'':<28}fix: {check.fix}")
    failed = sum(c.status == "fail" for c in result.checks)
    lines.append(
        "ready: cdk deploy --all should succeed"
        if result.ready
        else f"not ready: {failed} problem(s) would make cdk deploy --all fail"
    )
    return "\n".join(lines)
