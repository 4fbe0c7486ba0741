"""One Kubernetes cluster through the official ``kubernetes`` client.

We use the client's ``ApiClient`` transport (kubeconfig loading, bearer auth, TLS, connection
pooling) with plain dict bodies, so one small adapter covers core, RBAC, apps and Calico
resources alike. Writes carry ``resourceVersion`` where the caller has one (optimistic
locking); a stale one comes back as :class:`ConflictError`. Every ``ApiException`` and
connection failure is turned into the project's own errors, and every call is counted.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Literal

import urllib3
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.kube_config import new_client_from_config_dict

# Where kinds live and how long a call may take: kept apart from this module (which loads
# the kubernetes client) so that the engine can set up without it; re-exported from here.
from fedkeeper.adapters.kube_types import ATTEMPTS, REQUEST_TIMEOUT, ResourceType
from fedkeeper.adapters.kube_types import resource_types as resource_types  # noqa: PLC0414
from fedkeeper.errors import (
    AnswerTimeoutError,
    ConflictError,
    FedkeeperError,
    NotFoundError,
    PermanentError,
    RetryableError,
    UnauthorizedError,
    UnreachableError,
)
from fedkeeper.guard import RunGuard
from fedkeeper.model import ApiCounter, Backend

PatchType = Literal["merge", "strategic", "json"]
_PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}
# Every write names fedkeeper as its field manager: an object's managedFields then tell
# fedkeeper's writes from another writer's (a watch names who it is fighting).
FIELD_MANAGER = "fedkeeper"
_WRITE_QUERY = [("fieldManager", FIELD_MANAGER)]


Items = list[dict[str, Any]]
Query = list[tuple[str, str]]


class ExpiredError(RetryableError):
    """The watch's resume point is not usable: relist, then watch from the list.

    ``cause`` says why: ``expired`` (compacted away, "too old resource version"),
    ``too-large`` (ahead of the server: an etcd restore, a rebuilt cluster), ``invalid``
    (not a version the server can parse) or ``error`` (any other error that ended the
    stream: the stream's position is unknown, so it is not trusted).
    """

    def __init__(self, message: str, cause: str = "error") -> None:
        super().__init__(message)
        self.cause = cause


WATCH_EVENT_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK"})


def refused_resume_point(status: Mapping[str, Any]) -> str:
    """Why a watch's error ``Status`` refuses its resume point, judged by reason and message
    as well as by code: the Calico API server sends ``InternalError`` with the underlying
    message and no code (projectcalico/calico ``apiserver/pkg/storage/calico/watcher.go``).

    ``expired``, ``too-large`` or ``invalid``; ``error`` for anything else.
    """
    code = status.get("code")
    reason = str(status.get("reason") or "")
    message = str(status.get("message") or "").lower()
    details = status.get("details")
    causes = details.get("causes") if isinstance(details, Mapping) else None
    cause_reasons = {str(c.get("reason")) for c in causes or [] if isinstance(c, Mapping)}
    if code == 410 or reason in ("Expired", "Gone") or "too old resource version" in message:
        return "expired"
    if "ResourceVersionTooLarge" in cause_reasons or "too large resource version" in message:
        return "too-large"
    if code in (400, 422) and ("resource version" in message or "resourceversion" in message):
        return "invalid"
    return "error"


@dataclass(frozen=True)
class WatchEvent:
    """One line of a watch stream: ADDED, MODIFIED, DELETED or BOOKMARK.

    A line that is no such event arrives as type ``MALFORMED`` with ``problem`` saying why:
    the stream goes on (a watcher logs and skips it).
    """

    type: str
    object: dict[str, Any]
    problem: str | None = None

    @property
    def resource_version(self) -> str:
        return str((self.object.get("metadata") or {}).get("resourceVersion") or "")


def _selectors(labels: str | None, fields: str | None) -> list[tuple[str, str]]:
    query = [("labelSelector", labels)] if labels else []
    return query + ([("fieldSelector", fields)] if fields else [])


def _status_body(exc: ApiException) -> dict[str, Any]:
    """The ``Status`` an error answer carries, with the answer's code (just the code when
    the body is no Status)."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    return {**data, "code": data.get("code") or exc.status}


