"""The fake API server: lifecycle, direct store access, faults, and the request path."""

from __future__ import annotations

import contextlib
import copy
import hmac
import json
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from fedkeeper.sandbox.kube_server.api import (
    DEFAULT_NAMESPACES,
    WRITE_METHODS,
    ApiError,
    JSONObj,
    RequestRecord,
    ResourceType,
    Route,
    b64,
    bad_request,
    builtin_types,
    conflict,
    invalid_error,
    not_found,
    now_iso,
    status_body,
)
from fedkeeper.sandbox.kube_server.authn import (
    ADMIN,
    Identity,
    TokenReview,
    service_account_token_identity,
)
from fedkeeper.sandbox.kube_server.http import HTTPServer, discovery, route
from fedkeeper.sandbox.kube_server.impersonation import impersonated
from fedkeeper.sandbox.kube_server.kinds import SA_NAME_ANNOTATION, Kinds
from fedkeeper.sandbox.kube_server.managed_fields import manager_of
from fedkeeper.sandbox.kube_server.managed_fields import record as record_managed_fields
from fedkeeper.sandbox.kube_server.rbac import (
    Attributes,
    authorize,
    check_escalation,
    request_verb,
)
from fedkeeper.sandbox.kube_server.store import Store
from fedkeeper.sandbox.kube_server.tls import ServerTLS, make_server_tls
from fedkeeper.sandbox.kube_server.watch import EventLog, WatchRequest, open_watch, query_bool

_TIME = "%Y-%m-%dT%H:%M:%SZ"


@dataclass
class Fault:
    status: int
    remaining: int
    method: str | None
    path_contains: str | None
    message: str
    writes_only: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.writes_only and method not in WRITE_METHODS:
            return False
        if self.method and self.method.upper() != method:
            return False
        return not self.path_contains or self.path_contains in path


