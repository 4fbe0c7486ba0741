"""The fake API server serves watches as Kubernetes does, to the official client's Watch."""

from __future__ import annotations

import base64
import contextlib
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

    def advance(self, seconds: float) -> None:
        self.now += seconds


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


CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def _open_watch(
    srv: FakeKubeServer,
    path: str,
    query: str,
    *,
    token: str | None = None,
    timeout: float | tuple[float, float] = 5,
) -> Any:
    """One watch request on the collection at ``path``, its body not read yet."""
    return _core(srv, token).api_client.call_api(
        f"{path}?watch=true&{query}",
        "GET",
        auth_settings=["BearerToken"],
        _preload_content=False,
        _request_timeout=timeout,
    )


def _raw_events(
    srv: FakeKubeServer,
    query: str,
    token: str | None = None,
    clock: Clock | None = None,
    path: str = CONFIGMAPS,
) -> list[Any]:
    """Every event line of one watch request (it ends by itself, or when ``clock`` says)."""
    if clock is not None:
        _expire_when_open(srv, clock)
    body = _open_watch(srv, path, query, token=token).data.decode()
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


# --- what the real servers do that a naive fake would not ----------------------------------

CALICO = "projectcalico.org/v3"


def _pool(name: str, cidr: str) -> dict[str, Any]:
    return {
        "apiVersion": CALICO,
        "kind": "IPPool",
        "metadata": {"name": name},
        "spec": {"cidr": cidr},
    }


def _raw(srv: FakeKubeServer, path: str, query: str, clock: Clock | None = None) -> list[Any]:
    return _raw_events(srv, query, clock=clock, path=path)


def _rv(obj: dict[str, Any] | None) -> str:
    assert obj is not None
    return str(obj["metadata"]["resourceVersion"])


POOLS = "/apis/projectcalico.org/v3/ippools"


def test_a_calico_watch_from_a_compacted_version_errs_with_internal_error_and_no_code(
    server: FakeKubeServer,
) -> None:
    old = _rv(server.seed(_pool("a", "10.1.0.0/16")))
    server.seed(_pool("b", "10.2.0.0/16"))
    server.compact()
    (event,) = _raw(server, POOLS, f"resourceVersion={old}")
    # projectcalico/calico apiserver/pkg/storage/calico/watcher.go: Status{Reason, Message}
    assert event["type"] == "ERROR"
    status = event["object"]
    assert status["reason"] == "InternalError"
    assert status["message"].startswith("too old resource version")
    assert "code" not in status and "status" not in status


def test_a_calico_watch_sends_no_bookmark_even_when_asked(
    server: FakeKubeServer, clock: Clock
) -> None:
    rv = _rv(server.seed(_pool("a", "10.1.0.0/16")))
    events = _raw(
        server, POOLS, f"resourceVersion={rv}&timeoutSeconds=5&allowWatchBookmarks=true", clock
    )
    assert events == []


def test_after_a_restart_open_watches_end_and_older_versions_are_too_old(
    server: FakeKubeServer,
) -> None:
    old = _rv(server.seed(_cm("a")))
    ended = threading.Event()

    def hold() -> None:
        with contextlib.suppress(Exception):  # a cut connection, or a clean end
            _raw(server, CONFIGMAPS, f"resourceVersion={old}")
        ended.set()

    threading.Thread(target=hold, daemon=True).start()
    time.sleep(0.2)
    server.seed(_cm("b"))  # a change the restarted server's cache starts after
    server.restart()
    assert ended.wait(5)
    (event,) = _raw(server, CONFIGMAPS, f"resourceVersion={old}")
    assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")


def test_a_version_ahead_of_the_server_is_a_504_too_large_resource_version_after_a_wait() -> None:
    clock = Clock()
    with FakeKubeServer("ahead", clock=clock, advance=clock.advance) as srv:
        srv.seed(_cm("a"))
        srv.seed(_pool("p", "10.1.0.0/16"))
        before = clock.now
        (event,) = _raw(srv, CONFIGMAPS, "resourceVersion=9000")
        # kube-apiserver's watch cache waits 3 s for the version, then gives up
        assert clock.now - before == 3.0
        status = event["object"]
        assert (event["type"], status["code"], status["reason"]) == ("ERROR", 504, "Timeout")
        assert status["message"].startswith("Timeout: Too large resource version: 9000, current:")
        assert status["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
        # Through the Calico API server, only the message survives
        (calico,) = _raw(srv, POOLS, "resourceVersion=9000")
        assert calico["object"]["reason"] == "InternalError"
        assert "Too large resource version" in calico["object"]["message"]
        assert "code" not in calico["object"]


def test_a_stalled_server_sends_headers_then_nothing_until_the_watch_is_cut(
    server: FakeKubeServer, clock: Clock
) -> None:
    rv = _rv(server.seed(_cm("a")))
    server.stall_watches()
    resp = _open_watch(
        server, CONFIGMAPS, f"resourceVersion={rv}&timeoutSeconds=1", timeout=(3, 0.5)
    )
    assert resp.status == 200
    server.seed(_cm("b"))
    clock.now += 3600  # far past its timeout: a stalled stream does not end
    with pytest.raises(Exception, match=r"[Tt]imed? ?out"):
        resp.read()
    server.stall_watches(False)
    server.end_watches()


def test_an_injected_line_reaches_the_open_watches_of_its_kind_as_it_is(
    server: FakeKubeServer,
) -> None:
    rv = _rv(server.seed(_cm("a")))
    resp = _open_watch(server, CONFIGMAPS, f"resourceVersion={rv}")
    server.inject_watch_line(b"[1, 2]", "configmaps")
    server.inject_watch_line(b"never", "secrets")
    first = next(resp.stream(64))
    assert first == b"[1, 2]\n"
    server.end_watches()


def test_a_watch_cache_that_keeps_losing_history_answers_every_version_too_old(
    server: FakeKubeServer,
) -> None:
    rv = _rv(server.seed(_pool("a", "10.1.0.0/16")))
    server.expire_watches("ippools")
    (event,) = _raw(server, POOLS, f"resourceVersion={rv}")
    assert event["object"]["message"] == f"too old resource version: {rv} ({rv})"
    server.expire_watches("ippools", expiring=False)


def test_managed_fields_name_who_last_set_each_field(server: FakeKubeServer) -> None:
    core = _core(server)
    core.create_namespaced_config_map("default", _cm("a", {"team": "x"}), field_manager="creator")
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "w"}}, field_manager="other")
    managed = server.get_object("v1", "ConfigMap", "a", "default")["metadata"]["managedFields"]  # type: ignore[index]
    owners = {e["manager"]: e["fieldsV1"] for e in managed}
    # The field "other" changed moved to it; what "creator" set and nobody changed stays
    assert owners["other"] == {"f:data": {"f:k": {}}}
    assert owners["creator"] == {"f:metadata": {"f:labels": {"f:team": {}}}}
    assert all(e["operation"] == "Update" and e["time"] for e in managed)
    # Without a fieldManager, the manager is the User-Agent up to its first "/"
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "x"}})
    managed = server.get_object("v1", "ConfigMap", "a", "default")["metadata"]["managedFields"]  # type: ignore[index]
    assert "OpenAPI-Generator" in {e["manager"] for e in managed}
