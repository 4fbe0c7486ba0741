"""Cluster-side drift repaired in seconds: Kubernetes watches on what fedkeeper owns.

The :class:`Watcher` holds one watch per :class:`WatchTarget` on both clusters - exactly
the objects fedkeeper owns or depends on, selected by name where it can be - and turns each
relevant change into the scoped reconcile of the invariant the object belongs to, run
in-process through :func:`fedkeeper.service.reconcile` (events are hints: the run re-reads
everything it manages).

* **Watches that always recover.** List, then watch from the list's resourceVersion;
  bookmarks move the resume point on. Any error the stream reports, and any resume point the
  server refuses (compacted away, ahead of the server, unparsable), is judged by its reason
  and message - the Calico API server sends ``InternalError`` with no code - and answered
  by a relist. Relists of one watch in a row back off (the first at once, then 0.5-1 s,
  doubling, with jitter, to 15-30 s), so a server that refuses every watch costs at most
  :data:`MAX_LISTS_PER_MINUTE` lists a minute. A relist reconciles only when the list
  differs from what the watch last knew. A watch the server ends (``timeoutSeconds``) is
  re-opened from the last version seen. A stream that says nothing for :data:`SILENCE_S`
  (its server timeout is shorter, so a healthy one always ends or speaks first) is cut and
  re-opened. A line that is no event is logged and skipped.
* **The resume point belongs to one federation and one cluster.** The state names the
  federation and the watch targets it was made for, and each cluster's identity (the UID of
  its ``kube-system`` namespace); another federation's state, or one that cannot be read, is
  dropped, and a cluster whose identity changed (rebuilt) is relisted.
* **Repairs under a budget, one queue per cluster.** A change marks its invariant in its
  cluster's queue; after ``debounce`` seconds without another (``max_delay`` at most) the
  queue runs one reconcile confined to that cluster, so a slow cluster never delays the
  other's repairs; ``rcc`` spans both clusters, so a run of it is followed by one of both
  (after it, never beside it on the same objects).
  Every run gets what is left of the watch's time; what is still queued at the end is
  stored as pending and run by the next invocation.
* **Fights end** (:mod:`fedkeeper.fights`): an object repaired again and again is held, an
  episode says who fights it, and its repairs back off to one an hour.
* **No loops**: the watcher records the resourceVersions its own writes produced (the
  adapter reports every write) and skips their events; an echo that slips through finds the
  desired state and writes nothing.
* A cluster that is unreachable (or refuses) is retried with exponential backoff; the
  watches on the other cluster go on. A cluster is *live* only while all its watches are
  open.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fedkeeper.adapters.kube import FIELD_MANAGER, ExpiredError, KubeCluster, WatchEvent
from fedkeeper.config import FederationConfig
from fedkeeper.errors import FedkeeperError, PermanentError, UnreachableError
from fedkeeper.fights import Fights, Tracked
from fedkeeper.invariants.rcc import TYPHA_ACCESS, access_secret_name
from fedkeeper.model import Backend, Invariant, Report, Result, Scope
from fedkeeper.rbac import AWS_NODE
from fedkeeper.service import Connections, ModeName, reconcile

TRIGGER = "watch"
# Seconds per watch request: a healthy stream ends (or speaks) at least this often, so one
# that stays silent for SILENCE_S is not healthy.
SERVER_TIMEOUT = 45
SILENCE_S = 55.0
BACKOFF = (0.5, 30.0)  # first and longest wait before a failing cluster is tried again
RELIST_BACKOFF = (1.0, 30.0)  # before the 2nd relist in a row, and the longest; jitter ×0.5-1
MAX_LISTS_PER_MINUTE = 12
MIN_RUN_S = 2.0  # a repair is not started with less of the watch's time left
OWN_WRITE_TTL_S = 120.0  # how long an own write's version is kept to recognise its echo
ERROR_CHARS = 160  # an error kept in the state is cut to this length
STATE_VERSION = 2
IDENTITY = ("Namespace", "kube-system")  # its UID names the cluster
BOTH = "both"  # the queue whose runs read and write both clusters


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
    config.require_two_clusters()  # the remote token Secret below has the two-cluster name
    targets: list[WatchTarget] = [
        WatchTarget(site.name, "IPPool", Invariant.IPPOOLS) for site in config.sites()
    ]
    for side in [c.name for c in (*config.eks_clusters(), *config.sites())]:
        targets += [WatchTarget(side, "RemoteClusterConfiguration", rcc)]
        targets += [
            WatchTarget(side, "Secret", rcc, access_ns, access_secret_name(peer))
            for peer in config.peers(side)
        ]
        targets += [
            WatchTarget(side, "Secret", rcc, sa.namespace, sa.name),
            WatchTarget(side, "ServiceAccount", rcc, sa.namespace, sa.name),
            WatchTarget(side, "ClusterRole", rcc, None, sa.name),
            WatchTarget(side, "ClusterRoleBinding", rcc, None, sa.name),
            WatchTarget(side, "Role", rcc, access_ns, TYPHA_ACCESS),
            WatchTarget(side, "RoleBinding", rcc, access_ns, TYPHA_ACCESS),
        ]
    targets += [
        WatchTarget(eks.name, "DaemonSet", Invariant.SNAT, AWS_NODE[1], AWS_NODE[0])
        for eks in config.eks_clusters()
    ]
    return targets


def targets_digest(targets: list[WatchTarget]) -> str:
    """Names the target list a state was made for (its resume points are by position)."""
    return hashlib.sha256("\n".join(t.key for t in targets).encode()).hexdigest()[:12]


def state_parameter_name(config: FederationConfig) -> str:
    """The SSM parameter the automation stack creates for the watch state."""
    return f"/fedkeeper/{config.name}/watch-state"


def relist_wait(relists: int, jitter: float) -> float:
    """Seconds to wait before the ``relists``-th relist of one watch in a row
    (``jitter`` in [0, 1)): none for the first, then 0.5-1 s doubling to 15-30 s."""
    if relists <= 1:
        return 0.0
    first, longest = RELIST_BACKOFF
    return float(min(longest, first * 2 ** (relists - 2)) * (0.5 + 0.5 * jitter))


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
    """Whether a cluster's watches are live, when one last delivered a change, and which
    cluster it is (the UID of its kube-system namespace)."""

    live: bool = False
    last_event: str | None = None  # ISO time of the last change seen
    error: str | None = None
    identity: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "live": self.live,
            "last_event": self.last_event,
            "error": self.error[:ERROR_CHARS] if self.error else None,
            "id": self.identity,
        }


@dataclass
class WatchState:
    """What an invocation hands the next (JSON-able, a few KB at most): the federation and
    targets it belongs to, resume points by target position, each cluster's liveness and
    identity, the repairs still to run, and the objects being fought over."""

    resource_versions: dict[str, str] = field(default_factory=dict)  # target position → rv
    clusters: dict[str, ClusterWatch] = field(default_factory=dict)
    updated: str | None = None
    federation: str | None = None
    targets: str | None = None  # targets_digest of the list the positions refer to
    pending: list[str] = field(default_factory=list)  # "queue:invariant"
    fights: dict[str, Any] = field(default_factory=dict)  # fedkeeper.fights, as JSON

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "federation": self.federation,
            "targets": self.targets,
            "rv": dict(sorted(self.resource_versions.items(), key=lambda kv: int(kv[0]))),
            "clusters": {k: v.to_dict() for k, v in sorted(self.clusters.items())},
            "pending": sorted(set(self.pending)),
            "fights": self.fights,
            "updated": self.updated,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> WatchState:
        """Tolerant of a missing, damaged or older document: what cannot be read is left
        out (a state without its federation is then not :meth:`usable`)."""
        if not isinstance(data, dict):
            return cls()

        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) else None

        rvs = data.get("rv")
        state = cls(
            resource_versions={
                str(k): str(v)
                for k, v in (rvs.items() if isinstance(rvs, dict) else [])
                if str(k).isdigit() and isinstance(v, str | int)
            },
            updated=text("updated"),
            federation=text("federation") if data.get("version") == STATE_VERSION else None,
            targets=text("targets"),
            pending=[str(p) for p in data.get("pending") or [] if isinstance(p, str)][:16],
            fights=data["fights"] if isinstance(data.get("fights"), dict) else {},
        )
        clusters = data.get("clusters")
        for name, c in clusters.items() if isinstance(clusters, dict) else []:
            if isinstance(c, dict):
                state.clusters[str(name)] = ClusterWatch(
                    bool(c.get("live")),
                    c.get("last_event") if isinstance(c.get("last_event"), str) else None,
                    str(c["error"])[:ERROR_CHARS] if c.get("error") else None,
                    c.get("id") if isinstance(c.get("id"), str) else None,
                )
        return state

    def usable(self, federation: str, targets: str) -> bool:
        """Whether this state's resume points are this federation's, for these targets."""
        return self.federation == federation and self.targets == targets


@dataclass
class WatchSummary:
    """What one :meth:`Watcher.run` did."""

    events: int = 0
    skipped_own: int = 0
    lists: int = 0
    relists: int = 0
    reconnects: int = 0
    malformed: int = 0
    silent: int = 0  # streams cut after SILENCE_S without a word
    reports: list[Report] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return sum(r.writes for r in self.reports)


# (queue, scope, seconds left, the hold of fought-over targets) → the run's Report
Repair = Callable[[str, Scope, float, Callable[[str], str | None]], Report]
OwnKey = tuple[str, str, str, str, str]  # backend, kind, namespace, name, resourceVersion
Log = Callable[[str, dict[str, Any]], None]


def now_iso(wall: Callable[[], float]) -> str:
    return datetime.fromtimestamp(wall(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stdlib_log(message: str, extra: dict[str, Any]) -> None:
    logging.getLogger(__name__).warning("%s %s", message, extra)


def object_target(backend: str, obj: dict[str, Any]) -> str:
    """The object as a Report names it (``backend/Kind/[namespace/]name``)."""
    meta = obj.get("metadata") or {}
    ns = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
    return f"{backend}/{obj.get('kind')}/{ns}{meta.get('name')}"


def last_manager(obj: dict[str, Any]) -> str:
    """The field manager that wrote ``obj`` last, besides fedkeeper ("" when its
    managedFields do not say)."""
    entries = (obj.get("metadata") or {}).get("managedFields")
    others = [
        e
        for e in (entries if isinstance(entries, list) else [])
        if isinstance(e, dict) and e.get("manager") and e.get("manager") != FIELD_MANAGER
    ]
    if not others:
        return ""
    return str(max(others, key=lambda e: str(e.get("time") or "")).get("manager"))


@dataclass
class _Stream:
    """An open watch stream, for the silence watchdog."""

    last: float  # clock time of its opening or of its last event
    cut: Callable[[], None] | None = None
    over_since: float | None = None  # real time it was first seen past SILENCE_S
    silenced: bool = False


@dataclass
class _Queue:
    """One repair queue: the changes it has not reconciled yet, debounced."""

    name: str
    items: list[tuple[Invariant, OwnKey | None]] = field(default_factory=list)
    first: float = 0.0
    last: float = 0.0
    running: bool = False


class Watcher:
    """Watches both clusters until a deadline, repairing what changed (see module doc)."""

    def __init__(
        self,
        clusters: Callable[[Backend], KubeCluster],
        targets: list[WatchTarget],
        repair: Repair,
        *,
        federation: str = "",
        state: WatchState | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        debounce: float = 0.2,
        max_delay: float = 1.0,
        server_timeout: int = SERVER_TIMEOUT,
        silence_s: float = SILENCE_S,
        grace: float = 5.0,
        backoff: tuple[float, float] = BACKOFF,
        jitter: Callable[[], float] = random.random,
        on_reconcile: Callable[[Scope, Report], None] | None = None,
        on_fights: Callable[[list[Tracked]], None] | None = None,
        log: Log = _stdlib_log,
    ) -> None:
        self._clusters = clusters
        self.targets = targets
        self._repair = repair
        self.federation = federation
        self._clock = clock
        self._wall = wall
        self._stop = threading.Event()
        self.debounce = debounce
        self.max_delay = max_delay
        self.server_timeout = server_timeout
        self.silence_s = silence_s
        self.grace = grace
        self.backoff = backoff
        self._jitter = jitter
        self._on_reconcile = on_reconcile
        self._on_fights = on_fights
        self._log = log
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self.state = self._usable(state or WatchState())
        self.fights = Fights.from_json(self.state.fights)
        self._positions = {t.key: str(i) for i, t in enumerate(targets)}
        # One repair queue per cluster watched (its backend), and one for both.
        self._watched = tuple(dict.fromkeys(t.backend for t in targets))
        self._queues = {name: _Queue(name) for name in (*self._watched, BOTH)}
        self._own: dict[OwnKey, float] = {}
        self._opened: dict[str, bool] = {}  # target key → watch open now
        self._streams: dict[str, _Stream] = {}
        self._known: dict[str, dict[str, str]] = {}  # target key → {object: rv} now
        self._identified: set[str] = set()  # clusters whose identity this run checked
        self._id_locks = {b: threading.Lock() for b in self._watched}
        self._changers: dict[str, str] = {}  # target → field manager of its last change
        self._deadline = float("inf")
        self.closers: list[Callable[[], None]] = []  # run when run() returns
        self._done = threading.Event()  # the watches end; queues drain (stop) or pend
        self.summary = WatchSummary()
        self._pending = 0  # changes queued and not yet reconciled
        for entry in self.state.pending:
            queue, _, inv = entry.partition(":")
            if queue in self._queues and inv in {i.value for i in Invariant}:
                self._queue_add(self._queues[queue], Invariant(inv), None)
        self.state.pending = []

    def _usable(self, state: WatchState) -> WatchState:
        digest = targets_digest(self.targets)
        if state.usable(self.federation, digest):
            return state
        if state.federation or state.resource_versions:
            self._log(
                "watch state belongs to another federation or target list, or is unreadable; "
                "relisting",
                {"stored_federation": state.federation, "federation": self.federation},
            )
        return WatchState(
            clusters=state.clusters if state.federation == self.federation else {},
            federation=self.federation,
            targets=digest,
        )

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
            now = self._clock()
            self._own[key] = now
            for old in [k for k, t in self._own.items() if now - t > OWN_WRITE_TTL_S]:
                del self._own[old]

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

    # --- queues ---------------------------------------------------------------------------

    def _queue_add(self, q: _Queue, inv: Invariant, key: OwnKey | None) -> None:
        """Under ``_lock`` (or before the threads start)."""
        now = self._clock()
        if not q.items:
            q.first = now
        q.last = now
        q.items.append((inv, key))
        self._pending += 1

    def _enqueue(self, target: WatchTarget, key: OwnKey | None) -> None:
        with self._wake:
            self._queue_add(self._queues[target.backend], target.invariant, key)
            self._wake.notify_all()

    # --- the run --------------------------------------------------------------------------

    def ready(self) -> bool:
        """Whether every target's watch is open."""
        with self._lock:
            return all(self._opened.get(t.key) for t in self.targets)

    def idle(self) -> bool:
        """No change waits for a reconcile and none is running."""
        with self._lock:
            return self._pending == 0

    def stop(self) -> None:
        """Ask the watches to end (each ends when the server closes its stream or is cut);
        what is queued is still repaired."""
        self._stop.set()

    def run(self, deadline: float) -> WatchSummary:
        """Watch until ``deadline`` (on ``clock``) or :meth:`stop`, then return; what is
        still queued at the deadline is kept in :attr:`state` as pending."""
        self._deadline = deadline
        watches = [
            threading.Thread(target=self._watch_loop, args=(t,), name=f"watch-{t.key}", daemon=True)
            for t in self.targets
        ]
        workers = [
            threading.Thread(target=self._worker, args=(q,), name=f"repair-{q.name}", daemon=True)
            for q in self._queues.values()
        ]
        for thread in (*watches, *workers):
            thread.start()
        while not self._stop.is_set() and self._clock() < deadline:
            self._watchdog()
            self._check_fights()
            self._stop.wait(0.05)
        self._stop.set()
        self._done.set()
        for stream in list(self._streams.values()):
            if stream.cut is not None:
                stream.cut()  # watches end now, not at their server timeout
        ends = time.monotonic() + self.grace
        for thread in watches:
            thread.join(max(ends - time.monotonic(), 0.0))
        with self._wake:
            self._wake.notify_all()
        for thread in workers:
            thread.join()
        with self._lock:
            left = {f"{q.name}:{inv.value}" for q in self._queues.values() for inv, _ in q.items}
            self.state.pending = sorted(left)
            self.state.fights = self.fights.to_json()
        self.state.updated = now_iso(self._wall)
        for close in self.closers:
            close()
        return self.summary

    def _watchdog(self) -> None:
        """Cut streams silent for longer than ``silence_s`` (and past their end by a little
        real time, so that a server about to end one on time gets to)."""
        now, real = self._clock(), time.monotonic()
        with self._lock:
            streams = list(self._streams.items())
        for key, stream in streams:
            if stream.silenced or stream.cut is None or now - stream.last <= self.silence_s:
                stream.over_since = None
                continue
            if stream.over_since is None:
                stream.over_since = real
            elif real - stream.over_since >= 0.2:
                stream.silenced = True
                self._log(
                    "watch stream silent; cutting and re-opening it",
                    {"watch": key, "silent_s": round(now - stream.last)},
                )
                stream.cut()

    def _check_fights(self) -> None:
        due = self.fights.due(self._wall())
        with self._wake:
            for t in due:
                if t.cluster in self._queues:
                    queue = self._queues[t.cluster]
                    self._queue_add(queue, Invariant(t.invariant), None)
            if due:
                self._wake.notify_all()

    # --- repairs ---------------------------------------------------------------------------

    def _worker(self, q: _Queue) -> None:
        while True:
            with self._wake:
                while True:
                    ended = self._done.is_set()
                    if ended and (not q.items or self._clock() >= self._deadline):
                        return
                    now = self._clock()
                    if q.items and (
                        ended or now - q.last >= self.debounce or now - q.first >= self.max_delay
                    ):
                        break
                    self._wake.wait(0.05)
                left = self._deadline - self._clock()
                if left < MIN_RUN_S:
                    return  # the rest is stored as pending
                items, q.items = q.items, []
                q.running = True
                # An event can arrive before the answer to the write that caused it: by now
                # (the debounce) that answer has come, so the echoes of own writes drop out.
                drift = {inv for inv, key in items if key is None or key not in self._own}
                echoes = sum(1 for _, key in items if key is not None and key in self._own)
                self.summary.skipped_own += echoes
                self.summary.events -= echoes
            try:
                if drift:
                    self._run_repair(q.name, Scope(frozenset(drift)), left)
            except Exception as exc:  # never lose the worker: the next change tries again
                self._log("watch repair failed", {"queue": q.name, "error": str(exc)[:300]})
            finally:
                with self._wake:
                    q.running = False
                    self._pending -= len(items)

    def _run_repair(self, queue: str, scope: Scope, left: float) -> None:
        report = self._repair(queue, scope, left, lambda t: self.fights.hold(t, self._wall()))
        with self._wake:
            self.summary.reports.append(report)
            if queue != BOTH and Invariant.RCC in scope:
                # rcc objects on one cluster are built from the other's (tokens, CAs): once
                # this cluster's part is done, a run of both does the rest.
                self._queue_add(self._queues[BOTH], Invariant.RCC, None)
                self._wake.notify_all()
        self._track_fights(queue, scope, report)
        if self._on_reconcile is not None:
            self._on_reconcile(scope, report)

    def _track_fights(self, queue: str, scope: Scope, report: Report) -> None:
        now = self._wall()
        changed = [c.change for c in report.changes if c.result is Result.APPLIED]
        held = [f.message.split(": ", 1)[0] for f in report.findings if f.check == "watch.held"]
        with self._lock:
            opened = [
                c.target
                for c in changed
                if self.fights.repaired(
                    c.target, c.invariant.value, c.backend, now, self._changers.get(c.target, "")
                )
            ]
            failed = {e.invariant for e in report.errors} | {
                c.change.invariant.value for c in report.changes if c.result is not Result.APPLIED
            }
            clusters = self._watched if queue == BOTH else (queue,)
            ended = self.fights.looked(
                [n for n in scope.names() if n not in failed],
                clusters,
                [c.target for c in changed] + held,
            )
            active = self.fights.active()
            self.state.fights = self.fights.to_json()
        for target in opened:
            self._log("fight: an owned object keeps being changed back", {"target": target})
        for t in ended:
            self._log("fight over: the object stayed as fedkeeper wants it", {"target": t.target})
        if (opened or ended) and self._on_fights is not None:
            self._on_fights(active)

    # --- watches ---------------------------------------------------------------------------

    def _cluster_state(self, backend: str) -> ClusterWatch:
        with self._lock:
            return self.state.clusters.setdefault(backend, ClusterWatch())

    def _set_open(self, target: WatchTarget, opened: bool, error: str | None = None) -> None:
        with self._lock:
            self._opened[target.key] = opened
            cluster = self.state.clusters.setdefault(target.backend, ClusterWatch())
            cluster.live = all(
                self._opened.get(t.key) for t in self.targets if t.backend == target.backend
            )
            if error is not None:
                cluster.error = error[:ERROR_CHARS]
            elif cluster.live:
                cluster.error = None

    def _sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the watcher's clock (emulated time moves it on in tests)."""
        until = self._clock() + seconds
        while not self._stop.is_set() and self._clock() < until:
            self._stop.wait(min(0.05, max(until - self._clock(), 0.001)))

    def _watch_loop(self, target: WatchTarget) -> None:
        failures = relists = 0
        while not self._stop.is_set():
            remaining = self._deadline - self._clock()
            if remaining < 1:
                return
            try:
                if relists and not self._resume_point(target):
                    self._sleep(relist_wait(relists, self._jitter()))
                    if self._stop.is_set():
                        return
                healthy = self._watch_once(target, int(min(self.server_timeout, remaining)))
                failures = 0
                if healthy:
                    relists = 0
            except ExpiredError as exc:
                relists += 1
                with self._lock:
                    self.state.resource_versions.pop(self._positions[target.key], None)
                    self.summary.relists += 1
                self._set_open(target, False, str(exc))
                self._log(
                    "watch resume point refused; relisting",
                    {"watch": target.key, "cause": exc.cause, "error": str(exc)[:300]},
                )
            except FedkeeperError as exc:
                if self._stop.is_set():
                    return  # the run is over: its own cut ended the stream
                stream = self._streams.get(target.key)
                if stream is not None and stream.silenced:
                    with self._lock:
                        self.summary.silent += 1
                    silent = f"{target.key}: silent for {self.silence_s:.0f} s; re-opened"
                    self._set_open(target, False, silent)
                    continue
                self._set_open(target, False, str(exc))
                failures += 1
                with self._lock:
                    self.summary.reconnects += 1
                wait = min(self.backoff[1], self.backoff[0] * 2 ** (failures - 1))
                if isinstance(exc, PermanentError):
                    wait = self.backoff[1]  # forbidden or misconfigured: do not hammer
                self._sleep(wait)
            except Exception as exc:  # a bug or a shape nobody expected: log, never die
                if self._stop.is_set():
                    return
                self._set_open(target, False, f"{target.key}: {type(exc).__name__}: {exc}")
                self._log("watch failed", {"watch": target.key, "error": repr(exc)[:300]})
                failures += 1
                self._sleep(min(self.backoff[1], self.backoff[0] * 2 ** (failures - 1)))
            finally:
                with self._lock:
                    self._streams.pop(target.key, None)

    def _resume_point(self, target: WatchTarget) -> str | None:
        with self._lock:
            return self.state.resource_versions.get(self._positions[target.key])

    def _identify(self, backend: Backend, cluster: KubeCluster) -> None:
        """Once per run and cluster: a cluster with another identity than the stored one (a
        rebuilt cluster under the same name) has its resume points dropped."""
        with self._id_locks[backend]:
            if backend in self._identified:
                return
            ns = cluster.get(*IDENTITY) or {}
            uid = str((ns.get("metadata") or {}).get("uid") or "")
            state = self._cluster_state(backend)
            if state.identity and uid and state.identity != uid:
                self._log(
                    "cluster identity changed (rebuilt?); relisting its watches",
                    {"cluster": backend, "was": state.identity, "now": uid},
                )
                with self._lock:
                    for t in self.targets:
                        if t.backend == backend:
                            self.state.resource_versions.pop(self._positions[t.key], None)
            state.identity = uid or state.identity
            self._identified.add(backend)

    def _watch_once(self, target: WatchTarget, timeout: int) -> bool:
        """One watch request (after a list when there is no resume point); True when the
        server ended it cleanly (a healthy watch)."""
        cluster = self._clusters(target.backend)
        self._identify(target.backend, cluster)
        position = self._positions[target.key]
        rv = self._resume_point(target)
        if not rv:
            items, rv = cluster.list_at(
                target.kind, target.namespace, field_selector=target.field_selector
            )
            listed = {_object_key(i): _object_rv(i) for i in items}
            with self._lock:
                self.summary.lists += 1
                self.state.resource_versions[position] = rv
                changed = self._known.get(target.key) != listed
                self._known[target.key] = listed
            if changed:  # nothing says what changed before this list: check once
                self._enqueue(target, None)
        stream = _Stream(self._clock())
        with self._lock:
            self._streams[target.key] = stream

        def opened(cut: Callable[[], None]) -> None:
            stream.cut = cut
            self._set_open(target, True)

        events = cluster.watch(
            target.kind,
            target.namespace,
            resource_version=rv,
            timeout_seconds=timeout,
            field_selector=target.field_selector,
            on_open=opened,
        )
        for event in events:
            stream.last = self._clock()
            if event.type == "MALFORMED":
                with self._lock:
                    self.summary.malformed += 1
                self._log("watch event skipped", {"watch": target.key, "problem": event.problem})
                continue
            with self._lock:
                self.state.resource_versions[position] = event.resource_version
            if event.type != "BOOKMARK":
                self._seen(target, event)
        if stream.silenced:
            raise UnreachableError(
                f"{target.key}: silent for {self.silence_s:.0f} s", target=target.backend
            )
        return True

    def _seen(self, target: WatchTarget, event: WatchEvent) -> None:
        """A change: remembered (what the watch knows, who made it), then queued."""
        obj = event.object
        with self._lock:
            self.summary.events += 1
            known = self._known.setdefault(target.key, {})
            if event.type == "DELETED":
                known.pop(_object_key(obj), None)
            else:
                known[_object_key(obj)] = event.resource_version
                manager = last_manager(obj)
                if manager:
                    self._changers[object_target(target.backend, {**obj, "kind": target.kind})] = (
                        manager
                    )
            self.state.clusters.setdefault(target.backend, ClusterWatch()).last_event = now_iso(
                self._wall
            )
        self._enqueue(target, self._event_key(target, event))


