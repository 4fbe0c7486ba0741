"""SSM Parameter Store's size limit on a parameter value, which moto does not enforce.

A ``PutParameter`` whose ``Value`` is longer than its tier allows - 4,096 characters in the
standard tier, 8,192 in the advanced tier - is refused with ``ValidationException`` ("Standard
tier parameters support a maximum parameter value of 4096 characters. ...") and changes
nothing. The tier is the request's ``Tier``, else the parameter's own, else Standard (the
account default). ``Intelligent-Tiering`` is held to the advanced limit. Sources:
https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html
(4 KB standard, 8 KB advanced), the API reference of PutParameter (``Value``, ``Tier``), and
the error text AWS returns (as quoted in hashicorp/terraform-provider-aws issue #18521).
"""

from __future__ import annotations

import json
from typing import Any

from moto.core.models import DEFAULT_ACCOUNT_ID

LIMITS = {"Standard": 4096, "Advanced": 8192, "Intelligent-Tiering": 8192}
_DOCS = "https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html"


def refusal(body: bytes | str | None, region: str) -> str | None:
    """The ValidationException message for a ``PutParameter`` request body, or None."""
    try:
        params: Any = json.loads(body or b"{}")
    except ValueError:
        return None
    if not isinstance(params, dict) or not isinstance(params.get("Value"), str):
        return None
    tier = params.get("Tier") or _existing_tier(str(params.get("Name", "")), region) or "Standard"
    limit = LIMITS.get(str(tier), LIMITS["Standard"])
    if len(params["Value"]) <= limit:
        return None
    if tier == "Standard":
        return (
            "Standard tier parameters support a maximum parameter value of 4096 characters. "
            "To create a larger parameter value, upgrade the parameter to use the "
            f"advanced-parameter tier. For more information, see {_DOCS}"
        )
    return (
        "1 validation error detected: Value at 'value' failed to satisfy constraint: "
        f"Member must have length less than or equal to {limit}"
    )


def _existing_tier(name: str, region: str) -> str | None:
    from moto.ssm.models import ssm_backends

    existing = ssm_backends[DEFAULT_ACCOUNT_ID][region].get_parameter(name)
    return str(existing.tier) if existing is not None and existing.tier else None
