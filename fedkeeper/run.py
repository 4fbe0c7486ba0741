"""One reconcile in progress: its connections, the Report being built, per-run read caches,
and the run's guard (deadline and failed targets).

Kept apart from :mod:`fedkeeper.service` so that the observers (:mod:`fedkeeper.observe`),
which the engine calls, do not import the engine back.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from fedkeeper.errors import (
    ElsewhereError,
    FedkeeperError,
    OutOfTimeError,
    PermanentError,
    RetryableError,
    UnreachableError,
)
from fedkeeper.guard import RunGuard, fix_for
from fedkeeper.invariants import Plan
from fedkeeper.model import (
    ChangeOutcome,
    Deferred,
    Invariant,
    Report,
    RunError,
    TargetFailure,
    Vpc,
)

if TYPE_CHECKING:
    from fedkeeper.adapters.kube import KubeCluster
    from fedkeeper.config import FederationConfig
    from fedkeeper.service import Connections

ModeName = Literal["plan", "apply"]
T = TypeVar("T")


class Preconditions:
    """What the checks observe of things fedkeeper never writes nor acts on, kept per process.

    The checks' preconditions (EKS has no enabled pool and runs the Federated Services
    Controller; on-prem has BGP peers and runs it too; a CloudTrail trail logs) are installation
    facts, not state fedkeeper manages. With ``rotate`` (the deployed functions' connections,
    which live for many runs), a run re-reads only the group of them read longest ago and takes
    the others from earlier runs of the same process, so with the checks' three groups each is
    at most :data:`MAX_AGE_RUNS` runs old; a group that old is read again even when another
    one is due but cannot be asked for (its cluster down). A group never read yet, or asked
    for ``fresh`` (a manual plan or status), is read at once. Without ``rotate`` (the CLI,
    one run per process) every run reads them all. A failed read is raised and not kept: the
    group is read again next run.
    """

    MAX_AGE_RUNS = 3

    def __init__(self, *, rotate: bool = False) -> None:
        self.rotate = rotate
        self._kept: dict[str, tuple[int, Any]] = {}  # group → (run it was read in, value)
        self._run: object | None = None
        self._runs = 0
        self._due: str | None = None  # the one kept group this run re-reads

    def get(self, run: object, group: str, read: Callable[[], T], *, fresh: bool = False) -> T:
        """``group``'s observation for ``run``: read now, or kept from an earlier run."""
        if run is not self._run:  # the first precondition this run asks for
            self._run, self._runs = run, self._runs + 1
            oldest = min(self._kept.items(), key=lambda kv: kv[1][0], default=None)
            self._due = oldest[0] if oldest else None
        kept = self._kept.get(group)
        if (
            self.rotate
            and not fresh
            and kept is not None
            and group != self._due
            and self._runs - kept[0] < self.MAX_AGE_RUNS
        ):
            value: T = kept[1]
            return value
        try:
            value = read()
        except Exception:
            self._kept.pop(group, None)  # never served again: read at once next run
            raise
        self._kept[group] = (self._runs, value)
        return value


@dataclass
class _Failed:
    """A cached read that failed: raised again, never re-read, in the same run."""

    error: FedkeeperError


