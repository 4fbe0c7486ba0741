"""The fake API server authorizes as Kubernetes RBAC does, escalation prevention included."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from fedkeeper.sandbox.kube_server import FakeKubeServer

RBAC = "rbac.authorization.k8s.io/v1"
USER = "system:serviceaccount:team:bot"


@pytest.fixture
def server() -> Iterator[FakeKubeServer]:
    with FakeKubeServer("rbac") as srv:
        yield srv


def _token(server: FakeKubeServer) -> str:
    """A ServiceAccount team/bot and its token; it starts with no permissions at all."""
    server.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    server.seed(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "bot", "namespace": "team"},
        }
    )
    server.seed(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": "bot-token",
                "namespace": "team",
                "annotations": {"kubernetes.io/service-account.name": "bot"},
            },
        }
    )
    stored = server.get_object("v1", "Secret", "bot-token", "team")
    assert stored is not None
    return base64.b64decode(stored["data"]["token"]).decode()


def _grant(
    server: FakeKubeServer, rules: list[dict[str, Any]], namespace: str | None = None
) -> None:
    """Bind a role with ``rules`` to team/bot (a Role in ``namespace``, else cluster-wide)."""
    name = f"grant-{len(server.list_objects(RBAC, 'ClusterRole')) + len(server.list_objects(RBAC, 'Role'))}"
    subject = [{"kind": "ServiceAccount", "name": "bot", "namespace": "team"}]
    if namespace:
        meta = {"name": name, "namespace": namespace}
        server.seed({"apiVersion": RBAC, "kind": "Role", "metadata": meta, "rules": rules})
        server.seed(
            {
                "apiVersion": RBAC,
                "kind": "RoleBinding",
                "metadata": meta,
                "roleRef": {
                    "apiGroup": RBAC.split("/", maxsplit=1)[0],
                    "kind": "Role",
                    "name": name,
                },
                "subjects": subject,
            }
        )
        return
    server.seed(
        {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}
    )
    server.seed(
        {
            "apiVersion": RBAC,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": RBAC.split("/", maxsplit=1)[0],
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": subject,
        }
    )


def _call(
    server: FakeKubeServer, token: str, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        server.url + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}


READ_NS = {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list"]}
WATCH_NS = {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}
CREATE_ROLES = {
    "apiGroups": ["rbac.authorization.k8s.io"],
    "resources": ["clusterroles"],
    "verbs": ["create", "update", "get"],
}


def test_a_request_without_a_rule_gets_the_api_server_s_403(server: FakeKubeServer) -> None:
    token = _token(server)
    status, body = _call(server, token, "GET", "/api/v1/namespaces/team/secrets")
    assert status == 403
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        f'secrets is forbidden: User "{USER}" cannot list resource "secrets" in API group "" '
        'in the namespace "team"'
    )


def test_a_named_request_names_the_object_and_the_cluster_scope(server: FakeKubeServer) -> None:
    token = _token(server)
    status, body = _call(server, token, "GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/x")
    assert status == 403
    assert body["message"] == (
        f'clusterroles.rbac.authorization.k8s.io "x" is forbidden: User "{USER}" cannot get '
        'resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope'
    )
    assert body["details"] == {
        "name": "x",
        "group": "rbac.authorization.k8s.io",
        "kind": "clusterroles",
    }


def test_resource_names_allow_get_but_never_list_or_create(server: FakeKubeServer) -> None:
    token = _token(server)
    _grant(
        server,
        [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "verbs": ["get", "list", "create"],
                "resourceNames": ["bot-token"],
            }
        ],
        "team",
    )
    assert _call(server, token, "GET", "/api/v1/namespaces/team/secrets/bot-token")[0] == 200
    assert _call(server, token, "GET", "/api/v1/namespaces/team/secrets")[0] == 403
    new = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bot-token-2"}}
    assert _call(server, token, "POST", "/api/v1/namespaces/team/secrets", new)[0] == 403


def test_a_role_binding_grants_only_in_its_namespace(server: FakeKubeServer) -> None:
    token = _token(server)
    _grant(server, [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}], "team")
    assert _call(server, token, "GET", "/api/v1/namespaces/team/secrets")[0] == 200
    assert _call(server, token, "GET", "/api/v1/namespaces/default/secrets")[0] == 403
    assert _call(server, token, "GET", "/api/v1/secrets")[0] == 403  # across namespaces


def test_wildcard_verbs_and_subresource_patterns_match(server: FakeKubeServer) -> None:
    token = _token(server)
    _grant(server, [{"apiGroups": ["apps"], "resources": ["*/status"], "verbs": ["*"]}])
    path = "/apis/apps/v1/namespaces/team/daemonsets/x"
    assert _call(server, token, "GET", path + "/status")[0] == 404  # allowed, absent
    assert _call(server, token, "GET", path)[0] == 403


def test_creating_a_role_with_permissions_not_held_is_refused(server: FakeKubeServer) -> None:
    token = _token(server)
    _grant(server, [READ_NS, CREATE_ROLES])
    status, body = _call(
        server,
        token,
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        _role("r", [WATCH_NS]),
    )
    assert status == 403
    assert body["message"] == (
        'clusterroles.rbac.authorization.k8s.io "r" is forbidden: user '
        f'"{USER}" (groups=["system:serviceaccounts", "system:serviceaccounts:team", '
        '"system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:[""], Resources:["namespaces"], Verbs:["watch"]}'
    )
    assert server.get_object(RBAC, "ClusterRole", "r") is None


def test_creating_a_role_within_the_permissions_held_is_allowed(server: FakeKubeServer) -> None:
    token = _token(server)
    _grant(server, [WATCH_NS, CREATE_ROLES])
    path = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
    assert _call(server, token, "POST", path, _role("r", [READ_NS]))[0] == 201


def test_escalate_limited_by_name_does_not_cover_a_create(server: FakeKubeServer) -> None:
    token = _token(server)
    escalate_r = {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["clusterroles"],
        "verbs": ["escalate"],
        "resourceNames": ["r"],
    }
    _grant(server, [READ_NS, CREATE_ROLES, escalate_r])
    path = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
    assert _call(server, token, "POST", path, _role("r", [WATCH_NS]))[0] == 403
    server.seed(_role("r", [READ_NS]))
    current = server.get_object(RBAC, "ClusterRole", "r")
    assert current is not None
    current["rules"] = [WATCH_NS]
    assert _call(server, token, "PUT", f"{path}/r", current)[0] == 200  # the update names it


def test_binding_a_role_whose_permissions_are_not_held_needs_bind(server: FakeKubeServer) -> None:
    token = _token(server)
    server.seed(_role("powerful", [WATCH_NS]))
    create_bindings = {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["clusterrolebindings"],
        "verbs": ["create"],
    }
    _grant(server, [READ_NS, create_bindings])
    binding = {
        "apiVersion": RBAC,
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "b"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "powerful",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "team"}],
    }
    path = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
    status, body = _call(server, token, "POST", path, binding)
    assert status == 403
    assert "attempting to grant RBAC permissions not currently held" in body["message"]
    bind = {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["clusterroles"],
        "verbs": ["bind"],
        "resourceNames": ["powerful"],
    }
    _grant(server, [bind])
    assert _call(server, token, "POST", path, binding)[0] == 201


def test_system_masters_may_do_anything(server: FakeKubeServer) -> None:
    path = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
    everything = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
    assert _call(server, server.token, "POST", path, _role("all", [everything]))[0] == 201