def _cut(resp: Any) -> None:
    """Interrupt a stream's blocked read from another thread (its socket is shut down)."""
    try:
        resp.shutdown()
    except (AttributeError, OSError, RuntimeError):
        sock = getattr(getattr(resp, "connection", None), "sock", None)
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _status_message(exc: ApiException) -> str:
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        data = json.loads(body) if body else {}
        return str(data.get("message") or exc.reason or "")
    except (ValueError, AttributeError):
        return str(exc.reason or "")


def translate_api_exception(exc: ApiException, cluster: str, what: str) -> Exception:
    """Map an ApiException to the project's errors."""
    status = int(exc.status or 0)
    msg = f"{cluster}: {what}: HTTP {status}: {_status_message(exc)}"
    err: FedkeeperError
    if status == 0:
        return UnreachableError(f"{cluster}: {what}: {exc.reason}", target=cluster)
    if status == 409:
        err = ConflictError(msg)
    elif status == 404:
        err = NotFoundError(msg)
    elif status == 401:
        err = UnauthorizedError(msg)
    elif status in (429,) or status >= 500:
        err = RetryableError(msg)
    else:
        err = PermanentError(msg)
    err.target, err.status = cluster, status
    return err


def _connection_error(exc: BaseException, cluster: str, what: str) -> FedkeeperError:
    """A connection-level failure: refused, TLS, or an answer that never came."""
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and len(chain) < 8:
        chain.append(e)
        e = (
            getattr(e, "reason", None)
            if isinstance(e, urllib3.exceptions.MaxRetryError)
            else (e.__cause__ or e.__context__)
        )
    if any(isinstance(x, ssl.SSLError | urllib3.exceptions.SSLError) for x in chain):
        err: FedkeeperError = UnreachableError(
            f"{cluster}: {what}: TLS handshake failed", target=cluster
        )
    elif any(
        isinstance(x, urllib3.exceptions.ReadTimeoutError | TimeoutError | socket.timeout)
        for x in chain
    ):
        err = AnswerTimeoutError(
            f"{cluster}: {what}: the API server did not answer in time", target=cluster
        )
    else:
        err = UnreachableError(f"{cluster}: {what}: API server unreachable", target=cluster)
    return err


