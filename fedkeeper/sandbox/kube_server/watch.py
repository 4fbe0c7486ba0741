"""Watches, as the Kubernetes API server serves them ("Efficient detection of changes").

Every committed write is recorded as an event (``ADDED``/``MODIFIED``/``DELETED``) under the
resourceVersion it produced. A ``GET`` of a collection with ``?watch=true`` answers ``200``
and streams, chunked, one JSON ``{"type": ..., "object": ...}`` line per event:

* ``resourceVersion`` unset or ``"0"``: synthetic ``ADDED`` events for every object that
  exists now, then changes ("Get State and Start at Most Recent" / "Start at Any");
  ``resourceVersion=N``: every change after N ("Start at Exact"). N older than the retained
  window (``window`` events; :meth:`EventLog.compact` simulates etcd compaction,
  :meth:`EventLog.restart` an API server restart, whose watch cache then starts at the
  current version) streams one ``ERROR`` event carrying a ``Status`` 410 ``Expired`` "too
  old resource version: N (M)" and ends, as the watch cache does; N ahead of the server
  waits up to 3 s for the cache to catch up, then streams one ``ERROR`` event with a
  ``Status`` 504 ``Timeout`` "Timeout: Too large resource version: N, current: M" (cause
  ``ResourceVersionTooLarge``, retry after 1 s); a non-integer N is a 400.
* The Calico API server (kinds of the Calico group) serves its watches through
  libcalico-go: an error reaches the client as an ``ERROR`` event whose ``Status`` has reason
  ``InternalError``, the message of the underlying error and **no code**, and it sends no
  ``BOOKMARK`` events, even when asked.
* ``labelSelector``/``fieldSelector`` filter events; an object that starts matching arrives
  as ``ADDED``, one that stops matching as ``DELETED`` (the watch cache's semantics).
* ``allowWatchBookmarks=true``: ``BOOKMARK`` events (an object of the kind with only
  ``metadata.resourceVersion``) every ``bookmark_interval`` seconds and when the watch ends.
* ``timeoutSeconds``: the stream ends cleanly after that long on the server's clock (the
  sandbox clock moves it on); without it, after ``DEFAULT_TIMEOUT`` (kube-apiserver's
  ``--min-request-timeout``, 1800 s).

Faults a real server or the path to it produces: :attr:`EventLog.stalled` (streams send
their headers, then nothing, and never end by themselves: a wedged server or proxy),
:meth:`EventLog.inject` (a raw line, e.g. one that is not an object, on the open streams),
:attr:`EventLog.expiring` (every watch from a version answers "too old", however recent).

Watches are authorized as the ``watch`` verb (a ``metadata.name`` field selector names the
object, as for ``list``). Sources: https://kubernetes.io/docs/reference/using-api/api-concepts/
("Efficient detection of changes", "Watch bookmarks", "410 Gone responses"), kubernetes
``staging/src/k8s.io/apiserver/pkg/storage/cacher/cacher.go`` (``Watch``: errors after the
version is parsed become one ``ERROR`` event, ``newErrWatcher``), ``watch_cache.go``
(``NewTooOldResourceVersionError``, the 3 s ``blockTimeout``), ``storage/errors.go``
(``NewTooLargeResourceVersionError``); projectcalico/calico
``apiserver/pkg/storage/calico/watcher.go`` (``convertEvent``: ``Error`` → ``Status{Reason:
InternalError, Message}``, no bookmark case) and ``libcalico-go/lib/backend/k8s/resources/
watcher.go`` (the Kubernetes error, e.g. "too old resource version", passed on as the error).
"""

from __future__ import annotations

import copy
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fedkeeper.sandbox.kube_server.api import (
    JSONObj,
    ResourceType,
    bad_request,
    status_body,
)
from fedkeeper.sandbox.kube_server.patch import parse_field_selector, parse_label_selector

DEFAULT_TIMEOUT = 1800.0  # kube-apiserver --min-request-timeout
DEFAULT_WINDOW = 1000  # events retained (the watch cache's capacity is of this order)
TOO_LARGE_WAIT = 3.0  # the watch cache's blockTimeout for a version ahead of it
_POLL = 0.05  # seconds between checks of the clock and of the server stopping


@dataclass(frozen=True)
class Event:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    rt: ResourceType
    obj: JSONObj  # the object after the change (before it, for DELETED) at ``rv``
    old: JSONObj | None  # the object before the change (None for ADDED)


