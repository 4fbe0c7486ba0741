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
    assert parse_config(example()).sole_site().vpns[0].ike_versions == ["ikev2"]


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


def calico(**fields: Any) -> dict[str, Any]:
    data = example()
    data["eks"]["calico"].update(fields)
    return data


def test_the_calico_chart_defaults_to_tigeras_repository_and_a_published_version() -> None:
    data = example()
    data["eks"].pop("calico")
    chart = parse_config(data).sole_eks().calico

    assert chart.chart_repository == "https://downloads.tigera.io/ee/charts"
    assert chart.chart_version == "v3.23.1"
    assert chart.chart_file == ""
    assert chart.values == {}


def test_a_mirror_repository_is_accepted() -> None:
    cfg = parse_config(calico(chart_repository="oci://registry.example/tigera/"))

    assert cfg.sole_eks().calico.chart_repository == "oci://registry.example/tigera"


def test_a_repository_that_is_no_url_is_refused_naming_tigeras() -> None:
    (error,) = errors_of(calico(chart_repository="tigera-ee"))

    assert error.startswith("eks.calico.chart_repository: 'tigera-ee' is not a Helm repository")
    assert "https://downloads.tigera.io/ee/charts" in error


@pytest.mark.parametrize("version", ["3.23.1", "v3.23", "latest", "v4.0.0"])
def test_a_chart_version_not_written_as_tigera_publishes_it_is_refused(version: str) -> None:
    (error,) = errors_of(calico(chart_version=version))

    assert error.startswith("eks.calico.chart_version:")
    assert "e.g. v3.23.1" in error


def test_a_chart_older_than_aws_cni_support_on_eks_is_refused() -> None:
    (error,) = errors_of(calico(chart_version="v3.19.4"))

    assert "predates Calico Enterprise 3.20" in error


def test_older_packaged_chart_versions_with_a_build_suffix_are_accepted() -> None:
    assert (
        parse_config(calico(chart_version="v3.20.4-0")).sole_eks().calico.chart_version
        == "v3.20.4-0"
    )


def test_an_air_gapped_chart_must_be_a_packaged_tgz() -> None:
    (error,) = errors_of(calico(chart_file="charts/tigera-operator/"))

    assert error.startswith("eks.calico.chart_file:")
    assert "helm pull tigera-ee/tigera-operator" in error


@pytest.mark.parametrize(
    "values",
    [
        {"installation": {"cni": {"type": "Calico"}}},
        {"installation": {"calicoNetwork": {"bgp": "Enabled"}}},
        {"installation": {"variant": "Calico"}},
        {"imagePullSecrets": {"tigera-pull-secret": "e30="}},
    ],
)
def test_values_may_not_change_what_policy_only_mode_fixes(values: dict[str, Any]) -> None:
    (error,) = errors_of(calico(values=values))

    assert error.startswith("eks.calico.values: sets ")
    assert error.endswith("remove it")


def test_other_values_are_accepted() -> None:
    values = {"installation": {"controlPlaneReplicas": 3}}

    assert parse_config(calico(values=values)).sole_eks().calico.values == values


# --- first-deploy switches: add-ons, nodes, Calico secrets, endpoints -------------------------


def test_an_add_on_the_stack_does_not_manage_is_refused_naming_the_ones_it_does() -> None:
    data = example()
    data["eks"]["addon_versions"] = {"metrics-server": "v0.7.2-eksbuild.1"}

    (error,) = errors_of(data)

    assert error.startswith("eks.addon_versions: ")
    assert "kube-proxy" in error and "coredns" in error


def test_an_add_on_version_not_written_as_eks_publishes_it_is_refused() -> None:
    data = example()
    data["eks"]["addon_versions"] = {"kube-proxy": "1.36"}

    (error,) = errors_of(data)

    assert "describe-addon-versions --addon-name kube-proxy" in error


def test_a_node_root_volume_below_20_gib_is_refused() -> None:
    data = example()
    data["eks"]["node_group"]["disk_size_gb"] = 8

    (error,) = errors_of(data)

    assert error.startswith("eks.node_group.disk_size_gb: ")


def test_a_pull_secret_source_that_is_no_secret_name_is_refused() -> None:
    data = example()
    data["eks"]["calico"]["pull_secret_source"] = "my secret!"

    (error,) = errors_of(data)

    assert error.startswith("eks.calico.pull_secret_source: ")


def test_interface_endpoints_and_log_storage_default_to_the_cheaper_and_the_complete() -> None:
    data = example()
    data["aws"]["vpc"].pop("interface_endpoints")
    data["eks"]["calico"].pop("log_storage")

    config = parse_config(data)

    assert config.sole_eks().network.interface_endpoints is False
    assert config.sole_eks().calico.log_storage is True
