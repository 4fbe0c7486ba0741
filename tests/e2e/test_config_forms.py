"""Both forms of federation.yaml through the CLI: `config migrate`, `validate` on a mesh, and
the engine's entry points refusing a federation of more clusters than it runs yet."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from fedkeeper import lambda_runtime, watch_function
from fedkeeper.cli import main
from fedkeeper.config import load_config
from tests.conftest import EXAMPLE, ROOT

MESH_EXAMPLE = ROOT / "federation.mesh.example.yaml"
NOT_WIRED = "runs one EKS cluster with one on-prem site for now"


# --- config migrate ---------------------------------------------------------------------------


def test_migrate_prints_the_two_cluster_example_in_the_clusters_form(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # When the two-cluster example is migrated without -o
    assert main(["config", "migrate", "-c", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    # Then the new form is printed, and only it (so it can be piped)
    data = yaml.safe_load(out)
    assert "clusters" in data and "eks" not in data and "onprem" not in data
    assert out.startswith(f"# {EXAMPLE} in the clusters: form")
    assert [c["name"] for c in data["clusters"]] == ["fed-eks", "onprem"]


def test_migrate_writes_a_file_that_loads_as_the_same_federation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = tmp_path / "new.yaml"
    # When it writes with -o
    assert main(["config", "migrate", "-c", str(EXAMPLE), "-o", str(new)]) == 0
    # Then it says so, and the file validates and loads to the same federation, names kept
    assert f"wrote {new}" in capsys.readouterr().out
    assert main(["validate", "-c", str(new)]) == 0
    assert load_config(new) == load_config(EXAMPLE)


def test_migrate_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a file already at the output path
    new = tmp_path / "new.yaml"
    new.write_text("keep me\n")
    # When migrate is told to write there
    assert main(["config", "migrate", "-c", str(EXAMPLE), "-o", str(new)]) == 2
    # Then it refuses, names the fix, and the file is untouched
    assert "--force" in capsys.readouterr().err
    assert new.read_text() == "keep me\n"
    # ... and with --force it replaces it
    assert main(["config", "migrate", "-c", str(EXAMPLE), "-o", str(new), "--force"]) == 0
    assert load_config(new) == load_config(EXAMPLE)


def test_migrate_refuses_a_bad_file_naming_its_own_field_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a two-cluster file with one AZ
    bad = tmp_path / "old.yaml"
    bad.write_text(EXAMPLE.read_text().replace("az_count: 2", "az_count: 1"))
    new = tmp_path / "new.yaml"
    # When it is migrated
    assert main(["config", "migrate", "-c", str(bad), "-o", str(new)]) == 2
    # Then the error names the legacy field and its fix, and nothing is written
    err = capsys.readouterr().err
    assert "aws.vpc.az_count: is 1; the federation needs at least 2 availability zones" in err
    assert not new.exists()


def test_migrating_a_missing_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "migrate", "-c", str(tmp_path / "nope.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err


# --- validate on the clusters: form -----------------------------------------------------------


def test_validate_summarises_the_mesh_example(capsys: pytest.CaptureFixture[str]) -> None:
    # When the mesh example is validated
    assert main(["validate", "-c", str(MESH_EXAMPLE)]) == 0
    out = capsys.readouterr().out
    # Then it is valid, and the summary names its clusters, links and pairs
    assert f"{MESH_EXAMPLE}: valid" in out
    assert "clusters: 4 (2 EKS, 2 on-prem)" in out
    assert "dc1 → eks-a (ikev2)" in out
    assert "VPC peerings eks-a ↔ eks-b" in out
    assert "pairs: 6 (full mesh)" in out
    assert "engine: not wired for this many clusters yet" in out


def test_validate_json_lists_the_meshs_clusters_and_pairs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["validate", "-c", str(MESH_EXAMPLE), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert [c["name"] for c in summary["clusters"]] == ["eks-a", "eks-b", "dc1", "dc2"]
    assert len(summary["pairs"]) == 12  # directed: one RCC each
    assert summary["peerings"] == [["eks-a", "eks-b"]]


# --- the engine refuses a federation of more clusters, without a traceback ---------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["plan"],
        ["apply"],
        ["status"],
        ["demo"],
        ["plan", "--sandbox"],
        ["adopt"],
    ],
)
def test_engine_commands_refuse_the_mesh_with_what_is_not_wired(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "-c", str(MESH_EXAMPLE)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fedkeeper: {MESH_EXAMPLE}: clusters: lists 2 EKS clusters")
    assert NOT_WIRED in err and "Traceback" not in err


def _mesh_lambda_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDKEEPER_CONFIG_PATH", str(MESH_EXAMPLE))
    for name in ("FEDKEEPER_TOPIC_ARN", "FEDKEEPER_EPISODES_TABLE"):
        monkeypatch.delenv(name, raising=False)


def test_the_repair_lambda_gives_a_failed_result_naming_the_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _mesh_lambda_env(monkeypatch)
    with lambda_runtime.use_runtime(None):
        out: dict[str, Any] = lambda_runtime.handle_manual({"action": "plan"})
    (error,) = out["errors"]
    assert error["invariant"] == "config" and error["retryable"] is False
    assert error["error"].startswith(f"{MESH_EXAMPLE}: clusters: lists 2 EKS clusters")
    assert NOT_WIRED in error["error"]


def test_the_watch_lambda_gives_a_failed_result_naming_the_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _mesh_lambda_env(monkeypatch)
    context = SimpleNamespace(get_remaining_time_in_millis=lambda: 60_000, aws_request_id="t")
    with lambda_runtime.use_runtime(None):
        out: dict[str, Any] = watch_function.handle_watch({}, context)
    (error,) = out["errors"]
    assert error["invariant"] == "config" and NOT_WIRED in error["error"]