@dataclass(frozen=True)
class RawLine:
    seq: int
    plural: str | None  # None: every stream
    line: bytes


class EventLog:
    """The retained history of changes, and the condition watchers wait on."""

    def __init__(self, lock: threading.RLock, *, window: int = DEFAULT_WINDOW) -> None:
        self.cond = threading.Condition(lock)
        self.events: deque[Event] = deque(maxlen=window)
        self.oldest = 0  # the oldest resourceVersion a watch may start from
        self.paused = False  # a dry-run write records nothing
        self.generation = 0  # bumped to end every open watch (server stopped or cut)
        self.stalled = False  # streams send nothing and never end by themselves
        self.expiring: set[str] = set()  # plurals ("*": all) whose watches are always too old
        self.raw: list[RawLine] = []

    def record(self, kind: str, rt: ResourceType, obj: JSONObj, old: JSONObj | None) -> None:
        """Called (under the server's lock) for every committed write."""
        if self.paused:
            return
        rv = int(obj["metadata"]["resourceVersion"])
        if len(self.events) == self.events.maxlen:
            self.oldest = self.events[0].rv
        self.events.append(Event(rv, kind, rt, copy.deepcopy(obj), old))
        self.cond.notify_all()

    def compact(self, current_rv: int) -> None:
        """Forget every event up to now (etcd compaction): older watches get 410."""
        with self.cond:
            self.events.clear()
            self.oldest = current_rv

    def restart(self, current_rv: int) -> None:
        """The API server restarted: open watches end, and its watch cache, filled by a
        fresh list, holds no history before the current version."""
        with self.cond:
            self.compact(current_rv)
            self.generation += 1
            self.cond.notify_all()

    def end_watches(self) -> None:
        """End every open watch cleanly (as the server does at a watch's timeout)."""
        with self.cond:
            self.generation += 1
            self.cond.notify_all()

    def inject(self, line: bytes, plural: str | None = None) -> None:
        """Send ``line`` as it is on every open stream (of ``plural``, or all)."""
        with self.cond:
            seq = self.raw[-1].seq + 1 if self.raw else 1
            self.raw.append(RawLine(seq, plural, line))
            self.cond.notify_all()

    def expires(self, plural: str) -> bool:
        return "*" in self.expiring or plural in self.expiring


@dataclass
class WatchRequest:
    rt: ResourceType
    namespace: str | None
    params: dict[str, list[str]]


def query_bool(params: dict[str, list[str]], name: str) -> bool:
    """A boolean query parameter as Go's strconv.ParseBool reads it (the client sends True)."""
    return _param(params, name) in ("1", "t", "T", "TRUE", "true", "True")


def _param(params: dict[str, list[str]], name: str) -> str:
    return params.get(name, [""])[0]


