"""What a handler's cold import loads, and when tracing is on (no timing: bench/ measures it).

Each import runs in a fresh interpreter: the test process has loaded everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lambdas import tracing_enabled

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ("on_tunnel_state", "on_route_change", "on_cluster_event", "repair", "watch")
HEAVY = ("pydantic", "yaml", "boto3", "botocore.client", "kubernetes", "aws_xray_sdk")


def loaded_by(statement: str) -> list[str]:
    """The heavy modules loaded after ``statement`` in a fresh interpreter."""
    code = f"import sys, json\n{statement}\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    result: list[str] = json.loads(out.stdout)
    return result


def test_no_handler_module_loads_pydantic_boto3_kubernetes_or_xray_when_imported() -> None:
    imports = "; ".join(f"import lambdas.{h}" for h in HANDLERS)

    assert loaded_by(imports) == []


def test_the_engine_loads_boto3_but_not_the_kubernetes_client() -> None:
    assert loaded_by("import fedkeeper.service") == ["pydantic", "yaml", "boto3", "botocore.client"]


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "0"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_CHALICE_CLI_MODE": "true"}, False),
    ],
)
def test_tracing_is_on_in_lambda_unless_disabled_as_powertools_decides(
    env: dict[str, str], on: bool
) -> None:
    assert tracing_enabled(env) is on


def test_the_snapshot_hook_loads_the_code_a_first_invocation_would() -> None:
    # Given a handler imported in a runtime with SnapStart's hooks (snapshot_restore_py)
    run_hooks = (
        "import lambdas.repair, snapshot_restore_py\n"
        "hooks = snapshot_restore_py.get_before_snapshot()\n"
        "assert [f.__name__ for f, _, _ in hooks] == ['load_for_snapshot']\n"
        "for f, args, kwargs in hooks: f(*args, **kwargs)"
    )

    # When Lambda runs the before-snapshot hooks, then the snapshot holds the engine's code
    assert loaded_by(run_hooks) == ["pydantic", "yaml", "boto3", "botocore.client", "kubernetes"]