class FakeKubeServer:
    """A fake Kubernetes API server on 127.0.0.1; see the module docstring."""

    def __init__(
        self,
        name: str,
        *,
        token: str = "sandbox-token",  # noqa: S107
        calico_group: str = "projectcalico.org",
        calico_version: str = "v3",
        clock: Callable[[], float] = time.time,
        advance: Callable[[float], None] | None = None,
        tls: bool = False,
        port: int = 0,
    ) -> None:
        """``port``: where to listen (0: a free port chosen at the first start)."""
        self.name = name
        # HTTPS with a CA made at the first start (ca_data is then that CA); else plain HTTP.
        self.tls = tls
        self._tls: ServerTLS | None = None
        self._fail_tls = False
        # Moves emulated time (the sandbox clock) instead of sleeping, for delayed answers.
        self.advance = advance
        self.token = token  # the admin token (system:masters)
        self.clock = clock  # wall-clock seconds: token lifetimes
        # More ways to authenticate a bearer token (e.g. EKS IAM tokens): (token, now).
        self.token_reviews: list[TokenReview] = []
        self.calico_group = calico_group
        self.calico_version = calico_version
        self._lock = threading.RLock()  # the store, the log, the faults
        self._life_lock = threading.Lock()  # start/stop/unreachable (never held by handlers)
        self._store = Store(
            {
                ("", "pods"),
                ("", "nodes"),
                ("", "services"),
                ("", "namespaces"),
                ("apps", "daemonsets"),
                ("apps", "deployments"),
                (calico_group, "kubecontrollersconfigurations"),
                (calico_group, "licensekeys"),
            }
        )
        # Calico's kinds under crd.projectcalico.org are plain CRDs (no Calico API server):
        # no Calico defaulting or validation, and no strategic merge patch.
        self.calico_crd = calico_group == CRD_CALICO_GROUP
        self._kinds = Kinds(self._store, name, calico_group, plain_crd=self.calico_crd)
        self._store.kinds = self._kinds
        if self.calico_crd:
            self._store.crd_groups.add(calico_group)
        self._events = EventLog(self._lock)
        self._store.on_change = self._events.record
        self.bookmark_interval = 60.0  # seconds between BOOKMARK events (sandbox clock)
        self._log: list[RequestRecord] = []
        self._faults: list[Fault] = []
        self._delay_s = 0.0  # every answer waits this long (real seconds)
        self._delay_waits = False  # ...until the clock has moved that far
        self._released = threading.Event()  # cleared: requests hang unanswered
        self._released.set()
        self._httpd: HTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._port: int | None = port or None
        self._running = False
        self._unreachable = False
        self._connections: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._conn_lock = threading.Lock()
        for rt in builtin_types(calico_group, calico_version):
            self.register(rt)
        for ns in DEFAULT_NAMESPACES:
            self.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> FakeKubeServer:
        """Listen (ephemeral port the first time, the same port afterwards); idempotent."""
        with self._life_lock:
            if not self._running:
                if self.tls and self._tls is None:
                    self._tls = make_server_tls(self.name)
                    self._kinds.ca_pem = self._tls.ca_pem
                self._bind()
                self._running = True
                self._unreachable = False
        return self

    def stop(self) -> None:
        """Stop listening, cut every connection and join the server's threads."""
        self._released.set()  # hung requests end
        with self._life_lock:
            if self._running and not self._unreachable:
                self._unbind()
            self._running = False
            self._unreachable = False

    def __enter__(self) -> FakeKubeServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"FakeKubeServer {self.name!r} has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_data(self) -> str:
        """base64 of the CA's PEM: in TLS mode the CA that signs the serving certificate
        (known from the first start); in plain HTTP mode a decorative PEM-looking one."""
        if self.tls and self._tls is None:
            raise RuntimeError(f"FakeKubeServer {self.name!r} has not been started")
        return b64(self._kinds.ca_pem)

    def set_token(self, token: str) -> None:
        self.token = token

    def kubeconfig(self, token: str | None = None, *, context: str | None = None) -> JSONObj:
        """A kubeconfig dict for this server with bearer-token auth."""
        ctx = context or self.name
        user = f"{self.name}-admin"
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [
                {
                    "name": self.name,
                    "cluster": {"server": self.url, "certificate-authority-data": self.ca_data},
                }
            ],
            "users": [{"name": user, "user": {"token": token or self.token}}],
            "contexts": [{"name": ctx, "context": {"cluster": self.name, "user": user}}],
            "current-context": ctx,
        }

    def _bind(self) -> None:
        last_error: OSError | None = None
        for _ in range(50):  # the old listener's port may take a moment to be free again
            try:
                httpd = HTTPServer(("127.0.0.1", self._port or 0), self)
                break
            except OSError as exc:
                last_error = exc
                time.sleep(0.02)
        else:
            raise RuntimeError(f"cannot listen on port {self._port}: {last_error}")
        self._port = int(httpd.server_address[1])
        self._httpd = httpd
        self._serve_thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"fake-kube-{self.name}",
            daemon=True,
        )
        self._serve_thread.start()

    def _unbind(self) -> None:
        httpd, thread = self._httpd, self._serve_thread
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        self._events.end_watches()  # their clients see the stream cut
        if thread is not None:
            thread.join(timeout=5)
        with self._conn_lock:
            connections = list(self._connections)
            self._connections.clear()
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with self._conn_lock:
            threads = list(self._threads)
            self._threads.clear()
        deadline = time.monotonic() + 5
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            self._events.end_watches()  # a watch opened on a kept-alive connection meanwhile
            for t in threads:
                t.join(timeout=0.02)
        self._httpd = None
        self._serve_thread = None

    def _close_connections(self) -> None:
        """Cut every kept-alive connection (and end watches) while still listening."""
        with self._conn_lock:
            connections = list(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._events.end_watches()

    def _ssl_context(self) -> ssl.SSLContext | None:
        """The context new connections handshake with; None: plain HTTP."""
        if self._tls is None:
            return None
        return self._tls.rogue if self._fail_tls else self._tls.context

    def _track_connection(self, sock: socket.socket, *, add: bool) -> None:
        with self._conn_lock:
            if add:
                self._connections.add(sock)
            else:
                self._connections.discard(sock)

    def _track_thread(self, thread: threading.Thread) -> None:
        with self._conn_lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)

    # --- types ---------------------------------------------------------------------------

    def register(self, rt: ResourceType) -> None:
        """Serve a kind (replacing an earlier registration of the same group/version/plural)."""
        with self._lock:
            self._store.register(rt)

    def _type_for(self, api_version: str, kind: str) -> ResourceType:
        try:
            return self._store.type_for(api_version, kind)
        except KeyError as exc:
            raise KeyError(f"{self.name}: {exc.args[0]}") from None

    # --- direct store access (not logged, no validation) ---------------------------------

    def seed(self, obj: JSONObj) -> JSONObj:
        """Create or replace an object directly, filling metadata as a create would."""
        with self._lock:
            rt = self._type_for(str(obj.get("apiVersion")), str(obj.get("kind")))
            new = copy.deepcopy(obj)
            meta = new.setdefault("metadata", {})
            name = meta.get("name")
            if not name:
                raise ValueError("seed: metadata.name is required")
            ns = ""
            if rt.namespaced:
                ns = meta.get("namespace") or "default"
                meta["namespace"] = ns
                ns_rt = self._store.by_kind[("v1", "Namespace")]
                if ("", ns) not in self._store.objects[ns_rt]:
                    self.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            else:
                meta.pop("namespace", None)
            existing = self._store.objects[rt].get((ns, name))
            meta.setdefault("uid", existing["metadata"]["uid"] if existing else str(uuid.uuid4()))
            meta.setdefault(
                "creationTimestamp",
                existing["metadata"]["creationTimestamp"] if existing else now_iso(),
            )
            meta.setdefault("generation", 1)
            try:
                self._kinds.prepare(rt, name, new, existing, validate=False)
            except ApiError as exc:
                raise ValueError(f"seed: {exc.message}") from None
            self._store.commit(rt, new)
            self._kinds.after_write(rt, new)
            return copy.deepcopy(self._store.objects[rt][(ns, name)])

    def get_object(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> JSONObj | None:
        with self._lock:
            rt = self._type_for(api_version, kind)
            obj = self._store.objects[rt].get((self._store.ns_key(rt, namespace), name))
            return copy.deepcopy(obj) if obj is not None else None

    def list_objects(
        self, api_version: str, kind: str, namespace: str | None = None
    ) -> list[JSONObj]:
        with self._lock:
            rt = self._type_for(api_version, kind)
            return [
                copy.deepcopy(obj)
                for (ns, _), obj in sorted(self._store.objects[rt].items())
                if namespace is None or not rt.namespaced or ns == namespace
            ]

    def object_counts(self) -> dict[str, int]:
        """How many objects the server stores, by kind (kinds with none left out)."""
        with self._lock:
            counts: dict[str, int] = {}
            for rt, bucket in self._store.objects.items():
                if bucket:
                    counts[rt.kind] = counts.get(rt.kind, 0) + len(bucket)
            return counts

    def delete_object(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> bool:
        with self._lock:
            rt = self._type_for(api_version, kind)
            obj = self._store.objects[rt].get((self._store.ns_key(rt, namespace), name))
            if obj is None:
                return False
            self._store.remove(rt, obj)
            return True

    def mutate(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        fn: Callable[[JSONObj], None],
    ) -> JSONObj:
        """Edit an object out of band (like another actor); bumps resourceVersion."""
        with self._lock:
            rt = self._type_for(api_version, kind)
            key = (self._store.ns_key(rt, namespace), name)
            existing = self._store.objects[rt].get(key)
            if existing is None:
                raise KeyError(f"{self.name}: {rt.resource} {key} not found")
            new = copy.deepcopy(existing)
            fn(new)
            new["apiVersion"], new["kind"] = rt.api_version, rt.kind
            meta = new.setdefault("metadata", {})
            meta["name"] = name
            if rt.namespaced:
                meta["namespace"] = key[0]
            if new.get("spec") != existing.get("spec"):
                meta["generation"] = int(existing["metadata"].get("generation", 1)) + 1
            # Stored as the API server would serve it (no validation: another actor's edit).
            self._kinds.prepare(rt, name, new, existing, validate=False)
            self._store.commit(rt, new)
            self._kinds.after_write(rt, new)
            return copy.deepcopy(self._store.objects[rt][key])

    def rotate_token(self, namespace: str, secret_name: str) -> str:
        """Put a new token into a service-account token Secret; returns the new token."""
        with self._lock:
            rt = self._store.by_kind[("v1", "Secret")]
            secret = self._store.objects[rt].get((namespace, secret_name))
            if secret is None:
                raise KeyError(f"{self.name}: secret {namespace}/{secret_name} not found")
            new = copy.deepcopy(secret)
            annotations = new.get("metadata", {}).get("annotations") or {}
            sa_name = str(annotations.get(SA_NAME_ANNOTATION))
            sa = self._store.kind("v1", "ServiceAccount").get((namespace, sa_name))
            sa_uid = str(sa["metadata"]["uid"]) if sa else ""
            token = self._kinds.make_token(namespace, sa_name, sa_uid, secret_name)
            data = new.setdefault("data", {})
            data["token"] = b64(token)
            data.setdefault("ca.crt", b64(self._kinds.ca_pem))
            data.setdefault("namespace", b64(namespace))
            self._store.commit(rt, new)
            return token

    def authenticate(self, token: str) -> Identity | None:
        """The identity a bearer token stands for, None if unknown, expired or revoked: the
        admin token, a live service-account token, or one a :attr:`token_reviews` entry
        accepts."""
        if not token:
            return None
        if hmac.compare_digest(token, self.token):
            return ADMIN
        with self._lock:
            identity = service_account_token_identity(self._store, token, self._kinds.token_key)
        if identity is not None:
            return identity
        now = self.clock()
        for review in list(self.token_reviews):
            identity = review(token, now)
            if identity is not None:
                return identity
        return None

    def authenticates(self, token: str) -> bool:
        """Whether a bearer token is accepted now."""
        return self.authenticate(token) is not None

    # --- request log and faults ----------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def writes(self) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self._log if r.is_write]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        method: str | None = None,
        path_contains: str | None = None,
        message: str = "injected fault",
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` and a Status body."""
        with self._lock:
            self._faults.append(Fault(status, times, method, path_contains, message))

    def conflict_next(self, times: int = 1, *, path_contains: str | None = None) -> None:
        """Answer the next ``times`` matching writes with 409 Conflict."""
        with self._lock:
            self._faults.append(
                Fault(409, times, None, path_contains, "injected conflict", writes_only=True)
            )

    def clear_faults(self) -> None:
        """Forget every pending injected fault, delay and hang."""
        with self._lock:
            self._faults.clear()
            self._delay_s = 0.0
            self._delay_waits = False
        self._released.set()

    def delay_answers(self, seconds: float, *, wait_for_clock: bool = False) -> None:
        """Every answer takes ``seconds``: on the sandbox clock when the server has one
        (``advance``; nothing sleeps), else in real time (keep it tiny). ``wait_for_clock``:
        the answer waits until the server's clock has moved ``seconds`` on, moved by someone
        else (a test stepping time while other work goes on)."""
        with self._lock:
            self._delay_s = max(seconds, 0.0)
            self._delay_waits = wait_for_clock

    def hang(self, hung: bool = True) -> None:
        """True: accept connections and read requests but answer none until ``hang(False)``
        (an overloaded or wedged API server behind a working network path)."""
        if hung:
            self._released.clear()
        else:
            self._released.set()

    def _before_answer(self) -> None:
        """Called by the HTTP handler before it writes an answer: delays and hangs."""
        with self._lock:
            delay, waits = self._delay_s, self._delay_waits
        if delay and waits:
            until = self.clock() + delay
            while self.clock() < until and self._released.is_set() and self._running:
                time.sleep(0.005)
        elif delay and self.advance is not None:
            self.advance(delay)
        elif delay:
            time.sleep(delay)
        # A hung request is released by hang(False) or stop(); the client has long gone.
        self._released.wait(timeout=60)

    def end_watches(self) -> None:
        """End every open watch cleanly, as the server does when ``timeoutSeconds`` pass."""
        self._events.end_watches()

    def compact(self) -> None:
        """Simulate etcd compaction: a watch from any earlier resourceVersion gets 410."""
        with self._lock:
            self._events.compact(self._store.rv)

    def restart(self) -> None:
        """Simulate an API server restart: every connection and open watch is cut, and the
        new watch cache starts at the current resourceVersion (older watches get 410)."""
        with self._lock:
            self._events.restart(self._store.rv)
        self._close_connections()

    def stall_watches(self, stalled: bool = True) -> None:
        """True: every watch stream sends its headers, then nothing, and never ends by itself
        (a wedged server or proxy); False: they deliver again."""
        with self._lock:
            self._events.stalled = stalled
            self._events.cond.notify_all()

    def inject_watch_line(self, line: bytes, plural: str | None = None) -> None:
        """Send ``line`` verbatim on every open watch stream (of ``plural``, or all)."""
        self._events.inject(line, plural)

    def expire_watches(self, plural: str = "*", expiring: bool = True) -> None:
        """Every watch of ``plural`` ("*": all kinds) from a resourceVersion is answered "too
        old", however recent (a watch cache that keeps losing its history)."""
        with self._lock:
            if expiring:
                self._events.expiring.add(plural)
            else:
                self._events.expiring.discard(plural)

    def fail_tls(self, failing: bool = True) -> None:
        """True: new TLS handshakes present a serving certificate signed by another CA (a
        re-issued cluster CA, a wrong CA in the client's kubeconfig, an intercepting proxy);
        kept-alive connections are cut so the next request handshakes. False: the real
        certificate again. TLS mode only."""
        if not self.tls:
            raise RuntimeError(
                f"FakeKubeServer {self.name!r} speaks plain HTTP: create it with tls=True"
            )
        with self._lock:
            changed = self._fail_tls != failing
            self._fail_tls = failing
        if changed:
            self._close_connections()

    def set_unreachable(self, unreachable: bool) -> None:
        """True: stop listening and cut kept-alive connections; False: listen again."""
        with self._life_lock:
            if not self._running or unreachable == self._unreachable:
                self._unreachable = unreachable and self._running
                return
            if unreachable:
                self._unbind()
            else:
                self._bind()
            self._unreachable = unreachable

    def _take_fault(self, method: str, path: str, *, writes_only: bool) -> Fault | None:
        for fault in self._faults:
            if fault.writes_only == writes_only and fault.matches(method, path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # --- HTTP entry point ----------------------------------------------------------------

    def _handle_http(
        self,
        method: str,
        raw_path: str,
        authorization: str,
        content_type: str,
        body: bytes,
        user_agent: str = "",
        *,
        impersonate: tuple[str, tuple[str, ...]] = ("", ()),
    ) -> tuple[int, bytes | Iterator[bytes], str]:
        stream: Iterator[bytes] | None = None
        split = urlsplit(raw_path)
        path, query = split.path, split.query
        ctype = "application/json"
        try:
            with self._lock:
                fault = self._take_fault(method, path, writes_only=False)
            if fault is not None:
                raise ApiError(fault.status, fault.message)
            scheme, _, token = authorization.partition(" ")
            identity = self.authenticate(token.strip()) if scheme.lower() == "bearer" else None
            if identity is None:
                raise ApiError(401, "Unauthorized")
            with self._lock:
                identity = impersonated(self._store, identity, *impersonate)
            status, result = self._serve(
                identity, method, path, query, content_type, body, user_agent
            )
            if isinstance(result, str):
                payload, ctype = result.encode(), "text/plain; charset=utf-8"
            elif isinstance(result, Iterator):
                stream = result  # a watch: streamed by the HTTP layer, chunked
                payload = b""
            else:
                payload = json.dumps(result).encode()
        except ApiError as exc:
            status = exc.code
            payload = json.dumps(
                status_body(exc.code, exc.reason, exc.message, exc.details)
            ).encode()
        except Exception as exc:  # a bug in the fake: answer 500 rather than hang the client
            status = 500
            payload = json.dumps(
                status_body(500, "InternalError", f"fake API server error: {exc!r}")
            ).encode()
        with self._lock:
            self._log.append(RequestRecord(method, path, query, status))
        return status, stream if stream is not None else payload, ctype

    def _serve(
        self,
        identity: Identity,
        method: str,
        path: str,
        query: str,
        content_type: str,
        raw: bytes,
        user_agent: str = "",
    ) -> tuple[int, Any]:
        segments = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        special = self._discovery(method, segments)
        if special is not None:
            return 200, special  # discovery: any authenticated user (system:discovery)
        route = self._route(segments)
        params = parse_qs(query, keep_blank_values=True)
        watch = query_bool(params, "watch")
        verb = request_verb(method, route.name, watch=watch)
        attrs = Attributes(
            verb,
            route.rt.group,
            route.rt.plural,
            route.subresource or "",
            route.namespace or "",
            route.name or _selected_name(params, verb),
        )
        with self._lock:
            authorize(self._store, identity, attrs)
        body: Any = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise bad_request(f"the request body is not valid JSON: {exc}") from None
        with self._lock:
            if method in WRITE_METHODS:
                fault = self._take_fault(method, path, writes_only=True)
                if fault is not None:
                    raise conflict(route.rt, route.name or "")
                check_dry_run(method, params.get("dryRun", []))
            dry_run = "All" in params.get("dryRun", [])
            saved = (copy.deepcopy(self._store.objects), self._store.rv) if dry_run else None
            self._events.paused = dry_run

            manager = manager_of(params.get("fieldManager", [""])[0], user_agent)

            def admit(rt: ResourceType, ns: str, name: str, obj: JSONObj) -> None:
                check_escalation(self._store, identity, rt, ns, name, obj)
                if route.subresource is None:
                    old = self._store.objects[rt].get((ns, name)) if name else None
                    stamp = datetime.fromtimestamp(self.clock(), UTC).strftime(_TIME)
                    record_managed_fields(obj, old, manager, rt.api_version, stamp)

            self._store.admit = admit
            try:
                return self._serve_resource(method, route, params, content_type, body)
            finally:
                self._store.admit = None
                self._events.paused = False
                if saved is not None:
                    self._store.objects, self._store.rv = saved

    def _discovery(self, method: str, segments: list[str]) -> Any:
        with self._lock:
            types = list(self._store.types.values())
        return discovery(method, segments, types, self._store.status_types, self.port)

    def _route(self, segments: list[str]) -> Route:
        with self._lock:
            return route(segments, self._store.types, self._store.status_types)

    def _serve_resource(
        self, method: str, route: Route, params: dict[str, list[str]], ctype: str, body: Any
    ) -> tuple[int, Any]:
        rt, ns, name = route.rt, route.namespace, route.name
        if name is None:
            if method == "GET":
                if query_bool(params, "watch"):
                    stream = open_watch(
                        self._events,
                        self._store.objects[rt],
                        lambda: self._store.rv,
                        WatchRequest(rt, ns, params),
                        self.clock,
                        bookmark_interval=self.bookmark_interval,
                        calico=rt.group == self.calico_group,
                        advance=self.advance,
                    )
                    return 200, stream
                return 200, self._store.list_items(rt, ns, params)
            if method == "POST" and (ns is not None or not rt.namespaced):
                return 201, self._store.create(rt, ns, body, params)
            raise ApiError(405, f"the server does not allow this method on {rt.resource}")
        if method == "GET":
            obj = self._store.objects[rt].get((ns or "", name))
            if obj is None:
                raise not_found(rt, name)
            return 200, copy.deepcopy(obj)
        if method == "PUT":
            if rt.group == self.calico_group:
                require_resource_version(rt, name, body)
            return 200, self._store.replace(rt, ns or "", name, body, route.subresource)
        if method == "PATCH":
            return 200, self._store.patch(rt, ns or "", name, body, ctype, route.subresource)
        if method == "DELETE" and route.subresource is None:
            return 200, self._store.delete(rt, ns or "", name, body)
        raise ApiError(405, f"the server does not allow this method on {rt.resource}")


CRD_CALICO_GROUP = "crd.projectcalico.org"
_OPTIONS_KIND = {
    "POST": "CreateOptions",
    "PUT": "UpdateOptions",
    "PATCH": "PatchOptions",
    "DELETE": "DeleteOptions",
}


def check_dry_run(method: str, values: list[str]) -> None:
    """``dryRun`` takes ``All`` only; anything else is refused with 422, never a real write
    (kubernetes ``staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/validation/validation.go``
    ``ValidateDryRun``; the handlers answer ``errors.NewInvalid`` on the options kind)."""
    bad = [v for v in values if v != "All"]
    if not bad:
        return
    shown = ", ".join(f'"{v}"' for v in values)
    kind = _OPTIONS_KIND.get(method, "CreateOptions")
    message = (
        f'{kind}.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{{{shown}}}: '
        'supported values: "All"'
    )
    causes = [{"reason": "FieldValueNotSupported", "message": message, "field": "dryRun"}]
    raise ApiError(
        422,
        message,
        details={"group": "meta.k8s.io", "kind": kind, "causes": causes},
    )


def require_resource_version(rt: ResourceType, name: str, body: Any) -> None:
    """A PUT of a Calico object must carry ``metadata.resourceVersion``: the Calico API
    server's strategies (``apiserver/pkg/registry/projectcalico/*/strategy.go``) and the
    CRD strategy both answer ``AllowUnconditionalUpdate() false``, and the generic registry
    (``staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go``, ``Update``)
    then refuses an update without one."""
    meta = body.get("metadata") if isinstance(body, dict) else None
    if isinstance(meta, dict) and meta.get("resourceVersion"):
        return
    raise invalid_error(
        rt,
        name,
        f'{rt.kind}.{rt.group} "{name}" is invalid: metadata.resourceVersion: Invalid value: '
        "0x0: must be specified for an update",
        "metadata.resourceVersion",
    )


def _selected_name(params: dict[str, list[str]], verb: str) -> str:
    """A list or watch whose field selector names one object is authorized for that name
    (kube-apiserver's RequestInfo; lets ``resourceNames`` rules allow it)."""
    if verb not in ("list", "watch"):
        return ""
    for term in params.get("fieldSelector", [""])[0].split(","):
        key, sep, value = term.partition("=")
        if sep and key.strip() == "metadata.name" and not key.endswith("!"):
            return value.lstrip("=").strip()
    return ""
