"""The Lambda code asset: bundled locally, dependencies for the Lambda platform, cached."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from stacks.automation import RUNTIME
from stacks.bundling import (
    CONFIG_NAME,
    SKIP_DEPS_ENV,
    BundlingError,
    LambdaBundle,
    skip_deps_requested,
)
from tests.infra.conftest import EXAMPLE_CONFIG, Synth

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("infra")]


@pytest.fixture
def lambda_asset(synth: Synth) -> Path:
    (asset,) = [p for p in synth.outdir.glob("asset.*") if (p / CONFIG_NAME).is_file()]
    return asset


@pytest.fixture
def project(tmp_path: Path) -> LambdaBundle:
    """A tiny project: a package, a handler module, requirements and a config file."""
    (tmp_path / "fedkeeper").mkdir()
    (tmp_path / "fedkeeper" / "__init__.py").write_text("")
    (tmp_path / "fedkeeper" / "__pycache__").mkdir()
    (tmp_path / "fedkeeper" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "lambdas").mkdir()
    (tmp_path / "lambdas" / "repair.py").write_text("def handler(event, context): ...\n")
    (tmp_path / "lambdas" / "requirements.txt").write_text("PyYAML>=6\n")
    (tmp_path / "my-federation.yaml").write_text("name: x\n")
    return LambdaBundle(tmp_path, tmp_path / "my-federation.yaml", "3.14")


def _no_pip(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"pip must not run: {args}")


def test_asset_holds_the_code_the_config_and_the_dependencies(lambda_asset: Path) -> None:
    assert (lambda_asset / "fedkeeper" / "config.py").is_file()
    assert (lambda_asset / "lambdas" / "requirements.txt").is_file()
    assert (lambda_asset / CONFIG_NAME).read_bytes() == EXAMPLE_CONFIG.read_bytes()
    for package in ("pydantic", "yaml", "kubernetes", "boto3", "aws_lambda_powertools"):
        assert (lambda_asset / package).is_dir(), package


def test_binary_dependencies_are_built_for_the_lambda_runtime(lambda_asset: Path) -> None:
    tag = RUNTIME.name.removeprefix("python").replace(".", "")

    extensions = list((lambda_asset / "pydantic_core").glob("*.so"))

    assert extensions
    assert all(f"cpython-{tag}-x86_64-linux-gnu" in e.name for e in extensions)


def test_asset_carries_no_bytecode(lambda_asset: Path) -> None:
    assert not list(lambda_asset.rglob("__pycache__"))


def test_dependencies_come_from_the_cache_without_pip(
    project: LambdaBundle, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cached = project.deps_dir()
    (cached / "yaml").mkdir(parents=True)
    (cached / "yaml" / "__init__.py").write_text("")
    monkeypatch.setattr(subprocess, "run", _no_pip)
    out = tmp_path / "out"
    out.mkdir()

    project.fill(out)

    assert (out / "yaml" / "__init__.py").is_file()
    assert (out / "lambdas" / "repair.py").is_file()
    assert (out / CONFIG_NAME).read_text() == "name: x\n"
    assert not (out / "fedkeeper" / "__pycache__").exists()


def test_cache_key_follows_requirements_and_python_version(project: LambdaBundle) -> None:
    key = project.deps_key()
    other_python = LambdaBundle(project.project_root, project.config_file, "3.13")

    assert other_python.deps_key() != key
    project.requirements.write_text("PyYAML>=6\npydantic>=2\n")
    assert project.deps_key() != key


def test_asset_hash_follows_the_code_and_config_and_marks_skipped_dependencies(
    project: LambdaBundle,
) -> None:
    first = project.asset_hash()
    skipped = LambdaBundle(project.project_root, project.config_file, "3.14", skip_deps=True)

    assert skipped.asset_hash() != first
    (project.project_root / "lambdas" / "repair.py").write_text("# changed\n")
    assert project.asset_hash() != first
    changed = project.asset_hash()
    project.config_file.write_text("name: y\n")
    assert project.asset_hash() != changed


def test_skipping_dependencies_bundles_only_code(
    project: LambdaBundle, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    skipped = LambdaBundle(project.project_root, project.config_file, "3.14", skip_deps=True)
    monkeypatch.setattr(subprocess, "run", _no_pip)
    out = tmp_path / "out"
    out.mkdir()

    skipped.fill(out)

    assert sorted(p.name for p in out.iterdir()) == [CONFIG_NAME, "fedkeeper", "lambdas"]


def test_a_failed_install_names_the_way_out(
    project: LambdaBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_pip(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 1, "", "No matching distribution")

    monkeypatch.setattr(subprocess, "run", failing_pip)

    with pytest.raises(BundlingError, match=SKIP_DEPS_ENV):
        project.ensure_deps()
    assert not project.deps_dir().exists()
    assert not list(project.cache_root.glob(".tmp-*"))


@pytest.mark.parametrize(
    ("env", "context", "expected"),
    [("", None, False), ("1", None, True), ("", "true", True), ("0", "false", False)],
)
def test_dependency_install_is_skipped_only_on_request(
    monkeypatch: pytest.MonkeyPatch, env: str, context: str | None, expected: bool
) -> None:
    monkeypatch.setenv(SKIP_DEPS_ENV, env)

    assert skip_deps_requested(context) is expected
