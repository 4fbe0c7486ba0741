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
    calico = synth.config.sole_eks().calico
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
    calico = synth.config.sole_eks().calico
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


# --- the first deploy: prerequisites, waits, retries -------------------------------------------


def _resource(synth: Synth, kind: str, step: str | None = None) -> tuple[str, dict[str, Any]]:
    found = synth.calico.find_resources(kind)
    if step is not None:
        found = {k: v for k, v in found.items() if v["Properties"].get("Step") == step}
    assert len(found) == 1, f"expected one {kind} {step or ''}, found {sorted(found)}"
    return next(iter(found.items()))


def _depends_on(resource: dict[str, Any]) -> list[str]:
    return list(resource.get("DependsOn", []))


def test_the_chart_depends_on_its_prerequisites_and_the_licence_follows_the_operator(
    synth: Synth,
) -> None:
    pre_id, pre = _resource(synth, "Custom::FedkeeperCalicoInstall", "prerequisites")
    _, lic = _resource(synth, "Custom::FedkeeperCalicoInstall", "license")
    _, chart = _one(synth, "Custom::AWSCDK-EKS-HelmChart")
    wait_id, _ = _one(synth, "Custom::AWSCDK-EKS-KubernetesObjectValue")

    assert pre_id in _depends_on(chart)
    assert wait_id in _depends_on(lic)
    calico = synth.config.sole_eks().calico
    assert pre["Properties"]["PullSecretSource"] == calico.pull_secret_source
    assert lic["Properties"]["LicenseSource"] == calico.license_secret_name


def test_no_secret_value_is_in_the_calico_template(synth: Synth) -> None:
    text = json.dumps(synth.calico.to_json())

    # The installer's properties and the chart's values carry names only.
    assert '"auths"' not in text
    assert ".dockerconfigjson" not in text
    assert "licenseKeyContent" not in text
    for _, resource in synth.calico.find_resources("Custom::FedkeeperCalicoInstall").items():
        assert set(resource["Properties"]) == {
            "ServiceToken",
            "ServiceTimeout",
            "Step",
            "ClusterName",
            "Federation",
            "PullSecretName",
            "PullSecretSource",
            "LicenseSource",
            "CalicoGroup",
            "CalicoVersion",
        }


def _kubectl_handler_timeout(synth: Synth) -> int:
    handlers = synth.cluster.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "index.handler"}}
    )
    kubectl = [h for k, h in handlers.items() if "KubectlProviderHandler" in k]
    framework = synth.cluster.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "framework.onEvent"}}
    )
    limits = {h["Properties"]["Timeout"] for h in [*kubectl, *framework.values()]}
    assert len(limits) == 1, limits
    return int(limits.pop())


def test_every_wait_ends_at_least_120_seconds_inside_its_providers_limit(synth: Synth) -> None:
    from stacks.calico import HELM_OVERHEAD

    limit = _kubectl_handler_timeout(synth)
    _, chart = _one(synth, "Custom::AWSCDK-EKS-HelmChart")
    _, wait = _one(synth, "Custom::AWSCDK-EKS-KubernetesObjectValue")
    helm = int(chart["Properties"]["Timeout"].removesuffix("s"))
    # Helm waits, then (atomic) uninstalls, waiting as long again for the pre-delete hook.
    helm_worst = 2 * helm + HELM_OVERHEAD.to_seconds()
    get_worst = int(wait["Properties"]["TimeoutSeconds"]) + 10  # the get handler polls each 10 s

    assert helm_worst + 120 <= limit
    assert get_worst + 120 <= limit
    _, installer = _resource(synth, "AWS::Lambda::Function")
    from fedkeeper.calico_install import RESPONSE_MARGIN_S

    assert RESPONSE_MARGIN_S >= 120
    assert installer["Properties"]["Timeout"] <= 900


def test_every_custom_resource_gives_up_within_its_providers_limit(synth: Synth) -> None:
    limit = _kubectl_handler_timeout(synth)
    custom = {
        k: r
        for k, r in synth.calico.to_json()["Resources"].items()
        if r["Type"].startswith("Custom::")
    }

    assert custom
    for resource in custom.values():
        assert 0 < int(resource["Properties"]["ServiceTimeout"]) <= limit


def test_the_installer_holds_only_name_scoped_rbac_besides_create() -> None:
    from fedkeeper.calico_install import installer_rbac
    from fedkeeper.config import load_config
    from tests.infra.conftest import EXAMPLE_CONFIG

    (role, binding) = installer_rbac(load_config(EXAMPLE_CONFIG))

    for rule in role["rules"]:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        if set(rule["verbs"]) - {"create", "list"}:
            assert rule.get("resourceNames"), rule
    assert binding["subjects"][0]["name"] == "fedkeeper-calico-installer"


def test_log_storage_off_turns_off_what_needs_it() -> None:
    from fedkeeper.config import load_config
    from stacks.calico import calico_values
    from tests.infra.conftest import EXAMPLE_CONFIG

    config = load_config(EXAMPLE_CONFIG)
    eks = config.sole_eks()
    calico = eks.calico.model_copy(update={"log_storage": False})
    clusters = [eks.model_copy(update={"calico": calico}), config.sole_site()]
    off = config.model_copy(update={"clusters": clusters})

    values = calico_values(off)
    assert {k: values[k] for k in ("logStorage", "logCollector", "manager")} == {
        k: {"enabled": False} for k in ("logStorage", "logCollector", "manager")
    }
    assert "logStorage" not in calico_values(config)
