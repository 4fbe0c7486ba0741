"""The watch Lambda's logic: hold the lease, watch until the invocation's time runs low, hand
over.

**Run model.** An EventBridge schedule starts the function every minute; it reserves no
concurrency. Exactly one invocation watches: the one that holds the *lease*, an item of the
episodes table (``pk`` = :data:`LEASE_ITEM`) written with a condition - free, expired, or
already this invocation's - and renewed every :data:`RENEW_S` seconds to last
:data:`LEASE_S`. A start that finds the lease held returns at once: one conditional write,
no Kubernetes call, no error, so nothing is throttled, expires, or reaches the dead-letter
queue. The holder watches until :data:`MARGIN_S` seconds before Lambda's timeout, stores
its state, gives the lease up and returns; the next minute's start takes over and resumes
where it stopped - no gap in the event history (an expired version relists) and nothing
read twice. A holder that stops renewing (frozen, killed) loses the lease after
:data:`LEASE_S` seconds; one that finds its lease taken stops watching and stores nothing.

**State.** One SSM String parameter of the standard tier (4,096 characters; the state is
kept under :data:`STATE_BUDGET`): resume points, each cluster's liveness and identity,
pending repairs and fights (:class:`fedkeeper.watch.WatchState`). Standard parameters cost
nothing and need no table or bucket; the reconciler role may read and write only that one.
Reusing the episodes table for the lease (not a table of its own) keeps one table, one
encryption setup and the two DynamoDB actions the role already holds; a lease is one small
item beside the episodes item, which nothing else reads.

**Repairs** run under the watch's remaining time (:mod:`fedkeeper.watch`); they are logged
and counted like every run, and notify only when an episode of trouble opens or ends (a
fight, a cluster down, an invariant failing again and again), as every handler's failures
do: a repair that worked is in the logs, the ``DriftRepaired`` metric and the dashboard, not
in every operator's mail.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from fedkeeper.adapters.aws import AwsAdapter
from fedkeeper.config import FederationConfig
from fedkeeper.episodes import FIGHT, FIGHTS_TRIGGER
from fedkeeper.errors import ConfigError, FedkeeperError, RetryableError
from fedkeeper.fights import Fights, Tracked
from fedkeeper.lambda_runtime import (
    SERVICE,
    MetricsSink,
    Runtime,
    alert,
    config_failure,
    finish,
    logger,
    metrics_namespace,
    runtime,
)
from fedkeeper.model import Report, RunError, Scope
from fedkeeper.service import effective_mode
from fedkeeper.watch import (
    Watcher,
    WatchState,
    now_iso,
    state_parameter_name,
    watcher_for,
)

MARGIN_S = 30.0  # stop watching this long before Lambda's timeout
CHECKPOINT_S = 60.0  # store the state this often while watching (fedkeeper status reads it)
LEASE_ITEM = "watch-lease"
LEASE_S = 150.0  # a lease not renewed for this long is free
RENEW_S = 30.0
SCHEDULE = "rate(1 minute)"
TIMEOUT_S = 900  # the longest a Lambda may run
MEMORY_MB = 256
STATE_LIMIT = 4096  # characters in an SSM standard-tier parameter
STATE_BUDGET = 3072  # what the state is kept under (room to spare)


class ParameterState:
    """The watch state in an SSM parameter."""

    def __init__(self, aws: AwsAdapter, name: str) -> None:
        self.aws = aws
        self.name = name

    def load(self) -> WatchState:
        try:
            return WatchState.from_dict(json.loads(self.aws.parameter(self.name)))
        except (ValueError, FedkeeperError) as exc:
            logger.warning("watch state unreadable; relisting", extra={"error": str(exc)})
            return WatchState()

    def save(self, state: WatchState) -> None:
        try:
            self.aws.put_parameter(self.name, fitted(state))
        except FedkeeperError as exc:  # the next invocation relists: slower, not wrong
            logger.warning("watch state not stored", extra={"error": str(exc)})


def fitted(state: WatchState, budget: int = STATE_BUDGET) -> str:
    """The state as JSON within ``budget`` characters: what matters least goes first (error
    texts, objects repaired but not fought over, fights, pending repairs, then resume
    points, which the next invocation rebuilds with one list per watch)."""
    doc = state.to_json()
    if len(doc) <= budget:
        return doc
    trimmed = WatchState.from_dict(json.loads(doc))
    for cluster in trimmed.clusters.values():
        cluster.error = None
    fought = {k: v for k, v in trimmed.fights.items() if isinstance(v, list) and v[3] >= 0}
    for trim in ("fights", "all fights", "pending", "resume points"):
        doc = trimmed.to_json()
        if len(doc) <= budget:
            break
        if trim == "fights":
            trimmed.fights = fought
        elif trim == "all fights":
            trimmed.fights = {}
        elif trim == "pending":
            trimmed.pending = []
        else:
            trimmed.resource_versions = {}
            doc = trimmed.to_json()
    logger.warning("watch state trimmed to fit its parameter", extra={"chars": len(doc)})
    return doc


class WatchLease:
    """The lease that lets one invocation watch (see the module docstring)."""

    def __init__(self, aws: AwsAdapter, table: str, holder: str, wall: Callable[[], float]):
        self.aws, self.table, self.holder, self.wall = aws, table, holder, wall
        self.expires = 0.0

    def take(self) -> bool:
        """Take or renew the lease; False when another invocation holds it."""
        now = self.wall()
        if not self.aws.take_lease(self.table, LEASE_ITEM, self.holder, now, LEASE_S):
            return False
        self.expires = now + LEASE_S
        return True

    def release(self) -> None:
        try:
            self.aws.release_lease(self.table, LEASE_ITEM, self.holder)
        except FedkeeperError as exc:  # it expires on its own
            logger.warning("watch lease not released", extra={"error": str(exc)})


def handle_watch(event: Any, context: Any) -> dict[str, Any]:
    """Watch both clusters for this invocation's time (if it gets the lease); a summary."""
    del event  # the schedule's event carries nothing the watch needs
    try:
        rt = runtime()
    except ConfigError as exc:  # permanent: reported and counted like the handlers', not raised
        return config_failure("watch", exc)
    clock = rt.connections().clock
    remaining = float(context.get_remaining_time_in_millis()) / 1000
    holder = str(getattr(context, "aws_request_id", "") or uuid.uuid4())
    return watch_for(
        rt, clock() + remaining - MARGIN_S, clock=clock, wall=rt.wall_clock, holder=holder
    )


