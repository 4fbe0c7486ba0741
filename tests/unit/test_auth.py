"""EKS bearer tokens and stored kubeconfigs (pure except for local signing)."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from fedkeeper.adapters.auth import (
    TOKEN_PREFIX,
    TOKEN_REFRESH_S,
    EksTokenSource,
    eks_kubeconfig,
    eks_token,
    keep_bearer_token_fresh,
    parse_kubeconfig,
)
from fedkeeper.errors import PermanentError


def test_eks_token_is_a_presigned_get_caller_identity_bound_to_the_cluster() -> None:
    session = boto3.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="eu-west-1"
    )
    token = eks_token(session, "fed-eks")
    assert token.startswith(TOKEN_PREFIX)
    encoded = token[len(TOKEN_PREFIX) :]
    assert "=" not in encoded  # base64url without padding
    url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.netloc == "sts.eu-west-1.amazonaws.com"
    assert query["Action"] == ["GetCallerIdentity"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0]
    assert query["X-Amz-Credential"][0].startswith("AKIDEXAMPLE/")


def test_token_source_reuses_then_refreshes_before_expiry() -> None:
    now = [0.0]
    minted: list[int] = []

    def mint() -> str:
        minted.append(1)
        return f"t{len(minted)}"

    source = EksTokenSource(mint, clock=lambda: now[0])
    assert source.token() == "t1"
    now[0] = TOKEN_REFRESH_S - 1
    assert source.token() == "t1"
    now[0] = TOKEN_REFRESH_S
    assert source.token() == "t2"


def test_eks_kubeconfig_uses_endpoint_ca_and_token() -> None:
    kc = eks_kubeconfig(
        {
            "name": "fed-eks",
            "endpoint": "https://ABC.gr7.eu-west-1.eks.amazonaws.com",
            "certificateAuthority": {"data": "Q0E="},
        },
        "k8s-aws-v1.x",
    )
    assert kc["clusters"][0]["cluster"] == {
        "server": "https://ABC.gr7.eu-west-1.eks.amazonaws.com",
        "certificate-authority-data": "Q0E=",
    }
    assert kc["users"][0]["user"] == {"token": "k8s-aws-v1.x"}


def test_cluster_without_endpoint_is_a_permanent_error() -> None:
    with pytest.raises(PermanentError, match="no endpoint yet"):
        eks_kubeconfig({"name": "fed-eks", "status": "CREATING"}, "t")


def test_stored_kubeconfig_may_be_yaml_or_json() -> None:
    as_json = (
        '{"clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.10:6443"}}], '
        '"users": [{"name": "u", "user": {"token": "t"}}], '
        '"contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}], '
        '"current-context": "c"}'
    )
    as_yaml = (
        "clusters: [{name: c, cluster: {server: 'https://10.0.0.10:6443'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
        "current-context: c\n"
    )
    assert parse_kubeconfig(as_json, "s") == parse_kubeconfig(as_yaml, "s")


def test_a_kubeconfig_client_sends_the_token_source_s_current_token() -> None:
    from kubernetes.config.kube_config import new_client_from_config_dict

    kc = eks_kubeconfig({"name": "c", "endpoint": "https://x.example"}, "k8s-aws-v1.first")
    client = new_client_from_config_dict(kc)
    current = ["k8s-aws-v1.first"]
    keep_bearer_token_fresh(client.configuration, lambda: current[0])
    current[0] = "k8s-aws-v1.second"  # minted by the source after 10 minutes

    sent = client.configuration.auth_settings()["BearerToken"]["value"]

    assert sent == "Bearer k8s-aws-v1.second"
