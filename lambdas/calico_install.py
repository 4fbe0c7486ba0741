"""``calico_install``: the calico stack's custom resource for Calico's prerequisites.

CloudFormation invokes it directly (``ServiceToken``) for the ``prerequisites`` step before
the tigera-operator chart and the ``license`` step after it (:mod:`fedkeeper.calico_install`).
It always answers CloudFormation, :data:`~fedkeeper.calico_install.RESPONSE_MARGIN_S` before
its own timeout at the latest. Its event holds only names; secret values are read from
Secrets Manager, written to the cluster and never logged or returned.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any

import boto3

from fedkeeper.adapters.auth import eks_kubeconfig, eks_token
from fedkeeper.adapters.kube import KubeCluster
from fedkeeper.adapters.kube_types import CORE_TYPES, ResourceType
from fedkeeper.calico_install import (
    RESPONSE_MARGIN_S,
    Deadline,
    InstallRequest,
    response_body,
    run_step,
)

log = logging.getLogger("fedkeeper.calico_install")
log.setLevel(logging.INFO)


def installer_types(calico_group: str, calico_version: str) -> dict[str, ResourceType]:
    """The kinds the installer reads or writes."""
    operator = [
        ResourceType("operator.tigera.io", "v1", plural, kind, False)
        for plural, kind in (
            ("installations", "Installation"),
            ("apiservers", "APIServer"),
            ("whiskers", "Whisker"),
            ("goldmanes", "Goldmane"),
        )
    ]
    license_key = ResourceType(calico_group, calico_version, "licensekeys", "LicenseKey", False)
    return {**CORE_TYPES, **{t.kind: t for t in (*operator, license_key)}}


def _respond(event: dict[str, Any], status: str, reason: str, physical_id: str) -> None:
    body = json.dumps(response_body(event, status, reason, physical_id)).encode()
    request = urllib.request.Request(  # noqa: S310 - CloudFormation's presigned https URL
        event["ResponseURL"],
        data=body,
        method="PUT",
        headers={"content-type": "", "content-length": str(len(body))},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        answer.read()


def handler(event: dict[str, Any], context: Any) -> None:
    request_type = str(event.get("RequestType"))
    physical_id = str(event.get("PhysicalResourceId") or "")
    try:
        request = InstallRequest.from_properties(event.get("ResourceProperties") or {})
        physical_id = physical_id or f"{request.cluster_name}/calico-{request.step}"
        deadline = Deadline(context.get_remaining_time_in_millis() / 1000 - RESPONSE_MARGIN_S)
        session = boto3.Session()
        cluster = session.client("eks").describe_cluster(name=request.cluster_name)["cluster"]
        kube = KubeCluster.from_kubeconfig(
            "eks",
            eks_kubeconfig(cluster, eks_token(session, request.cluster_name)),
            installer_types(request.calico_group, request.calico_version),
        )
        secrets = session.client("secretsmanager")

        def read_secret(name: str) -> str:
            return str(secrets.get_secret_value(SecretId=name)["SecretString"])

        try:
            result = run_step(request, request_type, kube, read_secret, deadline)
        finally:
            kube.close()
        log.info("calico %s %s: %s", request.step, request_type, result.summary())
        _respond(event, "SUCCESS", result.summary(), physical_id)
    except Exception as exc:  # every failure must reach CloudFormation, now
        reason = f"{type(exc).__name__}: {exc}"
        log.error("calico %s failed: %s", request_type, reason)
        # A Delete that fails would block the stack's deletion or rollback for good (the
        # cluster may already be gone): report what was left, and let CloudFormation go on.
        status = "SUCCESS" if request_type == "Delete" else "FAILED"
        _respond(event, status, reason, physical_id or "calico-install-failed")