def watch_for(
    rt: Runtime,
    deadline: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
    started: Callable[[Watcher], None] | None = None,
    holder: str | None = None,
) -> dict[str, Any]:
    """Watch until ``deadline`` (on ``clock``), repairing changes as they come, if the lease
    is this invocation's; ``started`` is handed the :class:`Watcher` (to stop it early)."""
    conns = rt.connections()
    table = rt.settings.episodes_table
    lease = WatchLease(conns.aws, table, holder or str(uuid.uuid4()), wall) if table else None
    leased_at = clock()
    try:
        if lease is not None and not lease.take():
            logger.info("watch lease held by another invocation; returning", extra={})
            return {"lease": "held elsewhere"}
    except FedkeeperError as exc:
        logger.warning("watch lease unreadable; not watching", extra={"error": str(exc)})
        return {"lease": f"unavailable: {exc}"}
    name = rt.settings.watch_state_parameter
    store = ParameterState(conns.aws, name) if name else None
    state = store.load() if store else WatchState()
    mode = effective_mode("apply", rt.config, rt.settings.mode)

    def reported(scope: Scope, report: Report) -> None:
        del scope
        # Its metrics go out now, with this run's timestamp, in a set of their own: the
        # handler's shared set is flushed only when the invocation ends.
        if rt.on_report is not None:
            rt.on_report(report)
        sink = EphemeralMetrics(namespace=metrics_namespace(), service=SERVICE)
        try:
            with contextlib.suppress(RetryableError):  # the next change or sweep retries
                finish(None, report, "watch", sink)  # logged and counted like every run
            _alert(rt, report, wall(), sink)
        finally:
            _emit(sink)

    def fights(active: list[Tracked]) -> None:
        """The fights the watch is in now: episodes open (notified once) and close."""
        report = Report(
            mode=mode,
            scope=Scope(frozenset()),
            trigger=FIGHTS_TRIGGER,
            errors=[RunError(f"{FIGHT}{t.target}", Fights.reason(t), False) for t in active],
        )
        sink = EphemeralMetrics(namespace=metrics_namespace(), service=SERVICE)
        try:
            _alert(rt, report, wall(), sink)
        finally:
            _emit(sink)

    def log(message: str, extra: dict[str, Any]) -> None:
        logger.warning(message, extra=extra)

    watcher = watcher_for(
        conns,
        mode,
        state=state,
        clock=clock,
        wall=wall,
        on_reconcile=reported,
        on_fights=fights,
        log=log,
    )
    if started is not None:
        started(watcher)
    stop_checkpoints = threading.Event()
    lost = threading.Event()

    def checkpoints() -> None:
        """The state every CHECKPOINT_S (first once the watches are open), the lease every
        RENEW_S, on the watch's clock; a lease lost stops the watch."""
        saved_at: float | None = None
        renewed_at = leased_at
        while not stop_checkpoints.wait(0.05):
            now = clock()
            if lease is not None and now - renewed_at >= RENEW_S:
                try:
                    if not lease.take():
                        lost.set()
                except FedkeeperError as exc:
                    logger.warning("watch lease not renewed", extra={"error": str(exc)})
                    if wall() >= lease.expires - RENEW_S:
                        lost.set()  # it may be another's before the next try
                else:
                    renewed_at = now
                if lost.is_set():
                    logger.warning("watch lease lost; stopping", extra={})
                    watcher.stop()
                    return
            due = (saved_at is None and watcher.ready()) or (
                saved_at is not None and now - saved_at >= CHECKPOINT_S
            )
            if store is not None and due:
                watcher.state.updated = now_iso(wall)
                store.save(watcher.state)
                saved_at = now

    saver = threading.Thread(target=checkpoints, name="watch-checkpoints", daemon=True)
    saver.start()
    try:
        summary = watcher.run(deadline)
    finally:
        stop_checkpoints.set()
        saver.join()
        for cluster in watcher.state.clusters.values():
            cluster.live = False  # until the next invocation opens its watches
        if store is not None and not lost.is_set():
            store.save(watcher.state)
        if lease is not None and not lost.is_set():
            lease.release()
    out = {
        "events": summary.events,
        "own_writes_skipped": summary.skipped_own,
        "lists": summary.lists,
        "relists": summary.relists,
        "reconnects": summary.reconnects,
        "malformed": summary.malformed,
        "silent": summary.silent,
        "reconciles": len(summary.reports),
        "writes": summary.writes,
        "state": watcher.state.to_dict(),
    }
    logger.info("watch invocation finished", extra={"handler": "watch", "summary": out})
    return out


