"""Cluster-side drift repaired in seconds: Kubernetes watches on what fedkeeper owns.

The :class:`Watcher` holds one watch per :class:`WatchTarget` on both clusters - exactly
the objects fedkeeper owns or depends on, selected by name where it can be - and turns each
relevant change into the scoped reconcile of the invariant the object belongs to, run
in-process through :func:`fedkeeper.service.reconcile` (events are hints: the run re-reads
everything it manages).

* List, then watch from the list's resourceVersion; bookmarks move the resume point on; a
  410 (the version left the server's window) relists and reconciles the target's invariant
  once, since changes may have been missed; a watch the server ends (``timeoutSeconds``) is
  re-opened from the last version seen.
* A cluster that is unreachable (or refuses) is retried with exponential backoff; the
  watches on the other cluster go on.
* Debounced: events gather until ``debounce`` seconds pass without one (or ``max_delay``
  after the first), so a burst costs one run.
* No loops: the watcher records the resourceVersions its own writes produced (the adapter
  reports every write) and skips their events; an echo that slips through finds the
  desired state and writes nothing.
* Resumable: :meth:`Watcher.state` holds the last resourceVersion per target and each
  cluster's liveness; the watch Lambda stores it so the next invocation picks up there.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fedkeeper.adapters.kube import ExpiredError, KubeCluster, WatchEvent
from fedkeeper.config import FederationConfig
from fedkeeper.errors import FedkeeperError, PermanentError
from fedkeeper.invariants.rcc import TYPHA_ACCESS, access_secret_name
from fedkeeper.model import Backend, Invariant, Report, Scope
from fedkeeper.rbac import AWS_NODE
from fedkeeper.service import Connections, ModeName, reconcile

TRIGGER = "watch"
SERVER_TIMEOUT = 300  # seconds per watch request (kube-apiserver caps at 1800-3600)
BACKOFF = (0.5, 30.0)  # first and longest wait before a cluster is tried again


@dataclass(frozen=True)
class WatchTarget:
    """One watch: a kind on one cluster, narrowed to what fedkeeper owns or reads."""

    backend: Backend
    kind: str
    invariant: Invariant
    namespace: str | None = None
    name: str | None = None  # a metadata.name field selector (RBAC resourceNames allow it)

    @property
    def key(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.backend}/{self.kind}/{where}{self.name or '*'}"

    @property
    def field_selector(self) -> str | None:
        return f"metadata.name={self.name}" if self.name else None


def watch_targets(config: FederationConfig) -> list[WatchTarget]:
    """What the watch function watches, per cluster (the snat, ippools and rcc invariants:
    docs/ARCHITECTURE.md, "The invariants")."""
    fed = config.federation
    sa = fed.remote_service_account
    access_ns = fed.access_secret_namespace
    rcc = Invariant.RCC
    targets: list[WatchTarget] = [WatchTarget("onprem", "IPPool", Invariant.IPPOOLS)]
    for backend, rcc_name in (("eks", config.eks_rcc_name), ("onprem", config.onprem_rcc_name)):
        side: Backend = "eks" if backend == "eks" else "onprem"
        targets += [
            WatchTarget(side, "RemoteClusterConfiguration", rcc),
            WatchTarget(side, "Secret", rcc, access_ns, access_secret_name(rcc_name)),
            WatchTarget(side, "Secret", rcc, sa.namespace, sa.name),
            WatchTarget(side, "ServiceAccount", rcc, sa.namespace, sa.name),
            WatchTarget(side, "ClusterRole", rcc, None, sa.name),
            WatchTarget(side, "ClusterRoleBinding", rcc, None, sa.name),
            WatchTarget(side, "Role", rcc, access_ns, TYPHA_ACCESS),
            WatchTarget(side, "RoleBinding", rcc, access_ns, TYPHA_ACCESS),
        ]
    targets.append(WatchTarget("eks", "DaemonSet", Invariant.SNAT, AWS_NODE[1], AWS_NODE[0]))
    return targets


def state_parameter_name(config: FederationConfig) -> str:
    """The SSM parameter the automation stack creates for the watch state."""
    return f"/fedkeeper/{config.name}/watch-state"


STALE_S = 180.0  # a live state not refreshed this long means the watch function stopped


def liveness(state: WatchState, now: datetime) -> list[str]:
    """One line per cluster: is its watch live, and when did it last see a change."""
    updated = _parse_iso(state.updated)
    fresh = updated is not None and (now - updated).total_seconds() <= STALE_S
    lines = []
    for name, c in sorted(state.clusters.items()):
        live = "live" if c.live and fresh else "NOT live"
        seen = f"last change seen {c.last_event}" if c.last_event else "no change seen yet"
        error = f"; last error: {c.error}" if c.error and not (c.live and fresh) else ""
        lines.append(f"watch on {name}: {live} (state of {state.updated}); {seen}{error}")
    return lines or ["watch: no state stored yet (the watch function has not run)"]


def _parse_iso(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


@dataclass
class ClusterWatch:
    """Whether a cluster's watches are live, and when one last delivered a change."""

    live: bool = False
    last_event: str | None = None  # ISO time of the last change seen
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"live": self.live, "last_event": self.last_event, "error": self.error}


