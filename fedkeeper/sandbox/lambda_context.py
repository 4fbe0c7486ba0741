"""A stand-in for the Lambda context object, for invoking handlers on this machine.

It carries what Powertools reads (name, memory, ARN, request id) and what handlers may
call (``get_remaining_time_in_millis``), as the Powertools testing guide suggests.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from fedkeeper.sandbox.event_factory import ACCOUNT


@dataclass
class FakeLambdaContext:
    function_name: str = "fedkeeper-handler"
    memory_limit_in_mb: int = 512
    region: str = "eu-west-1"
    timeout_s: int = 120
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # Monotonic seconds the remaining time is counted on (the sandbox clock, in a sandbox).
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _started: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self._started is None:
            self._started = self.clock()

    @classmethod
    def for_handler(
        cls,
        handler: str,
        region: str = "eu-west-1",
        clock: Callable[[], float] = time.monotonic,
    ) -> FakeLambdaContext:
        return cls(
            function_name=f"fedkeeper-{handler.replace('_', '-')}", region=region, clock=clock
        )

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"2025/01/01/[$LATEST]{self.aws_request_id.replace('-', '')}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        left = self.timeout_s - (self.clock() - (self._started or 0.0))
        return max(0, int(left * 1000))
