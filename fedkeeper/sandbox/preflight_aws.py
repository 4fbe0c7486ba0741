"""A fresh sandbox account for ``fedkeeper preflight --sandbox``, and the calls moto lacks.

``fedkeeper preflight`` runs before ``cdk deploy``, so its sandbox is an account where
nothing of the federation exists yet: moto's fresh account (with its default VPC), the CDK
bootstrap stack and the two Calico secrets an operator puts first (docs/DEPLOY.md, steps 1
and 3). What moto does not answer is filled here, at ``before-call`` on the session (the
answer is the parsed response botocore would have built), from the public API references:

- ``lambda.GetAccountSettings`` (moto: not implemented): ``AccountLimit`` with the account's
  ``ConcurrentExecutions`` (default 1,000, the usual quota; new accounts may have 10) and
  ``UnreservedConcurrentExecutions`` (the quota less every function's reservation).
  Source: AWS Lambda API Reference, GetAccountSettings.
- ``eks.DescribeClusterVersions`` (moto: not implemented): the versions of
  :mod:`fedkeeper.eks_versions` EKS still offers on the day (until end of extended support),
  with ``status`` ``STANDARD_SUPPORT`` or ``EXTENDED_SUPPORT`` and the support dates, filtered
  by ``clusterVersions``. Source: Amazon EKS API Reference, DescribeClusterVersions.
- ``service-quotas.GetServiceQuota`` for ``ec2`` ``L-0263D0A3`` (EC2-VPC Elastic IPs; moto
  knows only the ``vpc`` quotas). Other ``ec2`` quotas are refused with
  ``NoSuchResourceException`` as the real service does for an unknown code.

The CloudFormation bootstrap stack is moto's own CloudFormation, given the stack ``cdk
bootstrap`` deploys in outline: the ``/cdk-bootstrap/hnb659fds/version`` parameter and the
``BootstrapVersion`` output.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from fedkeeper.config import FederationConfig
from fedkeeper.eks_versions import CALENDAR, Support
from fedkeeper.sandbox.aws import SandboxAws

SANDBOX_ACCOUNT = "123456789012"  # moto's default account
# What `cdk bootstrap` of aws-cdk 2.x deploys today (its template's CdkBootstrapVersion).
BOOTSTRAP_VERSION = 30
ELASTIC_IP_QUOTA = ("ec2", "L-0263D0A3", "EC2-VPC Elastic IPs")
_PARAMS = "fedkeeper_preflight_params"


@dataclass
class AccountLimits:
    """What the sandbox account's quotas are (tests lower them)."""

    lambda_concurrency: int = 1000
    elastic_ips: int = 5
    today: date | None = None  # the day DescribeClusterVersions answers for


