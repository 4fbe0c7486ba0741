"""EventBridge events as AWS delivers them, for the sandbox to emit after a fault.

The shapes follow the EventBridge references for CloudWatch alarm state changes, AWS Health,
CloudTrail API calls and scheduled events; ``tests/events/`` keeps captured-style samples.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

ACCOUNT = "123456789012"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(
    source: str,
    detail_type: str,
    detail: dict[str, Any],
    region: str,
    resources: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": _now(),
        "region": region,
        "resources": resources or [],
        "detail": detail,
    }


def cloudtrail(
    service: str, event_name: str, request_parameters: dict[str, Any], region: str
) -> dict[str, Any]:
    """An "AWS API Call via CloudTrail" event for ``service`` (ec2, eks)."""
    return envelope(
        f"aws.{service}",
        "AWS API Call via CloudTrail",
        {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": "AROAEXAMPLE:operator",
                "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/operator",
                "accountId": ACCOUNT,
            },
            "eventTime": _now(),
            "eventSource": f"{service}.amazonaws.com",
            "eventName": event_name,
            "awsRegion": region,
            "sourceIPAddress": "198.51.100.7",
            "userAgent": "aws-cli/2.17.0",
            "requestParameters": request_parameters,
            "responseElements": None,
            "requestID": str(uuid.uuid4()),
            "eventID": str(uuid.uuid4()),
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Management",
        },
        region,
    )


def tunnel_alarm(
    alarm_name: str, state: str, previous: str, vpn_id: str, tunnel_ip: str, region: str
) -> dict[str, Any]:
    """A "CloudWatch Alarm State Change" for a TunnelState alarm."""
    arn = f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:{alarm_name}"
    reason = (
        "Threshold Crossed: 1 datapoint [0.0] was less than the threshold (1.0)."
        if state == "ALARM"
        else "Threshold Crossed: 1 datapoint [1.0] was not less than the threshold (1.0)."
    )
    return envelope(
        "aws.cloudwatch",
        "CloudWatch Alarm State Change",
        {
            "alarmName": alarm_name,
            "state": {"value": state, "reason": reason, "timestamp": _now()},
            "previousState": {"value": previous, "reason": "", "timestamp": _now()},
            "configuration": {
                "metrics": [
                    {
                        "id": "m1",
                        "metricStat": {
                            "metric": {
                                "namespace": "AWS/VPN",
                                "name": "TunnelState",
                                "dimensions": {"VpnId": vpn_id, "TunnelIpAddress": tunnel_ip},
                            },
                            "period": 60,
                            "stat": "Maximum",
                        },
                        "returnData": True,
                    }
                ],
                "description": "VPN tunnel state",
            },
        },
        region,
        [arn],
    )


def health_vpn(code: str, region: str, vpn_id: str) -> dict[str, Any]:
    return envelope(
        "aws.health",
        "AWS Health Event",
        {
            "eventArn": f"arn:aws:health:{region}::event/VPN/{code}/{uuid.uuid4()}",
            "service": "VPN",
            "eventTypeCode": code,
            "eventTypeCategory": "issue",
            "eventScopeCode": "ACCOUNT_SPECIFIC",
            "startTime": _now(),
            "statusCode": "open",
            "eventDescription": [{"language": "en_US", "latestDescription": "Tunnel down."}],
            "affectedEntities": [{"entityValue": vpn_id}],
        },
        region,
        [vpn_id],
    )


def addon_event(detail_type: str, cluster: str, addon: str, region: str) -> dict[str, Any]:
    return envelope(
        "aws.eks",
        detail_type,
        {"clusterName": cluster, "addonName": addon, "addonVersion": "v1.19.2-eksbuild.1"},
        region,
        [f"arn:aws:eks:{region}:{ACCOUNT}:addon/{cluster}/{addon}/example"],
    )


def scheduled(region: str, rule_arn: str = "") -> dict[str, Any]:
    return envelope(
        "aws.events",
        "Scheduled Event",
        {},
        region,
        [rule_arn or f"arn:aws:events:{region}:{ACCOUNT}:rule/fedkeeper-schedule"],
    )
