"""Who the reconciler is on each cluster, and how long its credentials last.

The sandbox authenticates as EKS and a real API server do: the EKS server accepts the
reconciler role's presigned STS token for 15 minutes of sandbox time, mapped through its
access entry; the on-prem server accepts the ServiceAccount token `fedkeeper
onprem-bootstrap` created, until that Secret or ServiceAccount is deleted.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

from fedkeeper.adapters.auth import eks_token
from fedkeeper.bootstrap import NAMESPACE, SERVICE_ACCOUNT, TOKEN_SECRET
from fedkeeper.model import Scope
from fedkeeper.rbac import RECONCILER_GROUP
from fedkeeper.sandbox import Sandbox
from fedkeeper.sandbox.kube_server import FakeKubeServer
from fedkeeper.service import Connections, reconcile

FIFTEEN_MINUTES = 15 * 60


def _get(server: FakeKubeServer, token: str, path: str = "/api/v1/namespaces") -> tuple[int, Any]:
    request = urllib.request.Request(
        server.url + path, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _reconciler_token(sb: Sandbox, cluster: str | None = None) -> str:
    return eks_token(sb.reconciler_session(), cluster or sb.config.sole_eks().cluster_name)


def _onprem_token(sb: Sandbox) -> str:
    secret = sb.onprem_server.get_object("v1", "Secret", TOKEN_SECRET, NAMESPACE)
    assert secret is not None
    return base64.b64decode(secret["data"]["token"]).decode()


def test_the_reconciler_role_token_maps_to_its_access_entry_group(sandbox: Sandbox) -> None:
    identity = sandbox.eks_server.authenticate(_reconciler_token(sandbox))
    assert identity is not None
    assert RECONCILER_GROUP in identity.groups
    assert identity.user.startswith("arn:aws:sts::")
    assert "assumed-role/" in identity.user


def test_an_eks_token_is_refused_with_401_once_15_minutes_old(sandbox: Sandbox) -> None:
    token = _reconciler_token(sandbox)
    assert _get(sandbox.eks_server, token)[0] == 200
    sandbox.advance_time(FIFTEEN_MINUTES + 1)
    status, body = _get(sandbox.eks_server, token)
    assert status == 401
    assert body["kind"] == "Status"
    assert body["reason"] == "Unauthorized"


def test_an_eks_token_signed_for_another_cluster_is_refused(sandbox: Sandbox) -> None:
    token = _reconciler_token(sandbox, cluster="some-other-cluster")
    assert sandbox.eks_server.authenticate(token) is None


def test_a_caller_without_an_access_entry_is_refused(sandbox: Sandbox) -> None:
    token = eks_token(sandbox.aws_session(), sandbox.config.sole_eks().cluster_name)
    assert sandbox.eks_server.authenticate(token) is None


def test_a_forged_k8s_aws_token_is_refused(sandbox: Sandbox) -> None:
    assert _get(sandbox.eks_server, "k8s-aws-v1.anything")[0] == 401


def test_a_warm_connections_keeps_working_across_eks_token_expiry(sandbox: Sandbox) -> None:
    conns = sandbox.connections()
    assert not sandbox.reconcile(["snat", "rcc"], "plan").errors
    first = _reconciler_token(sandbox)
    sandbox.advance_time(FIFTEEN_MINUTES + 60)
    assert sandbox.eks_server.authenticate(first) is None  # what a stale client would send
    report = sandbox.reconcile(["snat", "rcc", "checks"], "plan")
    assert report.errors == []
    assert sandbox.connections() is conns  # the same warm clients, a fresh token
    assert all(r.status != 401 for r in sandbox.eks_server.requests)


def test_the_onprem_identity_is_the_bootstrap_service_account(sandbox: Sandbox) -> None:
    identity = sandbox.onprem_server.authenticate(_onprem_token(sandbox))
    assert identity is not None
    assert identity.user == f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"


def test_deleting_the_token_secret_revokes_the_onprem_token(sandbox: Sandbox) -> None:
    token = _onprem_token(sandbox)
    sandbox.onprem_server.delete_object("v1", "Secret", TOKEN_SECRET, NAMESPACE)
    assert _get(sandbox.onprem_server, token)[0] == 401


def test_deleting_the_service_account_revokes_its_token(sandbox: Sandbox) -> None:
    token = _onprem_token(sandbox)
    sandbox.onprem_server.delete_object("v1", "ServiceAccount", SERVICE_ACCOUNT, NAMESPACE)
    assert sandbox.onprem_server.authenticate(token) is None


def test_an_onprem_credentials_rotation_is_picked_up_on_the_next_run(sandbox: Sandbox) -> None:
    assert not sandbox.reconcile(["ippools"], "plan").errors  # a warm on-prem client
    new_token = sandbox.onprem_server.rotate_token(NAMESPACE, TOKEN_SECRET)
    sm = sandbox.aws_session().client("secretsmanager")
    name = sandbox.config.sole_site().credentials_secret
    kubeconfig = json.loads(sm.get_secret_value(SecretId=name)["SecretString"])
    kubeconfig["users"][0]["user"]["token"] = new_token
    sm.put_secret_value(SecretId=name, SecretString=json.dumps(kubeconfig))
    sandbox.clear_logs()

    report = sandbox.reconcile(["ippools"], "plan")

    assert report.errors == []
    statuses = [r.status for r in sandbox.onprem_server.requests]
    assert statuses[0] == 401  # the old token, once
    assert all(s == 200 for s in statuses[1:])


def test_an_eks_token_refused_before_its_refresh_time_is_reminted_once(sandbox: Sandbox) -> None:
    # A container whose clock stood still (frozen) while the token expired.
    conns = Connections(sandbox.config, sandbox.reconciler_session(), clock=lambda: 0.0)
    try:
        assert not reconcile(conns, Scope.of("snat"), "plan").errors
        sandbox.advance_time(FIFTEEN_MINUTES + 60)
        sandbox.clear_logs()

        report = reconcile(conns, Scope.of("snat"), "plan")

        assert report.errors == []
        assert [r.status for r in sandbox.eks_server.requests][:2] == [401, 200]
    finally:
        conns.close()
