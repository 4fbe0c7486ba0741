"""Emulated AWS for the sandbox: moto's in-process ``mock_aws`` plus project-owned gap fills.

moto 5.2 covers most of what fedkeeper touches (VPC, subnets, CIDR associations, VGW, CGW,
VPN connections, route tables, EKS clusters, Secrets Manager, IAM, ...). What it lacks is
filled here, as botocore event handlers registered on every ``boto3.Session`` the sandbox
hands out. Production code receives such a session by injection and is never special-cased.

Where each piece sits in botocore's request pipeline:

* ``before-call`` (registered first): records ``(service, OperationName)`` in
  :attr:`SandboxAws.calls` (once per API call, however many HTTP attempts it takes).
* ``before-send``: the sandbox's "server". moto's own stubber is a built-in ``before-send``
  handler; on sandbox sessions it is replaced by :meth:`SandboxAws._server`, which answers,
  in this order, an injected fault (:meth:`SandboxAws.fail_next`), a gap-filled operation
  (VGW route propagation, EKS add-ons), or hands the request to moto. Because answers are
  real HTTP responses, botocore parses them, raises ``ClientError`` for errors and applies
  its retry policy exactly as against AWS; a faulted request never reaches moto, so it has
  no side effect.
* ``after-call``: enriches what moto answers but leaves out (``PropagatingVgws`` and
  propagated routes, ``VgwTelemetry``, VPN ``Options``, the EKS cluster's ``vpcId``,
  endpoint and CA).

What moto 5.2.5 really lacks (verified against the installed version):

* ``EnableVgwRoutePropagation`` / ``DisableVgwRoutePropagation``: NotImplementedError.
* ``DescribeRouteTables``: no ``PropagatingVgws``, no propagated routes.
* ``CreateVpnConnection`` / ``DescribeVpnConnections``: no ``VgwTelemetry``, ``Options``
  (``StaticRoutesOnly`` is dropped), ``Routes`` or ``Category``; the customer gateway
  configuration names the same outside IP (52.2.144.13) for both tunnels.
* EKS ``CreateAddon``/``DescribeAddon``/``UpdateAddon``/``DeleteAddon``/``ListAddons``/
  ``DescribeUpdate``: HTTP 404 "Not yet implemented".
* EKS ``DescribeCluster``: no ``resourcesVpcConfig.vpcId``, no ``accessConfig``, a random
  endpoint and a random (non-PEM) CA.
* SSM ``PutParameter``: no limit on the value's size (the standard tier's is 4,096
  characters: :mod:`fedkeeper.sandbox.ssm_limits`).

What moto already does right and is therefore not filled: ``AssociateVpcCidrBlock`` /
``DisassociateVpcCidrBlock`` (``CidrBlockAssociationSet`` lists a secondary CIDR as
``associated``; a disassociated one stays listed with state ``disassociated`` — readers
must filter on ``CidrBlockState.State``), VGW attachments and their filters, tags via
``TagSpecifications``, NAT gateways, Secrets Manager, CloudTrail ``DescribeTrails`` (shadow
trails of multi-region trails listed in other regions, hidden with
``includeShadowTrails=False``) and ``GetTrailStatus`` (``IsLogging`` false from
``CreateTrail`` until ``StartLogging``, as in AWS's CloudTrail API reference).

Known and left alone (fedkeeper does not call it): moto's ``UpdateClusterConfig`` answers
with the cluster instead of an ``update`` and replaces ``resourcesVpcConfig`` wholesale.

Only one sandbox can be active in a process at a time (moto's mock is process-wide).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

import boto3
import botocore.loaders
import botocore.session
import jsonschema
import yaml
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError, UnknownServiceError
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID, botocore_stubber

from fedkeeper.sandbox import ssm_limits

__all__ = ["SandboxAws"]

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# Environment variables that would send a sandbox session elsewhere (a missing profile makes
# boto3.Session raise; an endpoint override bypasses the emulated endpoints).
_ENV_REMOVED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL")

_EC2_XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/"
_DEFAULT_ADDON_VERSIONS = {
    "vpc-cni": "v1.20.4-eksbuild.1",
    "kube-proxy": "v1.33.3-eksbuild.6",
    "coredns": "v1.12.2-eksbuild.4",
}
_HANDLER_PREFIX = "fedkeeper-sandbox"

# One model loader for every session the sandboxes hand out (the models are read-only data):
# parsing the EC2 model alone takes ~0.2 s, and each fresh boto3.Session would parse it again.
_LOADER = botocore.loaders.create_loader()

# How long an accepted UpdateAddon stays UPDATING (sandbox clock seconds) unless a test
# sets :attr:`SandboxAws.addon_update_s`. EKS rolls an add-on update out over the cluster's
# nodes, typically a minute or more; the exact time is not documented.
ADDON_UPDATE_S = 60.0
# Shortens (or lengthens) it for a whole sandbox, the running one included: rehearsals and
# tests that do not want to wait a minute for `fedkeeper apply` to see its update roll out.
ADDON_UPDATE_ENV = "FEDKEEPER_SANDBOX_ADDON_ROLLOUT_S"


def addon_update_seconds(environ: Mapping[str, str] | None = None) -> float:
    """The add-on rollout time: ``$FEDKEEPER_SANDBOX_ADDON_ROLLOUT_S``, else a minute."""
    text = (os.environ if environ is None else environ).get(ADDON_UPDATE_ENV, "").strip()
    if not text:
        return ADDON_UPDATE_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:
        raise ValueError(
            f"{ADDON_UPDATE_ENV}={text!r} is not a rollout time; give seconds from 0 to 3600"
        )
    return seconds


RESOLVE_CONFLICTS = ("OVERWRITE", "NONE", "PRESERVE")  # botocore eks ResolveConflicts enum
_ADDON_BUSY = frozenset({"CREATING", "UPDATING", "DELETING"})

InvokeHook = Callable[[str, str, bytes], tuple[bytes, str | None]]
# (cluster, add-on, parsed configurationValues, resolveConflicts of the operation)
AddonHook = Callable[[str, str, dict[str, Any], str | None], None]
# The aws-node env the vpc-cni add-on applies where configurationValues leave a key out
# (upstream config/master/aws-k8s-cni.yaml, for the keys the sandbox's aws-node carries).
ADDON_DEFAULT_ENV: dict[str, dict[str, str]] = {
    "vpc-cni": {
        "AWS_VPC_K8S_CNI_EXTERNALSNAT": "false",
        "AWS_VPC_K8S_CNI_LOGLEVEL": "DEBUG",
        "WARM_ENI_TARGET": "1",
    }
}


# --------------------------------------------------------------------------- state records


@dataclass
class _Tunnel:
    outside_ip: str
    up: bool = True
    last_change: datetime = field(default_factory=lambda: datetime.now(UTC))
    message: str = ""
    accepted_routes: int | None = None  # None: derived from the VGW's learned routes


@dataclass
class _Rollout:
    """An accepted UpdateAddon that EKS is still rolling out, and how it will end."""

    update_id: str
    values: str  # configurationValues applied when it ends
    previous: str  # configurationValues before it (kept when it fails)
    resolve: str | None
    outcome: str  # ACTIVE, DEGRADED or UPDATE_FAILED
    issues: list[dict[str, Any]]


@dataclass
class _Addon:
    cluster: str
    name: str
    version: str
    arn: str
    created_at: datetime
    modified_at: datetime
    configuration_values: str
    tags: dict[str, str]
    service_account_role_arn: str | None
    resolve_conflicts: str | None
    status: str = "ACTIVE"
    issues: list[dict[str, Any]] = field(default_factory=list)
    busy_until: float = 0.0  # sandbox clock (epoch seconds) when the rollout ends
    rollout: _Rollout | None = None

    def shape(self, status: str | None = None) -> dict[str, Any]:
        """The add-on as EKS returns it (timestamps as datetimes)."""
        out: dict[str, Any] = {
            "addonName": self.name,
            "clusterName": self.cluster,
            "status": status or self.status,
            "addonVersion": self.version,
            "health": {"issues": [dict(i) for i in self.issues]},
            "addonArn": self.arn,
            "createdAt": self.created_at,
            "modifiedAt": self.modified_at,
            "tags": dict(self.tags),
            "configurationValues": self.configuration_values,
        }
        if self.service_account_role_arn:
            out["serviceAccountRoleArn"] = self.service_account_role_arn
        return out


@dataclass
class _Update:
    id: str
    cluster: str
    addon: str
    params: list[dict[str, str]]
    created_at: datetime
    status: str = "InProgress"  # then Successful or Failed
    errors: list[dict[str, Any]] = field(default_factory=list)

    def shape(self, status: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": status or self.status,
            "type": "AddonUpdate",
            "params": [dict(p) for p in self.params],
            "createdAt": self.created_at,
            "errors": [dict(e) for e in self.errors],
        }


class AddonConflictError(Exception):
    """resolveConflicts NONE met fields edited by hand: EKS fails the update."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__(", ".join(keys))
        self.keys = keys


