"""The Lambda handlers: one thin module per trigger, all in one code asset.

A handler wires observability and calls one function of :mod:`fedkeeper.lambda_runtime`.
The Powertools Logger, Metrics and Tracer are created here, once per process, and shared by
every handler module (a function only ever loads its own, but tests and the sandbox load all
four). The logger masks secrets in every record (:class:`RedactingFormatter`).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

from fedkeeper.lambda_runtime import SERVICE, RedactingFormatter, metrics_namespace

logger = Logger(service=SERVICE, logger_formatter=RedactingFormatter())
metrics = Metrics(namespace=metrics_namespace(), service=SERVICE)
tracer = Tracer(service=SERVICE)

__all__ = ["logger", "metrics", "tracer"]
