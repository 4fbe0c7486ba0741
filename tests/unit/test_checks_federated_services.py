"""Invariant 6 (checks): a missing Federated Services Controller comes with the exact fix."""

from __future__ import annotations

from typing import Any

from fedkeeper.invariants.checks import (
    CONFIG_FIX,
    OPERATOR_FIX,
    ChecksObservation,
    ControllerState,
    enable_federated_services,
    plan_checks,
)

OFF_CONFIG = {"spec": {"controllers": {"node": {}}}}


def kube_controllers(enabled: str, **meta: Any) -> dict[str, Any]:
    env = [{"name": "ENABLED_CONTROLLERS", "value": enabled}]
    return {
        "metadata": {"name": "calico-kube-controllers", "namespace": "calico-system", **meta},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "env": env}]}}},
    }


def test_an_operator_install_is_fixed_through_the_installation_variant() -> None:
    owned = kube_controllers("node", ownerReferences=[{"kind": "Installation", "name": "default"}])

    command = enable_federated_services(ControllerState(OFF_CONFIG, owned))

    assert command == OPERATOR_FIX
    assert '"variant":"TigeraSecureEnterprise"' in command


def test_a_manifest_install_appends_federatedservices_to_its_enabled_controllers() -> None:
    command = enable_federated_services(ControllerState(None, kube_controllers("node,service")))

    assert command == (
        "kubectl -n calico-system set env deployment/calico-kube-controllers "
        "ENABLED_CONTROLLERS=node,service,federatedservices"
    )


def test_without_a_deployment_the_kube_controllers_configuration_is_patched() -> None:
    assert enable_federated_services(ControllerState(OFF_CONFIG, None)) == CONFIG_FIX


def test_the_onprem_finding_names_the_command() -> None:
    off = ControllerState(None, kube_controllers("node"))
    on = ControllerState({"spec": {"controllers": {"federatedServices": {}}}}, None)
    obs = ChecksObservation(
        vpc_cidrs=[],
        eks_pools=None,
        onprem_pools=None,
        onprem_bgp_peers=None,
        eks_controllers=on,
        onprem_controllers=off,
    )

    (finding,) = plan_checks(obs).findings

    assert finding.check == "checks.federated-services"
    assert "not enabled on on-prem" in finding.message
    assert finding.message.endswith(
        "enable it: kubectl -n calico-system set env deployment/calico-kube-controllers "
        "ENABLED_CONTROLLERS=node,federatedservices"
    )