@dataclass
class WatchState:
    """What an invocation hands the next: resume points and liveness (JSON-able)."""

    resource_versions: dict[str, str] = field(default_factory=dict)
    clusters: dict[str, ClusterWatch] = field(default_factory=dict)
    updated: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "resource_versions": dict(sorted(self.resource_versions.items())),
            "clusters": {k: v.to_dict() for k, v in sorted(self.clusters.items())},
            "updated": self.updated,
        }

    @classmethod
    def from_dict(cls, data: Any) -> WatchState:
        """Tolerant of a missing or damaged document: anything unreadable starts afresh."""
        if not isinstance(data, dict):
            return cls()
        rvs = data.get("resource_versions")
        clusters = data.get("clusters")
        state = cls(
            resource_versions={
                str(k): str(v) for k, v in (rvs.items() if isinstance(rvs, dict) else [])
            },
            updated=data.get("updated") if isinstance(data.get("updated"), str) else None,
        )
        for name, c in clusters.items() if isinstance(clusters, dict) else []:
            if isinstance(c, dict):
                state.clusters[str(name)] = ClusterWatch(
                    bool(c.get("live")), c.get("last_event"), c.get("error")
                )
        return state


@dataclass
class WatchSummary:
    """What one :meth:`Watcher.run` did."""

    events: int = 0
    skipped_own: int = 0
    relists: int = 0
    reconnects: int = 0
    reports: list[Report] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return sum(r.writes for r in self.reports)


Reconcile = Callable[[Scope], Report]
OwnKey = tuple[str, str, str, str, str]  # backend, kind, namespace, name, resourceVersion


