"""The reconciler policy grants exactly the AWS calls fedkeeper's Lambda code makes.

The calls are collected from the source, not listed by hand: every ``<client>.<operation>(``
and ``get_paginator("<operation>")`` on a client made with ``.client("<service>")`` in the
code a Lambda runs (fedkeeper/ except the sandbox and the operator's CLI, and lambdas/),
mapped to IAM actions through botocore's service models. The policy must hold each of them
(plus what the call implies, e.g. KMS for an encrypted topic) and nothing else besides what
Lambda itself uses on the role's behalf (``stacks.automation.RUNTIME_ACTIONS``).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from aws_cdk.assertions import Match
from botocore import xform_name

from stacks.automation import IMPLIED_ACTIONS, RUNTIME_ACTIONS
from tests.infra.conftest import PROJECT_ROOT, Synth

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("infra")]

# Code that never runs in the Lambdas: the sandbox and the CLI (it runs as the operator).
NOT_IN_LAMBDA = ("fedkeeper/sandbox/", "fedkeeper/cli.py")
# Calls that need no IAM permission (AWS STS API reference: GetCallerIdentity "No
# permissions are required"); EKS, not the role, sends the presigned token request.
NEEDS_NO_PERMISSION = {"sts:GetCallerIdentity"}


def lambda_sources() -> list[Path]:
    files = [
        *sorted((PROJECT_ROOT / "fedkeeper").rglob("*.py")),
        *(PROJECT_ROOT / "lambdas").glob("*.py"),
    ]
    return [f for f in files if not str(f.relative_to(PROJECT_ROOT)).startswith(NOT_IN_LAMBDA)]


def _client_service(node: ast.AST) -> str | None:
    """``x.client("svc", ...)`` → ``svc``."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "client"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return node.args[0].value
    return None


def boto3_calls(source: str) -> set[tuple[str, str]]:
    """(service, snake_case method) of every client call in ``source``."""
    calls: set[tuple[str, str]] = set()
    tree = ast.parse(source)
    for scope in ast.walk(tree):
        if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module)):
            continue
        clients: dict[str, str] = {}
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign) and (service := _client_service(node.value)):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        clients[target.id] = service
        for node in ast.walk(scope):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            receiver = node.func.value
            service = _client_service(receiver) or (
                clients.get(receiver.id) if isinstance(receiver, ast.Name) else None
            )
            if service is None:
                continue
            method = node.func.attr
            if method == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
                method = str(node.args[0].value)
            calls.add((service, method))
    return calls


def iam_actions(calls: set[tuple[str, str]]) -> set[str]:
    """The IAM actions of client calls; methods that are no API operation are skipped."""
    session = botocore.session.get_session()
    actions: set[str] = set()
    for service, method in calls:
        model = session.get_service_model(service)
        operations = {xform_name(op): op for op in model.operation_names}
        if method in operations:
            actions.add(f"{model.signing_name}:{operations[method]}")
    return actions


def code_actions() -> set[str]:
    calls = set().union(*(boto3_calls(f.read_text(encoding="utf-8")) for f in lambda_sources()))
    return iam_actions(calls) - NEEDS_NO_PERMISSION


def policy_actions(synth: Synth) -> set[str]:
    found = synth.automation.find_resources(
        "AWS::IAM::Policy", {"Properties": {"PolicyName": Match.string_like_regexp("Reconciler")}}
    )
    (policy,) = found.values()
    actions: set[str] = set()
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        action: Any = statement["Action"]
        actions.update(action if isinstance(action, list) else [action])
    return actions


def test_the_collector_sees_client_calls_paginators_and_named_clients() -> None:
    source = (
        "def f(self):\n"
        "    ec2 = self.client('ec2')\n"
        "    ec2.get_paginator('describe_route_tables')\n"
        "    self.client('eks').update_addon(name='x')\n"
        "    ec2.meta.region_name\n"
    )

    assert iam_actions(boto3_calls(source)) == {"ec2:DescribeRouteTables", "eks:UpdateAddon"}


def test_the_code_makes_the_calls_the_invariants_need() -> None:
    # A sanity floor: the collector found the adapters' calls at all.
    assert {
        "ec2:DescribeRouteTables",
        "ec2:EnableVgwRoutePropagation",
        "eks:UpdateAddon",
        "secretsmanager:GetSecretValue",
        "cloudtrail:GetTrailStatus",
    } <= code_actions()


def test_every_call_the_code_makes_is_granted(synth: Synth) -> None:
    needed = code_actions()
    implied = {a for call in needed for a in IMPLIED_ACTIONS.get(call, ())}

    assert sorted((needed | implied) - policy_actions(synth)) == []


def test_the_policy_grants_nothing_the_code_or_lambda_does_not_use(synth: Synth) -> None:
    needed = code_actions()
    implied = {a for call in needed for a in IMPLIED_ACTIONS.get(call, ())}

    assert sorted(policy_actions(synth) - needed - implied - set(RUNTIME_ACTIONS)) == []
    assert sorted(set(RUNTIME_ACTIONS) - policy_actions(synth)) == []
