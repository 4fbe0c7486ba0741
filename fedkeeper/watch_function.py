"""The watch Lambda's logic: watch until the invocation's time runs low, then hand over.

An EventBridge schedule starts the function every minute and its reserved concurrency of 1
keeps exactly one running (the other starts are throttled and dropped), so the clusters are
watched all the time but for the gap between one invocation returning and the next start.
Each invocation loads the state the last one stored - the resourceVersion of every watch
and whether each cluster's watches were live - watches until ``MARGIN_S`` seconds are left,
and stores it again, so the next one resumes where this one stopped: no gap in the event
history (an expired version relists) and nothing read twice.

The state lives in an SSM String parameter the stack creates: one small JSON document
(under 2 KB), one writer at a time, read once and written a few times per invocation;
standard parameters cost nothing and need no table or bucket. The reconciler role may read
and write only that parameter.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from fedkeeper.adapters.aws import AwsAdapter
from fedkeeper.errors import FedkeeperError, RetryableError
from fedkeeper.lambda_runtime import SERVICE, Runtime, finish, logger, metrics_namespace, runtime
from fedkeeper.model import Report, Scope
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
SCHEDULE = "rate(1 minute)"
TIMEOUT_S = 900  # the longest a Lambda may run
MEMORY_MB = 256


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
            self.aws.put_parameter(self.name, json.dumps(state.to_dict(), sort_keys=True))
        except FedkeeperError as exc:  # the next invocation relists: slower, not wrong
            logger.warning("watch state not stored", extra={"error": str(exc)})


def handle_watch(event: Any, context: Any) -> dict[str, Any]:
    """Watch both clusters for this invocation's time; a summary of what it did."""
    del event  # the schedule's event carries nothing the watch needs
    rt = runtime()
    remaining = float(context.get_remaining_time_in_millis()) / 1000
    return watch_for(rt, time.monotonic() + remaining - MARGIN_S)


def watch_for(
    rt: Runtime,
    deadline: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
    started: Callable[[Watcher], None] | None = None,
    emit: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Watch until ``deadline`` (on ``clock``), reconciling changes as they come;
    ``started`` is handed the :class:`Watcher` (to stop it early); ``emit`` writes each
    run's EMF metrics line (stdout in Lambda, where CloudWatch picks it up)."""
    conns = rt.connections()
    name = rt.settings.watch_state_parameter
    store = ParameterState(conns.aws, name) if name else None
    state = store.load() if store else WatchState()
    mode = effective_mode("apply", rt.config, rt.settings.mode)

    def reported(scope: Scope, report: Report) -> None:
        del scope
        # Logged, counted and notified like every run; a retryable failure is retried by
        # the next change or the schedule, and the watch goes on.
        # Its metrics go out now, with this run's timestamp, in a set of their own: the
        # handler's shared set is flushed only when the invocation ends.
        sink = EphemeralMetrics(namespace=metrics_namespace(), service=SERVICE)
        try:
            with contextlib.suppress(RetryableError):
                finish(rt, report, "watch", sink)
        finally:
            if sink.metric_set and not is_metrics_disabled():
                # One EMF document per line on stdout, as flush_metrics() prints it.
                emit(json.dumps(sink.serialize_metric_set(), separators=(",", ":")))
            sink.clear_metrics()

    watcher = watcher_for(conns, mode, state=state, clock=clock, wall=wall, on_reconcile=reported)
    if started is not None:
        started(watcher)
    stop_checkpoints = threading.Event()

    def checkpoints() -> None:
        saved = False  # first as soon as the watches are open, then every CHECKPOINT_S
        while store is not None and not stop_checkpoints.wait(CHECKPOINT_S if saved else 0.2):
            if saved or watcher.ready():
                watcher.state.updated = now_iso(wall)
                store.save(watcher.state)
                saved = True

    saver = threading.Thread(target=checkpoints, name="watch-checkpoints", daemon=True)
    saver.start()
    try:
        summary = watcher.run(deadline)
    finally:
        stop_checkpoints.set()
        for cluster in watcher.state.clusters.values():
            cluster.live = False  # until the next invocation opens its watches
        if store is not None:
            store.save(watcher.state)
    out = {
        "events": summary.events,
        "own_writes_skipped": summary.skipped_own,
        "relists": summary.relists,
        "reconnects": summary.reconnects,
        "reconciles": len(summary.reports),
        "writes": summary.writes,
        "state": watcher.state.to_dict(),
    }
    logger.info("watch invocation finished", extra={"handler": "watch", "summary": out})
    return out


__all__ = ["handle_watch", "state_parameter_name", "watch_for"]