def _answer(parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    return AWSResponse("https://sandbox.invalid/", 200, {}, None), parsed


def _refuse(operation: str, code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def register_preflight_gap_fills(session: boto3.Session, limits: AccountLimits) -> None:
    """Answer the calls above on ``session`` (register before creating its clients)."""

    def account_settings(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        reserved = 0
        client = session.client("lambda")
        for page in client.get_paginator("list_functions").paginate():
            for function in page.get("Functions", []):
                got = client.get_function_concurrency(FunctionName=function["FunctionName"])
                reserved += int(got.get("ReservedConcurrentExecutions") or 0)
        total = limits.lambda_concurrency
        return _answer(
            {
                "AccountLimit": {
                    "ConcurrentExecutions": total,
                    "UnreservedConcurrentExecutions": total - reserved,
                    "CodeSizeUnzipped": 262144000,
                    "CodeSizeZipped": 52428800,
                    "TotalCodeSize": 80530636800,
                },
                "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0},
            }
        )

    def cluster_versions(context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        params = context.get(_PARAMS, {})
        today = limits.today or date.today()
        wanted = set(params.get("clusterVersions") or [])
        versions = []
        for release in CALENDAR:
            support = release.support_on(today)
            if support not in (Support.STANDARD, Support.EXTENDED):
                continue
            if wanted and release.version not in wanted:
                continue
            versions.append(
                {
                    "clusterVersion": release.version,
                    "clusterType": "eks",
                    "releaseDate": _utc(release.eks_release),
                    "endOfStandardSupportDate": _utc(release.end_of_standard_support),
                    "endOfExtendedSupportDate": _utc(release.end_of_extended_support),
                    "status": "STANDARD_SUPPORT"
                    if support is Support.STANDARD
                    else "EXTENDED_SUPPORT",
                }
            )
        return _answer({"clusterVersions": versions})

    def service_quota(
        context: dict[str, Any], **_: Any
    ) -> tuple[AWSResponse, dict[str, Any]] | None:
        params = context.get(_PARAMS, {})
        if params.get("ServiceCode") != "ec2":
            return None  # moto answers the vpc quotas itself
        service, code, name = ELASTIC_IP_QUOTA
        if params.get("QuotaCode") != code:
            raise _refuse("GetServiceQuota", "NoSuchResourceException", "no such quota")
        return _answer(
            {
                "Quota": {
                    "ServiceCode": service,
                    "QuotaCode": code,
                    "QuotaName": name,
                    "Value": float(limits.elastic_ips),
                    "Adjustable": True,
                    "GlobalQuota": False,
                }
            }
        )

    def stash(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        # before-call sees the serialized request; keep the caller's parameters for it.
        context[_PARAMS] = dict(params)

    events = session.events
    for op in ("eks.DescribeClusterVersions", "service-quotas.GetServiceQuota"):
        events.register(f"before-parameter-build.{op}", stash, unique_id=f"preflight-p-{op}")
    events.register(
        "before-call.lambda.GetAccountSettings", account_settings, unique_id="preflight-lambda"
    )
    events.register(
        "before-call.eks.DescribeClusterVersions", cluster_versions, unique_id="preflight-eks"
    )
    events.register(
        "before-call.service-quotas.GetServiceQuota", service_quota, unique_id="preflight-sq"
    )


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def bootstrap_account(session: boto3.Session, version: int = BOOTSTRAP_VERSION) -> None:
    """What `cdk bootstrap` leaves behind that preflight reads: the CDKToolkit stack."""
    template = {
        "Resources": {
            "CdkBootstrapVersion": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {
                    "Type": "String",
                    "Name": "/cdk-bootstrap/hnb659fds/version",
                    "Value": str(version),
                },
            }
        },
        "Outputs": {"BootstrapVersion": {"Value": str(version)}},
    }
    session.client("cloudformation").create_stack(
        StackName="CDKToolkit", TemplateBody=json.dumps(template)
    )


def put_calico_secrets(session: boto3.Session, config: FederationConfig) -> None:
    """The pull secret and licence an operator stores before the deploy (placeholders)."""
    calico = config.sole_eks().calico
    auth = base64.b64encode(b"sandbox:sandbox").decode()
    config_json = json.dumps({"auths": {calico.registry.rstrip("/"): {"auth": auth}}})
    licence = (
        "apiVersion: projectcalico.org/v3\nkind: LicenseKey\nmetadata:\n  name: default\n"
        "spec:\n  token: sandbox-licence-token\n  certificate: sandbox-licence-certificate\n"
    )
    client = session.client("secretsmanager")
    client.create_secret(Name=calico.pull_secret_source, SecretString=config_json)
    client.create_secret(Name=calico.license_secret_name, SecretString=licence)


@contextlib.contextmanager
def preflight_sandbox(
    config: FederationConfig, limits: AccountLimits | None = None, *, prepared: bool = True
) -> Iterator[tuple[boto3.Session, str]]:
    """A fresh sandbox account (bootstrapped, secrets in place unless not ``prepared``)."""
    with SandboxAws(config.aws.region) as aws:
        session = aws.session()
        register_preflight_gap_fills(session, limits or AccountLimits())
        if prepared:
            bootstrap_account(session)
            put_calico_secrets(session, config)
        yield session, SANDBOX_ACCOUNT
