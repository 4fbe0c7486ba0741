"""The emulated AWS account on a real HTTP endpoint, for clients in other processes.

In one process the sandbox answers botocore at ``before-send`` (:mod:`fedkeeper.sandbox.aws`).
A persistent sandbox (:mod:`fedkeeper.sandbox.persistent`) must be reached by separate CLI
processes, over the wire, the way LocalStack or ``moto_server`` are: a ``boto3`` client with
``endpoint_url`` pointing here. Each HTTP request is answered by the same pipeline:

1. the service and region come from the SigV4 credential scope of the ``Authorization``
   header (``Credential=KEY/DATE/REGION/SERVICE/aws4_request``), as moto's own server reads
   them (``moto/moto_server/werkzeug_app.py``, ``infer_service_region_host``);
2. the operation from moto's router for the service's protocol (``moto.core.routing``:
   ``Action`` for query/EC2, ``X-Amz-Target`` for JSON, the HTTP binding for REST);
3. the request, re-addressed to the service's AWS host, goes to
   :meth:`SandboxAws.answer`: injected faults, gap-filled operations, then moto;
4. an operation with a response fill (``DescribeRouteTables``' propagated routes, VPN
   telemetry, the EKS endpoint, ...) has moto's answer parsed by botocore, completed by the
   same fill a local session runs, and written back in the service's protocol by moto's
   response serializer (``moto.core.serialize``).

An injected timeout (``time_out_next``) closes the connection unanswered: the remote client
sees the connection end, which botocore retries as it does a timeout. Requests are answered
one at a time (moto's backends are shared state).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import botocore.parsers
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ReadTimeoutError

from fedkeeper.sandbox.aws import SandboxAws

# Signing names that differ from the service's name (moto's SIGNING_ALIASES, and CloudWatch).
_SIGNING_NAMES = {"monitoring": "cloudwatch", "eventbridge": "events"}
# (method, path under CONTROL_PREFIX, headers, body) -> (status, JSON body), or None when
# the path is not a control operation.
ControlHandler = Callable[[str, str, Any, bytes], tuple[int, bytes] | None]
CONTROL_PREFIX = "/_fedkeeper/"


class UnroutableRequestError(Exception):
    """The request names no service or operation the emulation serves."""


def _credential_scope(headers: HTTPHeaders, query: str) -> tuple[str, str]:
    """(region, signing name) of a SigV4 request (header or presigned query)."""
    auth = headers.get("Authorization", "")
    scope = ""
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0]
    else:
        for part in query.split("&"):
            if part.startswith("X-Amz-Credential="):
                scope = part.split("=", 1)[1].replace("%2F", "/")
    fields = scope.split("/")
    if len(fields) != 5:
        raise UnroutableRequestError("not a SigV4-signed request (no credential scope)")
    return fields[2], fields[3]


def _service_model(service: str) -> Any:
    from moto.core.utils import get_service_model

    try:
        return get_service_model(service)
    except Exception as exc:  # botocore's UnknownServiceError, a missing model file
        raise UnroutableRequestError(f"no AWS service {service!r}") from exc


def route(request: AWSPreparedRequest) -> tuple[Any, Any, str]:
    """(moto service model, operation model, region) of a request sent to this endpoint.

    ``request.url`` is rewritten to the service's AWS host, which moto's dispatcher expects.
    """
    from moto.core.request import normalize_request
    from moto.core.routing import get_service_router
    from werkzeug.exceptions import HTTPException

    parts = urlsplit(request.url)
    region, signing_name = _credential_scope(request.headers, parts.query)
    service = _SIGNING_NAMES.get(signing_name, signing_name)
    model = _service_model(service)
    prefix = model.endpoint_prefix
    request.url = f"https://{prefix}.{region}.amazonaws.com{parts.path}" + (
        f"?{parts.query}" if parts.query else ""
    )
    try:
        operation, _ = get_service_router(model.service_name).match(normalize_request(request))
    except (HTTPException, NotImplementedError) as exc:
        raise UnroutableRequestError(
            f"{request.method} {parts.path} is no {model.service_name} operation"
        ) from exc
    return model, operation, region


def _request_params(model: Any, operation: Any, request: AWSPreparedRequest) -> dict[str, Any]:
    """The request's parameters as botocore named them (moto's request parser)."""
    from moto.core.parse import PROTOCOL_PARSERS
    from moto.core.request import determine_request_protocol, normalize_request
    from moto.core.routing import get_service_router

    req = normalize_request(request)
    _, uri_params = get_service_router(model.service_name).match(req)
    parser = PROTOCOL_PARSERS[determine_request_protocol(model, req)](operation)
    parsed: dict[str, Any] = parser.parse(
        {
            "method": req.method,
            "values": req.values,
            "headers": req.headers,
            "body": req.data,
            "url_path": req.path,
            "url_params": uri_params,
        }
    )
    return dict(parsed)


def _filled(
    fill: Callable[..., None],
    model: Any,
    operation: Any,
    region: str,
    request: AWSPreparedRequest,
    response: AWSResponse,
) -> AWSResponse:
    """moto's answer parsed, completed by ``fill`` and serialized again."""
    from moto.core.serialize import get_serializer_class

    protocol = str(model.protocol)
    parsed: dict[str, Any] = botocore.parsers.create_parser(protocol).parse(
        {
            "status_code": response.status_code,
            "headers": response.headers,
            "body": response.content,
        },
        operation.output_shape,
    )
    parsed.pop("ResponseMetadata", None)
    context = {
        "client_region": region,
        "fedkeeper_sandbox_params": _request_params(model, operation, request),
    }
    fill(http_response=response, parsed=parsed, context=context, model=operation)
    out = get_serializer_class(model.service_name, protocol)(operation).serialize(parsed)
    body = out["body"]
    data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    headers = {**dict(out["headers"]), "content-length": str(len(data))}
    return AWSResponse(request.url, int(out["status_code"]), headers, _Raw(data))


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


