"""One reconcile in progress: its connections, the Report being built, per-run read caches,
and the run's guard (deadline and failed targets).

Kept apart from :mod:`fedkeeper.service` so that the observers (:mod:`fedkeeper.observe`),
which the engine calls, do not import the engine back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from fedkeeper.errors import FedkeeperError, OutOfTimeError, RetryableError, UnreachableError
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

    @property
    def config(self) -> FederationConfig:
        return self.conns.config

    @property
    def onprem_down(self) -> str | None:
        err = self.guard.down.get("onprem")
        return str(err) if err is not None else None

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

    def eks(self) -> KubeCluster:
        return self._cluster("eks", self.conns.eks)

    def onprem(self) -> KubeCluster:
        return self._cluster("onprem", self.conns.onprem)

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
        secret = None
        if target == "onprem" and exc.status == 401:
            secret = self.conns.targets.onprem_secret or self.config.onprem.credentials_secret
        self.report.failed_targets.append(
            TargetFailure(target, str(exc), fix_for(target, exc, credentials=secret), [name])
        )

    def side(
        self, backend: str, inv: Invariant, observe: Callable[[KubeCluster], Any]
    ) -> Any | None:
        """``observe`` on one cluster; None (and the failure reported) when it fails.

        The other cluster's work and AWS's go on without it.
        """
        try:
            cluster = self.eks() if backend == "eks" else self.onprem()
            return observe(cluster)
        except FedkeeperError as exc:
            if exc.target is None:
                exc.target = backend
            self.fail(inv, exc)
            return None

    def fail(self, inv: Invariant, exc: FedkeeperError) -> None:
        """Report the failure of (part of) ``inv``: deferred, or an error naming its target."""
        if isinstance(exc, OutOfTimeError):
            self.defer(f"{inv.value}", f"not reached before the run's deadline: {exc}", retry=True)
            return
        if exc.target is not None:
            self.target_failed(exc, inv)
        if isinstance(exc, UnreachableError) and exc.target == "onprem":
            self.defer("onprem", str(exc))
            return
        retryable = isinstance(exc, RetryableError)
        self.report.errors.append(RunError(inv.value, str(exc), retryable, exc.target))


Runner = Callable[[Run], Plan]
