"""``watch``: Kubernetes watches on both clusters; cluster-side drift repaired in seconds.

Started every minute by an EventBridge schedule, with no reserved concurrency: the invocation
that holds the lease (an item of the episodes table) watches until its time runs low, stores
where it stopped and gives the lease up; any other start returns at once, and the next holder
resumes from the stored resourceVersions (fedkeeper/watch_function.py).
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
    # Imported here: the watch engine brings boto3 and the kubernetes client, which a cold
    # import must not pay for (docs/BENCHMARKS.md, cold start).
    from fedkeeper.watch_function import handle_watch

    return handle_watch(event, context)
