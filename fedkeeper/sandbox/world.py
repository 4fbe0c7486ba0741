"""The embedded sandbox: emulated AWS and two fake Kubernetes API servers, wired together.

``Sandbox.start(config)`` brings up moto (with the project's gap fills), an "EKS" and an
"on-prem" fake API server on loopback, lays down the baseline that ``cdk deploy`` and the
on-prem install would have built, and runs one full reconcile so the federation starts
converged. Production code runs unchanged against it: only the boto3 session, the EKS
endpoint (``describe_cluster`` points at the local server) and the on-prem kubeconfig (in the
emulated Secrets Manager) differ.

Example (a what-if test)::

    from fedkeeper.config import load_config
    from fedkeeper.sandbox import Sandbox

    with Sandbox.start(load_config("federation.example.yaml")) as sb:
        b = sb.baseline
        sb.aws.set_tunnel(b.vpn_connection_id, b.tunnel_outside_ips[0], up=False)
        report = sb.reconcile(["vpn"], "plan")
        assert any(f.check == "vpn.tunnels" for f in report.findings)
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from logging import StreamHandler
from typing import Any, Literal

import boto3
from kubernetes.client import ApiClient
from kubernetes.config.kube_config import new_client_from_config_dict

from fedkeeper.adapters.kube import KubeCluster, resource_types
from fedkeeper.bootstrap import apply_bootstrap, fedkeeper_kubeconfig
from fedkeeper.config import FederationConfig
from fedkeeper.errors import RetryableError
from fedkeeper.events import HANDLERS, FederationNetwork, RuleSpec, rules, schedule_pattern
from fedkeeper.lambda_runtime import Runtime, Settings, use_runtime
from fedkeeper.model import Report, Scope
from fedkeeper.rbac import RECONCILER, RECONCILER_GROUP, eks_reconciler_objects
from fedkeeper.sandbox.aws import SandboxAws
from fedkeeper.sandbox.aws_baseline import (
    AwsBaseline,
    MeshBaseline,
    NetworkBaseline,
    SiteBaseline,
    VpcIds,
    VpnBaseline,
    deploy_aws_baseline,
    deploy_mesh_baseline,
)
from fedkeeper.sandbox.clock import SandboxClock
from fedkeeper.sandbox.kube_server import AccessEntry, AwsCaller, EksTokenReview, FakeKubeServer
from fedkeeper.sandbox.lambda_context import FakeLambdaContext
from fedkeeper.service import Connections, ModeName, Targets, reconcile
from fedkeeper.topology.model import EksCluster, OnPremCluster
from fedkeeper.watch import Watcher, state_parameter_name
from fedkeeper.wording import shown

AWS_NODE_IMAGE = "602401143452.dkr.ecr.eu-west-1.amazonaws.com/amazon-k8s-cni:v1.19.2"
NODE_AGENT_IMAGE = (
    "602401143452.dkr.ecr.eu-west-1.amazonaws.com/amazon/aws-network-policy-agent:v1.1.6"
)
EXTERNAL_SNAT = "AWS_VPC_K8S_CNI_EXTERNALSNAT"
_CREDENTIAL_KEYS = ("AccessKeyId", "SecretAccessKey", "SessionToken")
# Lambda retries a failed asynchronous invocation twice by default, then dead-letters it.
LAMBDA_ASYNC_RETRIES = 2


@dataclass
class EmulatorWrites:
    """Writes seen by the emulators themselves (not by fedkeeper's own counters)."""

    aws: int = 0
    eks: int = 0  # on every EKS cluster
    onprem: int = 0  # on every site
    detail: list[str] = field(default_factory=list)
    clusters: dict[str, int] = field(default_factory=dict)  # by cluster name

    @property
    def total(self) -> int:
        return self.aws + self.eks + self.onprem


@dataclass(frozen=True)
class ClusterEndpoint:
    """Where one cluster of the sandbox answers, and how production code finds it."""

    name: str  # the cluster's mesh name
    kind: Literal["eks", "onprem"]
    url: str  # its fake API server
    ca_data: str  # base64 PEM of the server's CA (a decorative one over plain HTTP)
    eks_cluster_name: str | None  # EKS: the name describe_cluster answers for
    credentials_secret: str | None  # a site: the Secrets Manager secret of its kubeconfig


def _as_mesh(config: FederationConfig, b: AwsBaseline) -> MeshBaseline:
    """A two-cluster federation's baseline, by cluster name."""
    eks, site = config.sole_eks().name, config.sole_site().name
    vpc = VpcIds(
        vpc_id=b.vpc_id,
        public_subnet_ids=b.public_subnet_ids,
        private_subnet_ids=b.private_subnet_ids,
        public_route_table_id=b.public_route_table_id,
        private_route_table_ids=b.private_route_table_ids,
        nat_gateway_ids=b.nat_gateway_ids,
        igw_id=b.igw_id,
    )
    return MeshBaseline(
        networks={eks: NetworkBaseline(eks, vpc, b.vgw_id, b.cluster_name, b.cluster_arn)},
        sites={site: SiteBaseline(site, b.cgw_id, b.onprem_secret_arn)},
        vpns={(site, eks): VpnBaseline(site, eks, b.vpn_connection_id, b.tunnel_outside_ips)},
    )


_AWS_READ_PREFIXES = ("Describe", "List", "Get")


@dataclass
class Delivery:
    """What delivering one event did: the handlers its rules invoked and what they returned.

    ``responses`` holds each handler's last response (a Report dict, or Lambda's error
    payload when it raised); ``dead_letters`` the handlers whose retries ran out.
    """

    handlers: list[str]
    report: Report
    responses: dict[str, dict[str, Any]] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    dead_letters: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)  # the handlers' log and EMF lines


