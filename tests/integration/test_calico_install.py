"""The calico installer against a fake EKS API server, as itself.

The installer runs through the official client under the identity its access entry maps
to (group ``fedkeeper-calico-installer``) and the RBAC the calico stack applies, nothing
more: every write below is authorized by that RBAC, as a real API server would check it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from fedkeeper.adapters.kube import KubeCluster
from fedkeeper.calico_install import (
    INSTALLER_GROUP,
    PULL_SECRET_NAMESPACES,
    Deadline,
    InstallRequest,
    installer_rbac,
    run_step,
)
from fedkeeper.config import load_config
from fedkeeper.errors import PermanentError
from fedkeeper.sandbox.kube_server import FakeKubeServer
from fedkeeper.sandbox.kube_server.authn import AUTHENTICATED, Identity
from lambdas.calico_install import installer_types
from tests.conftest import EXAMPLE

INSTALLER_TOKEN = "calico-installer-token"
CONFIG_JSON = json.dumps({"auths": {"quay.io": {"auth": "dTpw"}}})
LICENSE = (
    "apiVersion: projectcalico.org/v3\nkind: LicenseKey\nmetadata: {name: default}\n"
    "spec: {token: tok, certificate: cert}\n"
)


@pytest.fixture
def server() -> Iterator[FakeKubeServer]:
    config = load_config(EXAMPLE)
    with FakeKubeServer("eks") as srv:
        for obj in installer_rbac(config):
            srv.seed(obj)
        installer = Identity("installer-role", (INSTALLER_GROUP, AUTHENTICATED))
        srv.token_reviews.append(lambda token, now: installer if token == INSTALLER_TOKEN else None)
        yield srv


@pytest.fixture
def kube(server: FakeKubeServer) -> Iterator[KubeCluster]:
    cluster = KubeCluster.from_kubeconfig(
        "eks", server.kubeconfig(token=INSTALLER_TOKEN), installer_types("projectcalico.org", "v3")
    )
    yield cluster
    cluster.close()


def _request(step: str) -> InstallRequest:
    config = load_config(EXAMPLE)
    calico = config.sole_eks().calico
    return InstallRequest(
        step=step,
        cluster_name=config.sole_eks().cluster_name,
        federation=config.name,
        pull_secret_name=calico.pull_secret_name,
        pull_secret_source=calico.pull_secret_source,
        license_source=calico.license_secret_name,
    )


def _secrets(name: str) -> str:
    return {"tigera-pull-secret": CONFIG_JSON, "tigera-license": LICENSE}[name]


def _step(kube: KubeCluster, step: str, request_type: str = "Create") -> list[str]:
    result = run_step(_request(step), request_type, kube, _secrets, Deadline(30), lambda _: None)
    return result.done


def test_the_pull_secret_reaches_both_namespaces_before_the_chart_exists(
    server: FakeKubeServer, kube: KubeCluster
) -> None:
    done = _step(kube, "prerequisites")

    for namespace in PULL_SECRET_NAMESPACES:
        secret = server.get_object("v1", "Secret", "tigera-pull-secret", namespace)
        assert secret is not None
        assert secret["type"] == "kubernetes.io/dockerconfigjson"
        assert secret["metadata"]["labels"]["fedkeeper.io/federation"] == "fed-demo"
        assert f"created namespace {namespace}" in done


def test_a_second_run_updates_the_secret_in_place(kube: KubeCluster) -> None:
    _step(kube, "prerequisites")

    done = _step(kube, "prerequisites", "Update")

    assert done == [f"updated Secret {ns}/tigera-pull-secret" for ns in PULL_SECRET_NAMESPACES]


def test_a_foreign_secret_of_that_name_is_refused_not_overwritten(
    server: FakeKubeServer, kube: KubeCluster
) -> None:
    server.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tigera-operator"}})
    server.seed(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "tigera-pull-secret", "namespace": "tigera-operator"},
            "stringData": {"x": "theirs"},
        }
    )

    with pytest.raises(PermanentError, match="is not this federation's"):
        _step(kube, "prerequisites")

    kept = server.get_object("v1", "Secret", "tigera-pull-secret", "tigera-operator")
    assert kept is not None and "x" in kept["data"]


def test_deleting_the_prerequisites_removes_only_the_federations_secrets(
    server: FakeKubeServer, kube: KubeCluster
) -> None:
    _step(kube, "prerequisites")

    done = _step(kube, "prerequisites", "Delete")

    assert done == [f"deleted Secret {ns}/tigera-pull-secret" for ns in PULL_SECRET_NAMESPACES]
    assert server.get_object("v1", "Namespace", "tigera-operator") is not None


def test_the_licence_is_applied_once_and_then_left_alone(
    server: FakeKubeServer, kube: KubeCluster
) -> None:
    assert _step(kube, "license") == ["created LicenseKey default"]
    assert _step(kube, "license", "Update") == ["LicenseKey default is current"]

    stored: dict[str, Any] | None = server.get_object(
        "projectcalico.org/v3", "LicenseKey", "default"
    )
    assert stored is not None and stored["spec"] == {"token": "tok", "certificate": "cert"}


def test_an_identity_eks_does_not_honour_yet_is_retried_then_named(server: FakeKubeServer) -> None:
    stranger = KubeCluster.from_kubeconfig(
        "eks", server.kubeconfig(token="not-yet-mapped"), installer_types("projectcalico.org", "v3")
    )
    naps: list[float] = []

    with pytest.raises(PermanentError, match="check its access entry"):
        run_step(
            _request("prerequisites"), "Create", stranger, _secrets, Deadline(600), naps.append
        )

    stranger.close()
    assert len(naps) == 17  # every attempt but the last waited
    assert server.get_object("v1", "Namespace", "tigera-operator") is None
