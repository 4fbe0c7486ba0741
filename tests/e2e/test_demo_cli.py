"""`fedkeeper demo` as a user runs it (its own sandbox)."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_demo_runs_on_a_config_whose_ranges_hold_the_examples_extra_cidrs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = EXAMPLE.read_text()
    text = text.replace("pod_cidrs: [10.244.0.0/16]", "pod_cidrs: [10.244.0.0/16, 10.101.0.0/16]")
    text = text.replace(
        "service_cidrs: [10.96.0.0/16]", "service_cidrs: [10.96.0.0/16, 10.102.0.0/16]"
    )
    cfg = tmp_path / "federation.yaml"
    cfg.write_text(text)
    scenarios = ["vpc-secondary-cidr", "vpc-cidr-removed", "foreign-overlapping-pool"]
    args = ["demo", "-c", str(cfg), "--json"] + [a for s in scenarios for a in ("--scenario", s)]

    code = main(args)

    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    assert [r["scenario"] for r in out] == scenarios
    assert all(r["writes_on_rerun"] == 0 for r in out)