def matching_rules(
    config: FederationConfig,
    event: dict[str, Any],
    network: FederationNetwork | None = None,
) -> list[RuleSpec]:
    """The deployed rules whose pattern matches ``event`` (moto's EventBridge matcher).

    ``network``: the federation's ids, which the stack narrows the route-change rule to
    (None: the account-wide pattern). The schedule rule has no pattern in AWS; here it
    matches what a schedule delivers.
    """
    from moto.events.models import EventPattern

    message: Any = event  # moto types it as its own TypedDict; any envelope dict will do
    return [
        rule
        for rule in rules(config, network)
        if EventPattern.load(json.dumps(rule.pattern or schedule_pattern())).matches_event(message)
    ]


def _pattern_leaves(
    pattern: dict[str, Any], path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, condition) of each test in an EventBridge pattern; a ``$or`` is one test."""
    for key, value in pattern.items():
        if isinstance(value, dict):
            yield from _pattern_leaves(value, (*path, key))
        else:
            yield (*path, key), value


def _nested(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out: Any = value
    for key in reversed(path):
        out = {key: out}
    return dict(out)


@dataclass(frozen=True)
class _Rejection:
    passed: int  # tests of the pattern that matched before this one (how close it came)
    path: tuple[str, ...]
    condition: Any


def _first_rejection(
    pattern: dict[str, Any], event: dict[str, Any], prefix: tuple[str, ...] = ()
) -> _Rejection | None:
    """The first test of ``pattern`` (at ``prefix`` in the event) that ``event`` fails."""
    from moto.events.models import EventPattern

    message: Any = event
    passed = 0
    for path, condition in _pattern_leaves(pattern, prefix):
        if path[-1] == "$or":
            tried = [_first_rejection(alt, event, path[:-1]) for alt in condition]
            failed = [r for r in tried if r is not None]
            if len(failed) < len(tried):
                passed += 1
                continue
            best = max(failed, key=lambda r: r.passed)
            same = [r for r in failed if r.path == best.path]
            if len(same) == len(failed) and all(isinstance(r.condition, list) for r in same):
                merged = list(dict.fromkeys(x for r in same for x in r.condition))
                return _Rejection(passed + best.passed, best.path, merged)
            return _Rejection(passed + best.passed, best.path, best.condition)
        if not EventPattern.load(json.dumps(_nested(path, condition))).matches_event(message):
            return _Rejection(passed, path, condition)
        passed += 1
    return None


def rule_mismatch(rule: RuleSpec, event: dict[str, Any]) -> str | None:
    """Why ``rule`` does not match ``event``: the field its pattern rejects, the event's value
    and what the rule wants; None when it matches.

    Each test of the pattern is checked alone by moto's EventBridge matcher (the one that
    routes the sandbox's events), so the answer follows EventBridge's semantics; of a
    ``$or``, the alternative that came closest is named.
    """
    rejection = _first_rejection(rule.pattern or schedule_pattern(), event)
    if rejection is None:
        return None
    value: Any = event
    for key in rejection.path:
        value = value.get(key) if isinstance(value, dict) else None
    seen = "is absent" if value is None else f"is {shown(value)}"
    wanted = shown(rejection.condition, 160)
    return f"{'.'.join(rejection.path)} {seen}; the rule wants {wanted}"


def route_event(
    config: FederationConfig,
    event: dict[str, Any],
    network: FederationNetwork | None = None,
) -> list[str]:
    """Handlers whose rule pattern matches, using moto's EventBridge pattern matcher."""
    return list(dict.fromkeys(rule.handler for rule in matching_rules(config, event, network)))


