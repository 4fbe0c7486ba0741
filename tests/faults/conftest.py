"""A converged sandbox per test (moto's mock is process-wide: one sandbox at a time)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fedkeeper.config import FederationConfig, load_config
from fedkeeper.sandbox import Sandbox
from tests.conftest import EXAMPLE


@pytest.fixture
def config() -> FederationConfig:
    return load_config(EXAMPLE)


@pytest.fixture
def sandbox(config: FederationConfig) -> Iterator[Sandbox]:
    with Sandbox.start(config) as sb:
        yield sb
