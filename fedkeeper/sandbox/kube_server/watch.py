"""Watches, as the Kubernetes API server serves them ("Efficient detection of changes").

Every committed write is recorded as an event (``ADDED``/``MODIFIED``/``DELETED``) under the
resourceVersion it produced. A ``GET`` of a collection with ``?watch=true`` answers ``200``
and streams, chunked, one JSON ``{"type": ..., "object": ...}`` line per event:

* ``resourceVersion`` unset or ``"0"``: synthetic ``ADDED`` events for every object that
  exists now, then changes ("Get State and Start at Most Recent" / "Start at Any");
  ``resourceVersion=N``: every change after N ("Start at Exact"). N older than the retained
  window (``window`` events; :meth:`EventLog.compact` simulates etcd compaction) streams
  one ``ERROR`` event carrying a ``Status`` 410 ``Expired`` "too old resource version: N (M)"
  and ends, as the watch cache does; a non-integer N is a 400.
* ``labelSelector``/``fieldSelector`` filter events; an object that starts matching arrives
  as ``ADDED``, one that stops matching as ``DELETED`` (the watch cache's semantics).
* ``allowWatchBookmarks=true``: ``BOOKMARK`` events (an object of the kind with only
  ``metadata.resourceVersion``) every ``bookmark_interval`` seconds and when the watch ends.
* ``timeoutSeconds``: the stream ends cleanly after that long on the server's clock (the
  sandbox clock moves it on); without it, after ``DEFAULT_TIMEOUT`` (kube-apiserver's
  ``--min-request-timeout``, 1800 s).

Watches are authorized as the ``watch`` verb (a ``metadata.name`` field selector names the
object, as for ``list``). Sources: https://kubernetes.io/docs/reference/using-api/api-concepts/
("Efficient detection of changes", "Watch bookmarks", "410 Gone responses"), kubernetes
``staging/src/k8s.io/apiserver/pkg/storage/cacher`` (``NewTooOldResourceVersionError``).
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
_POLL = 0.05  # seconds between checks of the clock and of the server stopping


@dataclass(frozen=True)
class Event:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    rt: ResourceType
    obj: JSONObj  # the object after the change (before it, for DELETED) at ``rv``
    old: JSONObj | None  # the object before the change (None for ADDED)


class EventLog:
    """The retained history of changes, and the condition watchers wait on."""

    def __init__(self, lock: threading.RLock, *, window: int = DEFAULT_WINDOW) -> None:
        self.cond = threading.Condition(lock)
        self.events: deque[Event] = deque(maxlen=window)
        self.oldest = 0  # the oldest resourceVersion a watch may start from
        self.paused = False  # a dry-run write records nothing
        self.generation = 0  # bumped to end every open watch (server stopped or cut)

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

    def end_watches(self) -> None:
        """End every open watch cleanly (as the server does at a watch's timeout)."""
        with self.cond:
            self.generation += 1
            self.cond.notify_all()


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
    current_rv: int,
    req: WatchRequest,
    clock: Callable[[], float],
    *,
    bookmark_interval: float,
) -> Iterator[bytes]:
    """Check the request (raising ApiError) and return the stream of event lines.

    Called under the server's lock: the initial state and the start version are taken at
    one instant; the returned iterator waits on :attr:`EventLog.cond` without holding it.
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
    bookmarks = query_bool(req.params, "allowWatchBookmarks")

    def matches(obj: JSONObj | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata", {})
        if req.namespace is not None and meta.get("namespace") != req.namespace:
            return False
        obj_labels = meta.get("labels") or {}
        return all(p(obj_labels) for p in labels) and all(p(obj) for p in fields)

    initial: list[bytes] = []
    if raw_rv in ("", "0"):
        start = current_rv
        initial = [_line("ADDED", obj) for _, obj in sorted(objects.items()) if matches(obj)]
    elif start < log.oldest:
        return iter([_too_old(start, log.oldest)])
    deadline = clock() + timeout

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

    def stream() -> Iterator[bytes]:
        yield from initial
        seen = start
        next_bookmark = clock() + bookmark_interval
        while True:
            out: list[bytes] = []
            expired: bytes | None = None
            with log.cond:
                pending = [e for e in log.events if e.rv > seen and e.rt == req.rt]
                if not pending and log.generation == generation:
                    log.cond.wait(_POLL)
                    pending = [e for e in log.events if e.rv > seen and e.rt == req.rt]
                closed = log.generation != generation
                if seen < log.oldest:  # fell out of the window while we were writing
                    expired = _too_old(seen, log.oldest)
                latest = log.events[-1].rv if log.events else seen
            if expired is not None:
                yield expired
                return
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
            if closed:
                return
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


def _too_old(rv: int, oldest: int) -> bytes:
    body = status_body(410, "Expired", f"too old resource version: {rv} ({oldest})")
    return _line("ERROR", body)


def _line(kind: str, obj: JSONObj) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"
