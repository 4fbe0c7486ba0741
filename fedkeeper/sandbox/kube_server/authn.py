"""Authentication: a bearer token becomes an identity (user and groups), or a 401.

* The admin token: ``kubernetes-admin`` in ``system:masters`` (what a cluster creator's
  kubeconfig gets).
* Service-account tokens (legacy token Secrets): JWTs the token controller signed, valid
  while the token Secret they name holds them and their ServiceAccount exists with the uid
  they were issued for; deleting either revokes them. A string put into a token Secret by
  hand is no token. Identity ``system:serviceaccount:<ns>:<name>`` in ``system:serviceaccounts`` and
  ``system:serviceaccounts:<ns>`` (kubernetes ``pkg/serviceaccount/legacy.go``,
  ``staging/src/k8s.io/apiserver/pkg/authentication/serviceaccount/util.go``).
* EKS IAM tokens (:class:`EksTokenReview`, installed by the sandbox on its EKS server): the
  presigned STS ``GetCallerIdentity`` URL that ``aws eks get-token`` builds, checked as
  aws-iam-authenticator does (``pkg/token/token.go`` ``Verify``): STS host, action and
  version, signed ``x-k8s-aws-id`` header naming this cluster (checked by recomputing the
  SigV4 signature, which is what STS does), ``X-Amz-Date`` no more than 15 minutes old;
  then the caller's role ARN (canonicalized, ``pkg/arn``) is mapped through the cluster's
  access entries to a username and groups (EKS access entries, "Create access entries",
  docs.aws.amazon.com/eks/latest/userguide/creating-access-entries.html).

Every authenticated identity is also in ``system:authenticated``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from fedkeeper.sandbox.kube_server.kinds import (
    SA_NAME_ANNOTATION,
    SA_TOKEN_TYPE,
    SA_UID_ANNOTATION,
    token_signature,
)
from fedkeeper.sandbox.kube_server.store import Store

AUTHENTICATED = "system:authenticated"
MASTERS = "system:masters"
EKS_TOKEN_PREFIX = "k8s-aws-v1."
EKS_TOKEN_LIFETIME_S = 15 * 60


@dataclass(frozen=True)
class Identity:
    """Who a request comes from, as the authorizer sees it."""

    user: str
    groups: tuple[str, ...]

    @property
    def privileged(self) -> bool:
        """``system:masters``: the API server lets it do anything, escalation included."""
        return MASTERS in self.groups


ADMIN = Identity("kubernetes-admin", (MASTERS, AUTHENTICATED))
TokenReview = Callable[[str, float], Identity | None]  # (token, now) -> identity


def service_account_identity(namespace: str, name: str) -> Identity:
    return Identity(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED),
    )


LEGACY_ISSUER = "kubernetes/serviceaccount"


def _claims(token: str, key: bytes) -> dict[str, Any] | None:
    """The claims of a JWT this server signed; None for anything else."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    signed = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(parts[2], token_signature(key, signed)):
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    return claims if isinstance(claims, dict) else None


def service_account_token_identity(store: Store, token: str, key: bytes) -> Identity | None:
    """The ServiceAccount a legacy token stands for; None if it is not one, or revoked.

    As the API server validates one (kubernetes ``pkg/serviceaccount/jwt.go``, then
    ``legacy.go`` ``legacyValidator.Validate``): a JWT signed with the server's key, issuer
    ``kubernetes/serviceaccount``, whose claims name a token Secret that still exists and
    still holds this very token, and a ServiceAccount that still exists with the uid the
    token was issued for. Any other string in a token Secret is no token at all.
    """
    claims = _claims(token, key)
    if claims is None or claims.get("iss") != LEGACY_ISSUER:
        return None
    ns = str(claims.get("kubernetes.io/serviceaccount/namespace", ""))
    secret_name = str(claims.get("kubernetes.io/serviceaccount/secret.name", ""))
    sa_name = str(claims.get("kubernetes.io/serviceaccount/service-account.name", ""))
    sa_uid = str(claims.get("kubernetes.io/serviceaccount/service-account.uid", ""))
    secret = store.kind("v1", "Secret").get((ns, secret_name))
    if secret is None or secret.get("type") != SA_TOKEN_TYPE:
        return None
    held = ""
    with contextlib.suppress(ValueError, binascii.Error):
        held = base64.b64decode((secret.get("data") or {}).get("token") or "").decode()
    if not held or not hmac.compare_digest(held, token):
        return None
    annotations = secret.get("metadata", {}).get("annotations") or {}
    sa = store.kind("v1", "ServiceAccount").get((ns, sa_name))
    if (
        sa is None
        or annotations.get(SA_NAME_ANNOTATION) != sa_name
        or sa["metadata"]["uid"] != sa_uid
        or annotations.get(SA_UID_ANNOTATION) != sa_uid
    ):
        return None
    return service_account_identity(ns, sa_name)