@dataclass
class _Fault:
    services: frozenset[str]
    operation: str
    code: str
    status: int
    message: str
    protocol: str
    remaining: int


class _ApiError(Exception):
    """An error a gap-filled operation answers with (rendered in the service's protocol)."""

    def __init__(self, status: int, code: str, message: str, **fields: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields


class _RawBody:
    """The ``raw`` of an :class:`AWSResponse`: botocore reads it through ``stream()``."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._pos = 0

    def stream(self, **_: Any) -> Iterator[bytes]:
        if self._body:
            yield self._body

    def read(self, amt: int | None = None, **_: Any) -> bytes:
        """For streaming payloads (Lambda ``Invoke``): botocore hands ``raw`` to StreamingBody."""
        end = len(self._body) if amt is None else self._pos + amt
        chunk = self._body[self._pos : end]
        self._pos += len(chunk)
        return chunk


# --------------------------------------------------------------------------- helpers


def _norm_service(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _now() -> datetime:
    return datetime.now(UTC)


def _request_id() -> str:
    return str(uuid.uuid4())


def _body_text(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, bytes | bytearray):
        return bytes(body).decode("utf-8")
    if isinstance(body, str):
        return body
    if hasattr(body, "read"):  # a file-like body (not used by the services filled here)
        data = body.read()
        return data.decode("utf-8") if isinstance(data, bytes) else str(data)
    return str(body)


def _region_of(url: str, default: str) -> str:
    host = urlsplit(url).hostname or ""
    match = re.match(r"^[a-z0-9-]+\.([a-z]{2}(?:-gov)?-[a-z]+-\d)\.", host)
    return match.group(1) if match else default


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()  # rest-json timestamps are epoch seconds
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _response(url: str, status: int, headers: dict[str, str], body: bytes) -> AWSResponse:
    headers = {"x-amzn-requestid": _request_id(), "content-length": str(len(body)), **headers}
    return AWSResponse(url, status, headers, _RawBody(body))


def _error_response(
    url: str, protocol: str, status: int, code: str, message: str, *, fields: dict[str, str]
) -> AWSResponse:
    """An AWS error response as the service's protocol writes it on the wire."""
    rid = _request_id()
    msg, cde = escape(message), escape(code)
    if protocol == "ec2":
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>{cde}</Code><Message>{msg}</Message></Error></Errors>"
            f"<RequestID>{rid}</RequestID></Response>"
        )
        return _response(url, status, {"content-type": "text/xml"}, xml.encode())
    if protocol in ("query", "rest-xml"):
        kind = "Receiver" if status >= 500 else "Sender"
        xml = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{cde}</Code>"
            f"<Message>{msg}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
        )
        return _response(url, status, {"content-type": "text/xml"}, xml.encode())
    if protocol == "json":
        body = json.dumps({"__type": code, "message": message, **fields}).encode()
        return _response(url, status, {"content-type": "application/x-amz-json-1.1"}, body)
    if protocol == "rest-json":
        body = json.dumps({"message": message, **fields}).encode()
        headers = {"content-type": "application/json", "x-amzn-errortype": code}
        return _response(url, status, headers, body)
    raise ValueError(f"fault injection does not speak the {protocol!r} protocol")


def _tunnel_ips(vpn_connection_id: str) -> tuple[str, str]:
    """Two distinct public outside IPs derived from the VPN connection id (stable)."""
    ips: list[str] = []
    salt = 0
    while len(ips) < 2:
        digest = hashlib.sha256(f"{vpn_connection_id}/{len(ips)}/{salt}".encode()).digest()
        ip = f"52.{16 + digest[0] % 48}.{digest[1]}.{1 + digest[2] % 254}"
        if ip in ips:
            salt += 1
            continue
        ips.append(ip)
    return ips[0], ips[1]


def _parse_configuration_values(addon: str, text: str) -> dict[str, Any]:
    """Parse ``configurationValues`` as EKS does (JSON or YAML, a mapping), or raise."""
    if not text.strip():
        return {}
    try:
        value: Any = json.loads(text)
    except ValueError:
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise _ApiError(
                400,
                "InvalidParameterException",
                "ConfigurationValue provided in request is not supported: configuration "
                f"values must be valid JSON or YAML ({str(exc).splitlines()[0]})",
                addonName=addon,
            ) from None
    if not isinstance(value, dict):
        raise _ApiError(
            400,
            "InvalidParameterException",
            "ConfigurationValue provided in request is not supported: Json schema "
            f"validation failed with error: expected type object, found {type(value).__name__}",
            addonName=addon,
        )
    problems = schema_problems(addon, value)
    if problems:
        raise _ApiError(
            400,
            "InvalidParameterException",
            "ConfigurationValue provided in request is not supported: Json schema "
            f"validation failed with error: [{', '.join(problems)}]",
            addonName=addon,
        )
    return value


# The add-on configuration schemas the sandbox holds (DescribeAddonConfiguration answers),
# by add-on name. Only vpc-cni v1.15.1-eksbuild.1's is stored: it is used for every vpc-cni
# version (newer versions add keys, so a key only they know would be refused here).
_SCHEMA_FILES = {"vpc-cni": "vpc-cni-v1.15.1-eksbuild.1.configuration-schema.json"}
_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer"}


@functools.cache
def configuration_schema(addon: str) -> dict[str, Any] | None:
    """The stored configuration schema of ``addon`` (None: not held, nothing validated)."""
    name = _SCHEMA_FILES.get(addon)
    if name is None:
        return None
    text = resources.files("fedkeeper.sandbox").joinpath("data", name).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)["configurationSchema"]
    return schema


def schema_problems(addon: str, value: dict[str, Any]) -> list[str]:
    """``configurationValues`` checked against the add-on's schema, as EKS words each problem.

    EKS answers in the style of its JSON-schema validator: ``$.env.FOO: is not defined in the
    schema and the schema does not allow additional properties``, ``$.env.X: integer found,
    string expected``. Formats (``"format": "boolean"``) are not checked, as EKS does not.
    """
    schema = configuration_schema(addon)
    if schema is None:
        return []
    validator = jsonschema.Draft6Validator(schema)
    out = []
    for err in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        if err.validator == "additionalProperties":
            allowed = set(err.schema.get("properties") or {})
            extra = sorted(k for k in err.instance if k not in allowed)
            out += [
                f"{path}.{k}: is not defined in the schema and the schema does not allow "
                "additional properties"
                for k in extra
            ]
        elif err.validator == "type":
            found = _JSON_TYPES.get(type(err.instance), type(err.instance).__name__)
            want = err.validator_value
            want = "/".join(want) if isinstance(want, list) else want
            out.append(f"{path}: {found} found, {want} expected")
        else:
            out.append(f"{path}: {err.message}")
    return out


