"""The project's own error types.

Adapters translate SDK errors (botocore ``ClientError``, kubernetes ``ApiException``,
connection failures) into these, so the engine and the handlers decide what to do from the
kind of failure, never from an SDK's exception class:

* :class:`RetryableError` — throttling, 5xx, 409 conflicts, an unreachable endpoint. Trying
  again later may succeed; a Lambda raises it so that EventBridge/Lambda retries and the
  dead-letter queue take over.
* :class:`PermanentError` — validation, forbidden, a required object missing, malformed
  credentials. Trying again will not help; it is reported and counted, not raised.
* :class:`BusyError` — the target is in the middle of another operation; the work waits for
  the next trigger (deferred, neither raised nor alerted).
"""

from __future__ import annotations


class FedkeeperError(Exception):
    """Base class of every error fedkeeper raises on purpose.

    ``target`` names where it happened when an adapter knows (``eks``, ``onprem``,
    ``aws/<service>``), ``status`` the HTTP status when there was one: the engine keeps a
    failure to the work that needs that target and names the fix.
    """

    target: str | None = None
    status: int | None = None


class RetryableError(FedkeeperError):
    """A failure that may go away on its own (throttled, 5xx, conflict, unreachable)."""


class UnreachableError(RetryableError):
    """The endpoint did not answer (connection refused, timed out, DNS failure).

    ``target`` names the backend (``aws``, ``eks``, ``onprem``) so the engine can defer
    the work of an unreachable cluster instead of failing the run.
    """

    def __init__(self, message: str, *, target: str | None = None) -> None:
        super().__init__(message)
        self.target = target


class ConflictError(RetryableError):
    """A write carried a stale ``resourceVersion`` (HTTP 409): re-read and re-plan."""


class BusyError(FedkeeperError):
    """The target is busy with another operation (an add-on update rolling out, 409
    ``ResourceInUseException``): neither retried at once nor alerted on; the work is deferred
    to the next trigger, when the operation has ended."""


class PermanentError(FedkeeperError):
    """A failure that retrying will not fix (validation, forbidden, bad credentials)."""


class NotFoundError(PermanentError):
    """The object does not exist (HTTP 404 / ``*.NotFound``)."""


class UnauthorizedError(PermanentError):
    """The API server did not accept the credentials (HTTP 401): expired, revoked, rotated."""


class AnswerTimeoutError(UnreachableError):
    """The endpoint accepted the connection but did not answer in time (read timeout)."""


class OutOfTimeError(RetryableError):
    """The run's deadline is too close for the call: the work is deferred, not started."""


class ElsewhereError(FedkeeperError):
    """The run leaves this target alone: another run covers it (a watch repair confined to
    the cluster whose object changed). Neither a failure nor deferred work."""


class ConfigError(PermanentError):
    """federation.yaml (or a manual payload) is invalid; ``errors`` lists each problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors
