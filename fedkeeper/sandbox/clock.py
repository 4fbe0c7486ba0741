"""The sandbox clock: emulated time that tests move forward instead of sleeping.

Everything time-bound in the sandbox reads it: the fake API servers (EKS token lifetimes),
the STS signature time of EKS tokens (botocore's signing clock, while a sandbox runs), and
the :class:`~fedkeeper.service.Connections` the sandbox builds (its token-refresh clock).
Production code never imports this: it takes a clock as a parameter, defaulting to the
real one.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from unittest import mock


class SandboxClock:
    """Real time plus an offset that only grows."""

    def __init__(self, offset: float = 0.0) -> None:
        """``offset``: seconds ahead of real time (another process's sandbox clock, read from
        the running sandbox, so that tokens signed here carry the world's time)."""
        if offset < 0:
            raise ValueError("the sandbox clock only moves forward")
        self._offset = offset
        self._lock = threading.Lock()
        # Told after every move: emulations whose state changes with time (add-on rollouts).
        self.listeners: list[Callable[[], None]] = []

    @property
    def offset(self) -> float:
        return self._offset

    def advance(self, seconds: float) -> None:
        """Move emulated time forward by ``seconds`` (never backwards)."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += seconds
        for listener in list(self.listeners):
            listener()

    def time(self) -> float:
        """Emulated wall-clock time, seconds since the epoch."""
        return time.time() + self._offset

    def monotonic(self) -> float:
        """Emulated monotonic time (for intervals: token refresh, deadlines)."""
        return time.monotonic() + self._offset

    def utcnow(self, remove_tzinfo: bool = True) -> datetime:
        """Emulated UTC time (naive by default, as botocore's signer asks for it)."""
        now = datetime.fromtimestamp(self.time(), UTC)
        return now.replace(tzinfo=None) if remove_tzinfo else now

    @contextlib.contextmanager
    def signing_time(self) -> Iterator[None]:
        """While active, botocore signs requests (and presigns EKS tokens) at emulated time."""
        with mock.patch("botocore.auth.get_current_datetime", self.utcnow):
            yield
