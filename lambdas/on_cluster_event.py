"""``on_cluster_event``: a CloudTrail EKS add-on/cluster/node group call, or an EKS add-on event.

Scope snat and rcc: an add-on update can reset the vpc-cni configuration.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas import logger, metrics, traced


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, log_event=False)
@metrics.log_metrics(capture_cold_start_metric=True)
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from fedkeeper.lambda_runtime import handle_event  # on first use: see lambdas/__init__.py

    return handle_event(event, context, "on_cluster_event")