class AwsEndpoint:
    """``http://127.0.0.1:<port>``: the sandbox's AWS account for boto3 in any process.

    ``control`` answers requests under ``/_fedkeeper/`` (the persistent sandbox's own
    operations: health, break, ...).
    """

    def __init__(
        self, aws: SandboxAws, port: int = 0, *, control: ControlHandler | None = None
    ) -> None:
        self.aws = aws
        self.control = control
        self._requested_port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.serial = threading.Lock()  # one request at a time

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the AWS endpoint is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> AwsEndpoint:
        endpoint = self

        class Handler(_Handler):
            served = endpoint

        httpd = _Server(("127.0.0.1", self._requested_port), Handler)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sandbox-aws-endpoint",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = None

    def answer(self, request: AWSPreparedRequest) -> AWSResponse | None:
        """The answer to one request (None: no answer, the connection is to be closed)."""
        with self.serial:
            model, operation, region = route(request)
            self.aws.calls.append((str(model.service_name), str(operation.name)))
            service_id = model.service_id.hyphenize()
            try:
                response = self.aws.answer(service_id, operation.name, request)
            except ReadTimeoutError:
                return None
            if response is None:
                raise UnroutableRequestError(f"moto does not serve {model.service_name}")
            fill = self.aws.response_fills().get(f"{model.service_name}.{operation.name}")
            if fill is not None and response.status_code < 300:
                response = _filled(fill, model, operation, region, request, response)
            return response


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse-DNS lookup of the host name."""
        import socketserver

        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _Handler(BaseHTTPRequestHandler):
    served: AwsEndpoint
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the daemon's log is for its own lifecycle, not every request."""

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        skip = {"content-length", "transfer-encoding", "connection", "status", "server", "date"}
        for key, value in headers.items():
            if key.lower() not in skip:
                self.send_header(key, str(value))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        body = self._body()
        control = self.served.control
        if self.path.startswith(CONTROL_PREFIX) and control is not None:
            with self.served.serial:
                answered = control(
                    self.command, self.path[len(CONTROL_PREFIX) :], self.headers, body
                )
            if answered is not None:
                status, payload = answered
                self._send(status, {"content-type": "application/json"}, payload)
                return
        headers = HTTPHeaders()
        for key, value in self.headers.items():
            headers[key] = value
        request = AWSPreparedRequest(
            method=self.command,
            url=f"http://{self.headers.get('Host', 'localhost')}{self.path}",
            headers=headers,
            body=body,
            stream_output=False,
        )
        try:
            response = self.served.answer(request)
        except UnroutableRequestError as exc:
            message = json.dumps({"message": str(exc)}).encode()
            self._send(400, {"content-type": "application/json"}, message)
            return
        if response is None:  # an injected timeout: no answer at all
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(response.status_code, dict(response.headers), response.content)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()