@dataclass(frozen=True)
class AwsCaller:
    """What STS knows about an access key: its secret and the caller ARN it answers."""

    secret_access_key: str
    arn: str  # e.g. arn:aws:sts::123456789012:assumed-role/Role/session


@dataclass(frozen=True)
class AccessEntry:
    """An EKS access entry: the Kubernetes username and groups of an IAM principal."""

    username: str
    groups: tuple[str, ...]


def canonical_arn(arn: str) -> str:
    """An STS assumed-role ARN as the IAM role ARN access entries name (no session)."""
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        role = parts[5].split("/")[1]
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{role}"
    return arn


_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()  # a presigned GET has an empty body


def _sign(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _uri_encode(text: str) -> str:
    return quote(text, safe="-_.~")


def sigv4_query_signature(
    host: str, params: list[tuple[str, str]], headers: Mapping[str, str], secret: str
) -> str:
    """The SigV4 signature of a presigned GET ``https://host/?params`` (AWS General
    Reference, "Create a signed AWS API request": canonical request, string to sign,
    derived signing key)."""
    query = dict(params)
    signed = query["X-Amz-SignedHeaders"].split(";")
    all_headers = {"host": host, **{k.lower(): v for k, v in headers.items()}}
    canonical_query = "&".join(
        f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(params) if k != "X-Amz-Signature"
    )
    canonical_headers = "".join(f"{h}:{all_headers.get(h, '').strip()}\n" for h in signed)
    canonical_request = "\n".join(
        ["GET", "/", canonical_query, canonical_headers, ";".join(signed), _EMPTY_SHA256]
    )
    credential = query["X-Amz-Credential"].split("/", 1)[1]  # date/region/service/aws4_request
    date, region, service, _ = credential.split("/")
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            query["X-Amz-Date"],
            credential,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = _sign(f"AWS4{secret}".encode(), date)
    for part in (region, service, "aws4_request"):
        key = _sign(key, part)
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


class EksTokenReview:
    """EKS authentication of ``k8s-aws-v1.`` tokens (see the module docstring)."""

    def __init__(
        self,
        cluster_name: str,
        callers: Callable[[str], AwsCaller | None],
        access_entries: Mapping[str, AccessEntry],
        lifetime_s: float = EKS_TOKEN_LIFETIME_S,
    ) -> None:
        self.cluster_name = cluster_name
        self.callers = callers
        self.access_entries = access_entries
        self.lifetime_s = lifetime_s

    def __call__(self, token: str, now: float) -> Identity | None:
        if not token.startswith(EKS_TOKEN_PREFIX):
            return None
        encoded = token[len(EKS_TOKEN_PREFIX) :]
        try:
            url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, binascii.Error):
            return None
        parts = urlsplit(url)
        params = parse_qsl(parts.query, keep_blank_values=True)
        query = dict(params)
        host = parts.hostname or ""
        if (
            parts.scheme != "https"
            or not (host == "sts.amazonaws.com" or host.startswith("sts."))
            or not host.endswith(".amazonaws.com")
            or parts.path not in ("", "/")
            or query.get("Action") != "GetCallerIdentity"
            or query.get("Version") != "2011-06-15"
            or query.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256"
            or "x-k8s-aws-id" not in query.get("X-Amz-SignedHeaders", "").split(";")
        ):
            return None
        try:
            signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            access_key = query["X-Amz-Credential"].split("/", 1)[0]
        except (KeyError, ValueError):
            return None
        age = now - signed_at.timestamp()
        if age > self.lifetime_s or age < -60:  # expired, or signed in the future
            return None
        caller = self.callers(access_key)
        if caller is None:
            return None
        expected = sigv4_query_signature(
            host, params, {"x-k8s-aws-id": self.cluster_name}, caller.secret_access_key
        )
        if not hmac.compare_digest(expected, query.get("X-Amz-Signature", "")):
            return None  # signed for another cluster, or with another key: STS refuses it
        entry = self.access_entries.get(canonical_arn(caller.arn))
        if entry is None:
            return None
        return Identity(entry.username or caller.arn, (*entry.groups, AUTHENTICATED))
