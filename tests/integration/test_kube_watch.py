"""The fake API server serves watches as Kubernetes does, to the official client's Watch."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.config.kube_config import new_client_from_config_dict

from fedkeeper.sandbox.kube_server import FakeKubeServer


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(clock: Clock) -> Iterator[FakeKubeServer]:
    with FakeKubeServer("watch", clock=clock) as srv:
        yield srv


def _core(srv: FakeKubeServer, token: str | None = None) -> client.CoreV1Api:
    configuration = client.Configuration()
    configuration.retries = 0
    return client.CoreV1Api(
        new_client_from_config_dict(srv.kubeconfig(token=token), client_configuration=configuration)
    )


def _cm(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


def _expire_when_open(srv: FakeKubeServer, clock: Clock) -> threading.Thread:
    """Move the clock past every timeout once the next watch request has been answered."""
    before = len(srv.requests)

    def run() -> None:
        while not any("watch=" in r.query for r in srv.requests[before:]):
            time.sleep(0.005)
        clock.now += 3600

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _raw_events(
    srv: FakeKubeServer, query: str, token: str | None = None, clock: Clock | None = None
) -> list[Any]:
    """Every event line of one watch request (it ends by itself, or when ``clock`` says)."""
    if clock is not None:
        _expire_when_open(srv, clock)
    core = _core(srv, token)
    resp = core.api_client.call_api(
        f"/api/v1/namespaces/default/configmaps?watch=true&{query}",
        "GET",
        auth_settings=["BearerToken"],
        _preload_content=False,
        _request_timeout=5,
    )
    body = resp.data.decode()
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def test_a_watch_from_the_lists_version_streams_every_later_change_in_order(
    server: FakeKubeServer,
) -> None:
    core = _core(server)
    core.create_namespaced_config_map("default", _cm("a"))
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", _cm("b"))
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "w"}})
    core.delete_namespaced_config_map("b", "default")
    w = watch.Watch()
    seen = []
    for event in w.stream(
        core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=5
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 3:
            w.stop()
    assert seen == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]


def test_a_watch_without_a_version_starts_with_the_current_objects_as_added(
    server: FakeKubeServer, clock: Clock
) -> None:
    server.seed(_cm("a"))
    server.seed(_cm("b"))
    events = _raw_events(server, "timeoutSeconds=5", clock=clock)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
    ]


def test_a_version_older_than_the_retained_window_is_an_error_event_410_expired(
    server: FakeKubeServer,
) -> None:
    server.seed(_cm("a"))
    old = server.get_object("v1", "ConfigMap", "a", "default")
    assert old is not None
    server.seed(_cm("b"))
    server.compact()
    events = _raw_events(server, f"resourceVersion={old['metadata']['resourceVersion']}")
    assert len(events) == 1
    assert events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["code"], status["reason"]) == (410, "Expired")
    assert status["message"].startswith("too old resource version")


def test_bookmarks_carry_only_the_resource_version_and_come_only_when_asked(
    server: FakeKubeServer, clock: Clock
) -> None:
    server.seed(_cm("a"))
    rv = server.get_object("v1", "ConfigMap", "a", "default")["metadata"]["resourceVersion"]  # type: ignore[index]
    plain = _raw_events(server, f"resourceVersion={rv}&timeoutSeconds=5", clock=clock)
    marked = _raw_events(
        server, f"resourceVersion={rv}&timeoutSeconds=5&allowWatchBookmarks=true", clock=clock
    )
    assert plain == []
    assert [e["type"] for e in marked] == ["BOOKMARK"]
    assert marked[0]["object"] == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": rv},
    }


def test_an_object_leaving_the_label_selector_arrives_as_deleted(
    server: FakeKubeServer,
) -> None:
    core = _core(server)
    core.create_namespaced_config_map("default", _cm("a", {"team": "x"}))
    core.create_namespaced_config_map("default", _cm("other"))
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.patch_namespaced_config_map("other", "default", {"data": {"k": "z"}})
    core.patch_namespaced_config_map("a", "default", {"metadata": {"labels": {"team": "y"}}})
    w = watch.Watch()
    seen = []
    for event in w.stream(
        core.list_namespaced_config_map,
        "default",
        label_selector="team=x",
        resource_version=rv,
        timeout_seconds=5,
    ):
        seen.append((event["type"], event["object"].metadata.name))
        w.stop()
    assert seen == [("DELETED", "a")]


def test_a_dry_run_write_sends_no_event(server: FakeKubeServer) -> None:
    core = _core(server)
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", _cm("dry"), dry_run="All")
    core.create_namespaced_config_map("default", _cm("real"))
    w = watch.Watch()
    names = []
    for event in w.stream(
        core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=5
    ):
        names.append(event["object"].metadata.name)
        w.stop()
    assert names == ["real"]


def _bot_token(server: FakeKubeServer) -> str:
    server.seed({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "bot"}})
    server.seed(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": "bot-token",
                "annotations": {"kubernetes.io/service-account.name": "bot"},
            },
        }
    )
    secret = server.get_object("v1", "Secret", "bot-token", "default")
    assert secret is not None
    return base64.b64decode(secret["data"]["token"]).decode()


def _grant(server: FakeKubeServer, rule: dict[str, Any]) -> None:
    rbac = "rbac.authorization.k8s.io/v1"
    server.seed({"apiVersion": rbac, "kind": "Role", "metadata": {"name": "r"}, "rules": [rule]})
    server.seed(
        {
            "apiVersion": rbac,
            "kind": "RoleBinding",
            "metadata": {"name": "r"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "default"}],
        }
    )


def test_a_watch_needs_the_watch_verb_list_is_not_enough(server: FakeKubeServer) -> None:
    token = _bot_token(server)
    _grant(server, {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]})
    core = _core(server, token)
    core.list_namespaced_config_map("default")
    with pytest.raises(client.ApiException) as err:
        core.list_namespaced_config_map("default", watch=True, _preload_content=False)
    assert err.value.status == 403
    assert "cannot watch resource" in json.loads(err.value.body)["message"]


def test_a_watch_of_one_named_object_is_allowed_by_a_resource_names_rule(
    server: FakeKubeServer, clock: Clock
) -> None:
    token = _bot_token(server)
    server.seed(_cm("mine"))
    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["watch"]}
    _grant(server, {**rule, "resourceNames": ["mine"]})
    events = _raw_events(
        server, "fieldSelector=metadata.name%3Dmine&timeoutSeconds=1", token, clock=clock
    )
    assert [e["object"]["metadata"]["name"] for e in events] == ["mine"]
    with pytest.raises(client.ApiException) as err:
        _raw_events(server, "timeoutSeconds=1", token)
    assert err.value.status == 403


def test_an_unauthenticated_watch_is_401(server: FakeKubeServer) -> None:
    with pytest.raises(client.ApiException) as err:
        _raw_events(server, "timeoutSeconds=1", token="not-a-token")
    assert err.value.status == 401
