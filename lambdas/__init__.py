"""The Lambda handlers: one thin module per trigger, all in one code asset.

A handler wires observability and calls one function of :mod:`fedkeeper.lambda_runtime`,
which it imports on its first invocation: a cold import loads Powertools' Logger and Metrics
and nothing else of weight (no pydantic, configuration models, boto3, kubernetes client or
X-Ray SDK; ``bench/handler_cold_start.py`` measures it). The Logger and Metrics are created
here, once per process, and shared by every handler module (a function only ever loads its
own, but tests and the sandbox load all of them). The logger masks secrets in every record
(:class:`fedkeeper.telemetry.RedactingFormatter`).

Tracing is lazy, because the X-Ray SDK is the largest single cost of a cold import: it
builds its recorder and botocore clients when imported. :func:`traced` hands an invocation
to Powertools' ``Tracer.capture_lambda_handler`` only while tracing is on
(:func:`tracing_enabled`), and the Tracer is built on the first traced invocation, patching
botocore only: the one library fedkeeper calls out through that ``Tracer()``'s default
``patch_all`` traced (it patches requests and sqlite3 too, which fedkeeper never calls, and
leaves http.client alone).

The deployed functions run from SnapStart snapshots of their published versions: there a
before-snapshot hook (:func:`load_for_snapshot`, registered through the runtime's
``snapshot_restore_py``) imports what the first invocation would, so a restored container
starts with the runtime, the engine, boto3 and the kubernetes client loaded. It opens no
connection and reads no credential: those belong to the restored container.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools import Logger, Metrics

from fedkeeper.telemetry import SERVICE, RedactingFormatter, metrics_namespace

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

logger = Logger(service=SERVICE, logger_formatter=RedactingFormatter())
metrics = Metrics(namespace=metrics_namespace(), service=SERVICE)

# What the Tracer patches: the AWS SDK (boto3 goes through botocore).
TRACED_LIBRARIES = ("botocore",)
_TRUE = frozenset({"1", "t", "true", "on", "y", "yes"})  # Powertools' strtobool

Handler = TypeVar("Handler", bound=Callable[..., Any])


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether invocations are traced: Powertools' own rule, read without loading X-Ray.

    On in a Lambda execution environment (``LAMBDA_TASK_ROOT`` is set) unless
    ``POWERTOOLS_TRACE_DISABLED`` is true or it runs under SAM local or Chalice, as
    ``Tracer._is_tracer_disabled`` decides (aws-lambda-powertools
    ``aws_lambda_powertools/tracing/tracer.py``).
    """
    env = os.environ if environ is None else environ
    if env.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUE:
        return False
    if env.get("AWS_SAM_LOCAL") or env.get("AWS_CHALICE_CLI_MODE"):
        return False
    return bool(env.get("LAMBDA_TASK_ROOT"))


class _TracerSlot:
    """The process's Tracer, built on first use."""

    lock = threading.Lock()
    value: Tracer | None = None


def tracer() -> Tracer:
    """The process's Powertools Tracer (built once, on first use, with botocore patched)."""
    with _TracerSlot.lock:
        if _TracerSlot.value is None:
            from aws_lambda_powertools import Tracer

            built = Tracer(service=SERVICE, auto_patch=False)
            built.patch(TRACED_LIBRARIES)
            _TracerSlot.value = built
        return _TracerSlot.value


def traced(handler: Handler) -> Handler:
    """``handler`` under ``Tracer.capture_lambda_handler`` while tracing is on, else as is.

    The decision is made per invocation (one environment lookup), the Tracer on the first
    traced one: an untraced process never imports the X-Ray SDK.
    """
    wrapped: list[Callable[..., Any]] = []

    @functools.wraps(handler)
    def run(event: Any, context: Any) -> Any:
        if not tracing_enabled():
            return handler(event, context)
        if not wrapped:
            wrapped.append(tracer().capture_lambda_handler(handler))
        return wrapped[0](event, context)

    return run  # type: ignore[return-value]


def load_for_snapshot() -> None:
    """Import everything an invocation loads on first use (code only: no clients, no I/O)."""
    import fedkeeper.adapters.kube
    import fedkeeper.lambda_runtime
    import fedkeeper.service
    import fedkeeper.watch_function  # noqa: F401


def _register_snapshot_hook() -> None:
    try:
        from snapshot_restore_py import register_before_snapshot
    except ImportError:  # a runtime without SnapStart's hooks
        return
    register_before_snapshot(load_for_snapshot)


_register_snapshot_hook()

__all__ = ["load_for_snapshot", "logger", "metrics", "traced", "tracer", "tracing_enabled"]
