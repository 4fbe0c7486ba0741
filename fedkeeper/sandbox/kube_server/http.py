"""HTTP plumbing (threads, keep-alive, ``TCP_NODELAY``), discovery documents and routing."""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast

from fedkeeper.sandbox.kube_server.api import (
    SERVER_VERSION,
    ApiError,
    JSONObj,
    ResourceType,
    Route,
)

if TYPE_CHECKING:
    from fedkeeper.sandbox.kube_server.server import FakeKubeServer


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # FakeKubeServer joins its handler threads itself, with a timeout
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeKubeServer) -> None:
        self.fake = fake
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse-DNS lookup of the host name."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        context = self.fake._ssl_context()
        if context is not None:
            # The handshake runs on the connection's thread (finish_request), never here.
            sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        self.fake._track_connection(sock, add=True)
        return sock, addr

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(10.0)  # a client that never finishes its handshake
            request.do_handshake()  # a client refusing the certificate ends it here
            request.settimeout(None)
        super().finish_request(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"fake-kube-{self.fake.name}-conn",
            daemon=True,
        )
        self.fake._track_thread(thread)
        thread.start()

    def close_request(self, request: Any) -> None:
        self.fake._track_connection(request, add=False)
        super().close_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connections cut by set_unreachable/stop end with socket errors: stay quiet."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube-apiserver/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr (the server keeps its own request log)."""

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        fake = cast(HTTPServer, self.server).fake
        body = self._read_body()
        status, payload, content_type = fake._handle_http(
            self.command,
            self.path,
            self.headers.get("Authorization", ""),
            self.headers.get("Content-Type", ""),
            body,
            self.headers.get("User-Agent", ""),
            impersonate=(
                self.headers.get("Impersonate-User", ""),
                tuple(self.headers.get_all("Impersonate-Group") or ()),
            ),
        )
        fake._before_answer()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if not isinstance(payload, bytes):
            self._stream(payload)
            return
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self, lines: Iterator[bytes]) -> None:
        """A watch: one chunk per event line, flushed at once; the zero chunk ends it."""
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.end_headers()
        try:
            for line in lines:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client went away or the server was cut

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()


def discovery(
    method: str,
    segments: list[str],
    types: list[ResourceType],
    status_types: set[tuple[str, str]],
    port: int,
) -> Any:
    """Non-resource paths and discovery; None when ``segments`` name resources."""
    if method != "GET":
        return None
    if not segments:
        return {"paths": ["/api", "/api/v1", "/apis", "/healthz", "/version"]}
    if segments == ["version"]:
        return dict(SERVER_VERSION)
    if segments[0] in ("healthz", "livez", "readyz"):
        return "ok"
    if segments == ["api"]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{port}"}
            ],
        }
    groups: dict[str, list[str]] = {}
    for rt in types:
        if rt.group and rt.version not in groups.setdefault(rt.group, []):
            groups[rt.group].append(rt.version)

    def group_doc(group: str) -> JSONObj:
        versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in groups[group]]
        return {"name": group, "versions": versions, "preferredVersion": versions[0]}

    if segments == ["apis"]:
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [group_doc(g) for g in sorted(groups)],
        }
    if len(segments) == 2 and segments[0] == "apis" and segments[1] in groups:
        return {"kind": "APIGroup", "apiVersion": "v1", **group_doc(segments[1])}
    gv: tuple[str, str] | None = None
    if len(segments) == 2 and segments[0] == "api":
        gv = ("", segments[1])
    elif len(segments) == 3 and segments[0] == "apis":
        gv = (segments[1], segments[2])
    if gv is None:
        return None
    resources: list[JSONObj] = []
    for rt in sorted(types, key=lambda t: t.plural):
        if (rt.group, rt.version) != gv:
            continue
        resources.append(
            {
                "name": rt.plural,
                "singularName": rt.kind.lower(),
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            }
        )
        if (rt.group, rt.plural) in status_types:
            resources.append(
                {
                    "name": f"{rt.plural}/status",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    if not resources:
        raise ApiError(404, "the server could not find the requested resource")
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{gv[0]}/{gv[1]}" if gv[0] else gv[1],
        "resources": resources,
    }


def route(
    segments: list[str],
    types: dict[tuple[str, str, str], ResourceType],
    status_types: set[tuple[str, str]],
) -> Route:
    not_found = ApiError(404, "the server could not find the requested resource")
    if len(segments) >= 3 and segments[0] == "api":
        group, version, rest = "", segments[1], segments[2:]
    elif len(segments) >= 4 and segments[0] == "apis":
        group, version, rest = segments[1], segments[2], segments[3:]
    else:
        raise not_found
    namespace: str | None = None
    is_ns_subresource = (
        rest[0] == "namespaces" and len(rest) == 3 and rest[2] in ("status", "finalize")
    )
    if rest[0] == "namespaces" and len(rest) >= 3 and not is_ns_subresource:
        namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise not_found
    elif len(rest) > 3:
        raise not_found
    rt = types.get((group, version, rest[0]))
    if rt is None:
        raise not_found
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if namespace is not None and not rt.namespaced:
        raise not_found
    if rt.namespaced and namespace is None and name is not None:
        raise not_found
    if sub is not None and (sub != "status" or (rt.group, rt.plural) not in status_types):
        raise not_found
    return Route(rt, namespace, name, sub)
