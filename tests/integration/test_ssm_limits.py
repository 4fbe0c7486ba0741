"""The emulated Parameter Store refuses a value longer than its tier allows, as AWS does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from fedkeeper.sandbox.aws import SandboxAws

NAME = "/fedkeeper/demo/watch-state"


@pytest.fixture(scope="module")
def ssm() -> Iterator[Any]:
    with SandboxAws("eu-west-1") as aws:  # moto's start is the slow part: once for both
        client = aws.session().client("ssm")
        client.put_parameter(Name=NAME, Value="{}", Type="String")
        yield client


def test_a_standard_parameter_takes_4096_characters_and_refuses_4097_changing_nothing(
    ssm: Any,
) -> None:
    ssm.put_parameter(Name=NAME, Value="x" * 4096, Type="String", Overwrite=True)
    with pytest.raises(ClientError) as err:
        ssm.put_parameter(Name=NAME, Value="y" * 4097, Type="String", Overwrite=True)
    error = err.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith(
        "Standard tier parameters support a maximum parameter value of 4096 characters."
    )
    assert ssm.get_parameter(Name=NAME)["Parameter"]["Value"] == "x" * 4096


def test_an_advanced_parameter_takes_8192_characters_and_refuses_more(
    ssm: Any,
) -> None:
    ssm.put_parameter(Name="/big", Value="x" * 8192, Type="String", Tier="Advanced")
    with pytest.raises(ClientError) as err:
        ssm.put_parameter(Name="/big", Value="x" * 8193, Type="String", Overwrite=True)
    assert err.value.response["Error"]["Code"] == "ValidationException"
