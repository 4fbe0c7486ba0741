"""``on_tunnel_state``: a TunnelState alarm changed state, or AWS Health spoke of the VPN.

Scope vpn. An ALARM with no tunnel up defers the on-prem work (reported in the Report);
an OK reconciles everything, since on-prem may have drifted while it was cut off.
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

    return handle_event(event, context, "on_tunnel_state")
