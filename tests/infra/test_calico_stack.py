"""The calico stack: the tigera-operator release, its values and the RBAC in its namespaces."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from stacks.calico import RELEASE
from stacks.cluster import OPERATOR_NAMESPACES
from tests.infra.conftest import Synth

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("infra")]


def _one(synth: Synth, resource_type: str, props: Any = None) -> tuple[str, dict[str, Any]]:
    found = synth.calico.find_resources(
        resource_type, {"Properties": props} if props is not None else None
    )
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.items()))


def _chart(synth: Synth) -> dict[str, Any]:
    return _one(synth, "Custom::AWSCDK-EKS-HelmChart")[1]


def _helm_values(synth: Synth) -> dict[str, Any]:
    values: dict[str, Any] = json.loads(_chart(synth)["Properties"]["Values"])
    return values


def test_calico_enterprise_comes_from_tigeras_chart_at_the_configured_version(
    synth: Synth,
) -> None:
    calico = synth.config.eks.calico
    props = _chart(synth)["Properties"]

    assert props["Chart"] == "tigera-operator"
    assert props["Repository"] == calico.chart_repository == "https://downloads.tigera.io/ee/charts"
    assert props["Version"] == calico.chart_version == "v3.23.1"
    assert props["Release"] == RELEASE
    assert props["Namespace"] == "tigera-operator"
    assert props["CreateNamespace"] is True


def test_a_failed_helm_install_rolls_back_only_the_calico_stack(synth: Synth) -> None:
    # The release lives in its own stack: nothing of the cluster stack depends on it.
    assert not synth.cluster.find_resources("Custom::AWSCDK-EKS-HelmChart")
    assert synth.stacks.cluster in synth.stacks.calico.dependencies
    assert synth.stacks.calico not in synth.stacks.cluster.dependencies
    assert synth.stacks.calico not in synth.stacks.automation.dependencies
    # An upgrade that fails is rolled back by Helm itself.
    assert _chart(synth)["Properties"]["Atomic"] is True


def test_calico_runs_policy_only_on_the_aws_vpc_cni_without_ip_pools(synth: Synth) -> None:
    installation = _helm_values(synth)["installation"]

    assert installation["kubernetesProvider"] == "EKS"
    assert installation["cni"] == {"type": "AmazonVPC"}
    assert installation["calicoNetwork"].get("ipPools", []) == []
    assert installation["calicoNetwork"]["bgp"] == "Disabled"


def test_the_enterprise_variant_runs_the_federated_services_controller(synth: Synth) -> None:
    # tigera/operator renders kube-controllers with ENABLED_CONTROLLERS including
    # federatedservices for the TigeraSecureEnterprise variant.
    assert _helm_values(synth)["installation"]["variant"] == "TigeraSecureEnterprise"


def test_calico_values_name_the_registry_and_pull_secret_but_hold_no_credentials(
    synth: Synth,
) -> None:
    calico = synth.config.eks.calico
    values = _helm_values(synth)

    assert values["installation"]["registry"] == calico.registry
    assert values["installation"]["imagePullSecrets"] == [{"name": calico.pull_secret_name}]
    # The chart's map form (name -> dockerconfigjson) would put credentials in the template.
    assert "imagePullSecrets" not in values
    assert "licenseKeyContent" not in values


def test_the_namespaced_rbac_waits_for_the_operator_to_create_calico_system(
    synth: Synth,
) -> None:
    wait_id, wait = _one(synth, "Custom::AWSCDK-EKS-KubernetesObjectValue")
    chart_id, _ = _one(synth, "Custom::AWSCDK-EKS-HelmChart")
    _, rbac = _one(
        synth,
        "Custom::AWSCDK-EKS-KubernetesResource",
        {"Manifest": Match.string_like_regexp("calico-system")},
    )
    objects = json.loads(rbac["Properties"]["Manifest"])

    assert wait["Properties"]["ObjectType"] == "namespace"
    assert wait["Properties"]["ObjectName"] == "calico-system"
    assert chart_id in wait["DependsOn"]
    assert wait_id in rbac["DependsOn"]
    assert objects
    assert {o["kind"] for o in objects} <= {"Role", "RoleBinding"}
    assert {o["metadata"]["namespace"] for o in objects} <= OPERATOR_NAMESPACES


def test_charts_and_manifests_go_through_the_cluster_stacks_kubectl_provider(
    synth: Synth,
) -> None:
    for resource_type in (
        "Custom::AWSCDK-EKS-HelmChart",
        "Custom::AWSCDK-EKS-KubernetesResource",
        "Custom::AWSCDK-EKS-KubernetesObjectValue",
    ):
        synth.calico.has_resource_properties(
            resource_type,
            {"ServiceToken": Match.object_like({"Fn::GetStackOutput": Match.any_value()})},
        )
