"""The watch function's run model on the sandbox clock: the schedule, Lambda and the lease.

:class:`WatchSchedule` starts ``lambdas.watch.handler`` as the automation stack deploys it:
an EventBridge schedule rule delivers an event every minute (:meth:`WatchSchedule.minute`)
to the function's alias, asynchronously. Each invocation runs on a thread of its own, in a
"container" (a :class:`~fedkeeper.lambda_runtime.Runtime` with its own connections) that a
later invocation reuses once it is free, with a Lambda context whose remaining time follows
the sandbox clock (the function's 900 s timeout).

As Lambda's asynchronous invocation does (https://docs.aws.amazon.com/lambda/latest/dg/
invocation-async.html): with ``reserved_concurrency`` set, a start beyond it is throttled and
retried until the event is older than ``max_event_age`` (60 s, the stack's setting), then
dead-lettered; an invocation that raises is retried ``retries`` times (the alias's 2), then
dead-lettered. Every outcome is recorded, with the EMF metrics and log lines the invocations
printed, so that a test can evaluate the stack's alarms on them: the dead-letter queue's
(any message), the function's ``Errors`` (any failed invocation) and ``PersistentTrouble``
(any value of 1 or more).
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from logging import StreamHandler
from typing import Any

from fedkeeper.lambda_runtime import Runtime, Settings, use_runtime
from fedkeeper.model import Report
from fedkeeper.sandbox.lambda_context import FakeLambdaContext
from fedkeeper.service import Connections, Targets
from fedkeeper.watch import state_parameter_name
from fedkeeper.watch_function import MEMORY_MB, TIMEOUT_S

MAX_EVENT_AGE_S = 60.0  # the schedule target's and the alias's maximum event age
RETRIES = 2  # the alias's retry attempts for a failed asynchronous invocation


@dataclass
class Invocation:
    """One invocation of the watch function and how it ended."""

    started: float  # sandbox wall clock
    request_id: str = ""
    response: dict[str, Any] | None = None
    error: str | None = None
    ended: float | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def watched(self) -> bool:
        return self.response is not None and "lease" not in self.response


@dataclass
class _Container:
    runtime: Runtime
    busy: bool = False


@dataclass
class WatchSchedule:
    """See the module docstring. Use as a context manager; ``close()`` ends what runs."""

    sb: Any  # fedkeeper.sandbox.Sandbox (not imported: the world module imports this one)
    reserved_concurrency: int | None = None  # None: the stack reserves none
    timeout_s: int = TIMEOUT_S
    invocations: list[Invocation] = field(default_factory=list)
    throttles: int = 0
    dead_letters: int = 0
    errors: int = 0
    reports: list[tuple[float, Report]] = field(default_factory=list)  # (sandbox time, run)
    output: io.StringIO = field(default_factory=io.StringIO)
    _containers: list[_Container] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _waiting: list[float] = field(default_factory=list)  # throttled events: when sent
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __enter__(self) -> WatchSchedule:
        from lambdas import logger

        self._stack.enter_context(contextlib.redirect_stdout(self.output))
        handler = logger.registered_handler
        if isinstance(handler, StreamHandler):
            previous = handler.stream
            handler.stream = self.output
            self._stack.callback(setattr, handler, "stream", previous)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the schedule ---------------------------------------------------------------------

    def minute(self) -> Invocation | None:
        """One minute passes and the schedule delivers its event (see :meth:`deliver`)."""
        self.sb.advance_time(60.0)
        return self.deliver()

    def deliver(self) -> Invocation | None:
        """The schedule delivers its event now; the invocation it starts (None when
        throttled) has returned, or holds the lease, when this returns."""
        now = self.sb.clock.time()
        self._renewed(now)
        with self._lock:
            # Throttled events are retried; those older than their maximum age are dropped.
            expired = [t for t in self._waiting if now - t > MAX_EVENT_AGE_S]
            self.dead_letters += len(expired)
            self._waiting = [t for t in self._waiting if now - t <= MAX_EVENT_AGE_S]
            self._waiting.append(now)
            started = None
            while self._waiting and self._can_run():
                sent = self._waiting.pop(0)
                started = self._start(sent)
            self.throttles += len(self._waiting)
        if started is not None:
            self._settle(started)
        return started

    def _can_run(self) -> bool:
        running = sum(c.busy for c in self._containers)
        return self.reserved_concurrency is None or running < self.reserved_concurrency

    def _start(self, sent: float) -> Invocation:
        """Under ``_lock``: a container (a free one, or a new one) runs the event."""
        container = next((c for c in self._containers if not c.busy), None)
        if container is None:
            container = _Container(self._runtime())
            self._containers.append(container)
        container.busy = True
        invocation = Invocation(started=self.sb.clock.time(), request_id=str(uuid.uuid4()))
        self.invocations.append(invocation)
        thread = threading.Thread(
            target=self._run, args=(container, invocation), name="watch-invocation", daemon=True
        )
        self._threads.append(thread)
        thread.start()
        return invocation

    def _runtime(self) -> Runtime:
        sb = self.sb
        settings = Settings.from_env().model_copy(
            update={
                "topic_arn": sb.topic_arn,
                "episodes_table": sb.episodes_table,
                "watch_state_parameter": state_parameter_name(sb.config),
            }
        )
        conns = Connections(
            sb.config, sb.reconciler_session(), targets=Targets(), clock=sb.clock.monotonic
        )
        return Runtime(
            settings,
            sb.config,
            connections=conns,
            wall_clock=sb.clock.time,
            on_report=lambda report: self.reports.append((sb.clock.time(), report)),
        )

    def _run(self, container: _Container, invocation: Invocation) -> None:
        import lambdas.watch

        event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
        try:
            for attempt in range(RETRIES + 1):
                context = FakeLambdaContext(
                    function_name=f"{self.sb.config.name}-watch",
                    memory_limit_in_mb=MEMORY_MB,
                    region=self.sb.config.aws.region,
                    timeout_s=self.timeout_s,
                    aws_request_id=invocation.request_id,
                    clock=self.sb.clock.monotonic,
                )
                try:
                    with use_runtime(container.runtime):
                        invocation.response = lambdas.watch.handler(event, context)
                    invocation.error = None
                    break
                except Exception as exc:  # Lambda counts it in Errors and retries
                    invocation.error = f"{type(exc).__name__}: {exc}"
                    with self._lock:
                        self.errors += 1
                        if attempt == RETRIES:
                            self.dead_letters += 1
        finally:
            invocation.ended = self.sb.clock.time()
            with self._lock:
                container.busy = False
            invocation.done.set()

    def _settle(self, invocation: Invocation, seconds: float = 30.0) -> None:
        """Wait (real time) until the invocation returned or holds the lease: the next one
        then starts after it has read its runtime and taken its decision."""
        until = time.monotonic() + seconds
        while not invocation.done.wait(0.002) and time.monotonic() < until:
            if self.lease_holder() == invocation.request_id:
                return

    def _renewed(self, now: float, seconds: float = 5.0) -> None:
        """Time flows in jumps here: a running holder whose lease would lapse before the
        next minute gets (real) time to renew it, as its renewals every 30 s would have - or
        to end and give it up."""
        until = time.monotonic() + seconds
        while time.monotonic() < until and any(c.busy for c in self._containers):
            item = self._lease_item()
            if item is None or float(item["expires"]["N"]) >= now + 60.0:
                return
            time.sleep(0.002)

    def _lease_item(self) -> dict[str, Any] | None:
        """The lease item as DynamoDB holds it (read from the emulator: the harness polls it
        often, and its reads are not the function's)."""
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        from fedkeeper.watch_function import LEASE_ITEM

        backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][self.sb.config.aws.region]
        item = backend.get_item(self.sb.episodes_table, {"pk": {"S": LEASE_ITEM}})
        if item is None:
            return None
        found = dict(item.to_json()["Attributes"])
        return found if found.get("holder", {}).get("S") else None

    def lease_holder(self) -> str | None:
        """Who holds the watch lease now (None: nobody, or it expired)."""
        item = self._lease_item()
        if item is None or float(item["expires"]["N"]) < self.sb.clock.time():
            return None
        return str(item["holder"]["S"])

    def close(self) -> None:
        """Let every running invocation reach its end (its whole timeout passes on the
        sandbox clock at once), then stop."""
        if any(t.is_alive() for t in self._threads):
            self.sb.advance_time(float(self.timeout_s))
        for thread in self._threads:
            thread.join(timeout=30)
        self._stack.close()

    # --- what the alarms see ----------------------------------------------------------------

    def metric_values(self, name: str) -> list[float]:
        """Every value of metric ``name`` the invocations printed (EMF)."""
        out: list[float] = []
        for line in self.output.getvalue().splitlines():
            if '"_aws"' not in line:
                continue
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                value = doc.get(name)
                out.extend(value if isinstance(value, list) else [] if value is None else [value])
        return out

    def alarm_transitions(self) -> dict[str, int]:
        """How many of the stack's alarms on this function would have left OK."""
        return {
            "dead-letters": int(self.dead_letters > 0),
            "watch-errors": int(self.errors > 0),
            "persistent-trouble": int(any(v >= 1 for v in self.metric_values("PersistentTrouble"))),
        }
