"""The project's CDK code calls no deprecated API: under the tests a deprecated call fails
(``JSII_DEPRECATED=fail``, set in tests/conftest.py), so every synthesized test proves it."""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("infra")]


def test_a_deprecated_cdk_call_fails_instead_of_warning() -> None:
    import aws_cdk as cdk

    assert os.environ["JSII_DEPRECATED"] == "fail"
    stack = cdk.Stack(cdk.App(), "deprecations")
    topic = cdk.CfnResource(stack, "Topic", type="AWS::SNS::Topic")
    other = cdk.CfnResource(stack, "Other", type="AWS::SNS::Topic")

    with pytest.raises(RuntimeError, match=r"DeprecationError: .*addDependency is deprecated"):
        topic.add_dependency(other)
