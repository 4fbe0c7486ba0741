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

    sent: float  # sandbox wall clock: when the schedule sent its event
    request_id: str = ""
    attempt: int = 0  # 0: the first; Lambda retries a failed one up to RETRIES times
    started: float = 0.0
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
    failures: list[str] = field(default_factory=list)  # each failed attempt's error
    reports: list[tuple[float, Report]] = field(default_factory=list)  # (sandbox time, run)
    output: io.StringIO = field(default_factory=io.StringIO)
    _containers: list[_Container] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _waiting: list[tuple[float, int]] = field(default_factory=list)  # (sent, attempt)
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
        throttled) has returned, or holds the lease, when this returns.

        Events waiting for a retry (throttled, or failed less than ``RETRIES`` times) go
        first; one older than its maximum age is dead-lettered instead.
        """
        now = self.sb.clock.time()
        self._renewed(now)
        self._ended_by(now)
        with self._lock:
            expired = [e for e in self._waiting if now - e[0] > MAX_EVENT_AGE_S]
            self.dead_letters += len(expired)
            self._waiting = [e for e in self._waiting if now - e[0] <= MAX_EVENT_AGE_S]
            self._waiting.append((now, 0))
        started = None
        while True:
            with self._lock:
                if not self._waiting or not self._can_run():
                    self.throttles += len(self._waiting)
                    return started
                sent, attempt = self._waiting.pop(0)
                container = next((c for c in self._containers if not c.busy), None)
                if container is None:
                    container = _Container(self._runtime())
                    self._containers.append(container)
                container.busy = True
            started = Invocation(sent, str(uuid.uuid4()), attempt=attempt)
            self.invocations.append(started)
            # Only this thread sets the handlers' runtime slot, and only until the
            # invocation has read it (it has returned or holds the lease).
            with use_runtime(container.runtime):
                thread = threading.Thread(
                    target=self._run,
                    args=(container, started),
                    name="watch-invocation",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()
                self._settle(started)

    def _can_run(self) -> bool:
        running = sum(c.busy for c in self._containers)
        return self.reserved_concurrency is None or running < self.reserved_concurrency

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

        invocation.started = self.sb.clock.time()
        event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
        context = FakeLambdaContext(
            function_name=f"{self.sb.config.name}-watch",
            memory_limit_in_mb=MEMORY_MB,
            region=self.sb.config.aws.region,
            timeout_s=self.timeout_s,
            aws_request_id=invocation.request_id,
            clock=self.sb.clock.monotonic,
        )
        try:
            invocation.response = lambdas.watch.handler(event, context)
        except Exception as exc:  # Lambda counts it in Errors, and retries the event later
            invocation.error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self.errors += 1
                self.failures.append(invocation.error)
                if invocation.attempt < RETRIES:
                    self._waiting.append((invocation.sent, invocation.attempt + 1))
                else:
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
        """Time flows in jumps here: a running holder whose lease is about to lapse gets
        (real) time to renew it, as its renewals every 30 s would have - or to end and give
        it up."""
        until = time.monotonic() + seconds
        while time.monotonic() < until and any(c.busy for c in self._containers):
            item = self._lease_item()
            if item is None or float(item["expires"]["N"]) >= now + 30.0:
                return
            time.sleep(0.002)

    def _ended_by(self, now: float, seconds: float = 10.0) -> None:
        """An invocation whose watch deadline has passed stops within (real) moments: let it
        finish handing over before the next start, as the minute between them would."""
        from fedkeeper.watch_function import MARGIN_S

        due = [
            i
            for i in self.invocations
            if not i.done.is_set() and i.started and i.started + self.timeout_s - MARGIN_S <= now
        ]
        for invocation in due:
            invocation.done.wait(seconds)

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