def function_environ() -> dict[str, str]:
    """The environment the sandbox's functions see: this process's, less the CLI's own
    ``FEDKEEPER_SANDBOX_*`` settings, which a deployed function never has (its settings
    refuse unknown ``FEDKEEPER_*`` names)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FEDKEEPER_SANDBOX_")}


def _handler_module(handler: str) -> Any:
    """``lambdas.<handler>``: the handler code the stack deploys."""
    try:
        return importlib.import_module(f"lambdas.{handler}")
    except ModuleNotFoundError as exc:
        if exc.name != "lambdas":
            raise
        raise ModuleNotFoundError(
            "the handlers package `lambdas` is not importable: install the project with it "
            '(pyproject: [tool.setuptools.packages.find] include = ["fedkeeper*", "lambdas*"], '
            "then `pip install -e .`) or run from the repository root",
            name="lambdas",
        ) from None


class Sandbox:
    """A whole federation on this machine. Use :meth:`start` as a context manager."""

    def __init__(
        self, config: FederationConfig, *, tls: bool = False, ports: Sequence[int] = ()
    ) -> None:
        """``tls``: every fake API server speaks HTTPS with a CA of its own (kubeconfigs and
        describe_cluster carry it), and ``fail_tls`` can be injected. ``ports``: where the
        clusters' API servers listen, in :meth:`cluster_order` (the EKS clusters, then the
        sites, each in file order; for a two-cluster federation: EKS, then on-prem); a port
        left out or 0: any free port."""
        self.config = config
        self.clock = SandboxClock()
        self._tls = tls
        # A two-cluster federation keeps today's server names ("eks", "onprem"): they name
        # its kubeconfig contexts, its CAs and its write log.
        self._two_cluster = len(config.eks_clusters()) == 1 and len(config.sites()) == 1
        self._labels: dict[str, str] = {}
        if self._two_cluster:
            self._labels = {config.sole_eks().name: "eks", config.sole_site().name: "onprem"}
        #: One fake API server per cluster, by the cluster's mesh name.
        self.servers: dict[str, FakeKubeServer] = {}
        # The EKS clusters among them (departed ones too), by their own EKS name.
        self._eks_by_cluster_name: dict[str, str] = {}
        for i, name in enumerate(self.cluster_order()):
            self._add_server(name, ports[i] if i < len(ports) else 0)
        # EKS authentication: what STS knows of each access key, and the access entries.
        self.aws_callers: dict[str, AwsCaller] = {}
        # Each EKS cluster's access entries, by principal ARN (an access entry is per cluster).
        self.cluster_access_entries: dict[str, dict[str, AccessEntry]] = {}
        self.reconciler_role_arn: str | None = None
        # The role's credentials, as STS gave them (what a Lambda finds in its environment).
        self.reconciler_credentials: dict[str, str] = {}
        self._reconciler_session: boto3.Session | None = None
        self.aws = SandboxAws(config.aws.region, eks_endpoint=self._eks_endpoint)
        self.aws.on_addon_configured = self._addon_configured
        self.aws.on_invoke = self._invoke_function
        self.aws.advance = self.clock.advance
        self.aws.clock = self.clock.time  # add-on rollouts end on the sandbox clock
        self.clock.listeners.append(self.aws.settle_addons)
        self.baseline: AwsBaseline | None = None  # a two-cluster federation's ids
        #: The AWS side by cluster name (for a two-cluster federation, the same ids).
        self.mesh_baseline = MeshBaseline()
        self.topic_arn: str | None = None
        self.episodes_table: str | None = None
        # Every line the handlers wrote (JSON logs, EMF metrics), as CloudWatch Logs would.
        self.function_logs: list[str] = []
        self._session: boto3.Session | None = None
        self._conns: Connections | None = None
        self._stack = contextlib.ExitStack()

    # --- lifecycle -------------------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def start(
        cls, config: FederationConfig, *, converge: bool = True, tls: bool = False
    ) -> Iterator[Sandbox]:
        """Start everything, lay down the baseline, optionally converge; tear down on exit."""
        sb = cls(config, tls=tls)
        try:
            sb.up(converge=converge)
            yield sb
        finally:
            sb.down()

    def up(self, *, converge: bool = True) -> None:
        """Start the servers and AWS, lay down the baseline, deploy the reconciler's
        identity on every cluster and, with ``converge``, run one full reconcile."""
        self._stack.enter_context(self.clock.signing_time())
        self._stack.callback(self._stop_servers)
        for server in self.servers.values():
            server.start()
        self.aws.start()
        self._stack.callback(self.aws.stop)
        for name in self.servers:
            self._prepare_cluster(name)
        if self._two_cluster:
            self.baseline = deploy_aws_baseline(
                self.aws_session(),
                self.aws,
                self.config,
                onprem_kubeconfig=self._site_kubeconfig(self.config.sole_site().name),
            )
            self.mesh_baseline = _as_mesh(self.config, self.baseline)
        else:
            deploy_mesh_baseline(
                self.aws_session(),
                self.aws,
                self.config,
                self.mesh_baseline,
                self._site_kubeconfig,
            )
        self._deploy_reconciler_identity()
        # The automation stack's SSM parameter for the watch function's state.
        self.aws_session().client("ssm").put_parameter(
            Name=state_parameter_name(self.config), Value="{}", Type="String"
        )
        # The automation stack's SNS topic for failures and findings.
        sns = self.aws_session().client("sns")
        self.topic_arn = sns.create_topic(Name=f"{self.config.name}-fedkeeper")["TopicArn"]
        # ... and its table of open episodes of persistent trouble.
        self.episodes_table = f"{self.config.name}-fedkeeper-episodes"
        self.aws_session().client("dynamodb").create_table(
            TableName=self.episodes_table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        if converge:
            self.reconcile(None, "apply")
        self.clear_logs()

    def down(self) -> None:
        """Close the connections and stop everything :meth:`up` started."""
        if self._conns is not None:
            self._conns.close()
            self._conns = None
        self._stack.close()

    # --- what users and tests reach for ----------------------------------------------------

    def aws_session(self) -> boto3.Session:
        """A boto3 session on the emulated account (gap fills registered)."""
        if self._session is None:
            self._session = self.aws.session()
        return self._session

    def reconciler_session(self) -> boto3.Session:
        """A boto3 session as the reconciler's IAM role (what a deployed Lambda runs as)."""
        if self._reconciler_session is None:
            raise RuntimeError("the sandbox is not up")
        return self._reconciler_session

    def connections(self) -> Connections:
        """The clients production code uses, pointed at the sandbox (built once).

        They run as the product deploys them: on EKS as the reconciler's IAM role (mapped
        by its access entry), on-prem with the ServiceAccount token `fedkeeper
        onprem-bootstrap` created; token lifetimes follow the sandbox clock.
        """
        if self._conns is None:
            self._conns = Connections(
                self.config,
                self.reconciler_session(),
                targets=Targets(),
                clock=self.clock.monotonic,
            )
        return self._conns

    def advance_time(self, seconds: float) -> None:
        """Move emulated time forward: tokens expire, nothing sleeps."""
        self.clock.advance(seconds)

    def eks_client(self) -> ApiClient:
        """An official kubernetes ApiClient for the EKS fake (admin credentials)."""
        return new_client_from_config_dict(self.eks_server.kubeconfig())

    def onprem_client(self) -> ApiClient:
        """An official kubernetes ApiClient for the on-prem fake (admin credentials)."""
        return new_client_from_config_dict(self.onprem_server.kubeconfig())

    # --- per cluster, by mesh name --------------------------------------------------------

    def cluster_order(self) -> list[str]:
        """The clusters' mesh names: the EKS clusters, then the sites, each in file order."""
        return [c.name for c in self.config.eks_clusters()] + [c.name for c in self.config.sites()]

    @property
    def eks_server(self) -> FakeKubeServer:
        """The API server of a two-cluster federation's EKS cluster."""
        return self.servers[self._sole("eks")]

    @property
    def onprem_server(self) -> FakeKubeServer:
        """The API server of a two-cluster federation's on-prem cluster."""
        return self.servers[self._sole("onprem")]

    @property
    def access_entries(self) -> dict[str, AccessEntry]:
        """The access entries of a two-cluster federation's EKS cluster."""
        return self.cluster_access_entries[self._sole("eks")]

    def server(self, name: str) -> FakeKubeServer:
        """The fake API server of the cluster called ``name``."""
        try:
            return self.servers[name]
        except KeyError:
            known = ", ".join(self.servers)
            raise KeyError(f"no cluster {name!r} in the sandbox (clusters: {known})") from None

    def kubeconfig(self, name: str) -> dict[str, Any]:
        """An admin (``system:masters``) kubeconfig for the cluster called ``name``."""
        return self.server(name).kubeconfig()

    def client(self, name: str) -> ApiClient:
        """An official kubernetes ApiClient (admin) for the cluster called ``name``."""
        return new_client_from_config_dict(self.kubeconfig(name))

    def endpoints(self) -> dict[str, ClusterEndpoint]:
        """How production code finds each cluster, by mesh name: an EKS cluster by its EKS
        name (``describe_cluster`` answers the local server's URL and CA), a site by its
        credentials secret (the kubeconfig of the reconciler's ServiceAccount)."""
        out: dict[str, ClusterEndpoint] = {}
        for eks in self.config.eks_clusters():
            server = self.servers[eks.name]
            out[eks.name] = ClusterEndpoint(
                eks.name, "eks", server.url, server.ca_data, eks.cluster_name, None
            )
        for site in self.config.sites():
            server = self.servers[site.name]
            out[site.name] = ClusterEndpoint(
                site.name, "onprem", server.url, server.ca_data, None, site.credentials_secret
            )
        return out

    def grow(self, config: FederationConfig) -> list[str]:
        """A cluster joins: ``config`` is this federation with more clusters (and links).

        Builds what is new, as its stacks and its install would - its API server seeded
        like a fresh install with the reconciler's identity, its VPC or its customer
        gateway, its VPNs and peerings - and makes ``config`` the sandbox's; changes nothing
        that exists and converges nothing (that is the engine's job). Returns the names of
        the new clusters.
        """
        gone = [n for n in self.servers if n not in (*config.names(), *config.departed)]
        if gone:
            raise ValueError(
                f"grow: the new config drops {', '.join(gone)}; a cluster leaves through "
                "`departed` (see fedkeeper.sandbox.mesh_scenarios.leave_unreachable)"
            )
        order = [c.name for c in config.eks_clusters()] + [c.name for c in config.sites()]
        new = [n for n in order if n not in self.servers]
        self.config = config
        if self._conns is not None:  # built for the old config
            self._conns.close()
            self._conns = None
        for name in new:
            self._add_server(name, 0).start()
            self._prepare_cluster(name)
        deploy_mesh_baseline(
            self.aws_session(), self.aws, self.config, self.mesh_baseline, self._site_kubeconfig
        )
        for name in new:
            if isinstance(config.cluster(name), EksCluster):
                self._grant_access_entry(name)
        return new

    def replace_config(self, config: FederationConfig) -> None:
        """Make ``config`` the sandbox's without building anything (a cluster leaving: its
        server and AWS resources stay as the world has them)."""
        self.config = config
        if self._conns is not None:
            self._conns.close()
            self._conns = None

    @contextlib.contextmanager
    def watching(self, **options: Any) -> Iterator[Watcher]:
        """The watch function's logic running in the background, as its Lambda would.

        It runs on its own connections as the reconciler, on the sandbox clock, and loads
        and stores its state in the SSM parameter the stack creates, so each resumes where
        the previous one stopped. Its log lines go to :attr:`function_logs`.
        """
        from fedkeeper.watch_function import watch_for

        conns = Connections(
            self.config, self.reconciler_session(), targets=Targets(), clock=self.clock.monotonic
        )
        settings = Settings.from_env(function_environ()).model_copy(
            update={
                "topic_arn": self.topic_arn,
                "episodes_table": self.episodes_table,
                "watch_state_parameter": state_parameter_name(self.config),
            }
        )
        rt = Runtime(settings, self.config, connections=conns)
        ready = threading.Event()
        holder: list[Watcher] = []

        def started(watcher: Watcher) -> None:
            for key, value in options.items():
                setattr(watcher, key, value)
            holder.append(watcher)
            ready.set()

        log_handler = _handler_module("repair").logger.registered_handler
        out = io.StringIO()
        previous = log_handler.stream if isinstance(log_handler, StreamHandler) else None
        if isinstance(log_handler, StreamHandler):
            log_handler.stream = out
        thread = threading.Thread(
            target=watch_for,
            args=(rt, math.inf),
            kwargs={
                "clock": self.clock.monotonic,
                "wall": self.clock.time,
                "started": started,
            },
            name="sandbox-watch",
            daemon=True,
        )
        thread.start()
        try:
            if not ready.wait(30):
                raise RuntimeError("the watch did not start")
            yield holder[0]
        finally:
            if holder:
                holder[0].stop()
            for _ in range(400):  # end the streams the server holds open, as a timeout would
                for server in self.servers.values():
                    server.end_watches()
                thread.join(timeout=0.05)
                if not thread.is_alive():
                    break
            conns.close()
            if previous is not None and isinstance(log_handler, StreamHandler):
                log_handler.stream = previous
            self.function_logs.extend(out.getvalue().splitlines())

    def reconcile(
        self,
        scope: Iterable[str] | Scope | None,
        mode: ModeName = "apply",
        *,
        deadline_s: float | None = None,
    ) -> Report:
        """One reconcile through production code, as a Lambda or the CLI would run it.

        ``deadline_s``: the run's time budget, on the sandbox clock.
        """
        s = scope if isinstance(scope, Scope) else Scope.parse(scope)
        return reconcile(self.connections(), s, mode, deadline_s=deadline_s)

    def network(self) -> FederationNetwork:
        """The federation's network ids, as the network stack hands them to the rules."""
        b = self.baseline
        if b is None:
            raise RuntimeError(
                "sandbox not started"
                if self._two_cluster
                else "the rules' narrowing to one network is a two-cluster federation's; "
                "this sandbox holds several networks (see mesh_baseline)"
            )
        return FederationNetwork(
            vpc=b.vpc_id,
            vgw=b.vgw_id,
            vpn=b.vpn_connection_id,
            route_tables=(b.public_route_table_id, *b.private_route_table_ids),
            subnets=(*b.public_subnet_ids, *b.private_subnet_ids),
        )

    def route(self, event: dict[str, Any]) -> list[str]:
        """The handlers whose deployed rule matches ``event`` (moto's EventBridge matcher),
        with the route-change rule narrowed to this federation's ids as the stack deploys it.
        """
        return route_event(self.config, event, self.network())

    def runtime(self, on_report: Callable[[Report], None] | None = None) -> Runtime:
        """The Lambda runtime pointed at the sandbox: its config and connections."""
        settings = Settings.from_env(function_environ()).model_copy(
            update={"topic_arn": self.topic_arn, "episodes_table": self.episodes_table}
        )
        return Runtime(
            settings,
            self.config,
            connections=self.connections(),
            on_report=on_report,
            wall_clock=self.clock.time,
        )

    def notifications(self) -> list[tuple[str, str]]:
        """(subject, message) of everything published to the operators' SNS topic."""
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.sns.models import sns_backends

        if not self.topic_arn:
            return []
        topic = sns_backends[DEFAULT_ACCOUNT_ID][self.config.aws.region].topics[self.topic_arn]
        return [(str(n[2]), str(n[1])) for n in topic.sent_notifications]

    def invoke(
        self,
        handler: str,
        event: Any,
        *,
        on_report: Callable[[Report], None] | None = None,
    ) -> dict[str, Any]:
        """Call ``lambdas.<handler>.handler(event, context)`` as Lambda would; it may raise."""
        module = _handler_module(handler)
        # The invocation's time runs on the sandbox clock, like every other emulated wait.
        context = FakeLambdaContext.for_handler(
            handler, self.config.aws.region, clock=self.clock.monotonic
        )
        # What the function prints (JSON logs, EMF metrics) goes to its "CloudWatch Logs".
        out = io.StringIO()
        log_handler = module.logger.registered_handler
        # Swap the stream without setStream(): that flushes the old stream, which may be
        # closed by now (a test's captured stdout, a finished terminal).
        previous = log_handler.stream if isinstance(log_handler, StreamHandler) else None
        if isinstance(log_handler, StreamHandler):
            log_handler.stream = out
        try:
            with contextlib.redirect_stdout(out), use_runtime(self.runtime(on_report)):
                response: dict[str, Any] = module.handler(event, context)
        finally:
            if previous is not None and isinstance(log_handler, StreamHandler):
                log_handler.stream = previous
            self.function_logs.extend(out.getvalue().splitlines())
        return response

    def dispatch(self, event: dict[str, Any]) -> Delivery:
        """Deliver ``event`` as the deployed rules would, with Lambda's async retries.

        Every handler whose rule matches is invoked; one that raises a retryable error is
        invoked again up to :data:`LAMBDA_ASYNC_RETRIES` times, then dead-lettered. An
        event no rule matches invokes nothing and yields a no-op Report.
        """
        handlers = self.route(event)
        if not handlers:
            return Delivery(
                [], Report(mode="plan", scope=Scope(frozenset()), trigger="no rule matched")
            )
        reports: list[Report] = []
        first_log = len(self.function_logs)
        delivery = Delivery(handlers, Report(mode="plan", scope=Scope(frozenset())))
        for name in handlers:
            for attempt in range(1, LAMBDA_ASYNC_RETRIES + 2):
                delivery.attempts[name] = attempt
                try:
                    delivery.responses[name] = self.invoke(name, event, on_report=reports.append)
                    break
                except RetryableError as exc:
                    delivery.responses[name] = {
                        "errorType": type(exc).__name__,
                        "errorMessage": str(exc),
                    }
            else:
                delivery.dead_letters.append(name)
        if reports:
            delivery.report = reports[-1]
        delivery.logs = self.function_logs[first_log:]
        return delivery

    def deliver(self, event: dict[str, Any]) -> Report:
        """Deliver an EventBridge event as the deployed rules would; the handler's Report.

        The matched handler module really runs (Powertools, metrics, retry semantics) with
        this sandbox's connections injected. An event no rule matches is a no-op Report (as
        in AWS, nothing is invoked). See :meth:`dispatch` for the handlers' raw responses.
        """
        return self.dispatch(event).report

    def clear_logs(self) -> None:
        """Forget the requests every emulator logged so far."""
        for server in self.servers.values():
            server.clear_log()
        self.aws.clear_calls()

    def emulator_writes(self) -> EmulatorWrites:
        """Writes since the last ``clear_logs``, as the emulators saw them."""
        out = EmulatorWrites()
        for service, op in self.aws.calls:
            # STS signs the EKS token; SNS carries notifications; DynamoDB holds fedkeeper's
            # own memory of trouble (its episodes table): none of them changes the world.
            if service in ("sts", "sns", "dynamodb") or op.startswith(_AWS_READ_PREFIXES):
                continue
            out.aws += 1
            out.detail.append(f"aws {service}:{op}")
        for name, server in self.servers.items():
            for rec in server.writes():
                if name in self._eks_by_cluster_name.values():
                    out.eks += 1
                else:
                    out.onprem += 1
                out.clusters[name] = out.clusters.get(name, 0) + 1
                out.detail.append(f"{server.name} {rec.method} {rec.path} -> {rec.status}")
        return out

    # --- internals --------------------------------------------------------------------------

    def _invoke_function(
        self, function_name: str, qualifier: str, payload: bytes
    ) -> tuple[bytes, str | None]:
        """Lambda Invoke of a deployed function (``<name>-<handler>``), run in-process."""
        prefix = f"{self.config.name}-"
        handler = function_name.removeprefix(prefix).replace("-", "_")
        if not function_name.startswith(prefix) or handler not in HANDLERS:
            raise LookupError(function_name)  # no such function: Lambda answers 404
        try:
            event = json.loads(payload or b"{}")
        except ValueError:
            event = payload.decode("utf-8", "replace")
        try:
            response = self.invoke(handler, event)
        except Exception as exc:  # Lambda reports any handler exception this way
            error = {"errorMessage": str(exc), "errorType": type(exc).__name__}
            return json.dumps(error).encode(), "Unhandled"
        return json.dumps(response, default=str).encode(), None

    def _add_server(self, name: str, port: int) -> FakeKubeServer:
        cal = self.config.federation.calico_api
        label = self._labels.get(name, name)
        server = FakeKubeServer(
            label,
            token=f"{label}-admin-token",
            calico_group=cal.group,
            calico_version=cal.version,
            clock=self.clock.time,
            advance=self.clock.advance,
            tls=self._tls,
            port=port,
        )
        self.servers[name] = server
        cluster = self.config.cluster(name)
        if isinstance(cluster, EksCluster):
            self._eks_by_cluster_name[cluster.cluster_name] = name
        return server

    def _stop_servers(self) -> None:
        for server in self.servers.values():
            server.stop()

    def _sole(self, kind: str) -> str:
        """The mesh name of the federation's one EKS cluster (or site); a clear error for a
        federation of more."""
        members = self.config.eks_clusters() if kind == "eks" else self.config.sites()
        if len(members) != 1:
            raise RuntimeError(
                f"this sandbox holds {len(members)} {'EKS clusters' if kind == 'eks' else 'sites'}"
                f"; name one: sb.server(name), sb.client(name) ({', '.join(self.servers)})"
            )
        return members[0].name

    def _prepare_cluster(self, name: str) -> None:
        """A new cluster's API server as a fresh install leaves it: seeded per kind, with
        (EKS) the token review of its access entries."""
        cluster = self.config.cluster(name)
        server = self.servers[name]
        if isinstance(cluster, EksCluster):
            entries = self.cluster_access_entries.setdefault(name, {})
            server.token_reviews.append(
                EksTokenReview(cluster.cluster_name, self.aws_callers.get, entries)
            )
            self._seed_eks(server)
        else:
            self._seed_site(server, cluster)

    def _site_kubeconfig(self, site: str) -> str:
        """What an operator does once on a site: `fedkeeper onprem-bootstrap --apply` as the
        cluster admin; returns the kubeconfig it prints (stored in Secrets Manager)."""
        server = self.servers[site]
        cal = self.config.federation.calico_api
        admin = KubeCluster.from_kubeconfig(
            server.name, server.kubeconfig(), resource_types(cal.group, cal.version)
        )
        try:
            apply_bootstrap(admin, self.config)
            kubeconfig = fedkeeper_kubeconfig(admin, self.config, wait_s=0, site=site)
        finally:
            admin.close()
        # The configured endpoint resolves to the local server (the sandbox's "DNS").
        for entry in kubeconfig["clusters"]:
            entry["cluster"]["server"] = server.url
        return json.dumps(kubeconfig)

    def _deploy_reconciler_identity(self) -> None:
        """The cluster stack's reconciler role and its EKS access entry; then the role's
        credentials, as Lambda gets them by assuming it."""
        session = self.aws_session()
        role_name = f"{self.config.name}-{RECONCILER}"[:64]
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role_arn = session.client("iam").create_role(
            RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust)
        )["Role"]["Arn"]
        self.reconciler_role_arn = role_arn
        for eks in self.config.eks_clusters():
            self._grant_access_entry(eks.name)
        assumed = session.client("sts").assume_role(
            RoleArn=role_arn, RoleSessionName=f"{self.config.name}-reconcile"[:64]
        )
        creds = assumed["Credentials"]
        self.aws_callers[creds["AccessKeyId"]] = AwsCaller(
            creds["SecretAccessKey"], assumed["AssumedRoleUser"]["Arn"]
        )
        self.reconciler_credentials = {k: str(creds[k]) for k in _CREDENTIAL_KEYS}
        self._reconciler_session = self.aws.session(credentials=creds)

    def _grant_access_entry(self, eks: str) -> None:
        """The cluster stack's access entry on ``eks`` for the reconciler's role, mapped to
        the group its RBAC binds."""
        if self.reconciler_role_arn is not None:
            entries = self.cluster_access_entries.setdefault(eks, {})
            entries[self.reconciler_role_arn] = AccessEntry("", (RECONCILER_GROUP,))

    def _eks_server_named(self, cluster_name: str) -> FakeKubeServer:
        """The API server of the EKS cluster whose own (EKS) name is ``cluster_name``; in a
        two-cluster federation, of its one EKS cluster whatever the name (as always)."""
        name = self._eks_by_cluster_name.get(cluster_name)
        if name is None and self._two_cluster:
            name = next(iter(self._eks_by_cluster_name.values()))
        if name is None:
            raise LookupError(cluster_name)
        return self.servers[name]

    def _eks_endpoint(self, cluster: str) -> tuple[str, str]:
        server = self._eks_server_named(cluster)
        return server.url, server.ca_data

    def _addon_configured(
        self, cluster: str, addon: str, values: dict[str, Any], resolve: str | None
    ) -> None:
        """The add-on manager applies the add-on's env to the live aws-node DaemonSet."""
        if addon != "vpc-cni":
            return

        def follow(ds: dict[str, Any]) -> None:
            for c in ds["spec"]["template"]["spec"]["containers"]:
                if c["name"] == "aws-node":
                    entries = c.get("env", [])
                    # (entries of another shape, written by hand, are left as they are)
                    named = [e for e in entries if isinstance(e, dict) and "name" in e]
                    live = {e["name"]: str(e["value"]) for e in named if "value" in e}
                    env = self.aws.addon_env(cluster, addon, live, values, resolve)
                    for e in named:
                        if e["name"] in env and "value" in e:
                            e["value"] = env.pop(e["name"])
                    c["env"] = entries + [{"name": k, "value": v} for k, v in env.items()]

        try:
            server = self._eks_server_named(cluster)
        except LookupError:
            return
        if server.get_object("apps/v1", "DaemonSet", "aws-node", "kube-system"):
            server.mutate("apps/v1", "DaemonSet", "aws-node", "kube-system", follow)

    def _calico(self) -> str:
        cal = self.config.federation.calico_api
        return f"{cal.group}/{cal.version}"

    def _seed_common(self, server: FakeKubeServer) -> None:
        server.seed(
            {
                "apiVersion": self._calico(),
                "kind": "KubeControllersConfiguration",
                "metadata": {"name": "default"},
                "spec": {"controllers": {"federatedServices": {"reconcilerPeriod": "5m"}}},
            }
        )

    def _seed_eks(self, s: FakeKubeServer) -> None:
        # The cluster stack's manifest: the reconciler group's RBAC.
        for obj in eks_reconciler_objects(self.config):
            s.seed(obj)
        s.seed(
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": {
                    "name": "aws-node",
                    "namespace": "kube-system",
                    "labels": {"k8s-app": "aws-node"},
                },
                "spec": {
                    "selector": {"matchLabels": {"k8s-app": "aws-node"}},
                    "template": {
                        "metadata": {"labels": {"k8s-app": "aws-node"}},
                        "spec": {
                            "containers": [
                                {
                                    "name": "aws-node",
                                    "image": AWS_NODE_IMAGE,
                                    "env": [
                                        {"name": "AWS_VPC_K8S_CNI_LOGLEVEL", "value": "DEBUG"},
                                        {"name": EXTERNAL_SNAT, "value": "true"},
                                        {"name": "WARM_ENI_TARGET", "value": "1"},
                                    ],
                                },
                                {
                                    "name": "aws-eks-nodeagent",
                                    "image": NODE_AGENT_IMAGE,
                                    "env": [{"name": "ENABLE_NETWORK_POLICY", "value": "false"}],
                                },
                            ]
                        },
                    },
                },
            }
        )
        self._seed_common(s)

    def _seed_site(self, s: FakeKubeServer, site: OnPremCluster) -> None:
        pod_cidr = str(site.pod_cidrs[0])
        s.seed(
            {
                "apiVersion": self._calico(),
                "kind": "IPPool",
                "metadata": {"name": "default-ipv4-ippool"},
                "spec": {
                    "cidr": pod_cidr,
                    "natOutgoing": True,
                    "ipipMode": "Never",
                    "vxlanMode": "Never",
                },
            }
        )
        s.seed(
            {
                "apiVersion": self._calico(),
                "kind": "BGPConfiguration",
                "metadata": {"name": "default"},
                "spec": {
                    "nodeToNodeMeshEnabled": False,
                    "asNumber": site.customer_gateway.bgp_asn,
                },
            }
        )
        s.seed(
            {
                "apiVersion": self._calico(),
                "kind": "BGPPeer",
                "metadata": {"name": "vpn-router"},
                "spec": {
                    "peerIP": "192.168.0.1",
                    "asNumber": site.customer_gateway.bgp_asn,
                },
            }
        )
        self._seed_common(s)