def _emit(sink: EphemeralMetrics) -> None:
    """The run's metrics now, as one EMF document on the function's log stream (in Lambda,
    stdout, as Powertools prints them; in the sandbox, the function's logs - not the
    terminal of whoever runs the demo)."""
    if not sink.metric_set or is_metrics_disabled():
        return
    document = json.dumps(sink.serialize_metric_set(), separators=(",", ":"))
    sink.clear_metrics()
    handler = logger.registered_handler
    stream = handler.stream if isinstance(handler, logging.StreamHandler) else sys.stdout
    stream.write(document + "\n")
    stream.flush()


def _alert(rt: Runtime, report: Report, now: float, sink: MetricsSink) -> None:
    """Episodes of persistent trouble, as every handler keeps them (on the short-timeout
    alerting adapter: a hung SNS or DynamoDB must not hold the watch)."""
    if not rt.settings.episodes_table:
        return
    try:
        aws = rt.connections().alerting_aws()
    except FedkeeperError as exc:
        logger.warning("could not record trouble", extra={"error": str(exc)})
        return
    alert(rt.settings, aws, rt.config.name, report, now, sink)


__all__ = ["handle_watch", "state_parameter_name", "watch_for"]


# --- cost and load (docs/ARCHITECTURE.md's table is rendered from these) --------------------

# https://aws.amazon.com/lambda/pricing/ (x86, us-east-1), https://aws.amazon.com/dynamodb/
# pricing/on-demand/ (us-east-1, after the November 2024 reduction).
LAMBDA_GB_S_USD = 0.0000166667
LAMBDA_REQUEST_USD = 0.20 / 1_000_000
DYNAMODB_WRITE_USD = 0.625 / 1_000_000
HOURS_PER_MONTH = 730
LEASE_HELD_START_S = 0.2  # billed time of a start that finds the lease held (one write)


def watch_figures(config: FederationConfig, backend: str | None = None) -> dict[str, float]:
    """The watch's cost a month, and its load on the ``backend`` API server (a cluster's
    mesh name; default: the first site), from its settings (the worst case: every watch
    refused forever by a server answering at once)."""
    import math

    from fedkeeper.watch import SERVER_TIMEOUT, relist_wait, watch_targets

    if backend is None:
        backend = config.sites()[0].name

    watches = sum(1 for t in watch_targets(config) if t.backend == backend)
    holding = TIMEOUT_S - MARGIN_S
    cycle = holding + 30  # the next start comes within the minute after (30 s on average)
    per_hour = 3600 / cycle
    opens = math.ceil(holding / SERVER_TIMEOUT)
    # Every watch refused forever, the server answering at once: the fastest relists.
    lists, at, n = 1, 0.0, 1
    while True:
        n += 1
        at += relist_wait(n, 0.0)
        if at >= holding:
            break
        lists += 1
    starts = 60 * HOURS_PER_MONTH
    holders = per_hour * HOURS_PER_MONTH
    quick = starts - holders
    gb = MEMORY_MB / 1024
    holder_gb_s = HOURS_PER_MONTH * 3600 * gb
    quick_gb_s = quick * LEASE_HELD_START_S * gb
    writes = holders * (holding / RENEW_S + 2) + quick
    return {
        "invocations_per_hour": per_hour,
        "watch_opens_per_hour_per_watch": per_hour * opens,
        "watches": watches,
        "steady_requests_per_hour": watches * per_hour * opens + per_hour,
        "worst_lists_per_hour_per_watch": per_hour * lists,
        "worst_requests_per_hour": watches * per_hour * lists * 2 + per_hour,
        "holder_gb_s": holder_gb_s,
        "holder_usd": holder_gb_s * LAMBDA_GB_S_USD,
        "quick_starts": quick,
        "quick_usd": quick_gb_s * LAMBDA_GB_S_USD + starts * LAMBDA_REQUEST_USD,
        "lease_writes": writes,
        "lease_usd": writes * DYNAMODB_WRITE_USD,
    }
