"""`fedkeeper demo` as a user runs it (its own sandbox)."""

from __future__ import annotations

import json

import pytest

from fedkeeper.cli import main
from tests.conftest import EXAMPLE


def test_demo_command_json_lists_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "demo",
            "-c",
            str(EXAMPLE),
            "--json",
            "--scenario",
            "route-propagation-disabled",
            "--scenario",
            "token-rotated",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [r["scenario"] for r in out] == ["route-propagation-disabled", "token-rotated"]
    for r in out:
        assert set(r) >= {
            "scenario",
            "detected",
            "repaired",
            "converged",
            "writes_on_rerun",
            "report",
        }
        assert r["writes_on_rerun"] == 0


def test_demo_rejects_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "-c", str(EXAMPLE), "--scenario", "nope"]) == 2
    assert "unknown scenario" in capsys.readouterr().err
