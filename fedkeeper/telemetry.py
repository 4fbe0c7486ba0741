"""What the Lambda handlers' logs and metrics share: the service name, the metrics namespace,
and redaction of secrets in every log record.

Kept apart from :mod:`fedkeeper.lambda_runtime` so that a handler module can set up its
Powertools Logger and Metrics at import time without loading pydantic, the configuration
models or the engine (docs/BENCHMARKS.md, cold start): this module imports only the
standard library and Powertools' log formatter.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

SERVICE = "fedkeeper"
DEFAULT_METRICS_NAMESPACE = "Fedkeeper"


def metrics_namespace(environ: Mapping[str, str] | None = None) -> str:
    """The CloudWatch namespace: ``POWERTOOLS_METRICS_NAMESPACE``, else ``Fedkeeper``."""
    env = os.environ if environ is None else environ
    return env.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_METRICS_NAMESPACE


# --- secrets never reach a log ---------------------------------------------------------------

REDACTED = "*****"
_SENSITIVE_KEY = re.compile(
    r"token|kubeconfig|password|passwd|secret|authorization|api[-_]?key|credential|"
    r"private[-_]?key|certificate[-_]?data|client[-_]?key",
    re.IGNORECASE,
)
_SENSITIVE_TEXT = re.compile(
    r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]+|k8s-aws-v1\.[A-Za-z0-9_-]+|"
    r"(?i:\"?(?:token|password)\"?\s*[:=]\s*)\"?[^\s\",}]+"
)


def redact(value: Any) -> Any:
    """``value`` with secrets masked: values of sensitive keys, bearer and EKS tokens."""
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and _SENSITIVE_KEY.search(k) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _SENSITIVE_TEXT.sub(REDACTED, value)
    return value


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON log formatter, with :func:`redact` applied to every record."""

    def serialize(self, log: Any) -> str:
        return super().serialize(redact(log))