# --------------------------------------------------------------------------- the sandbox


class SandboxAws:
    """Context manager: moto's ``mock_aws`` with fake credentials, plus the gap fills.

    On enter it sets fake credentials and ``AWS_DEFAULT_REGION`` in the environment and
    starts ``mock_aws()`` (a fresh, empty account); on exit it stops the mock and restores
    the environment. :meth:`session` hands out sessions wired to the emulation.
    """

    def __init__(
        self,
        region: str,
        *,
        eks_endpoint: Callable[[str], tuple[str, str]] | None = None,
    ) -> None:
        self.region = region
        self.eks_endpoint = eks_endpoint
        #: Called with (cluster, add-on name, parsed configurationValues) after CreateAddon,
        #: UpdateAddon and reset_addon_configuration: the add-on manager rewriting aws-node.
        self.on_addon_configured: AddonHook | None = None
        self.on_invoke: InvokeHook | None = None
        #: (service, OperationName) of every API call through sandbox sessions, in order.
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.RLock()
        self._mock: Any = None
        self._saved_env: dict[str, str | None] = {}
        self._uid = f"{_HANDLER_PREFIX}-{id(self)}"
        self._botocore = self._core_session()  # service models for fail_next
        # Moves emulated time (the sandbox clock) by what a timed-out attempt would cost.
        self.advance: Callable[[float], None] | None = None
        #: Emulated wall-clock time (the sandbox clock): when add-on rollouts end.
        self.clock: Callable[[], float] = time.time
        #: How long an accepted UpdateAddon stays UPDATING, in sandbox seconds.
        self.addon_update_s = addon_update_seconds()
        self._reset_state()

    def _reset_state(self) -> None:
        with self._lock:
            self.calls.clear()
            self._propagations: dict[str, set[str]] = {}
            self._learned: dict[str, list[str]] = {}
            # Routes learned over one VPN connection's BGP sessions (a mesh's VGW has several).
            self._vpn_learned: dict[str, list[str]] = {}
            self._tunnels: dict[str, list[_Tunnel]] = {}
            self._vpn_options: dict[str, dict[str, Any]] = {}
            self._addons: dict[tuple[str, str, str], _Addon] = {}
            self._updates: dict[str, _Update] = {}
            # What EKS last applied to each add-on's workload env, by (cluster, add-on).
            self._applied_env: dict[tuple[str, str], dict[str, str]] = {}
            self._cluster_vpc: dict[tuple[str, str], str] = {}
            self._cluster_access: dict[tuple[str, str], dict[str, Any]] = {}
            self._faults: list[_Fault] = []
            # How the next UpdateAddon of (cluster, add-on) ends: (status, health issues).
            self._next_outcome: dict[tuple[str, str], tuple[str, list[dict[str, Any]]]] = {}

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> SandboxAws:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> SandboxAws:
        """Start ``mock_aws``, then set fake credentials and the region in the environment."""
        if self._mock is not None:
            raise RuntimeError("the AWS sandbox is already started")
        env = {**FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": self.region}
        # moto's ~2600 default AMIs cost ~0.2 s per region backend; nothing here runs EC2
        # instances. Set MOTO_EC2_LOAD_DEFAULT_AMIS=true beforehand to keep them.
        env["MOTO_EC2_LOAD_DEFAULT_AMIS"] = os.environ.get("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        self._saved_env = {k: os.environ.get(k) for k in (*env, *_ENV_REMOVED)}
        self._reset_state()
        self._mock = mock_aws()
        self._mock.start()
        # After moto's start: it patches the environment with its own fake keys.
        os.environ.update(env)
        for key in _ENV_REMOVED:
            os.environ.pop(key, None)
        return self

    def stop(self) -> None:
        """Stop ``mock_aws`` (its state is lost) and restore the environment."""
        if self._mock is None:
            return
        try:
            self._mock.stop()
        finally:
            self._mock = None
            for key, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    # ----------------------------------------------------------------- sessions

    def session(self, credentials: dict[str, str] | None = None) -> boto3.Session:
        """A new session (the sandbox region, every gap fill) with fake admin credentials,
        or ``credentials`` (e.g. an assumed role's, as STS returns them)."""
        if self._mock is None:
            raise RuntimeError("start the AWS sandbox before asking it for a session")
        creds = credentials or {
            "AccessKeyId": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "SecretAccessKey": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "SessionToken": FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
        }
        session = boto3.Session(
            botocore_session=self._core_session(),
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=self.region,
        )
        paths = _LOADER.search_paths  # boto3 appends its data path on every session
        paths[:] = list(dict.fromkeys(paths))
        self.register_gap_fills(session)
        return session

    def _core_session(self) -> Any:
        core = botocore.session.get_session()
        core.register_component("data_loader", _LOADER)
        return core

    def register_gap_fills(self, session: boto3.Session) -> None:
        """Register the call counter, the emulated server and the response fills.

        Clients copy their session's handlers when they are created: register before
        creating clients. Registering twice on one session is harmless.
        """
        events = session.events
        uid = self._uid
        events.register_first("before-call", self._count_call, unique_id=f"{uid}-count")
        # The sandbox server replaces moto's stubber (which it calls for everything it does
        # not answer itself), so that injected faults and gap fills never also reach moto.
        events.unregister("before-send", botocore_stubber)
        events.register("before-send", self._server, unique_id=f"{uid}-server")
        stash = self._stash_params
        for op in ("ec2.CreateVpnConnection", "eks.CreateCluster"):
            events.register(f"before-parameter-build.{op}", stash, unique_id=f"{uid}-p-{op}")
        for op, handler in self.response_fills().items():
            events.register(f"after-call.{op}", handler, unique_id=f"{uid}-a-{op}")

    def response_fills(self) -> dict[str, Callable[..., None]]:
        """The ``after-call`` fills by ``service.Operation``: each completes a parsed answer
        (``http_response``, ``parsed``, ``context`` with ``client_region`` and, for the
        creates, ``fedkeeper_sandbox_params``)."""
        return {
            "ec2.DescribeRouteTables": self._fill_describe_route_tables,
            "ec2.CreateVpnConnection": self._fill_create_vpn_connection,
            "ec2.DescribeVpnConnections": self._fill_describe_vpn_connections,
            "eks.CreateCluster": self._fill_create_cluster,
            "eks.DescribeCluster": self._fill_describe_cluster,
        }

    def _count_call(self, model: Any, **_: Any) -> None:
        """Record ``(service, OperationName)`` of every API call (not of every retry)."""
        self.calls.append((str(model.service_model.service_name), str(model.name)))

    def clear_calls(self) -> None:
        self.calls.clear()

    @staticmethod
    def _stash_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["fedkeeper_sandbox_params"] = dict(params)

    # ----------------------------------------------------------------- fault injection

    def fail_next(
        self,
        service: str,
        operation: str,
        code: str,
        *,
        times: int = 1,
        status: int = 400,
        message: str = "injected",
    ) -> None:
        """Answer the next ``times`` matching HTTP attempts with an AWS error.

        The error is written as the service's wire protocol would write it and returned at
        ``before-send``, so botocore parses it, its retry handler sees it (a retried attempt
        counts as a matching attempt) and ``ClientError`` carries ``code``. A faulted
        request never reaches moto. ``service`` is the client name (``secretsmanager``) or
        the service id (``secrets-manager``).
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        model = None
        for candidate in dict.fromkeys((service, _norm_service(service))):
            try:
                model = self._botocore.get_service_model(candidate)
                break
            except UnknownServiceError:
                continue
        if model is None:
            raise ValueError(f"unknown service {service!r}; use its boto3 client name")
        if operation not in model.operation_names:
            raise ValueError(f"{service} has no operation {operation!r}")
        names = {_norm_service(service), _norm_service(model.service_name)}
        names.add(_norm_service(model.service_id))
        protocol = str(model.resolved_protocol)
        if protocol not in ("ec2", "query", "rest-xml", "json", "rest-json"):
            raise ValueError(f"cannot inject faults into {service!r} (protocol {protocol})")
        with self._lock:
            self._faults.append(
                _Fault(frozenset(names), operation, code, status, message, protocol, times)
            )

    def time_out_next(
        self, service: str, operation: str, *, times: int = 1, seconds: float = 10.0
    ) -> None:
        """The next ``times`` attempts of ``operation`` get no answer: each costs ``seconds``
        on the sandbox clock (the client's read timeout) and ends in botocore's
        ``ReadTimeoutError``, which its retry handler retries like a real timeout."""
        self.fail_next(service, operation, "__timeout__", times=times, message=str(seconds))

    def clear_faults(self) -> None:
        """Forget every pending injected fault."""
        with self._lock:
            self._faults.clear()

    def _take_fault(self, service_id: str, operation: str) -> _Fault | None:
        key = _norm_service(service_id)
        with self._lock:
            for fault in self._faults:
                if fault.operation == operation and key in fault.services:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # ----------------------------------------------------------------- the server

    def answer(self, service_id: str, operation: str, request: Any) -> AWSResponse | None:
        """The emulated endpoint's answer to one HTTP attempt of ``operation`` (as a
        ``before-send`` handler gives it); for callers that are not botocore sessions of
        this process (the persistent sandbox's HTTP endpoint)."""
        return self._server(request, f"before-send.{service_id}.{operation}")

    def _server(self, request: Any, event_name: str, **kwargs: Any) -> AWSResponse | None:
        """The emulated AWS endpoint: injected faults, gap-filled operations, then moto."""
        if self._mock is None:  # stopped: behave like moto's stubber (inactive)
            stopped: AWSResponse | None = botocore_stubber(event_name, request, **kwargs)
            return stopped
        _, service_id, operation = event_name.split(".", 2)
        fault = self._take_fault(service_id, operation)
        if fault is not None and fault.code == "__timeout__":
            if self.advance is not None:
                self.advance(float(fault.message))
            raise ReadTimeoutError(endpoint_url=request.url)
        if fault is not None:
            return _error_response(
                request.url, fault.protocol, fault.status, fault.code, fault.message, fields={}
            )
        if (service_id, operation) == ("ssm", "PutParameter"):
            refused = ssm_limits.refusal(request.body, _region_of(request.url, self.region))
            if refused is not None:
                return _error_response(
                    request.url, "json", 400, "ValidationException", refused, fields={}
                )
        handler = self._operations().get((service_id, operation))
        if handler is not None:
            protocol = "ec2" if service_id == "ec2" else "rest-json"
            try:
                return handler(request)
            except _ApiError as err:
                return _error_response(
                    request.url, protocol, err.status, err.code, err.message, fields=err.fields
                )
        response: AWSResponse | None = botocore_stubber(event_name, request, **kwargs)
        return response

    def _operations(self) -> dict[tuple[str, str], Callable[[Any], AWSResponse]]:
        return {
            ("ec2", "EnableVgwRoutePropagation"): self._enable_vgw_route_propagation,
            ("ec2", "DisableVgwRoutePropagation"): self._disable_vgw_route_propagation,
            ("eks", "CreateAddon"): self._create_addon,
            ("eks", "DescribeAddon"): self._describe_addon,
            ("eks", "UpdateAddon"): self._update_addon,
            ("eks", "DeleteAddon"): self._delete_addon,
            ("eks", "ListAddons"): self._list_addons,
            ("eks", "DescribeUpdate"): self._describe_update,
            ("lambda", "Invoke"): self._invoke_function,
        }

    def _invoke_function(self, request: Any) -> AWSResponse:
        """Lambda ``Invoke`` (RequestResponse): moto runs functions only in Docker.

        The sandbox's ``on_invoke(function_name, qualifier, payload) -> (body, error)`` runs
        the handler in-process; like AWS, a handler exception is still HTTP 200 with the
        ``X-Amz-Function-Error: Unhandled`` header and the error document as the payload.
        A function that does not exist (the hook raises ``LookupError``) is a 404
        ``ResourceNotFoundException``.
        """
        path = unquote(urlsplit(request.url).path)
        match = re.search(r"/functions/([^/]+)/invocations", path)
        if match is None:
            raise _ApiError(400, "InvalidParameterValueException", "no function name")
        name, _, qualifier = match.group(1).partition(":")
        qualifier = qualifier or self._query(request).get("Qualifier", "")
        hook = self.on_invoke
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        try:
            if hook is None:
                raise LookupError(name)
            out, error = hook(name, qualifier, bytes(body))
        except LookupError:
            # An unknown function is an error of the call, not of a handler: botocore's
            # Lambda model lists ResourceNotFoundException ("The resource specified in the
            # request does not exist") for Invoke, HTTP 404.
            arn = f"arn:aws:lambda:{self.region}:{DEFAULT_ACCOUNT_ID}:function:{name}"
            raise _ApiError(
                404, "ResourceNotFoundException", f"Function not found: {arn}", Type="User"
            ) from None
        headers = {"content-type": "application/json", "x-amz-executed-version": "1"}
        if error:
            headers["x-amz-function-error"] = error
        return _response(request.url, 200, headers, out)

    # ----------------------------------------------------------------- moto backends

    @staticmethod
    def _ec2(region: str) -> Any:
        from moto.ec2.models import ec2_backends  # ~0.7 s: moto loads it on first EC2 call

        return ec2_backends[DEFAULT_ACCOUNT_ID][region]

    @staticmethod
    def _eks(region: str) -> Any:
        from moto.eks.models import eks_backends

        return eks_backends[DEFAULT_ACCOUNT_ID][region]

    @staticmethod
    def _vgw_exists(backend: Any, vgw_id: str) -> bool:
        vgw = backend.vpn_gateways.get(vgw_id)
        return vgw is not None and vgw.state != "deleted"

    def _vgw_tunnels_up(self, region: str, vgw_id: str) -> bool:
        for conn in list(self._ec2(region).vpn_connections.values()):
            if (
                conn.vpn_gateway_id == vgw_id
                and conn.state == "available"
                and any(t.up for t in self._tunnel_state(conn.id))
            ):
                return True
        return False

    # ----------------------------------------------------------------- EC2: propagation

    def _ec2_success(self, request: Any, operation: str) -> AWSResponse:
        xml = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<{operation}Response xmlns="{_EC2_XMLNS}">'
            f"<requestId>{_request_id()}</requestId><return>true</return></{operation}Response>"
        )
        return _response(request.url, 200, {"content-type": "text/xml"}, xml.encode())

    def _propagation_args(self, request: Any) -> tuple[str, str]:
        """Validate a (Enable|Disable)VgwRoutePropagation request as EC2 does."""
        form = {k: v[0] for k, v in parse_qs(_body_text(request.body)).items()}
        rt_id, vgw_id = form.get("RouteTableId", ""), form.get("GatewayId", "")
        if not rt_id or not vgw_id:
            missing = "RouteTableId" if not rt_id else "GatewayId"
            raise _ApiError(
                400, "MissingParameter", f"The request must contain the parameter {missing}"
            )
        backend = self._ec2(_region_of(request.url, self.region))
        table = backend.route_tables.get(rt_id)
        if table is None:
            raise _ApiError(
                400, "InvalidRouteTableID.NotFound", f"The routeTable ID '{rt_id}' does not exist"
            )
        if not self._vgw_exists(backend, vgw_id):
            raise _ApiError(
                400,
                "InvalidVpnGatewayID.NotFound",
                f"The vpnGateway ID '{vgw_id}' does not exist",
            )
        if form.get("DryRun", "").lower() == "true":
            raise _ApiError(
                412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set."
            )
        return rt_id, vgw_id

    def _enable_vgw_route_propagation(self, request: Any) -> AWSResponse:
        """Imitates EC2 ``EnableVgwRoutePropagation``.

        The route table and the VGW must exist (``InvalidRouteTableID.NotFound``,
        ``InvalidVpnGatewayID.NotFound``) and the VGW must be attached to the table's VPC
        (``Gateway.NotAttached``). Enabling twice is not an error. The response carries
        no output members (``<return>true</return>`` only).
        """
        rt_id, vgw_id = self._propagation_args(request)
        backend = self._ec2(_region_of(request.url, self.region))
        vpc_id = backend.route_tables[rt_id].vpc_id
        attachment = backend.vpn_gateways[vgw_id].attachments.get(vpc_id)
        if attachment is None or attachment.state != "attached":
            raise _ApiError(
                400,
                "Gateway.NotAttached",
                f"resource {vgw_id} is not attached to the VPC {vpc_id} of route table {rt_id}",
            )
        with self._lock:
            self._propagations.setdefault(rt_id, set()).add(vgw_id)
        return self._ec2_success(request, "EnableVgwRoutePropagation")

    def _disable_vgw_route_propagation(self, request: Any) -> AWSResponse:
        """Imitates EC2 ``DisableVgwRoutePropagation``.

        Same existence checks as enabling; disabling a propagation that is not enabled
        succeeds. Propagated routes of that VGW leave the table at once.
        """
        rt_id, vgw_id = self._propagation_args(request)
        with self._lock:
            self._propagations.get(rt_id, set()).discard(vgw_id)
        return self._ec2_success(request, "DisableVgwRoutePropagation")

    def _fill_describe_route_tables(
        self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        """Imitates the propagation part of EC2 ``DescribeRouteTables``.

        Each table with propagation lists ``PropagatingVgws: [{"GatewayId": vgw}]`` and,
        for every CIDR the VGW learned over BGP (:meth:`set_learned_routes`), a route
        ``{"DestinationCidrBlock", "GatewayId": vgw, "Origin": "EnableVgwRoutePropagation",
        "State": "active"}`` — ``"blackhole"`` when none of the VGW's VPN tunnels is UP.
        A VGW no longer attached to the table's VPC propagates nothing; a static route
        for the same destination wins over the propagated one.
        """
        if http_response.status_code >= 300:
            return
        region = str(context.get("client_region") or self.region)
        backend = self._ec2(region)
        for table in parsed.get("RouteTables", []):
            with self._lock:
                vgws = sorted(self._propagations.get(table.get("RouteTableId", ""), set()))
                learned = {vgw: list(self._learned.get(vgw, [])) for vgw in vgws}
            vgws = [v for v in vgws if self._vgw_exists(backend, v)]
            if not vgws:
                continue
            table.setdefault("PropagatingVgws", [])
            known = {p.get("GatewayId") for p in table["PropagatingVgws"]}
            table["PropagatingVgws"] += [{"GatewayId": v} for v in vgws if v not in known]
            routes = table.setdefault("Routes", [])
            for vgw_id in vgws:
                attachment = backend.vpn_gateways[vgw_id].attachments.get(table.get("VpcId"))
                if attachment is None or attachment.state != "attached":
                    continue
                state = "active" if self._vgw_tunnels_up(region, vgw_id) else "blackhole"
                states = dict.fromkeys(learned[vgw_id], state)
                for cidr, vpn_state in self._vpn_route_states(region, vgw_id).items():
                    if states.get(cidr) != "active":
                        states[cidr] = vpn_state
                taken = {r.get("DestinationCidrBlock") for r in routes}
                routes += [
                    {
                        "DestinationCidrBlock": cidr,
                        "GatewayId": vgw_id,
                        "Origin": "EnableVgwRoutePropagation",
                        "State": cidr_state,
                    }
                    for cidr, cidr_state in states.items()
                    if cidr not in taken
                ]

    def _vpn_route_states(self, region: str, vgw_id: str) -> dict[str, str]:
        """CIDR -> state of the routes the VGW learned over each of its VPN connections
        (:meth:`set_vpn_routes`): ``active`` while some connection announcing it has a tunnel
        UP, else ``blackhole`` (a site whose tunnels are down no longer reaches the VPC, the
        other sites on the same VGW still do)."""
        out: dict[str, str] = {}
        for conn in list(self._ec2(region).vpn_connections.values()):
            if conn.vpn_gateway_id != vgw_id or conn.state != "available":
                continue
            with self._lock:
                cidrs = list(self._vpn_learned.get(conn.id, []))
            up = any(t.up for t in self._tunnel_state(conn.id))
            for cidr in cidrs:
                if out.get(cidr) != "active":
                    out[cidr] = "active" if up else "blackhole"
        return out

    # ----------------------------------------------------------------- EC2: VPN

    def _tunnel_state(self, vpn_connection_id: str) -> list[_Tunnel]:
        with self._lock:
            if vpn_connection_id not in self._tunnels:
                ips = _tunnel_ips(vpn_connection_id)
                self._tunnels[vpn_connection_id] = [_Tunnel(ip) for ip in ips]
            return self._tunnels[vpn_connection_id]

    def _telemetry(self, vpn_connection_id: str, vgw_id: str | None) -> list[dict[str, Any]]:
        with self._lock:
            if vpn_connection_id in self._vpn_learned:
                learned = len(self._vpn_learned[vpn_connection_id])
            else:
                learned = len(self._learned.get(vgw_id or "", []))
            out = []
            for tunnel in self._tunnel_state(vpn_connection_id):
                accepted = tunnel.accepted_routes
                if accepted is None:
                    accepted = learned if tunnel.up else 0
                message = tunnel.message
                if not message and tunnel.up:
                    message = f"{accepted} BGP ROUTES"
                out.append(
                    {
                        "OutsideIpAddress": tunnel.outside_ip,
                        "Status": "UP" if tunnel.up else "DOWN",
                        "LastStatusChange": tunnel.last_change,
                        "StatusMessage": message,
                        "AcceptedRouteCount": accepted,
                    }
                )
            return out

    def _fill_vpn_connection(self, conn: dict[str, Any]) -> None:
        vpn_id = conn.get("VpnConnectionId", "")
        if not vpn_id or conn.get("State") in ("deleted", "deleting"):
            return
        ips = [t.outside_ip for t in self._tunnel_state(vpn_id)]
        with self._lock:
            recorded = dict(self._vpn_options.get(vpn_id, {}))
        options = conn.setdefault("Options", {})
        options.setdefault("EnableAcceleration", bool(recorded.get("EnableAcceleration", False)))
        options.setdefault("StaticRoutesOnly", bool(recorded.get("StaticRoutesOnly", False)))
        options.setdefault("LocalIpv4NetworkCidr", "0.0.0.0/0")
        options.setdefault("RemoteIpv4NetworkCidr", "0.0.0.0/0")
        options.setdefault("OutsideIpAddressType", "PublicIpv4")
        options.setdefault("TunnelInsideIpVersion", "ipv4")
        options.setdefault("TunnelOptions", [{"OutsideIpAddress": ip} for ip in ips])
        conn.setdefault("Routes", [])
        conn.setdefault("Category", "VPN")
        if conn.get("VpnGatewayId"):
            conn.setdefault("GatewayAssociationState", "associated")
        conn["VgwTelemetry"] = self._telemetry(vpn_id, conn.get("VpnGatewayId"))
        config = conn.get("CustomerGatewayConfiguration")
        if isinstance(config, str):
            conn["CustomerGatewayConfiguration"] = self._rewrite_cgw_config(config, ips)

    @staticmethod
    def _rewrite_cgw_config(config: str, ips: list[str]) -> str:
        """Put each tunnel's own VGW outside IP into the customer gateway configuration."""
        remaining = iter(ips)

        def vgw_side(match: re.Match[str]) -> str:
            ip = next(remaining, None)
            return match.group(0) if ip is None else match.group(1) + ip + match.group(2)

        pattern = r"(<vpn_gateway>\s*<tunnel_outside_address>\s*<ip_address>)[^<]*(</ip_address>)"
        return re.sub(pattern, vgw_side, config)

    def _fill_create_vpn_connection(
        self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        """Imitates EC2 ``CreateVpnConnection``'s answer: the requested ``Options`` are kept.

        moto drops ``Options`` (``StaticRoutesOnly`` included); the sandbox records them
        and answers with the same fills as :meth:`_fill_describe_vpn_connections`.
        """
        if http_response.status_code >= 300:
            return
        conn = parsed.get("VpnConnection") or {}
        params = context.get("fedkeeper_sandbox_params", {})
        if conn.get("VpnConnectionId"):
            with self._lock:
                self._vpn_options[conn["VpnConnectionId"]] = dict(params.get("Options") or {})
            self._fill_vpn_connection(conn)

    def _fill_describe_vpn_connections(
        self, http_response: Any, parsed: dict[str, Any], **_: Any
    ) -> None:
        """Imitates EC2 ``DescribeVpnConnections``' tunnel telemetry and options.

        Each VGW connection gets ``VgwTelemetry``: two tunnels with stable, distinct
        ``OutsideIpAddress`` (the ``TunnelIpAddress`` dimension of the ``AWS/VPN``
        ``TunnelState`` metric), ``Status`` UP|DOWN, ``LastStatusChange``,
        ``StatusMessage`` and ``AcceptedRouteCount`` (by default both UP, accepting the
        VGW's learned routes; :meth:`set_tunnel` changes them). ``Options`` (with
        ``StaticRoutesOnly`` as created, default false: BGP), ``Routes`` (empty for BGP)
        and ``Category`` are added when moto leaves them out.
        """
        if http_response.status_code >= 300:
            return
        for conn in parsed.get("VpnConnections", []):
            self._fill_vpn_connection(conn)

    # ----------------------------------------------------------------- EKS: clusters

    def _cluster_vpc_id(self, region: str, name: str, subnet_ids: list[str]) -> str | None:
        with self._lock:
            known = self._cluster_vpc.get((region, name))
        if known:
            return known
        backend = self._ec2(region)
        vpc_ids = [
            str(subnet.vpc_id)
            for by_id in list(backend.subnets.values())
            for subnet_id, subnet in list(by_id.items())
            if subnet_id in subnet_ids
        ]
        if not vpc_ids:
            return None
        with self._lock:
            self._cluster_vpc[(region, name)] = vpc_ids[0]
        return vpc_ids[0]

    def _fill_create_cluster(
        self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        """Records what EKS ``CreateCluster`` keeps and moto drops: VPC and access config."""
        if http_response.status_code >= 300:
            return
        cluster = parsed.get("cluster") or {}
        region = str(context.get("client_region") or self.region)
        name = cluster.get("name", "")
        params = context.get("fedkeeper_sandbox_params", {})
        with self._lock:
            self._cluster_vpc.pop((region, name), None)
            access = dict(params.get("accessConfig") or {})
            self._cluster_access[(region, name)] = {
                "authenticationMode": access.get("authenticationMode", "API"),
                "bootstrapClusterCreatorAdminPermissions": access.get(
                    "bootstrapClusterCreatorAdminPermissions", True
                ),
            }
        subnets = list((cluster.get("resourcesVpcConfig") or {}).get("subnetIds", []))
        vpc_id = self._cluster_vpc_id(region, name, subnets)
        if vpc_id:
            cluster.setdefault("resourcesVpcConfig", {}).setdefault("vpcId", vpc_id)

    def _fill_describe_cluster(
        self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        """Imitates EKS ``DescribeCluster`` where moto falls short.

        ``resourcesVpcConfig.vpcId`` (the VPC of the cluster's subnets, recorded at
        creation), the endpoint defaults, ``status: ACTIVE``,
        ``accessConfig.authenticationMode`` (as created; ``API`` when not given, as the
        CDK stack sets it) and, when the sandbox has ``eks_endpoint``, the ``endpoint``
        and ``certificateAuthority.data`` of the local fake Kubernetes API server.
        """
        if http_response.status_code >= 300:
            return
        cluster = parsed.get("cluster")
        if not cluster:
            return
        region = str(context.get("client_region") or self.region)
        name = str(cluster.get("name", ""))
        vpc_config = cluster.setdefault("resourcesVpcConfig", {})
        vpc_id = self._cluster_vpc_id(region, name, list(vpc_config.get("subnetIds", [])))
        if vpc_id:
            vpc_config.setdefault("vpcId", vpc_id)
        vpc_config.setdefault("securityGroupIds", [])
        vpc_config.setdefault("endpointPublicAccess", True)
        vpc_config.setdefault("endpointPrivateAccess", False)
        vpc_config.setdefault("publicAccessCidrs", ["0.0.0.0/0"])
        cluster["status"] = cluster.get("status") or "ACTIVE"
        with self._lock:
            access = dict(self._cluster_access.get((region, name)) or {"authenticationMode": "API"})
        access_config = cluster.setdefault("accessConfig", {})
        for key, value in access.items():
            access_config.setdefault(key, value)
        if self.eks_endpoint is not None:
            try:
                endpoint, ca_data = self.eks_endpoint(name)
            except LookupError:  # a cluster the sandbox runs no API server for: moto's answer
                return
            cluster["endpoint"] = endpoint
            cluster["certificateAuthority"] = {"data": ca_data}

    # ----------------------------------------------------------------- EKS: add-ons

    def _eks_request(self, request: Any) -> tuple[str, str, list[str], dict[str, Any]]:
        """(region, cluster, further path segments, JSON body) of an EKS request."""
        url = urlsplit(request.url)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        text = _body_text(request.body)
        body = json.loads(text) if text.strip() else {}
        region = _region_of(request.url, self.region)
        cluster = parts[1] if len(parts) > 1 else ""
        if cluster not in self._eks(region).clusters:
            with self._lock:  # a deleted cluster takes its add-ons with it
                for key in [k for k in self._addons if k[:2] == (region, cluster)]:
                    del self._addons[key]
            raise _ApiError(
                404,
                "ResourceNotFoundException",
                f"No cluster found for name: {cluster}.",
                clusterName=cluster,
            )
        return region, cluster, parts[2:], body

    @staticmethod
    def _query(request: Any) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}

    def _get_addon(self, region: str, cluster: str, name: str) -> _Addon:
        with self._lock:
            addon = self._addons.get((region, cluster, name))
        if addon is None:
            raise _ApiError(
                404,
                "ResourceNotFoundException",
                f"No addon: {name} found in cluster: {cluster}",
                clusterName=cluster,
                addonName=name,
            )
        return addon

    @staticmethod
    def _eks_json(request: Any, payload: dict[str, Any], status: int = 200) -> AWSResponse:
        body = json.dumps(payload, default=_json_default).encode()
        return _response(request.url, status, {"content-type": "application/json"}, body)

    def _notify_addon(
        self, cluster: str, name: str, configuration_values: str, resolve: str | None = None
    ) -> None:
        hook = self.on_addon_configured
        if hook is not None:
            hook(cluster, name, _parse_configuration_values(name, configuration_values), resolve)

    def addon_env(
        self,
        cluster: str,
        name: str,
        live: dict[str, str],
        values: dict[str, Any],
        resolve: str | None,
    ) -> dict[str, str]:
        """The workload env after EKS applies the add-on: ``live`` with the add-on's values.

        EKS applies add-on fields by server-side apply. A field whose live value differs
        from what EKS last applied was changed by someone else (``kubectl set env``):
        ``OVERWRITE`` takes it back to the add-on's value, ``PRESERVE`` keeps the hand edit,
        and ``NONE`` (also what an update that names no ``resolveConflicts`` gets) "doesn't
        change the value. The update might fail": where the add-on's value differs from
        the hand edit, :class:`AddonConflictError` fails the update and nothing is applied. The
        first apply (no earlier one) sets every value. Source: EKS API reference,
        UpdateAddon ``resolveConflicts``.
        """
        env = values.get("env")
        if not isinstance(env, dict):
            env = {}
        desired = {**ADDON_DEFAULT_ENV.get(name, {}), **{k: str(v) for k, v in env.items()}}
        mode = (resolve or "NONE").upper()
        with self._lock:
            applied = self._applied_env.get((cluster, name))
            out = dict(live)
            conflicts = []
            for key, value in desired.items():
                edited = applied is not None and key in applied and live.get(key) != applied[key]
                if edited and mode == "NONE" and live.get(key) != value:
                    conflicts.append(key)
                if edited and mode != "OVERWRITE":
                    continue
                out[key] = value
            if conflicts:
                raise AddonConflictError(conflicts)
            self._applied_env[(cluster, name)] = desired
        return out

    def _create_addon(self, request: Any) -> AWSResponse:
        """Imitates EKS ``CreateAddon``.

        ``ResourceNotFoundException`` (404) for a missing cluster, ``ResourceInUseException``
        (409) when the add-on exists, ``InvalidParameterException`` (400) when
        ``configurationValues`` is not a JSON/YAML object (for ``vpc-cni``: an ``env``
        value that is not a string). The answer says ``CREATING``; the add-on is ACTIVE at
        once. ``resolveConflicts`` is recorded. Calls :attr:`on_addon_configured`.
        """
        region, cluster, _, body = self._eks_request(request)
        name = str(body.get("addonName", ""))
        config = str(body.get("configurationValues") or "")
        _parse_configuration_values(name, config)
        now = _now()
        with self._lock:
            if (region, cluster, name) in self._addons:
                raise _ApiError(
                    409,
                    "ResourceInUseException",
                    "Addon already exists.",
                    clusterName=cluster,
                    addonName=name,
                )
            addon = _Addon(
                cluster=cluster,
                name=name,
                version=str(body.get("addonVersion") or _DEFAULT_ADDON_VERSIONS.get(name, "")),
                arn=(
                    f"arn:aws:eks:{region}:{DEFAULT_ACCOUNT_ID}:addon/{cluster}/{name}/"
                    f"{uuid.uuid4()}"
                ),
                created_at=now,
                modified_at=now,
                configuration_values=config,
                tags=dict(body.get("tags") or {}),
                service_account_role_arn=body.get("serviceAccountRoleArn"),
                resolve_conflicts=body.get("resolveConflicts"),
            )
            if not addon.version:
                addon.version = "v1.0.0-eksbuild.1"
            self._addons[(region, cluster, name)] = addon
            shape = addon.shape(status="CREATING")
        self._notify_addon(cluster, name, config)
        return self._eks_json(request, {"addon": shape})

    def _describe_addon(self, request: Any) -> AWSResponse:
        """Imitates EKS ``DescribeAddon``: ``configurationValues`` echoed as a string, the
        status of the add-on's lifecycle and its health issues."""
        region, cluster, rest, _ = self._eks_request(request)
        self.settle_addons()
        addon = self._get_addon(region, cluster, rest[1] if len(rest) > 1 else "")
        with self._lock:
            shape = addon.shape()
        return self._eks_json(request, {"addon": shape})

    def _update_addon(self, request: Any) -> AWSResponse:
        """Imitates EKS ``UpdateAddon``.

        Answers ``update: {id, status: "InProgress", type: "AddonUpdate", params, createdAt,
        errors: []}`` with a param per given field (``ResolveConflicts``,
        ``ConfigurationValues``, ``AddonVersion``, ``ServiceAccountRoleArn``). The add-on is
        then ``UPDATING`` for :attr:`addon_update_s` sandbox seconds, and a second update
        meanwhile is refused with 409 ``ResourceInUseException`` (botocore's EKS model lists
        it for UpdateAddon: "The specified resource is in use"). When the rollout ends
        (:meth:`settle_addons`) the add-on is ``ACTIVE`` — or what
        :meth:`next_addon_update_ends` set: ``DEGRADED``, or ``UPDATE_FAILED`` with the
        update ``Failed`` — and the env reaches aws-node (:attr:`on_addon_configured`); a
        failed update keeps the previous configurationValues. ``resolveConflicts`` must be
        one of the ``ResolveConflicts`` enum (``InvalidParameterException`` otherwise);
        ``NONE`` fails the update on a field edited by hand (:meth:`addon_env`). A field
        left out keeps its value; ``configurationValues`` replaces the whole document.
        """
        region, cluster, rest, body = self._eks_request(request)
        name = rest[1] if len(rest) > 1 else ""
        self.settle_addons()
        addon = self._get_addon(region, cluster, name)
        resolve = body.get("resolveConflicts")
        if resolve is not None and resolve not in RESOLVE_CONFLICTS:
            raise _ApiError(
                400,
                "InvalidParameterException",
                f"resolveConflicts {resolve!r} is not one of {', '.join(RESOLVE_CONFLICTS)}",
                clusterName=cluster,
                addonName=name,
            )
        params: list[dict[str, str]] = []
        config = body.get("configurationValues")
        if config is not None:
            _parse_configuration_values(name, str(config))
        with self._lock:
            if addon.status in _ADDON_BUSY:
                raise _ApiError(
                    409,
                    "ResourceInUseException",
                    f"Addon {name} is {addon.status.lower()} and cannot be updated until that "
                    "operation completes",
                    clusterName=cluster,
                    addonName=name,
                )
            previous = addon.configuration_values
            if resolve is not None:
                addon.resolve_conflicts = str(resolve)
                params.append({"type": "ResolveConflicts", "value": addon.resolve_conflicts})
            if body.get("addonVersion"):
                addon.version = str(body["addonVersion"])
                params.append({"type": "AddonVersion", "value": addon.version})
            if body.get("serviceAccountRoleArn") is not None:
                addon.service_account_role_arn = str(body["serviceAccountRoleArn"])
                params.append(
                    {"type": "ServiceAccountRoleArn", "value": str(body["serviceAccountRoleArn"])}
                )
            if config is not None:
                addon.configuration_values = str(config)
                params.append({"type": "ConfigurationValues", "value": str(config)})
            addon.modified_at = _now()
            update = _Update(str(uuid.uuid4()), cluster, name, params, addon.modified_at)
            self._updates[update.id] = update
            outcome, issues = self._next_outcome.pop((cluster, name), ("ACTIVE", []))
            addon.rollout = _Rollout(
                update.id, addon.configuration_values, previous, resolve, outcome, issues
            )
            addon.status = "UPDATING"
            addon.busy_until = self.clock() + self.addon_update_s
            answer = update.shape("InProgress")
        self.settle_addons()  # a rollout of no length ends at once
        return self._eks_json(request, {"update": answer})

    def settle_addons(self) -> None:
        """End every add-on rollout whose time on the sandbox clock has come (see
        :meth:`_update_addon`). Called on every add-on request and when the clock moves."""
        now = self.clock()
        with self._lock:
            due = [a for a in self._addons.values() if a.rollout and a.busy_until <= now]
        for addon in due:
            self._end_rollout(addon)

    def _end_rollout(self, addon: _Addon) -> None:
        with self._lock:
            rollout, addon.rollout = addon.rollout, None
            if rollout is None:
                return
            update = self._updates[rollout.update_id]
            outcome, issues = rollout.outcome, list(rollout.issues)
        failure: dict[str, Any] | None = None
        if outcome == "UPDATE_FAILED":
            failure = {"errorCode": "Unknown", "errorMessage": "the add-on update failed"}
        else:
            try:
                self._notify_addon(addon.cluster, addon.name, rollout.values, rollout.resolve)
            except AddonConflictError as conflict:
                outcome = "UPDATE_FAILED"
                failure = {
                    "errorCode": "ConfigurationConflict",
                    "errorMessage": f"Conflicts found when trying to apply. Will not continue "
                    f"due to resolve conflicts mode NONE: {conflict}",
                }
                issues = [{"code": "ConfigurationConflict", "message": failure["errorMessage"]}]
        with self._lock:
            addon.status, addon.issues = outcome, issues
            if failure is not None:
                addon.configuration_values = rollout.previous
                update.status, update.errors = "Failed", [failure]
            else:
                update.status = "Successful"

    def addon_seconds_left(self) -> float:
        """Sandbox seconds until every add-on rollout has ended (0: none under way)."""
        now = self.clock()
        with self._lock:
            ends = [a.busy_until - now for a in self._addons.values() if a.rollout]
        return max([0.0, *ends])

    def next_addon_update_ends(
        self, cluster: str, name: str, status: str, issues: list[dict[str, Any]] | None = None
    ) -> None:
        """How the next UpdateAddon of the add-on ends: ``DEGRADED`` (with health issues,
        e.g. ``[{"code": "InsufficientNumberOfReplicas", "message": ...}]``) or
        ``UPDATE_FAILED`` (the update ``Failed``, the previous configuration kept)."""
        if status not in ("ACTIVE", "DEGRADED", "UPDATE_FAILED"):
            raise ValueError(f"an update ends ACTIVE, DEGRADED or UPDATE_FAILED, not {status}")
        with self._lock:
            self._next_outcome[(cluster, name)] = (status, list(issues or []))

    def set_addon_status(
        self, cluster: str, name: str, status: str, issues: list[dict[str, Any]] | None = None
    ) -> None:
        """The add-on's health as EKS reports it (no API sets it): ``ACTIVE``, or
        ``DEGRADED`` with issues (nodes short of replicas, ...)."""
        if status not in ("ACTIVE", "DEGRADED"):
            raise ValueError(f"set ACTIVE or DEGRADED, not {status} (updates go UPDATING)")
        with self._lock:
            addon = self._addons.get((self.region, cluster, name))
            if addon is None:
                raise ValueError(f"cluster {cluster} has no add-on {name}")
            addon.status, addon.issues = status, list(issues or [])

    def _describe_update(self, request: Any) -> AWSResponse:
        """Imitates EKS ``DescribeUpdate`` for add-on updates: ``InProgress`` while the
        rollout lasts, then ``Successful`` or ``Failed`` with its errors."""
        _, cluster, rest, _ = self._eks_request(request)
        update_id = rest[1] if len(rest) > 1 else ""
        addon_name = self._query(request).get("addonName")
        self.settle_addons()
        with self._lock:
            update = self._updates.get(update_id)
        if (
            update is None
            or update.cluster != cluster
            or (addon_name is not None and addon_name != update.addon)
        ):
            raise _ApiError(
                404,
                "ResourceNotFoundException",
                f"No update found for ID: {update_id}",
                clusterName=cluster,
            )
        with self._lock:
            shape = update.shape()
        return self._eks_json(request, {"update": shape})

    def _delete_addon(self, request: Any) -> AWSResponse:
        """Imitates EKS ``DeleteAddon``: answers ``DELETING``; the add-on is gone at once."""
        region, cluster, rest, _ = self._eks_request(request)
        name = rest[1] if len(rest) > 1 else ""
        addon = self._get_addon(region, cluster, name)
        with self._lock:
            self._addons.pop((region, cluster, name), None)
        return self._eks_json(request, {"addon": addon.shape(status="DELETING")})

    def _list_addons(self, request: Any) -> AWSResponse:
        """Imitates EKS ``ListAddons`` (names in order, ``maxResults``/``nextToken``)."""
        region, cluster, _, _ = self._eks_request(request)
        query = self._query(request)
        with self._lock:
            names = sorted(n for (r, c, n) in self._addons if (r, c) == (region, cluster))
        start = int(query.get("nextToken") or 0)
        limit = int(query.get("maxResults") or 100)
        payload: dict[str, Any] = {"addons": names[start : start + limit]}
        if start + limit < len(names):
            payload["nextToken"] = str(start + limit)
        return self._eks_json(request, payload)

    # ----------------------------------------------------------------- world state

    def set_tunnel(
        self,
        vpn_connection_id: str,
        outside_ip: str,
        *,
        up: bool,
        accepted_routes: int | None = None,
        message: str = "",
    ) -> None:
        """Set one tunnel's state (as the VPN peer would). ``LastStatusChange`` moves when
        the status changes; ``accepted_routes=None`` derives the count from the learned
        routes (0 when DOWN); an empty message becomes ``"<n> BGP ROUTES"`` when UP."""
        tunnels = self._tunnel_state(vpn_connection_id)
        with self._lock:
            for tunnel in tunnels:
                if tunnel.outside_ip == outside_ip:
                    if tunnel.up != up:
                        tunnel.last_change = _now()
                    tunnel.up = up
                    tunnel.accepted_routes = accepted_routes
                    tunnel.message = message
                    return
        known = ", ".join(t.outside_ip for t in tunnels)
        raise ValueError(f"{vpn_connection_id} has no tunnel {outside_ip} (tunnels: {known})")

    def tunnels(self, vpn_connection_id: str) -> list[dict[str, Any]]:
        """The connection's current ``VgwTelemetry`` entries."""
        conn = self._ec2(self.region).vpn_connections.get(vpn_connection_id)
        if conn is None:
            raise ValueError(f"no VPN connection {vpn_connection_id} in {self.region}")
        return self._telemetry(vpn_connection_id, conn.vpn_gateway_id)

    def propagations(self, route_table_id: str) -> set[str]:
        """The VGW ids propagating into this route table."""
        if route_table_id not in self._ec2(self.region).route_tables:
            return set()
        with self._lock:
            return set(self._propagations.get(route_table_id, set()))

    def set_learned_routes(self, vgw_id: str, cidrs: list[str]) -> None:
        """The routes the VGW learned over BGP (replaces the previous set)."""
        normalised = [str(ipaddress.ip_network(c, strict=True)) for c in cidrs]
        with self._lock:
            self._learned[vgw_id] = list(dict.fromkeys(normalised))

    def set_vpn_routes(self, vpn_connection_id: str, cidrs: list[str]) -> None:
        """The routes the VGW learned over one VPN connection (replaces its previous set):
        what one site's customer gateway announces. Its tunnels' ``AcceptedRouteCount``
        counts these; the VGW propagates them while one of the connection's tunnels is UP."""
        normalised = [str(ipaddress.ip_network(c, strict=True)) for c in cidrs]
        with self._lock:
            self._vpn_learned[vpn_connection_id] = list(dict.fromkeys(normalised))

    def addon(self, cluster: str, name: str) -> dict[str, Any] | None:
        """The stored add-on in EKS's ``DescribeAddon`` shape, or None."""
        self.settle_addons()
        with self._lock:
            addon = self._addons.get((self.region, cluster, name))
            return None if addon is None else addon.shape()

    def addon_resolve_conflicts(self, cluster: str, name: str) -> str | None:
        """The ``resolveConflicts`` the add-on was last created or updated with."""
        with self._lock:
            addon = self._addons.get((self.region, cluster, name))
            return None if addon is None else addon.resolve_conflicts

    def reset_addon_configuration(
        self, cluster: str, name: str, configuration_values: str = ""
    ) -> None:
        """What an add-on version update that loses the configuration does (OVERWRITE)."""
        with self._lock:
            addon = self._addons.get((self.region, cluster, name))
            if addon is None:
                raise ValueError(f"cluster {cluster} has no add-on {name}")
            addon.configuration_values = configuration_values
            addon.modified_at = _now()
        self._notify_addon(cluster, name, configuration_values, "OVERWRITE")

    def delete_addon_state(self, cluster: str, name: str) -> None:
        """Forget the add-on without any hook (vpc-cni becomes self-managed)."""
        with self._lock:
            self._addons.pop((self.region, cluster, name), None)