def api_client_from_kubeconfig(
    backend: str, kubeconfig: Mapping[str, Any], *, context: str | None = None
) -> ApiClient:
    """An ApiClient for a kubeconfig dict; PermanentError says what is wrong with it."""
    try:
        configuration = Configuration()
        configuration.retries = 1  # connection errors: one quick retry, then report
        configuration.connection_pool_maxsize = 24  # the watch function holds ~9 streams
        return new_client_from_config_dict(
            dict(kubeconfig), context=context, client_configuration=configuration
        )
    except (ConfigException, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PermanentError(f"{backend}: the kubeconfig is not usable: {exc}") from None


class KubeCluster:
    """Get, list, create, patch, replace and delete objects on one cluster.

    With ``reauthenticate``, a 401 (credentials rotated, revoked or expired since the client
    was built) asks it once for a client with fresh credentials (possibly the same client,
    its token source reset) and retries the request.
    """

    def __init__(
        self,
        backend: Backend,
        api_client: ApiClient,
        types: Mapping[str, ResourceType],
        counter: ApiCounter | None = None,
        *,
        reauthenticate: Callable[[], ApiClient] | None = None,
        guard: RunGuard | None = None,
        timeout: tuple[float, float] = REQUEST_TIMEOUT,
    ) -> None:
        self.backend = backend
        self.api = api_client
        self.types = types
        self.counter = counter if counter is not None else ApiCounter()
        self.reauthenticate = reauthenticate
        # Told of every object written (create/replace/patch answer): a watcher skips the
        # events of fedkeeper's own writes.
        self.on_write: Callable[[str, dict[str, Any]], None] | None = None
        self.guard = guard  # the current run's deadline and failed targets
        self.timeout = timeout

    @classmethod
    def from_kubeconfig(
        cls,
        backend: Backend,
        kubeconfig: Mapping[str, Any],
        types: Mapping[str, ResourceType],
        counter: ApiCounter | None = None,
        *,
        context: str | None = None,
    ) -> KubeCluster:
        """Build from a kubeconfig dict; PermanentError says what is wrong with it."""
        client = api_client_from_kubeconfig(backend, kubeconfig, context=context)
        return cls(backend, client, types, counter)

    def type_of(self, kind: str) -> ResourceType:
        try:
            return self.types[kind]
        except KeyError:
            raise PermanentError(f"{self.backend}: unknown kind {kind!r}") from None

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except ApiException as exc:
            raise translate_api_exception(exc, self.backend, what) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _connection_error(exc, self.backend, what) from exc

    def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        guard = self.guard
        if guard is not None:
            guard.before(self.backend, sum(self.timeout) * ATTEMPTS)
        try:
            try:
                out = self._call_once(
                    method, path, what=what, body=body, query=query, content_type=content_type
                )
            except UnauthorizedError:
                if self.reauthenticate is None:
                    raise
                self._reauthenticate()  # fresh credentials once, then retry
                out = self._call_once(
                    method, path, what=what, body=body, query=query, content_type=content_type
                )
        except FedkeeperError as exc:
            if exc.target is None:
                exc.target = self.backend
            if guard is not None:
                guard.failed(self.backend, exc)
                if isinstance(exc, NotFoundError | ConflictError):
                    guard.succeeded(self.backend)  # the API server answered
            raise
        if guard is not None:
            guard.succeeded(self.backend)
        return out

    def _reauthenticate(self) -> None:
        """A client with fresh credentials (possibly the same one, its token reset)."""
        if self.reauthenticate is None:
            raise PermanentError(f"{self.backend}: no way to renew the credentials")
        fresh = self.reauthenticate()
        if fresh is not self.api:
            self.api.close()
            self.api = fresh

    def _call_once(
        self,
        method: str,
        path: str,
        *,
        what: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        self.counter.count(self.backend, write=method != "GET")
        with self._errors(what):
            resp = self.api.call_api(
                path,
                method,
                query_params=query or [],
                header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=self._timeout(),
            )
            data = resp.data
        try:
            out = json.loads(data) if data else {}
        except ValueError:
            raise RetryableError(f"{self.backend}: {what}: answer is not JSON") from None
        return out if isinstance(out, dict) else {}

    def _timeout(self) -> tuple[float, float]:
        """The per-attempt timeouts, shortened to what is left of the run's budget."""
        left = self.guard.remaining() if self.guard is not None else None
        if left is None:
            return self.timeout
        connect, read = self.timeout
        share = max(left / ATTEMPTS, 0.05)
        return (min(connect, share), min(read, share))

    # --- reads ----------------------------------------------------------------------------

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        rt = self.type_of(kind)
        try:
            return self._call("GET", rt.path(name, namespace), what=f"get {kind} {name}")
        except NotFoundError:
            return None

    def list(
        self,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        rt = self.type_of(kind)
        query = [("labelSelector", label_selector)] if label_selector else []
        try:
            data = self._call("GET", rt.path(None, namespace), what=f"list {kind}", query=query)
        except NotFoundError as exc:
            # The API group is not served (e.g. Calico's API server is not installed).
            raise PermanentError(
                f"{self.backend}: {kind} ({rt.api_version}) is not served by this cluster; "
                "is the Calico API server installed?"
            ) from exc
        raw = data.get("items")
        items = [i for i in raw if isinstance(i, dict)] if isinstance(raw, list) else []
        for item in items:
            item.setdefault("apiVersion", rt.api_version)
            item.setdefault("kind", kind)
        return items

    def list_at(
        self,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[Items, str]:
        """The items and the list's resourceVersion (where a watch picks up)."""
        rt = self.type_of(kind)
        query = _selectors(label_selector, field_selector)
        data = self._call("GET", rt.path(None, namespace), what=f"list {kind}", query=query)
        items = [i for i in data.get("items") or [] if isinstance(i, dict)]
        return items, str((data.get("metadata") or {}).get("resourceVersion") or "")

    def watch(
        self,
        kind: str,
        namespace: str | None = None,
        *,
        resource_version: str,
        timeout_seconds: int,
        label_selector: str | None = None,
        field_selector: str | None = None,
        on_open: Callable[[Callable[[], None]], None] | None = None,
    ) -> Iterator[WatchEvent]:
        """Stream changes after ``resource_version`` until the server ends the watch.

        Bookmarks are asked for. An ``ERROR`` event, or a refusal of the resume point (410,
        a version ahead of the server, one it cannot parse), raises :class:`ExpiredError`;
        a cut connection :class:`UnreachableError`. ``on_open`` is handed a function that
        cuts the stream from another thread (a watcher that finds it silent for too long).
        """
        rt = self.type_of(kind)
        query = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", str(timeout_seconds)),
            *_selectors(label_selector, field_selector),
        ]
        what = f"watch {kind}"
        self.counter.count(self.backend, write=False)
        with self._errors(what):
            try:
                resp = self._open(rt.path(None, namespace), query, timeout_seconds)
            except ApiException as exc:
                if exc.status == 401 and self.reauthenticate is not None:
                    self._reauthenticate()
                    resp = self._open(rt.path(None, namespace), query, timeout_seconds)
                else:
                    status = _status_body(exc)
                    cause = refused_resume_point(status)
                    if cause != "error":
                        message = f"{self.backend}: {what}: HTTP {exc.status}: "
                        raise ExpiredError(message + _status_message(exc), cause) from exc
                    raise
            streaming = threading.Lock()  # held while the response is this stream's
            live = [True]

            def cut() -> None:
                with streaming:
                    if live[0]:
                        _cut(resp)

            if on_open is not None:
                on_open(cut)
            try:
                buffer = b""
                for chunk in resp.stream(2**16):
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield self._event(line, what)
            finally:
                with streaming:
                    live[0] = False  # its connection goes back to the pool: never cut it
                resp.release_conn()

    def _open(self, path: str, query: Query, timeout_seconds: int) -> Any:
        return self.api.call_api(
            path,
            "GET",
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=(REQUEST_TIMEOUT[0], timeout_seconds + REQUEST_TIMEOUT[1]),
        )

    def _event(self, line: bytes, what: str) -> WatchEvent:
        try:
            raw = json.loads(line)
        except ValueError:
            return WatchEvent("MALFORMED", {}, "an event line is not JSON")
        if not isinstance(raw, dict):
            return WatchEvent("MALFORMED", {}, f"an event line is a JSON {type(raw).__name__}")
        kind, obj = raw.get("type"), raw.get("object")
        if not isinstance(obj, dict):
            return WatchEvent("MALFORMED", {}, "an event without an object")
        if kind == "ERROR":
            cause = refused_resume_point(obj)
            message = f"{self.backend}: {what}: {obj.get('reason') or 'error'}"
            if obj.get("code"):
                message += f" (HTTP {obj.get('code')})"
            raise ExpiredError(f"{message}: {obj.get('message')}", cause)
        if kind not in WATCH_EVENT_TYPES:
            return WatchEvent("MALFORMED", {}, f"an event of unknown type {str(kind)[:40]!r}")
        event = WatchEvent(kind, obj)
        if not event.resource_version:
            return WatchEvent("MALFORMED", {}, f"a {kind} event without a resourceVersion")
        return event

    # --- writes ---------------------------------------------------------------------------

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        kind = str(body.get("kind"))
        rt = self.type_of(kind)
        meta = body.get("metadata", {})
        return self._wrote(
            self._call(
                "POST",
                rt.path(None, meta.get("namespace")),
                what=f"create {kind} {meta.get('name')}",
                body=dict(body),
                query=_WRITE_QUERY,
            )
        )

    def replace(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT the whole object; its metadata.resourceVersion makes it conditional."""
        kind = str(body.get("kind"))
        rt = self.type_of(kind)
        meta = body.get("metadata", {})
        return self._wrote(
            self._call(
                "PUT",
                rt.path(meta["name"], meta.get("namespace")),
                what=f"replace {kind} {meta['name']}",
                body=dict(body),
                query=_WRITE_QUERY,
            )
        )

    def patch(
        self,
        kind: str,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: PatchType = "merge",
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """Patch; with ``resource_version`` the write fails with 409 if the object moved."""
        rt = self.type_of(kind)
        if resource_version and isinstance(patch, dict):
            patch = {**patch, "metadata": {**patch.get("metadata", {})}}
            patch["metadata"]["resourceVersion"] = resource_version
        return self._wrote(
            self._call(
                "PATCH",
                rt.path(name, namespace),
                what=f"patch {kind} {name}",
                body=patch,
                query=_WRITE_QUERY,
                content_type=_PATCH_CONTENT_TYPES[patch_type],
            )
        )

    def _wrote(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self.on_write is not None:
            self.on_write(self.backend, obj)
        return obj

    def delete(
        self,
        kind: str,
        name: str,
        *,
        namespace: str | None = None,
        resource_version: str | None = None,
    ) -> None:
        rt = self.type_of(kind)
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if resource_version:
            body["preconditions"] = {"resourceVersion": resource_version}
        try:
            self._call("DELETE", rt.path(name, namespace), what=f"delete {kind} {name}", body=body)
        except NotFoundError:
            return  # already gone: the desired state holds

    def close(self) -> None:
        self.api.close()
