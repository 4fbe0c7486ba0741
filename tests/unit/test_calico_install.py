"""The calico installer's decisions: secret contents, stale finalizers, the CFN answer."""

from __future__ import annotations

import json

import pytest

from fedkeeper.calico_install import (
    InstallRequest,
    license_manifest,
    pull_secret_config,
    pull_secret_object,
    response_body,
    stale_finalizers,
)
from fedkeeper.errors import PermanentError

CONFIG_JSON = json.dumps({"auths": {"quay.io": {"auth": "c2VjcmV0OnNlY3JldA=="}}})
LICENSE = """apiVersion: projectcalico.org/v3
kind: LicenseKey
metadata:
  name: default
spec:
  token: the-token
  certificate: the-certificate
"""


def test_a_docker_config_becomes_the_secrets_dockerconfigjson() -> None:
    assert json.loads(pull_secret_config(CONFIG_JSON, "tigera-pull-secret")) == json.loads(
        CONFIG_JSON
    )


@pytest.mark.parametrize("text", ["not json s3cr3t", "[]", '{"auths": {}}', '{"x": 1}'])
def test_a_pull_secret_without_registries_is_refused_without_echoing_it(text: str) -> None:
    with pytest.raises(PermanentError) as caught:
        pull_secret_config(text, "tigera-pull-secret")

    assert "tigera-pull-secret" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_the_licence_is_applied_under_the_configured_calico_api() -> None:
    manifest = license_manifest(LICENSE, "tigera-license", "projectcalico.org", "v3")

    assert manifest == {
        "apiVersion": "projectcalico.org/v3",
        "kind": "LicenseKey",
        "metadata": {"name": "default"},
        "spec": {"token": "the-token", "certificate": "the-certificate"},
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("kind: Secret\n", "not a LicenseKey"),
        ("kind: LicenseKey\nspec: {token: t}\n", "no spec.token and spec.certificate"),
        (LICENSE.replace("name: default", "name: other"), "Calico reads only LicenseKey/default"),
    ],
)
def test_a_wrong_licence_is_refused_naming_the_secret(text: str, problem: str) -> None:
    with pytest.raises(PermanentError, match=problem) as caught:
        license_manifest(text, "tigera-license", "projectcalico.org", "v3")

    assert "tigera-license" in str(caught.value)
    assert "the-token" not in str(caught.value)


def _installation(finalizers: list[str], deleting: bool) -> dict[str, object]:
    meta: dict[str, object] = {"name": "default", "finalizers": finalizers}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-07T10:00:00Z"
    return {"metadata": meta}


def test_an_installation_terminating_without_an_operator_loses_only_the_operators_finalizers() -> (
    None
):
    obj = _installation(
        ["tigera.io/operator-cleanup", "operator.tigera.io/installation-controller", "other/keep"],
        deleting=True,
    )

    assert stale_finalizers(obj, operator_running=False) == ["other/keep"]


def test_a_running_operator_is_left_to_finish_its_own_cleanup() -> None:
    obj = _installation(["tigera.io/operator-cleanup"], deleting=True)

    assert stale_finalizers(obj, operator_running=True) is None


def test_an_installation_not_being_deleted_is_never_touched() -> None:
    obj = _installation(["tigera.io/operator-cleanup"], deleting=False)

    assert stale_finalizers(obj, operator_running=False) is None


def test_the_pull_secret_is_labelled_as_the_federations() -> None:
    secret = pull_secret_object("tigera-pull-secret", "tigera-operator", CONFIG_JSON, "fed-demo")

    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "fedkeeper",
        "fedkeeper.io/federation": "fed-demo",
    }


def test_the_cloudformation_answer_carries_no_data() -> None:
    event = {"StackId": "s", "RequestId": "r", "LogicalResourceId": "l"}

    body = response_body(event, "SUCCESS", "created Secret tigera-operator/x", "id")

    assert body["Data"] == {}
    assert body["NoEcho"] is True


def test_a_request_names_its_step() -> None:
    with pytest.raises(PermanentError, match="Step 'other'"):
        InstallRequest.from_properties({"Step": "other", "ClusterName": "c", "Federation": "f"})