def now_iso(wall: Callable[[], float]) -> str:
    return datetime.fromtimestamp(wall(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Watcher:
    """Watches both clusters until a deadline, reconciling what changed (see module doc)."""

    def __init__(
        self,
        clusters: Callable[[Backend], KubeCluster],
        targets: list[WatchTarget],
        reconcile: Reconcile,
        *,
        state: WatchState | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] | None = None,
        debounce: float = 0.2,
        max_delay: float = 1.0,
        server_timeout: int = SERVER_TIMEOUT,
        grace: float = 5.0,
        backoff: tuple[float, float] = BACKOFF,
        on_reconcile: Callable[[Scope, Report], None] | None = None,
    ) -> None:
        self._clusters = clusters
        self.targets = targets
        self._reconcile = reconcile
        self.state = state or WatchState()
        self._clock = clock
        self._wall = wall
        self._stop = threading.Event()
        self._sleep = sleep or (lambda s: self._stop.wait(s) and None)
        self.debounce = debounce
        self.max_delay = max_delay
        self.server_timeout = server_timeout
        self.grace = grace
        self.backoff = backoff
        self._on_reconcile = on_reconcile
        # (target, the event's object key with its resourceVersion; None after a list)
        self._queue: queue.Queue[tuple[WatchTarget, OwnKey | None]] = queue.Queue()
        self._lock = threading.Lock()
        self._own: set[OwnKey] = set()
        self._opened: dict[str, bool] = {}  # target key → watch open now
        self.summary = WatchSummary()
        self._pending = 0  # changes queued and not yet reconciled

    # --- own writes -----------------------------------------------------------------------

    def own_write(self, backend: str, obj: dict[str, Any]) -> None:
        """Told of each object fedkeeper wrote: its event is an echo, not drift."""
        meta = obj.get("metadata") or {}
        key = (
            backend,
            str(obj.get("kind")),
            str(meta.get("namespace") or ""),
            str(meta.get("name")),
            str(meta.get("resourceVersion")),
        )
        with self._lock:
            self._own.add(key)

    def _enqueue(self, target: WatchTarget, key: OwnKey | None) -> None:
        with self._lock:
            self._pending += 1
        self._queue.put((target, key))

    @staticmethod
    def _event_key(target: WatchTarget, event: WatchEvent) -> OwnKey:
        meta = event.object.get("metadata") or {}
        return (
            target.backend,
            target.kind,
            str(meta.get("namespace") or ""),
            str(meta.get("name")),
            event.resource_version,
        )

    # --- the run --------------------------------------------------------------------------

    def ready(self) -> bool:
        """Whether every target's watch is open."""
        return all(self._opened.get(t.key) for t in self.targets)

    def idle(self) -> bool:
        """No change waits for a reconcile and none is running."""
        with self._lock:
            return self._pending == 0

    def stop(self) -> None:
        """Ask the watches to end (each ends when the server closes its stream)."""
        self._stop.set()

    def run(self, deadline: float) -> WatchSummary:
        """Watch until ``deadline`` (on ``clock``) or :meth:`stop`, then flush and return."""
        threads = [
            threading.Thread(
                target=self._watch_loop,
                args=(t, deadline),
                name=f"watch-{t.key}",
                daemon=True,
            )
            for t in self.targets
        ]
        for t in threads:
            t.start()
        dirty: list[tuple[WatchTarget, OwnKey | None]] = []
        first = last = 0.0
        done_at: float | None = None
        while True:
            done = self._stop.is_set() or self._clock() >= deadline
            if done and done_at is None:
                done_at = time.monotonic()
            try:
                item = self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
            else:
                now = self._clock()
                if not dirty:
                    first = now
                last = now
                dirty.append(item)
                if now - first < self.max_delay:
                    continue  # a steady trickle still runs once max_delay has passed
            now = self._clock()
            if dirty and (done or now - last >= self.debounce or now - first >= self.max_delay):
                self._run_reconcile(dirty)
                dirty = []
            if done and not any(t.is_alive() for t in threads):
                break
            if done_at is not None and time.monotonic() - done_at > self.grace:
                break  # a stream the server has not ended yet: its thread ends with it
            if done:
                self._stop.set()
        while not self._queue.empty():
            dirty.append(self._queue.get())
        if dirty:
            self._run_reconcile(dirty)
        self.state.updated = now_iso(self._wall)
        return self.summary

    def _run_reconcile(self, dirty: list[tuple[WatchTarget, OwnKey | None]]) -> None:
        try:
            self._reconcile_changes(dirty)
        finally:
            with self._lock:
                self._pending -= len(dirty)

    def _reconcile_changes(self, dirty: list[tuple[WatchTarget, OwnKey | None]]) -> None:
        # An event can arrive before the answer to the write that caused it: by now (the
        # debounce) that answer has come, so the echoes of fedkeeper's own writes drop out.
        with self._lock:
            drift = {t.invariant for t, key in dirty if key is None or key not in self._own}
            echoes = sum(1 for _, key in dirty if key is not None and key in self._own)
            self._own.difference_update(key for _, key in dirty if key is not None)
            self.summary.skipped_own += echoes
            self.summary.events -= echoes
        if not drift:
            return
        scope = Scope(frozenset(drift))
        report = self._reconcile(scope)
        self.summary.reports.append(report)
        if self._on_reconcile is not None:
            self._on_reconcile(scope, report)

    def _cluster_state(self, backend: str) -> ClusterWatch:
        with self._lock:
            return self.state.clusters.setdefault(backend, ClusterWatch())

    def _watch_loop(self, target: WatchTarget, deadline: float) -> None:
        failures = 0
        while not self._stop.is_set():
            remaining = deadline - self._clock()
            if remaining < 1:
                return
            try:
                self._watch_once(target, int(min(self.server_timeout, remaining)))
                failures = 0
            except ExpiredError:
                with self._lock:  # relist (which checks the invariant: changes were missed)
                    self.state.resource_versions.pop(target.key, None)
                    self.summary.relists += 1
            except FedkeeperError as exc:
                self._opened[target.key] = False
                cluster = self._cluster_state(target.backend)
                cluster.live = any(
                    self._opened.get(t.key) for t in self.targets if t.backend == target.backend
                )
                cluster.error = str(exc)
                failures += 1
                with self._lock:
                    self.summary.reconnects += 1
                wait = min(self.backoff[1], self.backoff[0] * 2 ** (failures - 1))
                if isinstance(exc, PermanentError):
                    wait = self.backoff[1]  # forbidden or misconfigured: do not hammer
                self._sleep(wait)

    def _watch_once(self, target: WatchTarget, timeout: int) -> None:
        cluster = self._clusters(target.backend)
        with self._lock:
            rv = self.state.resource_versions.get(target.key)
        if not rv:
            _, rv = cluster.list_at(
                target.kind, target.namespace, field_selector=target.field_selector
            )
            with self._lock:
                self.state.resource_versions[target.key] = rv
            # Nothing says what changed before this list: check the target's invariant once.
            self._enqueue(target, None)
        events = cluster.watch(
            target.kind,
            target.namespace,
            resource_version=rv,
            timeout_seconds=timeout,
            field_selector=target.field_selector,
        )
        self._opened[target.key] = True
        state = self._cluster_state(target.backend)
        state.live, state.error = True, None
        for event in events:
            with self._lock:
                self.state.resource_versions[target.key] = event.resource_version
            if event.type == "BOOKMARK":
                continue
            with self._lock:
                self.summary.events += 1
            state.last_event = now_iso(self._wall)
            self._enqueue(target, self._event_key(target, event))


def watcher_for(conns: Connections, mode: ModeName, **options: Any) -> Watcher:
    """A :class:`Watcher` on the clusters of ``conns`` whose changes run
    :func:`fedkeeper.service.reconcile` through the same connections."""
    lock = threading.Lock()

    def cluster(backend: Backend) -> KubeCluster:
        with lock:  # the clients are built lazily: once, whichever thread asks first
            kube = conns.eks() if backend == "eks" else conns.onprem()
            kube.on_write = watcher.own_write
            return kube

    def run(scope: Scope) -> Report:
        return reconcile(conns, scope, mode, trigger=TRIGGER)

    watcher = Watcher(cluster, watch_targets(conns.config), run, **options)
    return watcher