def open_watch(
    log: EventLog,
    objects: dict[tuple[str, str], JSONObj],
    current_rv: Callable[[], int],
    req: WatchRequest,
    clock: Callable[[], float],
    *,
    bookmark_interval: float,
    calico: bool = False,
    advance: Callable[[float], None] | None = None,
) -> Iterator[bytes]:
    """Check the request (raising ApiError) and return the stream of event lines.

    Called under the server's lock: the initial state and the start version are taken at
    one instant; the returned iterator waits on :attr:`EventLog.cond` without holding it.
    ``calico``: the kind is served by the Calico API server (its errors and no bookmarks).
    ``advance``: moves emulated time instead of waiting in real time (the 3 s wait for a
    version ahead of the server).
    """
    try:
        labels = parse_label_selector(_param(req.params, "labelSelector"))
        fields = parse_field_selector(_param(req.params, "fieldSelector"))
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    raw_timeout = _param(req.params, "timeoutSeconds")
    try:
        timeout = float(int(raw_timeout)) if raw_timeout else DEFAULT_TIMEOUT
    except ValueError:
        raise bad_request(f"invalid timeoutSeconds {raw_timeout!r}") from None
    raw_rv = _param(req.params, "resourceVersion")
    if raw_rv not in ("", "0"):
        try:
            start = int(raw_rv)
        except ValueError:
            raise bad_request(f"invalid resource version: {raw_rv!r}") from None
    bookmarks = query_bool(req.params, "allowWatchBookmarks") and not calico

    def matches(obj: JSONObj | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata", {})
        if req.namespace is not None and meta.get("namespace") != req.namespace:
            return False
        obj_labels = meta.get("labels") or {}
        return all(p(obj_labels) for p in labels) and all(p(obj) for p in fields)

    def error(status: JSONObj) -> Iterator[bytes]:
        return iter([_error_line(status, calico)])

    initial: list[bytes] = []
    now_rv = current_rv()
    if raw_rv in ("", "0"):
        start = now_rv
        initial = [_line("ADDED", obj) for _, obj in sorted(objects.items()) if matches(obj)]
    elif log.expires(req.rt.plural):
        return error(_too_old(start, now_rv))
    elif start < log.oldest:
        return error(_too_old(start, log.oldest))
    deadline = clock() + timeout
    too_large = start > now_rv

    def bookmark(rv: int) -> bytes:
        return _line(
            "BOOKMARK",
            {
                "kind": req.rt.kind,
                "apiVersion": req.rt.api_version,
                "metadata": {"resourceVersion": str(rv)},
            },
        )

    generation = log.generation
    raw_seen = log.raw[-1].seq if log.raw else 0

    def wait_until_fresh() -> bytes | None:
        """The watch cache's wait for a version ahead of it: None once it has caught up."""
        if advance is not None:
            advance(TOO_LARGE_WAIT)  # emulated time passes; nothing sleeps
        until = clock() + (0 if advance is not None else TOO_LARGE_WAIT)
        with log.cond:
            while current_rv() < start and clock() < until and log.generation == generation:
                log.cond.wait(_POLL)
            latest = current_rv()
        return None if latest >= start else _error_line(_too_large(start, latest), calico)

    def stream() -> Iterator[bytes]:
        nonlocal raw_seen
        if too_large:
            refused = wait_until_fresh()
            if refused is not None:
                yield refused
                return
        yield from initial
        seen = start
        next_bookmark = clock() + bookmark_interval
        while True:
            out: list[bytes] = []
            expired: bytes | None = None
            with log.cond:
                pending = [e for e in log.events if e.rv > seen and e.rt == req.rt]
                raw = [r for r in log.raw if r.seq > raw_seen]
                if (not pending and not raw and log.generation == generation) or log.stalled:
                    log.cond.wait(_POLL)
                    pending = [e for e in log.events if e.rv > seen and e.rt == req.rt]
                    raw = [r for r in log.raw if r.seq > raw_seen]
                closed = log.generation != generation
                stalled = log.stalled
                if seen < log.oldest:  # fell out of the window while we were writing
                    expired = _error_line(_too_old(seen, log.oldest), calico)
                latest = log.events[-1].rv if log.events else seen
            if closed:
                return
            if stalled:
                continue  # headers sent, then nothing: no event, no end, no bookmark
            if expired is not None:
                yield expired
                return
            for r in raw:
                raw_seen = r.seq
                if r.plural in (None, req.rt.plural):
                    out.append(r.line.rstrip(b"\n") + b"\n")
            for event in pending:
                now, before = matches(event.obj), matches(event.old)
                if event.type == "DELETED":
                    kind = "DELETED" if before or now else ""
                elif now and not before:
                    kind = "ADDED"
                elif now:
                    kind = "MODIFIED"
                else:
                    kind = "DELETED" if before else ""
                if kind:
                    out.append(_line(kind, event.obj))
                seen = max(seen, event.rv)
            yield from out
            now_t = clock()
            if now_t >= deadline:
                if bookmarks:
                    yield bookmark(max(seen, latest))
                return
            if bookmarks and now_t >= next_bookmark:
                seen = max(seen, latest)
                yield bookmark(seen)
                next_bookmark = now_t + bookmark_interval

    return stream()


def _too_old(rv: int, oldest: int) -> JSONObj:
    return status_body(410, "Expired", f"too old resource version: {rv} ({oldest})")


def _too_large(rv: int, current: int) -> JSONObj:
    return status_body(
        504,
        "Timeout",
        f"Timeout: Too large resource version: {rv}, current: {current}",
        {
            "causes": [
                {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
            ],
            "retryAfterSeconds": 1,
        },
    )


def _error_line(status: JSONObj, calico: bool) -> bytes:
    """An ``ERROR`` event; through the Calico API server only the message survives."""
    if calico:
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "message": status.get("message", ""),
            "reason": "InternalError",
        }
    return _line("ERROR", status)


def _line(kind: str, obj: JSONObj) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"
