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
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from kubernetes.client import ApiClient
from kubernetes.config.kube_config import new_client_from_config_dict

from fedkeeper.config import FederationConfig
from fedkeeper.events import rules, schedule_pattern, trigger_for
from fedkeeper.model import Report, Scope
from fedkeeper.sandbox.aws import SandboxAws
from fedkeeper.sandbox.aws_baseline import AwsBaseline, deploy_aws_baseline
from fedkeeper.sandbox.kube_server import FakeKubeServer
from fedkeeper.service import Connections, ModeName, Targets, reconcile

AWS_NODE_IMAGE = "602401143452.dkr.ecr.eu-west-1.amazonaws.com/amazon-k8s-cni:v1.19.2"
NODE_AGENT_IMAGE = (
    "602401143452.dkr.ecr.eu-west-1.amazonaws.com/amazon/aws-network-policy-agent:v1.1.6"
)
EXTERNAL_SNAT = "AWS_VPC_K8S_CNI_EXTERNALSNAT"


@dataclass
class EmulatorWrites:
    """Writes seen by the emulators themselves (not by fedkeeper's own counters)."""

    aws: int = 0
    eks: int = 0
    onprem: int = 0
    detail: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.aws + self.eks + self.onprem


_AWS_READ_PREFIXES = ("Describe", "List", "Get")


def route_event(config: FederationConfig, event: dict[str, Any]) -> list[str]:
    """Handlers whose rule pattern matches, using moto's EventBridge pattern matcher."""
    from moto.events.models import EventPattern

    out: list[str] = []
    for rule in rules(config):
        pattern = rule.pattern if rule.pattern is not None else schedule_pattern()
        if EventPattern.load(json.dumps(pattern)).matches_event(event) and rule.handler not in out:
            out.append(rule.handler)
    return out


class Sandbox:
    """A whole federation on this machine. Use :meth:`start` as a context manager."""

    def __init__(self, config: FederationConfig) -> None:
        self.config = config
        cal = config.federation.calico_api
        self.eks_server = FakeKubeServer("eks", calico_group=cal.group, calico_version=cal.version)
        self.onprem_server = FakeKubeServer(
            "onprem", token="onprem-admin-token", calico_group=cal.group, calico_version=cal.version
        )
        self.aws = SandboxAws(config.aws.region, eks_endpoint=self._eks_endpoint)
        self.aws.on_addon_configured = self._addon_configured
        self.baseline: AwsBaseline | None = None
        self._session: boto3.Session | None = None
        self._conns: Connections | None = None
        self._stack = contextlib.ExitStack()

    # --- lifecycle -------------------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def start(cls, config: FederationConfig, *, converge: bool = True) -> Iterator[Sandbox]:
        """Start everything, lay down the baseline, optionally converge; tear down on exit."""
        sb = cls(config)
        try:
            sb.up(converge=converge)
            yield sb
        finally:
            sb.down()

    def up(self, *, converge: bool = True) -> None:
        self.eks_server.start()
        self._stack.callback(self.eks_server.stop)
        self.onprem_server.start()
        self._stack.callback(self.onprem_server.stop)
        self.aws.start()
        self._stack.callback(self.aws.stop)
        self.eks_server.accept_token = lambda t: t.startswith("k8s-aws-v1.")
        self._seed_eks()
        self._seed_onprem()
        self.baseline = deploy_aws_baseline(
            self.aws_session(),
            self.aws,
            self.config,
            onprem_kubeconfig=json.dumps(self.onprem_server.kubeconfig()),
        )
        if converge:
            self.reconcile(None, "apply")
        self.clear_logs()

    def down(self) -> None:
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

    def connections(self) -> Connections:
        """The clients production code uses, pointed at the sandbox (built once)."""
        if self._conns is None:
            self._conns = Connections(self.config, self.aws_session(), targets=Targets())
        return self._conns

    def eks_client(self) -> ApiClient:
        """An official kubernetes ApiClient for the EKS fake (admin credentials)."""
        return new_client_from_config_dict(
            self.eks_server.kubeconfig(token=self._eks_admin_token())
        )

    def onprem_client(self) -> ApiClient:
        """An official kubernetes ApiClient for the on-prem fake (admin credentials)."""
        return new_client_from_config_dict(self.onprem_server.kubeconfig())

    def reconcile(self, scope: Iterable[str] | Scope | None, mode: ModeName = "apply") -> Report:
        """One reconcile through production code, as a Lambda or the CLI would run it."""
        s = scope if isinstance(scope, Scope) else Scope.parse(scope)
        return reconcile(self.connections(), s, mode)

    def route(self, event: dict[str, Any]) -> list[str]:
        """The handlers whose deployed rule matches ``event`` (moto's EventBridge matcher)."""
        return route_event(self.config, event)

    def deliver(self, event: dict[str, Any]) -> Report:
        """Deliver an EventBridge event as the deployed rules would; the handler's Report.

        An event no rule matches is a no-op Report (as in AWS, nothing is invoked).
        """
        handlers = self.route(event)
        trigger = trigger_for(event, self.config)
        if not handlers or trigger is None:
            return Report(mode="plan", scope=Scope(frozenset()), trigger="no rule matched")
        return reconcile(self.connections(), trigger.scope, "apply", trigger=trigger.reason)

    def clear_logs(self) -> None:
        self.eks_server.clear_log()
        self.onprem_server.clear_log()
        self.aws.clear_calls()

    def emulator_writes(self) -> EmulatorWrites:
        """Writes since the last ``clear_logs``, as the emulators saw them."""
        out = EmulatorWrites()
        for service, op in self.aws.calls:
            if service == "sts" or op.startswith(_AWS_READ_PREFIXES):
                continue
            out.aws += 1
            out.detail.append(f"aws {service}:{op}")
        for name, server in (("eks", self.eks_server), ("onprem", self.onprem_server)):
            for rec in server.writes():
                setattr(out, name, getattr(out, name) + 1)
                out.detail.append(f"{name} {rec.method} {rec.path} -> {rec.status}")
        return out

    # --- internals --------------------------------------------------------------------------

    def _eks_admin_token(self) -> str:
        return "k8s-aws-v1.sandbox-admin"

    def _eks_endpoint(self, cluster: str) -> tuple[str, str]:
        return self.eks_server.url, self.eks_server.ca_data

    def _addon_configured(self, cluster: str, addon: str, values: dict[str, Any]) -> None:
        """The add-on manager writes the add-on's env into the live aws-node DaemonSet."""
        if addon != "vpc-cni":
            return
        env = dict(values.get("env") or {})
        value = str(env.get(EXTERNAL_SNAT, "false"))

        def follow(ds: dict[str, Any]) -> None:
            for c in ds["spec"]["template"]["spec"]["containers"]:
                if c["name"] == "aws-node":
                    entries = [e for e in c.get("env", []) if e["name"] != EXTERNAL_SNAT]
                    entries.append({"name": EXTERNAL_SNAT, "value": value})
                    c["env"] = entries

        if self.eks_server.get_object("apps/v1", "DaemonSet", "aws-node", "kube-system"):
            self.eks_server.mutate("apps/v1", "DaemonSet", "aws-node", "kube-system", follow)

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

    def _seed_eks(self) -> None:
        s = self.eks_server
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

    def _seed_onprem(self) -> None:
        s = self.onprem_server
        pod_cidr = str(self.config.onprem.pod_cidrs[0])
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
                    "asNumber": self.config.aws.vpn.customer_gateway.bgp_asn,
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
                    "asNumber": self.config.aws.vpn.customer_gateway.bgp_asn,
                },
            }
        )
        self._seed_common(s)
