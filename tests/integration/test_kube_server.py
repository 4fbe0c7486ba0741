"""The fake Kubernetes API server, spoken to by the official ``kubernetes`` client over HTTP.

Each test starts its own server and builds an ``ApiClient`` from the server's kubeconfig,
exactly as production code does, so these tests pin the API conventions that fedkeeper's
adapters rely on (status codes, optimistic concurrency, patch flavours, selectors, the
Calico IPPool rules) and the fault injection the sandbox scenarios use.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.config.kube_config import new_client_from_config_dict

from fedkeeper.sandbox.kube_server import (
    BUILTIN_TYPES,
    FakeKubeServer,
    RequestRecord,
    ResourceType,
)

CALICO = "projectcalico.org"
V3 = "v3"
SA_TOKEN = "kubernetes.io/service-account-token"


# --- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[FakeKubeServer]:
    with FakeKubeServer("test") as srv:
        yield srv


def _client(srv: FakeKubeServer, token: str | None = None) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.retries = 0  # a refused connection fails at once
    return new_client_from_config_dict(
        srv.kubeconfig(token=token), client_configuration=configuration
    )


@pytest.fixture
def api(server: FakeKubeServer) -> Iterator[client.ApiClient]:
    api_client = _client(server)
    yield api_client
    api_client.close()


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def apps(api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api)


@pytest.fixture
def rbac(api: client.ApiClient) -> client.RbacAuthorizationV1Api:
    return client.RbacAuthorizationV1Api(api)


@pytest.fixture
def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def status_of(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    assert body["kind"] == "Status"
    assert body["status"] == "Failure"
    assert body["code"] == exc.status
    return body


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {}},
        "data": data,
    }


def ippool(name: str, cidr: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{CALICO}/{V3}",
        "kind": "IPPool",
        "metadata": {"name": name},
        "spec": {"cidr": cidr, **spec},
    }


def create_pool(custom: client.CustomObjectsApi, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = custom.create_cluster_custom_object(CALICO, V3, "ippools", body)
    return created


def aws_node_daemonset() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "aws-node", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "aws-node"}},
            "template": {
                "metadata": {"labels": {"k8s-app": "aws-node"}},
                "spec": {
                    "containers": [
                        {
                            "name": "aws-node",
                            "image": "amazon-k8s-cni:v1.19.0",
                            "env": [
                                {"name": "AWS_VPC_K8S_CNI_LOGLEVEL", "value": "DEBUG"},
                                {"name": "AWS_VPC_K8S_CNI_EXTERNALSNAT", "value": "false"},
                                {"name": "WARM_ENI_TARGET", "value": "1"},
                            ],
                        },
                        {
                            "name": "aws-eks-nodeagent",
                            "image": "aws-network-policy-agent:v1.1.0",
                            "env": [{"name": "ENABLE_NETWORK_POLICY", "value": "false"}],
                        },
                    ]
                },
            },
        },
    }


# --- create / get / replace / delete -------------------------------------------------------


def test_create_answers_201_with_uid_resource_version_and_creation_timestamp(
    core: client.CoreV1Api,
) -> None:
    # Given an empty default namespace
    # When a ConfigMap is created
    obj, status, _ = core.create_namespaced_config_map_with_http_info(
        "default", configmap("settings", a="1")
    )
    # Then the server answers 201 and fills the server-side metadata
    assert status == 201
    assert obj.metadata.uid
    assert int(obj.metadata.resource_version) > 0
    assert obj.metadata.creation_timestamp is not None
    assert obj.metadata.namespace == "default"
    assert obj.metadata.generation == 1


def test_resource_version_is_one_global_increasing_counter(core: client.CoreV1Api) -> None:
    # Given two objects created one after the other in different namespaces
    first = core.create_namespaced_config_map("default", configmap("a"))
    second = core.create_namespaced_config_map("kube-system", configmap("b"))
    # When the first is updated
    first.data = {"x": "y"}
    updated = core.replace_namespaced_config_map("a", "default", first)
    # Then each write got a larger resourceVersion than the one before
    rvs = [int(o.metadata.resource_version) for o in (first, second, updated)]
    assert rvs == sorted(rvs)
    assert len(set(rvs)) == 3


def test_get_of_a_missing_object_raises_404_with_reason_not_found(
    core: client.CoreV1Api,
) -> None:
    # Given no Secret named "nope"
    # When it is read
    with pytest.raises(ApiException) as err:
        core.read_namespaced_secret("nope", "default")
    # Then the client sees a 404 Status with reason NotFound naming the object
    assert err.value.status == 404
    body = status_of(err.value)
    assert body["reason"] == "NotFound"
    assert body["details"] == {"name": "nope", "kind": "secrets"}
    assert body["message"] == 'secrets "nope" not found'


def test_creating_an_existing_name_raises_409_already_exists(core: client.CoreV1Api) -> None:
    # Given a ConfigMap
    core.create_namespaced_config_map("default", configmap("dup"))
    # When it is created again
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", configmap("dup"))
    # Then the server answers 409 AlreadyExists
    assert err.value.status == 409
    assert status_of(err.value)["reason"] == "AlreadyExists"


def test_create_in_a_missing_namespace_raises_404(core: client.CoreV1Api) -> None:
    # Given no namespace "ghost"
    # When a ConfigMap is created in it
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("ghost", configmap("cm"))
    # Then the server answers 404 for the namespace
    assert err.value.status == 404
    assert status_of(err.value)["message"] == 'namespaces "ghost" not found'


def test_create_with_a_mismatched_kind_or_namespace_raises_400(core: client.CoreV1Api) -> None:
    # Given bodies whose kind or namespace disagree with the URL
    wrong_kind = {**configmap("cm"), "kind": "Secret"}
    wrong_ns = configmap("cm")
    wrong_ns["metadata"]["namespace"] = "kube-system"
    # When they are posted
    for body in (wrong_kind, wrong_ns):
        with pytest.raises(ApiException) as err:
            core.create_namespaced_config_map("default", body)
        # Then each is rejected as a bad request
        assert err.value.status == 400
        assert status_of(err.value)["reason"] == "BadRequest"


def test_generate_name_creates_a_unique_name_from_the_prefix(core: client.CoreV1Api) -> None:
    # Given a body with generateName and no name
    body = {"metadata": {"generateName": "fk-"}, "data": {}}
    # When it is created twice
    a = core.create_namespaced_config_map("default", body)
    b = core.create_namespaced_config_map("default", body)
    # Then both get distinct names with the prefix
    assert a.metadata.name.startswith("fk-")
    assert b.metadata.name.startswith("fk-")
    assert a.metadata.name != b.metadata.name


def test_invalid_object_name_is_rejected_with_422(core: client.CoreV1Api) -> None:
    # Given a name with upper-case letters
    # When it is created
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", configmap("Not_Valid"))
    # Then the server answers 422 Invalid
    assert err.value.status == 422
    assert status_of(err.value)["reason"] == "Invalid"


def test_put_with_a_stale_resource_version_raises_409_and_a_fresh_one_succeeds(
    core: client.CoreV1Api, server: FakeKubeServer
) -> None:
    # Given a ConfigMap read by us and then changed by someone else
    held = core.create_namespaced_config_map("default", configmap("cm", a="1"))
    server.mutate("v1", "ConfigMap", "cm", "default", lambda o: o["data"].update(a="2"))
    # When we PUT our stale copy
    held.data = {"a": "mine"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("cm", "default", held)
    # Then it is rejected with 409 Conflict
    assert err.value.status == 409
    assert status_of(err.value)["reason"] == "Conflict"
    # And a PUT of a freshly read copy succeeds and bumps the resourceVersion
    fresh = core.read_namespaced_config_map("cm", "default")
    fresh.data = {"a": "mine"}
    replaced, status, _ = core.replace_namespaced_config_map_with_http_info("cm", "default", fresh)
    assert status == 200
    assert replaced.data == {"a": "mine"}
    assert int(replaced.metadata.resource_version) > int(fresh.metadata.resource_version)


def test_put_without_resource_version_is_unconditional(core: client.CoreV1Api) -> None:
    # Given a ConfigMap
    created = core.create_namespaced_config_map("default", configmap("cm", a="1"))
    # When it is replaced by a body carrying no resourceVersion
    replaced = core.replace_namespaced_config_map("cm", "default", configmap("cm", a="2"))
    # Then the write wins and the server-owned metadata is kept
    assert replaced.data == {"a": "2"}
    assert replaced.metadata.uid == created.metadata.uid


def test_put_of_a_missing_object_raises_404(core: client.CoreV1Api) -> None:
    # Given no ConfigMap "cm"
    # When it is replaced
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("cm", "default", configmap("cm"))
    # Then the server answers 404
    assert err.value.status == 404


def test_delete_answers_200_and_removes_the_object(
    core: client.CoreV1Api, server: FakeKubeServer
) -> None:
    # Given a ConfigMap
    core.create_namespaced_config_map("default", configmap("cm"))
    # When it is deleted
    _, status, _ = core.delete_namespaced_config_map_with_http_info("cm", "default")
    # Then the server answers 200, the object is gone and a second delete is a 404
    assert status == 200
    assert server.get_object("v1", "ConfigMap", "cm", "default") is None
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_config_map("cm", "default")
    assert err.value.status == 404


def test_delete_with_a_stale_resource_version_precondition_raises_409(
    core: client.CoreV1Api, server: FakeKubeServer
) -> None:
    # Given a ConfigMap whose resourceVersion we hold, then changed by someone else
    held = core.create_namespaced_config_map("default", configmap("cm"))
    server.mutate("v1", "ConfigMap", "cm", "default", lambda o: o.update(data={"b": "2"}))
    stale = client.V1DeleteOptions(
        preconditions=client.V1Preconditions(resource_version=held.metadata.resource_version)
    )
    # When it is deleted with that precondition
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_config_map("cm", "default", body=stale)
    # Then it is refused with 409 Conflict and the object stays
    assert err.value.status == 409
    assert status_of(err.value)["reason"] == "Conflict"
    assert server.get_object("v1", "ConfigMap", "cm", "default") is not None


def test_deleting_a_namespace_deletes_the_objects_in_it(
    core: client.CoreV1Api, server: FakeKubeServer
) -> None:
    # Given a namespace holding a ConfigMap
    core.create_namespace({"metadata": {"name": "team"}})
    core.create_namespaced_config_map("team", configmap("cm"))
    # When the namespace is deleted
    core.delete_namespace("team")
    # Then its objects are gone too
    assert server.list_objects("v1", "ConfigMap", "team") == []


# --- patches -------------------------------------------------------------------------------


def test_merge_patch_with_a_stale_resource_version_raises_409(
    custom: client.CustomObjectsApi, server: FakeKubeServer
) -> None:
    # Given an IPPool whose resourceVersion we hold, then changed by someone else
    held = create_pool(custom, ippool("pool", "10.1.0.0/16"))
    server.mutate(
        f"{CALICO}/{V3}", "IPPool", "pool", None, lambda o: o["spec"].update(disabled=True)
    )
    patch = {
        "metadata": {"resourceVersion": held["metadata"]["resourceVersion"]},
        "spec": {"natOutgoing": True},
    }
    # When a merge patch carrying the old resourceVersion is sent
    with pytest.raises(ApiException) as err:
        custom.patch_cluster_custom_object(CALICO, V3, "ippools", "pool", patch)
    # Then it is refused with 409 Conflict and nothing changed
    assert err.value.status == 409
    stored = server.get_object(f"{CALICO}/{V3}", "IPPool", "pool")
    assert stored is not None
    assert "natOutgoing" not in stored["spec"]  # false: omitted, as Calico serves it


def test_merge_patch_on_a_custom_object_changes_only_the_given_fields(
    custom: client.CustomObjectsApi,
) -> None:
    # Given a RemoteClusterConfiguration
    custom.create_cluster_custom_object(
        CALICO,
        V3,
        "remoteclusterconfigurations",
        {
            "apiVersion": f"{CALICO}/{V3}",
            "kind": "RemoteClusterConfiguration",
            "metadata": {"name": "aws", "labels": {"keep": "me"}},
            "spec": {
                "clusterAccessSecret": {"name": "remote-aws", "namespace": "calico-system"},
                "syncOptions": {"overlayRoutingMode": "Enabled"},
            },
        },
    )
    # When CustomObjectsApi patches one nested field (merge patch) and removes a label (null)
    patched = custom.patch_cluster_custom_object(
        CALICO,
        V3,
        "remoteclusterconfigurations",
        "aws",
        {
            "metadata": {"labels": {"keep": None}},
            "spec": {"syncOptions": {"overlayRoutingMode": "Disabled"}},
        },
    )
    # Then only that field changed, the rest is kept and the label is gone
    assert patched["spec"]["syncOptions"] == {"overlayRoutingMode": "Disabled"}
    assert patched["spec"]["clusterAccessSecret"]["name"] == "remote-aws"
    assert patched["metadata"].get("labels") == {}
    assert patched["metadata"]["generation"] == 2


def test_strategic_merge_patch_of_daemonset_env_updates_one_variable_and_keeps_the_rest(
    apps: client.AppsV1Api, server: FakeKubeServer
) -> None:
    # Given the aws-node DaemonSet with two containers and three env vars on aws-node
    server.seed(aws_node_daemonset())
    server.clear_log()
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "aws-node",
                            "env": [{"name": "AWS_VPC_K8S_CNI_EXTERNALSNAT", "value": "true"}],
                        }
                    ]
                }
            }
        }
    }
    # When AppsV1Api patches the one env var (a dict body: strategic merge patch)
    ds = apps.patch_namespaced_daemon_set("aws-node", "kube-system", patch)
    # Then that variable changed and every other env entry, the image and the other container
    # are kept
    containers = {c.name: c for c in ds.spec.template.spec.containers}
    env = {e.name: e.value for e in containers["aws-node"].env}
    assert env == {
        "AWS_VPC_K8S_CNI_LOGLEVEL": "DEBUG",
        "AWS_VPC_K8S_CNI_EXTERNALSNAT": "true",
        "WARM_ENI_TARGET": "1",
    }
    assert containers["aws-node"].image == "amazon-k8s-cni:v1.19.0"
    assert containers["aws-eks-nodeagent"].image == "aws-network-policy-agent:v1.1.0"
    assert [e.name for e in containers["aws-eks-nodeagent"].env] == ["ENABLE_NETWORK_POLICY"]
    assert ds.metadata.generation == 2
    assert [(r.method, r.status) for r in server.writes()] == [("PATCH", 200)]


def test_strategic_merge_patch_delete_directive_removes_one_list_item(
    apps: client.AppsV1Api, server: FakeKubeServer
) -> None:
    # Given the aws-node DaemonSet
    server.seed(aws_node_daemonset())
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "aws-node",
                            "env": [{"name": "WARM_ENI_TARGET", "$patch": "delete"}],
                        }
                    ]
                }
            }
        }
    }
    # When a strategic patch deletes one env entry by name
    ds = apps.patch_namespaced_daemon_set("aws-node", "kube-system", patch)
    # Then only that entry is gone
    aws_node = next(c for c in ds.spec.template.spec.containers if c.name == "aws-node")
    assert [e.name for e in aws_node.env] == [
        "AWS_VPC_K8S_CNI_LOGLEVEL",
        "AWS_VPC_K8S_CNI_EXTERNALSNAT",
    ]


def test_json_patch_applies_its_operations_in_order(core: client.CoreV1Api) -> None:
    # Given a ConfigMap
    core.create_namespaced_config_map("default", configmap("cm", a="1", b="2"))
    ops = [
        {"op": "test", "path": "/data/a", "value": "1"},
        {"op": "replace", "path": "/data/a", "value": "10"},
        {"op": "remove", "path": "/data/b"},
        {"op": "add", "path": "/data/c", "value": "3"},
        {"op": "copy", "from": "/data/c", "path": "/data/d"},
        {"op": "move", "from": "/data/d", "path": "/data/e"},
    ]
    # When a JSON patch (a list body) is sent
    patched = core.patch_namespaced_config_map("cm", "default", ops)
    # Then every operation was applied
    assert patched.data == {"a": "10", "c": "3", "e": "3"}


def test_json_patch_with_a_failing_test_operation_raises_422(
    core: client.CoreV1Api, server: FakeKubeServer
) -> None:
    # Given a ConfigMap
    core.create_namespaced_config_map("default", configmap("cm", a="1"))
    ops = [
        {"op": "replace", "path": "/data/a", "value": "2"},
        {"op": "test", "path": "/data/a", "value": "1"},
    ]
    # When a JSON patch whose test fails is sent
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map("cm", "default", ops)
    # Then it is refused with 422 and nothing was applied
    assert err.value.status == 422
    stored = server.get_object("v1", "ConfigMap", "cm", "default")
    assert stored is not None
    assert stored["data"] == {"a": "1"}


def test_patch_of_a_missing_object_raises_404(custom: client.CustomObjectsApi) -> None:
    # Given no IPPool "ghost"
    # When it is patched
    with pytest.raises(ApiException) as err:
        custom.patch_cluster_custom_object(CALICO, V3, "ippools", "ghost", {"spec": {}})
    # Then the server answers 404
    assert err.value.status == 404


def test_server_side_apply_is_refused_with_415(
    api: client.ApiClient, server: FakeKubeServer
) -> None:
    # Given a ConfigMap
    server.seed(configmap("cm"))
    # When it is patched with the apply-patch content type
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(api).patch_namespaced_config_map(
            "cm", "default", {"data": {}}, _content_type="application/apply-patch+yaml"
        )
    # Then the server answers 415
    assert err.value.status == 415


# --- lists and selectors -------------------------------------------------------------------


def test_list_filters_by_label_selector(core: client.CoreV1Api) -> None:
    # Given ConfigMaps with various labels
    for name, labels in {
        "a": {"app": "fk", "tier": "x"},
        "b": {"app": "fk", "tier": "y"},
        "c": {"app": "other"},
        "d": {},
    }.items():
        core.create_namespaced_config_map("default", configmap(name, labels))

    def names(selector: str) -> list[str]:
        items = core.list_namespaced_config_map("default", label_selector=selector).items
        return [i.metadata.name for i in items]

    # When lists are filtered by selectors
    # Then each returns exactly the matching objects (sorted by name)
    assert names("app=fk") == ["a", "b"]
    assert names("app==fk,tier!=x") == ["b"]
    assert names("tier in (x, y)") == ["a", "b"]
    assert names("app notin (fk)") == ["c", "d"]
    assert names("tier") == ["a", "b"]
    assert names("!app") == ["d"]
    assert names("") == ["a", "b", "c", "d"]


def test_list_across_namespaces_filters_by_field_selector(core: client.CoreV1Api) -> None:
    # Given same-named ConfigMaps in two namespaces
    core.create_namespaced_config_map("default", configmap("cfg"))
    core.create_namespaced_config_map("kube-system", configmap("cfg"))
    core.create_namespaced_config_map("kube-system", configmap("other"))
    # When all namespaces are listed by name and by namespace
    by_name = core.list_config_map_for_all_namespaces(field_selector="metadata.name=cfg")
    by_ns = core.list_config_map_for_all_namespaces(field_selector="metadata.namespace=kube-system")
    # Then the field selectors pick the right objects and items carry apiVersion and kind
    assert [(i.metadata.namespace, i.metadata.name) for i in by_name.items] == [
        ("default", "cfg"),
        ("kube-system", "cfg"),
    ]
    assert [i.metadata.name for i in by_ns.items] == ["cfg", "other"]
    assert by_name.items[0].api_version == "v1"
    assert by_name.items[0].kind == "ConfigMap"


def test_custom_object_list_has_list_kind_and_resource_version(
    custom: client.CustomObjectsApi,
) -> None:
    # Given two IPPools
    create_pool(custom, ippool("a", "10.1.0.0/16"))
    create_pool(custom, ippool("b", "10.2.0.0/16"))
    # When they are listed
    listed = custom.list_cluster_custom_object(CALICO, V3, "ippools")
    # Then the list has the List kind, a resourceVersion and typed items
    assert listed["kind"] == "IPPoolList"
    assert listed["apiVersion"] == f"{CALICO}/{V3}"
    assert int(listed["metadata"]["resourceVersion"]) > 0
    assert [(i["kind"], i["metadata"]["name"]) for i in listed["items"]] == [
        ("IPPool", "a"),
        ("IPPool", "b"),
    ]


# --- secrets and service-account tokens ----------------------------------------------------


def test_secret_string_data_is_folded_into_base64_data(core: client.CoreV1Api) -> None:
    # Given a Secret body with stringData next to data
    body = {
        "metadata": {"name": "creds"},
        "data": {"old": base64.b64encode(b"x").decode()},
        "stringData": {"kubeconfig": "apiVersion: v1"},
    }
    # When it is created and read back
    core.create_namespaced_secret("default", body)
    secret = core.read_namespaced_secret("creds", "default")
    # Then stringData became base64 data and is not stored
    assert base64.b64decode(secret.data["kubeconfig"]) == b"apiVersion: v1"
    assert base64.b64decode(secret.data["old"]) == b"x"
    assert secret.string_data is None
    assert secret.type == "Opaque"


def test_service_account_token_secret_is_filled_by_the_token_controller(
    core: client.CoreV1Api, server: FakeKubeServer
) -> None:
    # Given a ServiceAccount
    core.create_namespaced_service_account(
        "calico-system", {"metadata": {"name": "tigera-federation-remote-cluster"}}
    )
    body = {
        "metadata": {
            "name": "tigera-federation-remote-cluster",
            "annotations": {
                "kubernetes.io/service-account.name": "tigera-federation-remote-cluster"
            },
        },
        "type": SA_TOKEN,
    }
    # When a token Secret for it is created and read back
    core.create_namespaced_secret("calico-system", body)
    secret = core.read_namespaced_secret("tigera-federation-remote-cluster", "calico-system")
    # Then the token, the CA and the namespace were filled in
    token = base64.b64decode(secret.data["token"]).decode()
    assert token.count(".") == 2  # JWT-shaped
    assert base64.b64decode(secret.data["ca.crt"]) == base64.b64decode(server.ca_data)
    assert base64.b64decode(secret.data["namespace"]) == b"calico-system"
    # And the token authenticates against this API server as the service account
    identity = server.authenticate(token)
    assert identity is not None
    assert identity.user == "system:serviceaccount:calico-system:tigera-federation-remote-cluster"


def test_rotate_token_replaces_the_token_and_bumps_the_resource_version(
    core: client.CoreV1Api, server: FakeKubeServer
) -> None:
    # Given a filled service-account token Secret
    server.seed(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "remote", "namespace": "calico-system"},
        }
    )
    server.seed(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": SA_TOKEN,
            "metadata": {
                "name": "remote-token",
                "namespace": "calico-system",
                "annotations": {"kubernetes.io/service-account.name": "remote"},
            },
        }
    )
    before = core.read_namespaced_secret("remote-token", "calico-system")
    # When the token is rotated
    new_token = server.rotate_token("calico-system", "remote-token")
    # Then the Secret carries the new token under a new resourceVersion
    after = core.read_namespaced_secret("remote-token", "calico-system")
    assert base64.b64decode(after.data["token"]).decode() == new_token
    assert after.data["token"] != before.data["token"]
    assert int(after.metadata.resource_version) > int(before.metadata.resource_version)
    # And the old token no longer authenticates
    old_token = base64.b64decode(before.data["token"]).decode()
    assert not server.authenticates(old_token)
    assert server.authenticates(new_token)


def test_token_secret_for_a_missing_service_account_is_kept_unfilled(
    core: client.CoreV1Api,
) -> None:
    # Given no ServiceAccount "ghost"
    body = {
        "metadata": {
            "name": "ghost-token",
            "annotations": {"kubernetes.io/service-account.name": "ghost"},
        },
        "type": SA_TOKEN,
    }
    # When a token Secret for it is created
    core.create_namespaced_secret("default", body)
    # Then the Secret exists but has no token
    secret = core.read_namespaced_secret("ghost-token", "default")
    assert not (secret.data or {}).get("token")


# --- Calico IPPool validation ---------------------------------------------------------------


def test_ippool_create_applies_calico_defaults(custom: client.CustomObjectsApi) -> None:
    # Given a pool body with only a CIDR
    # When it is created
    pool = create_pool(custom, ippool("pool", "10.1.0.0/16"))
    # Then Calico's defaults are filled in, and false booleans are left out (omitempty)
    assert pool["spec"] == {
        "cidr": "10.1.0.0/16",
        "blockSize": 26,
        "ipipMode": "Never",
        "vxlanMode": "Never",
        "nodeSelector": "all()",
        "allowedUses": ["Workload", "Tunnel"],
        "assignmentMode": "Automatic",
    }


def test_ippool_false_booleans_are_served_omitted(custom: client.CustomObjectsApi) -> None:
    body = ippool("pool", "10.1.0.0/16")
    body["spec"].update(natOutgoing=False, disabled=False, disableBGPExport=False)
    pool = create_pool(custom, body)
    read = custom.get_cluster_custom_object(CALICO, V3, "ippools", "pool")
    for served in (pool, read):
        assert not {"natOutgoing", "disabled", "disableBGPExport"} & set(served["spec"])


def test_rcc_is_served_with_overlay_routing_defaulted_and_empty_fields_omitted(
    custom: client.CustomObjectsApi,
) -> None:
    body = {
        "apiVersion": f"{CALICO}/{V3}",
        "kind": "RemoteClusterConfiguration",
        "metadata": {"name": "other"},
        "spec": {
            "clusterAccessSecret": {"name": "s", "namespace": "calico-system", "kind": "Secret"},
            "kubeconfig": "",
        },
    }
    rcc = custom.create_cluster_custom_object(CALICO, V3, "remoteclusterconfigurations", body)
    assert rcc["spec"] == {
        "clusterAccessSecret": {"name": "s", "namespace": "calico-system", "kind": "Secret"},
        "syncOptions": {"overlayRoutingMode": "Disabled"},
    }


def test_ippool_with_an_overlapping_cidr_is_rejected_with_422_and_calicos_message(
    custom: client.CustomObjectsApi,
) -> None:
    # Given an enabled pool
    create_pool(custom, ippool("default-ipv4-ippool", "192.168.0.0/16"))
    # When a pool inside it is created
    with pytest.raises(ApiException) as err:
        create_pool(custom, ippool("fk-aws", "192.168.10.0/24", disabled=True))
    # Then it is refused with 422 Invalid and Calico's message
    assert err.value.status == 422
    body = status_of(err.value)
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        "IPPool(fk-aws) CIDR overlaps with IPPool(default-ipv4-ippool) CIDR 192.168.0.0/16"
    )


def test_ippool_overlapping_a_disabled_pool_is_rejected_too(
    custom: client.CustomObjectsApi,
) -> None:
    # Given a disabled pool
    create_pool(custom, ippool("fk-aws-10-100-0-0-16", "10.100.0.0/16", disabled=True))
    # When an overlapping (wider) pool is created
    with pytest.raises(ApiException) as err:
        create_pool(custom, ippool("wide", "10.0.0.0/8"))
    # Then it is refused with 422 naming the disabled pool
    assert err.value.status == 422
    assert status_of(err.value)["message"] == (
        "IPPool(wide) CIDR overlaps with IPPool(fk-aws-10-100-0-0-16) CIDR 10.100.0.0/16"
    )


def test_ippool_cidr_is_immutable(custom: client.CustomObjectsApi) -> None:
    # Given a pool
    create_pool(custom, ippool("pool", "10.1.0.0/16"))
    # When its CIDR is patched
    with pytest.raises(ApiException) as err:
        custom.patch_cluster_custom_object(
            CALICO, V3, "ippools", "pool", {"spec": {"cidr": "10.2.0.0/16"}}
        )
    # Then the change is refused with 422 naming the field
    assert err.value.status == 422
    message = status_of(err.value)["message"]
    assert "IPPool.Spec.CIDR" in message
    assert "immutable" in message


def test_ippool_block_size_is_immutable_on_replace(custom: client.CustomObjectsApi) -> None:
    # Given a pool
    pool = create_pool(custom, ippool("pool", "10.1.0.0/16"))
    # When it is replaced with another block size
    pool["spec"]["blockSize"] = 24
    with pytest.raises(ApiException) as err:
        custom.replace_cluster_custom_object(CALICO, V3, "ippools", "pool", pool)
    # Then the change is refused with 422 naming the field
    assert err.value.status == 422
    assert "IPPool.Spec.BlockSize" in status_of(err.value)["message"]


def test_ippool_cidr_with_host_bits_is_rejected(custom: client.CustomObjectsApi) -> None:
    # Given a CIDR that is not a network address
    # When a pool with it is created
    with pytest.raises(ApiException) as err:
        create_pool(custom, ippool("pool", "10.1.2.3/16"))
    # Then it is refused with 422
    assert err.value.status == 422
    assert "IPPool.Spec.CIDR" in status_of(err.value)["message"]


def test_ippool_other_fields_can_be_patched(custom: client.CustomObjectsApi) -> None:
    # Given a pool
    create_pool(custom, ippool("pool", "10.1.0.0/16"))
    # When a mutable field is patched
    patched = custom.patch_cluster_custom_object(
        CALICO, V3, "ippools", "pool", {"spec": {"disabled": True, "disableBGPExport": True}}
    )
    # Then the change is stored and the defaults are kept
    assert patched["spec"]["disabled"] is True
    assert patched["spec"]["disableBGPExport"] is True
    assert patched["spec"]["blockSize"] == 26


# --- RBAC --------------------------------------------------------------------------------


def test_rbac_cluster_role_and_binding_round_trip(rbac: client.RbacAuthorizationV1Api) -> None:
    # Given a ClusterRole and a ClusterRoleBinding body
    role = {
        "metadata": {"name": "tigera-federation-remote-cluster"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
    }
    binding = {
        "metadata": {"name": "tigera-federation-remote-cluster"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "tigera-federation-remote-cluster",
        },
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": "tigera-federation-remote-cluster",
                "namespace": "calico-system",
            }
        ],
    }
    # When they are created and the role's rules are patched (strategic: rules are atomic)
    rbac.create_cluster_role(role)
    rbac.create_cluster_role_binding(binding)
    new_rules = [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["watch"]}]
    patched = rbac.patch_cluster_role("tigera-federation-remote-cluster", {"rules": new_rules})
    # Then both are served and the rules were replaced whole
    read = rbac.read_cluster_role_binding("tigera-federation-remote-cluster")
    assert read.subjects[0].namespace == "calico-system"
    assert [(r.resources, r.verbs) for r in patched.rules] == [(["nodes"], ["watch"])]


# --- out-of-band edits -----------------------------------------------------------------------


def test_mutate_bumps_the_resource_version_so_a_held_copy_goes_stale(
    core: client.CoreV1Api, server: FakeKubeServer
) -> None:
    # Given a ConfigMap we read
    held = core.create_namespaced_config_map("default", configmap("cm", a="1"))
    # When another actor edits it out of band
    after = server.mutate("v1", "ConfigMap", "cm", "default", lambda o: o["data"].update(a="2"))
    # Then its resourceVersion moved and the edit is visible, without a logged request
    assert int(after["metadata"]["resourceVersion"]) > int(held.metadata.resource_version)
    assert core.read_namespaced_config_map("cm", "default").data == {"a": "2"}
    assert all(r.method == "GET" for r in server.requests[-1:])
    assert not any(r.method == "PUT" for r in server.requests)


# --- faults --------------------------------------------------------------------------------


def test_fail_next_answers_the_injected_status_once_then_recovers(
    core: client.CoreV1Api, server: FakeKubeServer
) -> None:
    # Given a 503 injected for the next GET of namespaces
    server.fail_next(503, method="GET", path_contains="/namespaces")
    # When namespaces are listed twice
    with pytest.raises(ApiException) as err:
        core.list_namespace()
    listed = core.list_namespace()
    # Then the first call sees 503 ServiceUnavailable and the second succeeds
    assert err.value.status == 503
    assert status_of(err.value)["reason"] == "ServiceUnavailable"
    assert [i.metadata.name for i in listed.items] == ["calico-system", "default", "kube-system"]
    assert [r.status for r in server.requests] == [503, 200]


def test_fail_next_only_matches_its_method_and_path(
    core: client.CoreV1Api, server: FakeKubeServer
) -> None:
    # Given a 500 injected for POSTs to secrets only
    server.fail_next(500, method="POST", path_contains="/secrets", times=2)
    # When other requests are made, they are unaffected
    core.create_namespaced_config_map("default", configmap("cm"))
    core.list_namespaced_secret("default")
    # Then the next two secret creations fail and the third succeeds
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            core.create_namespaced_secret("default", {"metadata": {"name": "s"}})
        assert err.value.status == 500
    core.create_namespaced_secret("default", {"metadata": {"name": "s"}})


def test_conflict_next_answers_409_to_the_next_write(
    core: client.CoreV1Api, server: FakeKubeServer
) -> None:
    # Given a ConfigMap and an injected conflict
    core.create_namespaced_config_map("default", configmap("cm", a="1"))
    server.conflict_next(path_contains="/configmaps/cm")
    # When it is read (unaffected) and patched twice
    core.read_namespaced_config_map("cm", "default")
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map("cm", "default", {"data": {"a": "2"}})
    patched = core.patch_namespaced_config_map("cm", "default", {"data": {"a": "2"}})
    # Then only the first write got 409 Conflict
    assert err.value.status == 409
    assert status_of(err.value)["reason"] == "Conflict"
    assert patched.data == {"a": "2"}


def test_unreachable_server_refuses_connections_until_restored_on_the_same_port(
    core: client.CoreV1Api, server: FakeKubeServer
) -> None:
    # Given a client with a kept-alive connection to the server
    core.list_namespace()
    url = server.url
    # When the server is made unreachable
    server.set_unreachable(True)
    # Then the client fails to connect
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        core.list_namespace()
    # And when it is reachable again, the same client works on the same URL
    server.set_unreachable(False)
    assert server.url == url
    assert core.list_namespace().items


@pytest.fixture
def tls_server() -> Iterator[FakeKubeServer]:
    with FakeKubeServer("tls", tls=True) as srv:
        yield srv


def _cert_verify_failure(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", None)
    chain = [exc, reason, getattr(reason, "__cause__", None), getattr(reason, "__context__", None)]
    chain += [a for x in chain if x is not None for a in getattr(x, "args", ())]
    return any(isinstance(x, ssl.SSLCertVerificationError) for x in chain)


def test_a_tls_server_serves_https_with_a_certificate_its_ca_data_verifies(
    tls_server: FakeKubeServer,
) -> None:
    # Given a server in TLS mode
    assert tls_server.url.startswith("https://127.0.0.1:")
    ca = base64.b64decode(tls_server.ca_data).decode()
    assert ca.startswith("-----BEGIN CERTIFICATE-----")
    # When the client connects with the kubeconfig (certificate-authority-data)
    api_client = _client(tls_server)
    try:
        core = client.CoreV1Api(api_client)
        # Then it verifies the certificate and talks to the server, watches included
        core.create_namespaced_config_map("default", configmap("cm"))
        stream = core.list_namespaced_config_map(
            "default", watch=True, timeout_seconds=1, _preload_content=False
        )
        tls_server.end_watches()
        lines = [json.loads(line) for line in stream.read().splitlines() if line]
        assert [e["object"]["metadata"]["name"] for e in lines] == ["cm"]
        # And ServiceAccount token Secrets carry the same CA
        core.create_namespaced_service_account("default", {"metadata": {"name": "sa"}})
        core.create_namespaced_secret(
            "default",
            {
                "metadata": {
                    "name": "sa-token",
                    "annotations": {"kubernetes.io/service-account.name": "sa"},
                },
                "type": SA_TOKEN,
            },
        )
        secret = core.read_namespaced_secret("sa-token", "default")
        assert base64.b64decode(secret.data["ca.crt"]).decode() == ca
    finally:
        api_client.close()


def test_fail_tls_makes_the_client_see_a_certificate_verify_failure_until_lifted(
    tls_server: FakeKubeServer,
) -> None:
    # Given a client with a kept-alive, verified connection
    api_client = _client(tls_server)
    try:
        core = client.CoreV1Api(api_client)
        core.list_namespace()
        # When the server presents a certificate signed by another CA
        tls_server.fail_tls(True)
        # Then the next request handshakes anew and fails certificate verification
        with pytest.raises(urllib3.exceptions.MaxRetryError) as err:
            core.list_namespace()
        assert _cert_verify_failure(err.value), repr(err.value)
        # And when the fault is lifted, the same client works again
        tls_server.fail_tls(False)
        assert core.list_namespace().items
    finally:
        api_client.close()


def test_fail_tls_on_a_plain_http_server_is_refused(server: FakeKubeServer) -> None:
    with pytest.raises(RuntimeError, match="tls=True"):
        server.fail_tls(True)


def test_request_log_records_every_request_and_counts_writes(
    core: client.CoreV1Api, server: FakeKubeServer
) -> None:
    # Given a clean log
    server.clear_log()
    # When the client reads, creates, patches and fails to create
    core.list_namespaced_config_map("default", label_selector="a=b")
    core.create_namespaced_config_map("default", configmap("cm"))
    core.patch_namespaced_config_map("cm", "default", {"data": {"x": "1"}})
    with pytest.raises(ApiException):
        core.create_namespaced_config_map("default", configmap("cm"))
    # Then every request is logged with its status and the writes are counted
    assert server.requests == [
        RequestRecord("GET", "/api/v1/namespaces/default/configmaps", "labelSelector=a%3Db", 200),
        RequestRecord("POST", "/api/v1/namespaces/default/configmaps", "", 201),
        RequestRecord("PATCH", "/api/v1/namespaces/default/configmaps/cm", "", 200),
        RequestRecord("POST", "/api/v1/namespaces/default/configmaps", "", 409),
    ]
    assert len(server.writes()) == 3
    # And direct store access is not logged
    server.seed(configmap("seeded"))
    assert len(server.requests) == 4


def test_a_wrong_token_is_rejected_with_401(server: FakeKubeServer) -> None:
    # Given a client with a token the server does not know
    bad = _client(server, token="not-the-token")
    try:
        # When it lists namespaces
        with pytest.raises(ApiException) as err:
            client.CoreV1Api(bad).list_namespace()
    finally:
        bad.close()
    # Then the server answers 401 Unauthorized
    assert err.value.status == 401
    assert status_of(err.value)["reason"] == "Unauthorized"
    assert server.requests[-1].status == 401


def test_set_token_changes_the_accepted_token(server: FakeKubeServer) -> None:
    # Given a client holding the current token
    api_client = _client(server)
    try:
        core = client.CoreV1Api(api_client)
        assert core.list_namespace().items
        # When the server's token changes
        server.set_token("rotated-admin-token")
        # Then the old token is refused
        with pytest.raises(ApiException) as err:
            core.list_namespace()
        assert err.value.status == 401
    finally:
        api_client.close()


# --- discovery, types and lifecycle --------------------------------------------------------


def test_version_and_discovery_are_served(api: client.ApiClient) -> None:
    # Given a server
    # When /version and the Calico group are discovered
    version = client.VersionApi(api).get_code()
    groups = client.ApisApi(api).get_api_versions()
    resources = client.CustomObjectsApi(api).get_api_resources(CALICO, V3)
    # Then they describe the served API
    assert version.major == "1"
    assert CALICO in [g.name for g in groups.groups]
    assert "ippools" in [r.name for r in resources.resources]


def test_an_unknown_path_answers_404(api: client.ApiClient) -> None:
    # Given a group the server does not serve
    # When it is listed
    with pytest.raises(ApiException) as err:
        client.CustomObjectsApi(api).list_cluster_custom_object("example.com", "v1", "widgets")
    # Then the server answers a 404 Status
    assert err.value.status == 404
    assert status_of(err.value)["reason"] == "NotFound"


def test_registered_types_are_served(
    custom: client.CustomObjectsApi, server: FakeKubeServer
) -> None:
    # Given a newly registered namespaced type
    server.register(ResourceType("example.com", "v1", "widgets", "Widget", True))
    # When an object of it is created and read
    custom.create_namespaced_custom_object(
        "example.com",
        "v1",
        "default",
        "widgets",
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
    )
    # Then it is stored like any other kind
    stored = server.get_object("example.com/v1", "Widget", "w", "default")
    assert stored is not None
    assert stored["metadata"]["namespace"] == "default"


def test_builtin_types_cover_the_kinds_fedkeeper_touches() -> None:
    # Given the default type table
    kinds = {(rt.group, rt.kind): rt.namespaced for rt in BUILTIN_TYPES}
    # Then core, apps, RBAC and Calico kinds are there with the right scope
    assert kinds[("", "Secret")] is True
    assert kinds[("", "Namespace")] is False
    assert kinds[("apps", "DaemonSet")] is True
    assert kinds[("rbac.authorization.k8s.io", "ClusterRoleBinding")] is False
    assert kinds[(CALICO, "RemoteClusterConfiguration")] is False
    assert kinds[(CALICO, "LicenseKey")] is False


def test_stop_leaves_no_server_threads_behind() -> None:
    # Given a started server with a kept-alive client connection
    before = set(threading.enumerate())
    srv = FakeKubeServer("leak").start()
    api_client = _client(srv)
    client.CoreV1Api(api_client).list_namespace()
    # When it is stopped
    srv.stop()
    api_client.close()
    # Then none of its threads remain
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leftover == []
