"""Shared fixtures. Tests never reach real AWS: credentials are fake and the region fixed."""

from __future__ import annotations

import os
from pathlib import Path

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


@pytest.fixture
def example_path() -> Path:
    return EXAMPLE


@pytest.fixture
def example_config():  # type: ignore[no-untyped-def]
    from fedkeeper.config import load_config

    return load_config(EXAMPLE)
