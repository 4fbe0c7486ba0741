"""Shared fixtures. Tests never reach real AWS: credentials are fake and the region fixed."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "federation.example.yaml"

for key, value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
}.items():
    os.environ[key] = value
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("FEDKEEPER_MODE", None)
# A persistent sandbox someone runs on this machine is never the tests': each test process
# looks for one in its own empty state directory (through XDG_STATE_HOME: a FEDKEEPER_*
# variable would be refused by the Lambda settings the tests read from the environment).
# A test that starts one gives it free ports (FEDKEEPER_SANDBOX_PORT=0 or port 0).
_STATE_HOME = tempfile.TemporaryDirectory(prefix="fedkeeper-tests-state-")
os.environ["XDG_STATE_HOME"] = _STATE_HOME.name
for _name in ("FEDKEEPER_SANDBOX_HOME", "FEDKEEPER_SANDBOX_PORT"):
    os.environ.pop(_name, None)
# A deprecated CDK API called by the project's code fails the synth instead of warning.
os.environ["JSII_DEPRECATED"] = "fail"


@pytest.fixture
def example_path() -> Path:
    return EXAMPLE


@pytest.fixture
def example_config() -> Any:
    from fedkeeper.config import load_config

    return load_config(EXAMPLE)


@pytest.fixture
def config(example_config: Any) -> Any:
    return example_config


@pytest.fixture
def sandbox(example_config: Any) -> Iterator[Any]:
    """A converged sandbox per test (moto's mock is process-wide: one sandbox at a time)."""
    from fedkeeper.sandbox import Sandbox

    with Sandbox.start(example_config) as sb:
        yield sb
