"""federation.yaml sections that shape the deployment: CloudTrail, VPN tunnels, EKS version,
the Calico chart. Each bad value is refused naming its field and the fix."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from fedkeeper.config import CloudTrailMode, parse_config
from fedkeeper.errors import ConfigError
from tests.conftest import EXAMPLE


def example(**aws: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    data["aws"].update(aws)
    return data


def errors_of(data: Any) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    return exc.value.errors


def test_cloudtrail_defaults_to_creating_a_trail() -> None:
    data = example()
    data["aws"].pop("cloudtrail", None)

    assert parse_config(data).aws.cloudtrail is CloudTrailMode.CREATE


def test_cloudtrail_existing_is_accepted() -> None:
    assert parse_config(example(cloudtrail="existing")).aws.cloudtrail is CloudTrailMode.EXISTING


def test_an_unknown_cloudtrail_mode_is_refused_naming_the_choices() -> None:
    (error,) = errors_of(example(cloudtrail="organization"))

    assert error.startswith("aws.cloudtrail:")
    assert "'create' or 'existing'" in error


def test_vpn_tunnels_default_to_ikev2_only() -> None:
    assert parse_config(example()).aws.vpn.ike_versions == ["ikev2"]


def test_an_unknown_ike_version_is_refused() -> None:
    data = example()
    data["aws"]["vpn"]["ike_versions"] = ["ikev3"]

    (error,) = errors_of(data)
    assert error.startswith("aws.vpn.ike_versions[0]:")


def test_no_ike_version_is_refused_with_the_fix() -> None:
    data = example()
    data["aws"]["vpn"]["ike_versions"] = []

    assert errors_of(data) == [
        "aws.vpn.ike_versions: is empty; list ikev2 (or ikev1 for a router without IKEv2)"
    ]
