"""`fedkeeper onprem-bootstrap`: the identity fedkeeper uses on the on-prem cluster.

Produces (or applies) a ServiceAccount with a long-lived token Secret and the narrow
ClusterRole of :mod:`fedkeeper.rbac`, then the kubeconfig to store in Secrets Manager and
the exact command that stores it. An ``exec`` credential (``aws eks get-token`` style) would
not work from a Lambda; a service-account token does.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import yaml

from fedkeeper.adapters.kube import KubeCluster
from fedkeeper.config import FederationConfig
from fedkeeper.errors import PermanentError
from fedkeeper.model import MANAGED_BY_LABEL, MANAGED_BY_VALUE
from fedkeeper.rbac import reconciler_objects

NAMESPACE = "fedkeeper"
SERVICE_ACCOUNT = "fedkeeper"
TOKEN_SECRET = "fedkeeper-token"
_LABELS = {MANAGED_BY_LABEL: MANAGED_BY_VALUE}


def bootstrap_objects(config: FederationConfig) -> list[dict[str, Any]]:
    """The on-prem objects fedkeeper's own identity needs, in apply order."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": NAMESPACE, "labels": dict(_LABELS)},
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE, "labels": dict(_LABELS)},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": TOKEN_SECRET,
                "namespace": NAMESPACE,
                "labels": dict(_LABELS),
                "annotations": {"kubernetes.io/service-account.name": SERVICE_ACCOUNT},
            },
        },
        *reconciler_objects(
            config,
            "onprem",
            {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE},
        ),
    ]


def manifests_yaml(config: FederationConfig) -> str:
    return yaml.safe_dump_all(bootstrap_objects(config), sort_keys=False)


def store_command(config: FederationConfig, path: str) -> str:
    return (
        f"aws secretsmanager put-secret-value --region {config.aws.region} "
        f"--secret-id {config.onprem.credentials_secret} --secret-string file://{path}"
    )


def apply_bootstrap(cluster: KubeCluster, config: FederationConfig) -> list[str]:
    """Create what is missing (existing objects are left as they are); lines of what happened."""
    done = []
    for obj in bootstrap_objects(config):
        meta = obj["metadata"]
        if cluster.get(obj["kind"], meta["name"], meta.get("namespace")) is None:
            cluster.create(obj)
            done.append(f"created {obj['kind']} {meta.get('namespace', '') or ''}/{meta['name']}")
        else:
            done.append(f"exists  {obj['kind']} {meta.get('namespace', '') or ''}/{meta['name']}")
    return done


def fedkeeper_kubeconfig(
    cluster: KubeCluster, config: FederationConfig, *, wait_s: float = 10.0
) -> dict[str, Any]:
    """The kubeconfig (token auth) to store in the on-prem credentials secret."""
    deadline = time.monotonic() + wait_s
    while True:
        secret = cluster.get("Secret", TOKEN_SECRET, NAMESPACE) or {}
        data = secret.get("data") or {}
        if data.get("token"):
            break
        if time.monotonic() > deadline:
            raise PermanentError(
                f"Secret {NAMESPACE}/{TOKEN_SECRET} has no token yet; is the token controller "
                "running?"
            )
        time.sleep(0.5)
    token = base64.b64decode(data["token"]).decode()
    cluster_entry: dict[str, Any] = {"server": config.onprem.api_endpoint}
    if data.get("ca.crt"):
        cluster_entry["certificate-authority-data"] = data["ca.crt"]
    name = config.onprem.cluster_name
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster_entry}],
        "users": [{"name": "fedkeeper", "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "fedkeeper"}}],
        "current-context": name,
    }
