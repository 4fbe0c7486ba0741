"""A configuration error inside the Lambda is notified, once per episode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fedkeeper import lambda_runtime
from fedkeeper.config import load_config
from fedkeeper.sandbox import Sandbox
from tests.conftest import EXAMPLE


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox.start(load_config(EXAMPLE)) as sandbox:
        yield sandbox


def test_a_broken_config_notifies_once_however_often_the_function_runs(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "federation.yaml"
    broken.write_text("name: [not a name\n")
    monkeypatch.setenv("FEDKEEPER_CONFIG_PATH", str(broken))
    monkeypatch.setenv("FEDKEEPER_MODE", "sometimes")  # a bad setting too
    monkeypatch.setenv("FEDKEEPER_TOPIC_ARN", str(sb.topic_arn))
    monkeypatch.setenv("FEDKEEPER_EPISODES_TABLE", str(sb.episodes_table))
    with lambda_runtime.use_runtime(None):
        for _ in range(3):
            out = lambda_runtime.handle_manual({"action": "plan"})
            assert out["errors"][0]["invariant"] == "config"
    subjects = [s for s, _ in sb.notifications()]
    assert subjects == ["fedkeeper fed-demo: persistent trouble: config"]
