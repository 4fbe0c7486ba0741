"""``repair``: the scheduled full reconcile, and the operator's manual entry point.

Invoke it by hand with ``{"action": "plan" | "apply" | "status", "scope": [...]}`` (scope
optional: routes, snat, ippools, rcc, vpn, checks). ``plan`` and ``status`` write nothing;
a bad payload is refused with the problems named, and changes nothing.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas import logger, metrics, traced


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, log_event=False)
@metrics.log_metrics(capture_cold_start_metric=True)
@traced
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    from fedkeeper.lambda_runtime import handle_repair  # on first use: see lambdas/__init__.py

    return handle_repair(event, context)
