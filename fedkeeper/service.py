"""The engine: observe → desire → plan → apply, for any scope, from every entry point.

``reconcile(conns, scope, mode)`` is the one function the Lambdas, the CLI and the sandbox
call. Each invariant in scope is observed afresh (events are hints, never state), planned by
its pure module, and — in mode ``apply`` — written. A failure on one target does not stop the
others; an unreachable on-prem cluster defers its work; a 409 re-reads and re-plans.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fedkeeper import observe
from fedkeeper.adapters.auth import (
    EksTokenSource,
    eks_kubeconfig,
    eks_token,
    keep_bearer_token_fresh,
    parse_kubeconfig,
)
from fedkeeper.adapters.aws import ALERT_CONFIG, ALERT_WORST_CALL_S, AwsAdapter
from fedkeeper.adapters.kube_types import REQUEST_TIMEOUT, ResourceType, resource_types
from fedkeeper.config import FederationConfig, Mode
from fedkeeper.errors import (
    BusyError,
    ConflictError,
    ElsewhereError,
    FedkeeperError,
    OutOfTimeError,
    PermanentError,
    RetryableError,
    UnreachableError,
)
from fedkeeper.guard import RunGuard
from fedkeeper.invariants import Plan
from fedkeeper.model import (
    ApiCounter,
    Change,
    ChangeOutcome,
    Finding,
    Invariant,
    Report,
    Result,
    RunError,
    Scope,
    Severity,
)
from fedkeeper.run import ModeName, Preconditions, Run, Runner

if TYPE_CHECKING:
    import boto3

    from fedkeeper.adapters.kube import KubeCluster

__all__ = [
    "Connections",
    "ModeName",
    "Run",
    "Runner",
    "Targets",
    "effective_mode",
    "execute",
    "reconcile",
]

MAX_CONFLICT_ATTEMPTS = 3
MAX_SETTLE_PASSES = 3


@dataclass(frozen=True)
class Targets:
    """What to act on. Lambdas get ids from the stack; elsewhere they are discovered."""

    vpc_id: str | None = None
    vgw_id: str | None = None
    cluster_name: str | None = None
    onprem_secret: str | None = None
    vpn_connection_id: str | None = None  # only this VPN of the VGW (default: all of them)


class Connections:
    """The clients a process keeps: built once (per Lambda container) and reused.

    The EKS client is built lazily from ``describe_cluster`` and a bearer token that is
    refreshed before it expires (``clock``: monotonic seconds, injectable); the on-prem
    client from the kubeconfig in Secrets Manager (or from a kubeconfig given directly,
    e.g. a local context for the CLI). A 401 from on-prem (the credentials were rotated)
    re-reads the secret once and retries; a 401 from EKS mints a new token once and retries.
    """

    def __init__(
        self,
        config: FederationConfig,
        session: boto3.Session,
        *,
        targets: Targets | None = None,
        eks_kubeconfig: dict[str, Any] | None = None,
        onprem_kubeconfig: dict[str, Any] | None = None,
        counter: ApiCounter | None = None,
        clock: Callable[[], float] = time.monotonic,
        kube_timeout: tuple[float, float] = REQUEST_TIMEOUT,
        rotate_preconditions: bool = False,
    ) -> None:
        self.config = config
        # The checks' preconditions, kept between runs when rotating (the deployed functions).
        self.preconditions = Preconditions(rotate=rotate_preconditions)
        self.kube_timeout = kube_timeout  # (connect, read) seconds per HTTP attempt
        self.clock = clock  # monotonic seconds: token lifetimes and the run's deadline
        self._guard: RunGuard | None = None
        self.session = session
        self.targets = targets or Targets()
        self.counter = counter if counter is not None else ApiCounter()
        self.aws = AwsAdapter(session, self.counter)
        self._alerting: AwsAdapter | None = None
        self.types: dict[str, ResourceType] = resource_types(
            config.federation.calico_api.group, config.federation.calico_api.version
        )
        self._eks_kubeconfig = eks_kubeconfig
        self._onprem_kubeconfig = onprem_kubeconfig
        self._onprem_from_secret = onprem_kubeconfig is None
        self._eks: KubeCluster | None = None
        self._eks_cluster: dict[str, Any] | None = None
        self._onprem: KubeCluster | None = None
        self._tokens = EksTokenSource(lambda: eks_token(self.session, self.cluster_name), clock)
        # Told of every object this process writes to a cluster (a watcher skips its echo).
        self.on_write: Callable[[str, dict[str, Any]], None] | None = None

    def sibling(self) -> Connections:
        """Connections to the same places with clients, counter and run guard of their own:
        for a run beside another on another thread (the watch's per-cluster repairs)."""
        twin = Connections(
            self.config,
            self.session,
            targets=self.targets,
            eks_kubeconfig=self._eks_kubeconfig,
            onprem_kubeconfig=None if self._onprem_from_secret else self._onprem_kubeconfig,
            clock=self.clock,
            kube_timeout=self.kube_timeout,
        )
        twin.on_write = self.on_write
        return twin

    @property
    def cluster_name(self) -> str:
        return self.targets.cluster_name or self.config.sole_eks().cluster_name

    def alerting_aws(self) -> AwsAdapter:
        """AWS for the calls after a run (SNS, the episode store): two short attempts each,
        so they fit in the margin the run leaves the invocation."""
        if self._alerting is None:
            self._alerting = AwsAdapter(
                self.session, self.counter, config=ALERT_CONFIG, worst_call_s=ALERT_WORST_CALL_S
            )
        return self._alerting

    def eks_cluster(self) -> dict[str, Any]:
        """``describe_cluster`` output, read once per process (endpoint and CA are stable)."""
        if self._eks_cluster is None:
            self._eks_cluster = self.aws.describe_cluster(self.cluster_name)
        return self._eks_cluster

    def use_guard(self, guard: RunGuard | None) -> None:
        """The current run's deadline and failed targets, for every adapter (None: no run)."""
        self._guard = guard
        self.aws.guard = guard
        for cluster in (self._eks, self._onprem):
            if cluster is not None:
                cluster.guard, cluster.timeout = guard, self.kube_timeout

    def _ready(self, cluster: KubeCluster) -> KubeCluster:
        cluster.guard, cluster.timeout = self._guard, self.kube_timeout
        cluster.on_write = self.on_write
        return cluster

    def eks(self) -> KubeCluster:
        # The kubernetes client loads when a run first touches a cluster, not with the engine.
        from fedkeeper.adapters.kube import KubeCluster

        if self._eks_kubeconfig is not None:
            if self._eks is None:
                self._eks = self._ready(
                    KubeCluster.from_kubeconfig(
                        "eks", self._eks_kubeconfig, self.types, self.counter
                    )
                )
            return self._eks
        if self._eks is None:
            kubeconfig = eks_kubeconfig(self.eks_cluster(), self._tokens.token())
            eks = KubeCluster.from_kubeconfig("eks", kubeconfig, self.types, self.counter)
            keep_bearer_token_fresh(eks.api.configuration, self._tokens.token)
            eks.reauthenticate = self._remint_eks_token
            self._eks = self._ready(eks)
        return self._eks

    def _remint_eks_token(self) -> Any:  # a kubernetes ApiClient
        """After a 401 (e.g. a container frozen past the token's life): mint a new token."""
        self._tokens.discard()
        if self._eks is None:
            raise PermanentError("eks: no client to re-authenticate")
        return self._eks.api

    def onprem(self) -> KubeCluster:
        from fedkeeper.adapters.kube import KubeCluster, api_client_from_kubeconfig

        if self._onprem is None:
            self._onprem = self._ready(
                KubeCluster(
                    "onprem",
                    api_client_from_kubeconfig("onprem", self._onprem_config()),
                    self.types,
                    self.counter,
                    reauthenticate=self._reread_onprem if self._onprem_from_secret else None,
                )
            )
        return self._onprem

    def _onprem_config(self) -> dict[str, Any]:
        if self._onprem_kubeconfig is None:
            secret = self.targets.onprem_secret or self.config.sole_site().credentials_secret
            text = self.aws.secret_string(secret)
            self._onprem_kubeconfig = parse_kubeconfig(text, f"secret {secret}")
        return self._onprem_kubeconfig

    def _reread_onprem(self) -> Any:  # a kubernetes ApiClient
        """A client with the credentials now in the secret (after a 401)."""
        from fedkeeper.adapters.kube import api_client_from_kubeconfig

        self._onprem_kubeconfig = None
        return api_client_from_kubeconfig("onprem", self._onprem_config())

    def forget_onprem(self) -> None:
        """Drop the on-prem client (its credentials may have been rotated)."""
        if self._onprem is not None:
            self._onprem.close()
        self._onprem = None
        if self._onprem_from_secret:
            self._onprem_kubeconfig = None

    def close(self) -> None:
        for c in (self._eks, self._onprem):
            if c is not None:
                c.close()
        self._eks = self._onprem = None


def _runners() -> dict[Invariant, Runner]:
    return observe.RUNNERS


def effective_mode(
    requested: ModeName | None, config: FederationConfig, env_mode: str | None
) -> ModeName:
    """Plan wins: the config's mode or FEDKEEPER_MODE=plan is a kill switch for writes."""
    if config.mode is Mode.PLAN or (env_mode or "").strip().lower() == "plan":
        return "plan"
    return requested or "apply"


def reconcile(
    conns: Connections,
    scope: Scope,
    mode: ModeName,
    *,
    trigger: str | None = None,
    runners: dict[Invariant, Runner] | None = None,
    run: Run | None = None,
    on_phase: Callable[[str], None] | None = None,
    deadline_s: float | None = None,
    fresh_preconditions: bool = False,
    clusters: frozenset[str] | None = None,
    held: Callable[[str], str | None] | None = None,
) -> Report:
    """Observe, plan and (in mode apply) repair every invariant in ``scope``.

    ``deadline_s``: the run's time budget in seconds (the Lambda's remaining time less a
    margin); a call whose worst case would pass it is not made and its work is reported as
    deferred. Pass ``run`` to keep its read cache afterwards (``fedkeeper status`` reads its
    facts from the same observations); by default each call starts fresh. ``on_phase`` is
    told each invariant as its turn comes (the CLI shows it as progress).
    ``fresh_preconditions`` reads every precondition of the checks, whatever the connections
    keep (:class:`fedkeeper.run.Preconditions`). ``clusters``: the only clusters this run
    reads or writes (the others are left to another run, unreported); ``held``: a target's
    reason to wait instead of being written (a finding says so).
    """
    started = time.perf_counter()
    before = conns.counter.snapshot()
    report = Report(mode=mode, scope=scope, trigger=trigger)
    guard = RunGuard.within(deadline_s, conns.clock)
    if run is None:
        run = Run(conns=conns, mode=mode, report=report, guard=guard)
    else:
        run.mode, run.report, run.guard = mode, report, guard
    run.fresh_preconditions = fresh_preconditions
    run.held = held
    for backend in ("eks", "onprem"):
        if clusters is not None and backend not in clusters:
            guard.mark_down(backend, ElsewhereError(f"{backend}: left to another run"))
    conns.use_guard(guard)
    table = runners if runners is not None else _runners()
    try:
        for inv in scope.ordered():
            runner = table.get(inv)
            if runner is None:
                continue
            if on_phase is not None:
                on_phase(inv.value)
            _run_invariant(run, inv, runner)
    finally:
        conns.use_guard(None)
    report.reached = set(guard.reached)
    report.api = conns.counter.since(before)
    report.duration_ms = int((time.perf_counter() - started) * 1000)
    return report


def _run_invariant(run: Run, inv: Invariant, runner: Runner) -> None:
    conflicts = passes = 0
    # A malformed object named by a pass whose writes restored it is still news: such
    # findings of earlier settle passes are kept (the final pass cannot see them anymore).
    earlier: list[Finding] = []
    while True:
        try:
            plan = runner(run)
        except FedkeeperError as exc:
            run.fail(inv, exc)
            return
        except (AttributeError, TypeError, KeyError, ValueError, IndexError) as exc:
            # Data of a shape no planner expected: a finding for this invariant, never a
            # crash of the run (the other invariants still run, the Report still goes out).
            run.report.errors.append(
                RunError(
                    inv.value,
                    f"malformed data read for {inv.value}: {type(exc).__name__}: {exc}",
                    retryable=False,
                )
            )
            return
        last = conflicts + 1 >= MAX_CONFLICT_ATTEMPTS
        conflicted = _apply(run, plan, last_attempt=last)
        if conflicted:
            conflicts += 1
            run.forget_reads()  # a conflict means the world moved: re-read everything
            continue
        passes += 1
        if plan.settle and run.mode == "apply" and passes < MAX_SETTLE_PASSES:
            earlier += [f for f in plan.findings if f.check.endswith(".malformed")]
            continue  # a write this pass unblocks another: plan again on fresh reads
        run.report.findings.extend(f for f in earlier if f not in plan.findings)
        run.report.findings.extend(plan.findings)
        for d in plan.deferred:
            run.defer(d.target, d.reason, retry=d.retry)
        return


def _apply(run: Run, plan: Plan, *, last_attempt: bool) -> bool:
    """Write the plan's changes; True when a conflict asks for a re-read and re-plan.

    A write that failed is not sent again in the same run (a settle pass plans it again);
    a write that depends on one that failed or was skipped is not attempted.
    """
    for change in plan.changes:
        if run.mode == "plan":
            run.report.changes.append(ChangeOutcome(change, Result.PLANNED))
            continue
        key = (change.target, change.action.value)
        if key in run.failed_writes:
            continue  # already failed (and reported) this run
        waiting = run.held(change.target) if run.held is not None else None
        if waiting is not None:
            finding = Finding(Severity.WARNING, "watch.held", f"{change.target}: {waiting}")
            if finding not in run.report.findings:
                run.report.findings.append(finding)
            continue
        blocked = [o for k, o in run.failed_writes.items() if k[0] in change.after]
        if blocked:
            # As retryable as what it waits for: a permanent failure is not fixed by a retry.
            outcome = ChangeOutcome(
                change,
                Result.SKIPPED,
                "not attempted: it needs "
                f"{', '.join(dict.fromkeys(o.change.target for o in blocked))}, whose write "
                + (
                    "was deferred"
                    if all(o.result is Result.DEFERRED for o in blocked)
                    else "failed"
                ),
                any(o.retryable for o in blocked),
                cause=next((o.cause for o in blocked if o.cause), None),
            )
            run.failed_writes[key] = outcome
            run.report.changes.append(outcome)
            continue
        try:
            execute(run, change)
        except ConflictError as exc:
            if not last_attempt:
                return True
            outcome = ChangeOutcome(change, Result.FAILED, str(exc), True, cause=exc.target)
            run.failed_writes[key] = outcome
            run.report.changes.append(outcome)
        except BusyError as exc:
            # Busy with another operation (an add-on update rolling out): the next trigger
            # tries again; no retry storm, no alert.
            outcome = ChangeOutcome(change, Result.DEFERRED, str(exc), False)
            run.failed_writes[key] = outcome
            run.report.changes.append(outcome)
            run.defer(change.target, f"busy: {exc}; the next trigger tries again")
        except ElsewhereError:
            continue  # another run writes that cluster
        except FedkeeperError as exc:
            if isinstance(exc, UnreachableError) and exc.target == "onprem":
                run.defer("onprem", str(exc))
            if exc.target is not None and not isinstance(exc, OutOfTimeError):
                run.target_failed(exc, change.invariant)
            retryable = isinstance(exc, RetryableError)
            outcome = ChangeOutcome(change, Result.FAILED, str(exc), retryable, cause=exc.target)
            run.failed_writes[key] = outcome
            run.report.changes.append(outcome)
        else:
            run.report.changes.append(ChangeOutcome(change, Result.APPLIED))
    return False


def execute(run: Run, change: Change) -> None:
    """Carry out one change through the adapter of its backend."""
    p = change.payload
    op = p.get("op")
    if change.backend == "aws":
        aws = run.conns.aws
        if op == "enable_vgw_route_propagation":
            aws.enable_route_propagation(p["route_table_id"], p["gateway_id"])
        elif op == "update_addon":
            aws.update_addon(
                p["cluster"], p["addon"], p["configuration_values"], p["resolve_conflicts"]
            )
        else:
            raise PermanentError(f"no AWS operation {op!r} for {change.target}")
        return
    cluster = run.eks() if change.backend == "eks" else run.onprem()  # refused if down
    if op == "create":
        cluster.create(p["body"])
    elif op == "replace":
        cluster.replace(p["body"])
    elif op == "patch":
        cluster.patch(
            change.kind,
            change.name,
            p["patch"],
            namespace=change.namespace,
            patch_type=p.get("patch_type", "merge"),
            resource_version=change.resource_version,
        )
    elif op == "delete":
        cluster.delete(
            change.kind,
            change.name,
            namespace=change.namespace,
            resource_version=change.resource_version,
        )
    else:
        raise PermanentError(f"no Kubernetes operation {op!r} for {change.target}")
