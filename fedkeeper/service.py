"""The engine: observe → desire → plan → apply, for any scope, from every entry point.

``reconcile(conns, scope, mode)`` is the one function the Lambdas, the CLI and the sandbox
call. Each invariant in scope is observed afresh (events are hints, never state), planned by
its pure module, and — in mode ``apply`` — written. A failure on one target does not stop the
others; an unreachable on-prem cluster defers its work; a 409 re-reads and re-plans.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
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
from fedkeeper.topology.model import EksCluster, OnPremCluster

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

    One Kubernetes client per cluster, keyed by the cluster's mesh name (its backend in
    plans and report targets), each built lazily when a run first touches it. An EKS
    cluster's from ``describe_cluster`` and a bearer token refreshed before it expires
    (``clock``: monotonic seconds, injectable); a site's from the kubeconfig in its
    credentials secret in Secrets Manager, or from a kubeconfig given for its name
    (``kubeconfigs``, e.g. a local context for the CLI or the sandbox's API servers). A 401
    from a site (its credentials were rotated) re-reads the secret once and retries; a 401
    from EKS mints a new token once and retries. ``eks_kubeconfig``/``onprem_kubeconfig``
    give the kubeconfig of the first EKS cluster and the first site (the two-cluster case).
    """

    def __init__(
        self,
        config: FederationConfig,
        session: boto3.Session,
        *,
        targets: Targets | None = None,
        kubeconfigs: Mapping[str, dict[str, Any]] | None = None,
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
        given = dict(kubeconfigs or {})
        eks_clusters, sites = config.eks_clusters(), config.sites()
        if eks_kubeconfig is not None and eks_clusters:
            given.setdefault(eks_clusters[0].name, eks_kubeconfig)
        if onprem_kubeconfig is not None and sites:
            given.setdefault(sites[0].name, onprem_kubeconfig)
        self._given = given  # kubeconfigs given by name (never re-read)
        self._kubeconfigs: dict[str, dict[str, Any]] = dict(given)  # sites: read or given
        self._clients: dict[str, KubeCluster] = {}
        self._eks_info: dict[str, dict[str, Any]] = {}
        self._tokens: dict[str, EksTokenSource] = {}
        # Told of every object this process writes to a cluster (a watcher skips its echo).
        self.on_write: Callable[[str, dict[str, Any]], None] | None = None

    def sibling(self) -> Connections:
        """Connections to the same places with clients, counter and run guard of their own:
        for a run beside another on another thread (the watch's per-cluster repairs)."""
        twin = Connections(
            self.config,
            self.session,
            targets=self.targets,
            kubeconfigs=self._given,
            clock=self.clock,
            kube_timeout=self.kube_timeout,
        )
        twin.on_write = self.on_write
        return twin

    @property
    def eks_name(self) -> str:
        """The mesh name (backend) of the federation's one EKS cluster (two-cluster case)."""
        return self.config.sole_eks().name

    @property
    def site_name(self) -> str:
        """The mesh name (backend) of the federation's one site (two-cluster case)."""
        return self.config.sole_site().name

    @property
    def cluster_name(self) -> str:
        """The one EKS cluster's own name (``Targets.cluster_name`` wins)."""
        return self.targets.cluster_name or self.config.sole_eks().cluster_name

    def eks_cluster_name(self, name: str) -> str:
        """The EKS cluster's own name (for the EKS API) of the cluster called ``name``."""
        cluster = self.config.cluster(name)
        if not isinstance(cluster, EksCluster):
            raise PermanentError(f"{name}: not an EKS cluster")
        if self.targets.cluster_name and len(self.config.eks_clusters()) == 1:
            return self.targets.cluster_name
        return cluster.cluster_name

    def alerting_aws(self) -> AwsAdapter:
        """AWS for the calls after a run (SNS, the episode store): two short attempts each,
        so they fit in the margin the run leaves the invocation."""
        if self._alerting is None:
            self._alerting = AwsAdapter(
                self.session, self.counter, config=ALERT_CONFIG, worst_call_s=ALERT_WORST_CALL_S
            )
        return self._alerting

    def eks_cluster(self, name: str | None = None) -> dict[str, Any]:
        """``describe_cluster`` output of EKS cluster ``name`` (default: the one EKS
        cluster), read once per process (endpoint and CA are stable)."""
        key = name if name is not None else self.eks_name
        if key not in self._eks_info:
            self._eks_info[key] = self.aws.describe_cluster(self.eks_cluster_name(key))
        return self._eks_info[key]

    def use_guard(self, guard: RunGuard | None) -> None:
        """The current run's deadline and failed targets, for every adapter (None: no run)."""
        self._guard = guard
        self.aws.guard = guard
        for cluster in self._clients.values():
            cluster.guard, cluster.timeout = guard, self.kube_timeout

    def _ready(self, cluster: KubeCluster) -> KubeCluster:
        cluster.guard, cluster.timeout = self._guard, self.kube_timeout
        cluster.on_write = self.on_write
        return cluster

    def cluster(self, name: str) -> KubeCluster:
        """The client of the cluster called ``name`` (its mesh name), built on first use."""
        client = self._clients.get(name)
        if client is None:
            try:
                member = self.config.cluster(name)
            except KeyError:
                raise PermanentError(
                    f"{name}: no cluster of that name in the federation "
                    f"({', '.join(self.config.names())})"
                ) from None
            build = self._build_eks if isinstance(member, EksCluster) else self._build_site
            client = self._clients[name] = self._ready(build(name))
        return client

    def _build_eks(self, name: str) -> KubeCluster:
        # The kubernetes client loads when a run first touches a cluster, not with the engine.
        from fedkeeper.adapters.kube import KubeCluster

        if name in self._given:
            return KubeCluster.from_kubeconfig(name, self._given[name], self.types, self.counter)
        tokens = self._tokens.get(name)
        if tokens is None:
            own = self.eks_cluster_name(name)
            tokens = self._tokens[name] = EksTokenSource(
                lambda: eks_token(self.session, own), self.clock
            )
        kubeconfig = eks_kubeconfig(self.eks_cluster(name), tokens.token())
        eks = KubeCluster.from_kubeconfig(name, kubeconfig, self.types, self.counter)
        keep_bearer_token_fresh(eks.api.configuration, tokens.token)

        def remint() -> Any:  # a kubernetes ApiClient
            """After a 401 (e.g. a container frozen past the token's life): a new token."""
            tokens.discard()
            return eks.api

        eks.reauthenticate = remint
        return eks

    def _build_site(self, name: str) -> KubeCluster:
        from fedkeeper.adapters.kube import KubeCluster, api_client_from_kubeconfig

        return KubeCluster(
            name,
            api_client_from_kubeconfig(name, self._site_config(name)),
            self.types,
            self.counter,
            reauthenticate=None if name in self._given else lambda: self._reread_site(name),
        )

    def credentials_secret(self, name: str) -> str | None:
        """The Secrets Manager secret holding site ``name``'s kubeconfig (None: no site)."""
        member = self.config.cluster(name)
        if not isinstance(member, OnPremCluster):
            return None
        if self.targets.onprem_secret and len(self.config.sites()) == 1:
            return self.targets.onprem_secret
        return member.credentials_secret

    def _site_config(self, name: str) -> dict[str, Any]:
        if name not in self._kubeconfigs:
            secret = self.credentials_secret(name) or ""
            text = self.aws.secret_string(secret)
            self._kubeconfigs[name] = parse_kubeconfig(text, f"secret {secret}")
        return self._kubeconfigs[name]

    def _reread_site(self, name: str) -> Any:  # a kubernetes ApiClient
        """A client with the credentials now in the site's secret (after a 401)."""
        from fedkeeper.adapters.kube import api_client_from_kubeconfig

        self._kubeconfigs.pop(name, None)
        return api_client_from_kubeconfig(name, self._site_config(name))

    def eks(self) -> KubeCluster:
        """The one EKS cluster's client (two-cluster case)."""
        return self.cluster(self.eks_name)

    def onprem(self) -> KubeCluster:
        """The one site's client (two-cluster case)."""
        return self.cluster(self.site_name)

    def forget(self, name: str) -> None:
        """Drop cluster ``name``'s client (its credentials may have been rotated)."""
        client = self._clients.pop(name, None)
        if client is not None:
            client.close()
        if name not in self._given:
            self._kubeconfigs.pop(name, None)

    def forget_onprem(self) -> None:
        """Drop the one site's client (two-cluster case)."""
        self.forget(self.site_name)

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()


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
    for backend in conns.config.names() if clusters is not None else ():
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
            if isinstance(exc, UnreachableError) and run.is_site(exc.target):
                run.defer(str(exc.target), str(exc))
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
    cluster = run.cluster(change.backend)  # refused if down
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
