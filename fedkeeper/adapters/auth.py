"""Credentials for the two clusters.

* EKS: a bearer token ``k8s-aws-v1.<base64url(presigned STS GetCallerIdentity URL)>`` signed
  with header ``x-k8s-aws-id: <cluster>`` (what ``aws eks get-token`` does). EKS accepts it
  for 15 minutes whatever the expiry parameter, so callers refresh it well before that.
* On-prem: a kubeconfig (with a long-lived service-account token) stored as text (YAML or
  JSON) in Secrets Manager.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import boto3
import yaml
from botocore.signers import RequestSigner

from fedkeeper.errors import PermanentError
from fedkeeper.invariants.shapes import read_kubeconfig

TOKEN_PREFIX = "k8s-aws-v1."
TOKEN_LIFETIME_S = 15 * 60
# Refresh at 10 minutes: a token must never expire in the middle of a run.
TOKEN_REFRESH_S = 10 * 60


def eks_token(session: boto3.Session, cluster_name: str) -> str:
    """A bearer token for the EKS API server of ``cluster_name``."""
    region = session.region_name
    credentials = session.get_credentials()
    if credentials is None:
        raise PermanentError("no AWS credentials to sign the EKS token with")
    sts = session.client("sts", region_name=region)
    signer = RequestSigner(
        sts.meta.service_model.service_id,
        region,
        "sts",
        "v4",
        credentials,
        session.events,
    )
    params = {
        "method": "GET",
        "url": f"https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
        "body": {},
        "headers": {"x-k8s-aws-id": cluster_name},
        "context": {},
    }
    url = signer.generate_presigned_url(
        params, region_name=region, expires_in=60, operation_name=""
    )
    encoded = base64.urlsafe_b64encode(url.encode("utf-8")).decode("utf-8").rstrip("=")
    return TOKEN_PREFIX + encoded


class EksTokenSource:
    """Caches the EKS token and mints a new one before it can expire.

    ``clock`` is any monotonic seconds source (injectable: tests move it forward).
    """

    def __init__(
        self,
        mint: Callable[[], str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._mint = mint
        self._clock = clock
        self._token = ""
        self._minted_at = 0.0

    def token(self) -> str:
        now = self._clock()
        if not self._token or now - self._minted_at >= TOKEN_REFRESH_S:
            self._token = self._mint()
            self._minted_at = now
        return self._token

    def discard(self) -> None:
        """Forget the cached token (the server refused it): the next call mints anew."""
        self._token = ""


def keep_bearer_token_fresh(configuration: Any, token: Callable[[], str]) -> None:
    """Make a kubernetes client ``Configuration`` ask ``token()`` before every request.

    The kubernetes client (v36) sends ``api_key["BearerToken"]``, and the kubeconfig loader
    installs a ``refresh_api_key_hook`` that puts the kubeconfig's original token back
    before each request; replacing the hook is the one way a long-lived client gets a new
    token (setting ``api_key["authorization"]`` changes nothing).
    """

    def refresh(conf: Any) -> None:
        conf.api_key["BearerToken"] = f"Bearer {token()}"
        conf.api_key.pop("authorization", None)

    configuration.refresh_api_key_hook = refresh


def eks_kubeconfig(cluster: dict[str, Any], token: str) -> dict[str, Any]:
    """A kubeconfig dict for an EKS cluster from ``describe_cluster`` output and a token."""
    name = str(cluster.get("name", "eks"))
    endpoint = cluster.get("endpoint")
    if not endpoint:
        raise PermanentError(
            f"EKS cluster {name} has no endpoint yet (status {cluster.get('status')})"
        )
    entry: dict[str, Any] = {"server": endpoint}
    ca = (cluster.get("certificateAuthority") or {}).get("data")
    if ca and str(endpoint).startswith("https://"):
        entry["certificate-authority-data"] = ca
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": entry}],
        "users": [{"name": "fedkeeper", "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "fedkeeper"}}],
        "current-context": name,
    }


def parse_kubeconfig(text: str, source: str) -> dict[str, Any]:
    """Parse a kubeconfig stored as YAML or JSON text; PermanentError names what is wrong."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise PermanentError(
            f"{source}: the secret is not a YAML or JSON kubeconfig; store the file's contents"
        ) from None
    if not isinstance(data, dict):
        raise PermanentError(f"{source}: the secret must hold a kubeconfig mapping")
    missing = [k for k in ("clusters", "users", "contexts") if not data.get(k)]
    if missing:
        raise PermanentError(
            f"{source}: the kubeconfig has no {', '.join(missing)}; store a complete kubeconfig "
            "(see `fedkeeper onprem-bootstrap`)"
        )
    users = data["users"] if isinstance(data["users"], list) else []
    for user in users:
        u = user.get("user") if isinstance(user, dict) else None
        if isinstance(u, dict) and "exec" in u:
            raise PermanentError(
                f"{source}: the kubeconfig uses an exec credential plugin, which cannot run in "
                "a Lambda; use a service-account token"
            )
    _, problems = read_kubeconfig(text)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise PermanentError(
            f"{source}: the kubeconfig is malformed: {'; '.join(problems[:3])}{more}; store a "
            "complete kubeconfig (see `fedkeeper onprem-bootstrap`)"
        )
    return data