@dataclass
class Run:
    """One reconcile: the connections, the report being built, and per-run read caches."""

    conns: Connections
    mode: ModeName
    report: Report
    guard: RunGuard = field(default_factory=RunGuard)
    _cache: dict[str, Any] = field(default_factory=dict)
    # (target, action) of writes that failed or were skipped this run (never sent again),
    # with the outcome that says whether retrying can help and which target failed.
    failed_writes: dict[tuple[str, str], ChangeOutcome] = field(default_factory=dict)
    # Read every precondition afresh (a manual plan or status), whatever the connections keep.
    fresh_preconditions: bool = False
    # Targets whose writes wait (an owned object fedkeeper keeps fighting over): the reason,
    # or None to write as usual.
    held: Callable[[str], str | None] | None = None

    @property
    def config(self) -> FederationConfig:
        return self.conns.config

    @property
    def onprem_down(self) -> str | None:
        """Why the one site cannot be reached this run (None: it can, or not tried)."""
        return self.down(self.conns.site_name)

    def down(self, name: str) -> str | None:
        """Why cluster ``name`` cannot be reached this run (None: it can, or not tried)."""
        err = self.guard.down.get(name)
        return str(err) if err is not None else None

    def is_cluster(self, target: str | None) -> bool:
        """Whether ``target`` (a backend) is one of the federation's clusters."""
        return target is not None and target in self.config.names()

    def is_site(self, target: str | None) -> bool:
        """Whether ``target`` (a backend) is one of the federation's on-prem sites: one
        that cannot be reached defers its own work (its VPN may be down), not an error."""
        return target is not None and target in {s.name for s in self.config.sites()}

    def cached(self, key: str, read: Callable[[], Any]) -> Any:
        """Read once per run: invariants that share an observation share its API call.

        A read that failed is remembered too: the next invariant gets the same error at
        once instead of paying for the failure again.
        """
        if key not in self._cache:
            try:
                self._cache[key] = read()
            except FedkeeperError as exc:
                self._cache[key] = _Failed(exc)
        value = self._cache[key]
        if isinstance(value, _Failed):
            raise value.error
        return value

    def precondition(self, group: str, read: Callable[[], T]) -> T:
        """A precondition the checks report: read, or kept by the connections (Preconditions)."""
        return self.conns.preconditions.get(self, group, read, fresh=self.fresh_preconditions)

    def forget_reads(self) -> None:
        """After a 409: the world moved, so re-read everything (failures stay known)."""
        self._cache = {k: v for k, v in self._cache.items() if isinstance(v, _Failed)}

    def vpc(self) -> Vpc | None:
        conns = self.conns
        result: Vpc | None = self.cached(
            "vpc", lambda: conns.aws.find_vpc(conns.targets.vpc_id, self.config.federation_tag)
        )
        return result

    def vgw_id(self, vpc_id: str) -> str | None:
        if self.conns.targets.vgw_id:
            return self.conns.targets.vgw_id
        result: str | None = self.cached("vgw", lambda: self.conns.aws.find_vgw(vpc_id))
        return result

    def vpc_of(self, eks: str) -> Vpc | None:
        """The VPC of EKS cluster ``eks`` in a mesh: of the VPCs carrying the federation tag
        (one describe_vpcs per run, whatever N), the one whose CIDR blocks include the
        cluster's ``network.cidr`` (validation keeps the networks from overlapping)."""
        vpcs: list[Vpc] = self.cached(
            "vpcs", lambda: self.conns.aws.tagged_vpcs(self.config.federation_tag)
        )
        member = self.config.cluster(eks)
        want = getattr(getattr(member, "network", None), "cidr", None)
        if not isinstance(want, ipaddress.IPv4Network):
            raise PermanentError(f"{eks}: not an EKS cluster; only EKS clusters have a VPC")
        found = [
            v
            for v in vpcs
            if any(
                want.subnet_of(net)
                for net in map(ipaddress.ip_network, v.cidrs)
                if isinstance(net, ipaddress.IPv4Network)
            )
        ]
        if len(found) > 1:
            ids = ", ".join(v.id for v in found)
            raise PermanentError(f"{eks}: several tagged VPCs ({ids}) include {want}")
        return found[0] if found else None

    def vgw_of(self, vpc_id: str) -> str | None:
        """The VGW attached to VPC ``vpc_id`` (read once per VPC and run)."""
        result: str | None = self.cached(f"vgw:{vpc_id}", lambda: self.conns.aws.find_vgw(vpc_id))
        return result

    def _cluster(self, backend: str, build: Callable[[], KubeCluster]) -> KubeCluster:
        known = self.guard.down.get(backend)
        if known is not None:
            raise known
        try:
            return build()
        except FedkeeperError as exc:
            # Building the client failed (describe_cluster, the credentials secret, a bad
            # kubeconfig): nothing on that cluster can be done this run.
            self.guard.mark_down(backend, exc)
            raise

    def cluster(self, name: str) -> KubeCluster:
        """Cluster ``name``'s client; its failure raised at once once it is down this run."""
        return self._cluster(name, lambda: self.conns.cluster(name))

    def eks(self) -> KubeCluster:
        """The one EKS cluster (two-cluster case)."""
        return self.cluster(self.conns.eks_name)

    def onprem(self) -> KubeCluster:
        """The one site (two-cluster case)."""
        return self.cluster(self.conns.site_name)

    def cut_off(self, backend: str, reason: str) -> None:
        """The cluster cannot be reached at all this run (e.g. no VPN tunnel up)."""
        self.guard.mark_down(backend, UnreachableError(reason, target=backend))
        self.defer(backend, reason)

    def defer(self, target: str, reason: str, *, retry: bool = False) -> None:
        if not any(d.target == target for d in self.report.deferred):
            self.report.deferred.append(Deferred(target, reason, retry))

    def target_failed(self, exc: FedkeeperError, inv: Invariant | str) -> None:
        """Name the failed target in the Report, once, with the fix where known."""
        target = exc.target or "unknown"
        name = inv.value if isinstance(inv, Invariant) else inv
        for f in self.report.failed_targets:
            if f.target == target:
                if name not in f.invariants:
                    f.invariants.append(name)
                return
        secret = kind = None
        if self.is_cluster(target):
            kind = self.config.cluster(target).kind
            if kind == "onprem" and exc.status == 401:
                secret = self.conns.credentials_secret(target)
        fix = fix_for(target, exc, credentials=secret, kind=kind)
        self.report.failed_targets.append(TargetFailure(target, str(exc), fix, [name]))

    def side(
        self, backend: str, inv: Invariant, observe: Callable[[KubeCluster], Any]
    ) -> Any | None:
        """``observe`` on one cluster; None (and the failure reported) when it fails.

        The other cluster's work and AWS's go on without it.
        """
        try:
            return observe(self.cluster(backend))
        except FedkeeperError as exc:
            if exc.target is None:
                exc.target = backend
            self.fail(inv, exc)
            return None

    def fail(self, inv: Invariant, exc: FedkeeperError) -> None:
        """Report the failure of (part of) ``inv``: deferred, or an error naming its target."""
        if isinstance(exc, ElsewhereError):
            return  # not this run's to look at
        if isinstance(exc, OutOfTimeError):
            self.defer(f"{inv.value}", f"not reached before the run's deadline: {exc}", retry=True)
            return
        if exc.target is not None:
            self.target_failed(exc, inv)
        if isinstance(exc, UnreachableError) and self.is_site(exc.target):
            self.defer(str(exc.target), str(exc))
            return
        retryable = isinstance(exc, RetryableError)
        self.report.errors.append(RunError(inv.value, str(exc), retryable, exc.target))


Runner = Callable[[Run], Plan]