def _object_key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name')}"


def _object_rv(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def watcher_for(conns: Connections, mode: ModeName, **options: Any) -> Watcher:
    """A :class:`Watcher` on the clusters of ``conns`` whose changes run
    :func:`fedkeeper.service.reconcile`, each repair queue on connections of its own (their
    run guards and clients never mix); ``close()`` them with :func:`close_watcher`."""
    lock = threading.Lock()
    siblings: dict[str, Connections] = {}

    def cluster(backend: Backend) -> KubeCluster:
        with lock:  # the clients are built lazily: once, whichever thread asks first
            kube = conns.cluster(backend)
            kube.on_write = watcher.own_write
            return kube

    def repair(queue: str, scope: Scope, left: float, held: Callable[[str], str | None]) -> Report:
        with lock:
            own = siblings.get(queue)
            if own is None:
                own = siblings[queue] = conns.sibling()
                own.on_write = watcher.own_write
        clusters = None if queue == BOTH else frozenset({queue})
        return reconcile(
            own, scope, mode, trigger=TRIGGER, deadline_s=left, clusters=clusters, held=held
        )

    watcher = Watcher(
        cluster,
        watch_targets(conns.config),
        repair,
        federation=conns.config.name,
        **options,
    )

    def close() -> None:
        for sibling in siblings.values():
            sibling.close()

    watcher.closers.append(close)
    return watcher
