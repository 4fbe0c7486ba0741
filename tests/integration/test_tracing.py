"""A traced invocation emits its X-Ray segments and its metrics, as in a Lambda with tracing on.

Tracing is process-wide (the X-Ray recorder, botocore patched), so the invocation runs in a
fresh interpreter with the environment Lambda sets under active tracing: the task root, a
sampled trace header, and the X-Ray daemon's address, here a UDP socket this test reads.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLE

ROOT = Path(__file__).resolve().parents[2]
TRACE_ROOT = "1-5759e988-bd862e3fe1be46a994272793"

# The scheduled event through the repair function, on the sandbox's connections; prints the
# heavy modules the handler module's import loaded, then the response.
CHILD = """
import json, sys
import lambdas.repair
loaded_by_import = [m for m in ("aws_xray_sdk", "pydantic", "boto3") if m in sys.modules]
from fedkeeper.config import load_config
from fedkeeper.lambda_runtime import Runtime, Settings, use_runtime
from fedkeeper.sandbox import Sandbox
from fedkeeper.sandbox.lambda_context import FakeLambdaContext
config = load_config(sys.argv[1])
event = json.loads(open(sys.argv[2]).read())
with Sandbox.start(config) as sb:
    with use_runtime(Runtime(Settings.from_env(), config, connections=sb.connections())):
        out = lambdas.repair.handler(event, FakeLambdaContext.for_handler("repair"))
print(json.dumps({"loaded_by_import": loaded_by_import, "converged": out["converged"]}))
"""


def _segments(sock: socket.socket) -> list[dict[str, Any]]:
    """Every segment document the daemon's socket received ("header\\nbody" datagrams)."""
    sock.setblocking(False)
    out = []
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return out
        out.append(json.loads(data.decode().split("\n", 1)[1]))


@pytest.fixture
def daemon() -> Any:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def test_a_traced_invocation_emits_its_segments_and_metrics(daemon: socket.socket) -> None:
    # Given a Lambda environment with active tracing, the X-Ray daemon listening
    port = daemon.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "FEDKEEPER_"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "LAMBDA_TASK_ROOT": str(ROOT),
            "AWS_LAMBDA_FUNCTION_NAME": "fed-demo-repair",
            "_X_AMZN_TRACE_ID": f"Root={TRACE_ROOT};Parent=53995c3f42cd8ad8;Sampled=1",
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{port}",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "POWERTOOLS_SERVICE_NAME": "fedkeeper",
            "POWERTOOLS_METRICS_NAMESPACE": "Fedkeeper",
        }
    )

    # When the schedule invokes the repair function
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(EXAMPLE),
            str(ROOT / "tests/events/scheduled_event.json"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    segments = _segments(daemon)

    # Then the handler's subsegment and one per AWS call reach the daemon, in the trace
    assert result["converged"]
    names = [s.get("name") for s in segments]
    (handler,) = [s for s in segments if s.get("name") == "## handler"]
    assert handler["trace_id"] == TRACE_ROOT
    assert handler["annotations"] == {"ColdStart": True, "Service": "fedkeeper"}
    aws = [s for s in segments if s.get("namespace") == "aws"]
    operations = {s["aws"].get("operation") for s in aws}
    assert {"DescribeVpcs", "DescribeRouteTables", "DescribeAddon"} <= operations, names
    assert all(s["trace_id"] == TRACE_ROOT for s in aws)
    # And its metrics are written as EMF, as without tracing
    emf = [json.loads(line) for line in proc.stdout.splitlines() if '"_aws"' in line]
    assert any("DriftFound" in doc for doc in emf)
    # And the handler module's import loaded none of it: the Tracer came with the invocation
    assert result["loaded_by_import"] == []
