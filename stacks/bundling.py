"""The Lambda code asset, bundled on this machine without Docker.

One asset serves every function: ``fedkeeper/`` and ``lambdas/`` as packages, the config file
as ``federation.yaml``, and the packages of ``lambdas/requirements.txt`` installed for the
Lambda platform (manylinux wheels for the target CPython, never built from source).

The installed packages are cached under ``.build/lambda-deps/<key>``, where the key hashes the
requirements file, the platform and the Python version, so repeated synths (tests, CI) install
once and then need no network. ``FEDKEEPER_SKIP_DEPS=1`` (or context ``skipLambdaDeps``)
bundles the code without packages: only for documentation builds and tests on a machine that
can neither reach PyPI nor has the cache; such an asset gets a different hash and must never
be deployed.

Synth never imports the Lambda handlers: bundling only copies directories.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

SKIP_DEPS_ENV = "FEDKEEPER_SKIP_DEPS"
SKIP_DEPS_CONTEXT = "skipLambdaDeps"
PLATFORM = "manylinux2014_x86_64"
IMPLEMENTATION = "cp"
CODE_DIRS = ("fedkeeper", "lambdas")
CONFIG_NAME = "federation.yaml"
_IGNORED = ("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache")


class BundlingError(RuntimeError):
    """The Lambda dependencies could not be installed (no cache and pip failed)."""


@dataclass(frozen=True)
class LambdaBundle:
    """What goes into the Lambda asset, and where it comes from."""

    project_root: Path
    config_file: Path
    python_version: str  # "3.14"
    skip_deps: bool = False

    @property
    def requirements(self) -> Path:
        return self.project_root / "lambdas" / "requirements.txt"

    @property
    def cache_root(self) -> Path:
        return self.project_root / ".build" / "lambda-deps"

    def deps_key(self) -> str:
        """Cache key of the installed packages: requirements + platform + Python version."""
        digest = hashlib.sha256()
        digest.update(self.requirements.read_bytes())
        digest.update(f"\0{PLATFORM}\0{IMPLEMENTATION}\0{self.python_version}".encode())
        return digest.hexdigest()[:20]

    def deps_dir(self) -> Path:
        return self.cache_root / self.deps_key()

    def asset_hash(self) -> str:
        """Content hash of the asset (code, config, dependency key), computed without pip."""
        digest = hashlib.sha256()
        for path in sorted(_files(self.project_root, CODE_DIRS)):
            digest.update(str(path.relative_to(self.project_root)).encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
        digest.update(b"\0config\0")
        digest.update(self.config_file.read_bytes())
        digest.update(b"\0deps\0")
        digest.update(b"none" if self.skip_deps else self.deps_key().encode())
        return digest.hexdigest()

    def ensure_deps(self) -> Path:
        """The cached package directory, installing it first if it is missing."""
        target = self.deps_dir()
        if target.is_dir():
            return target
        self.cache_root.mkdir(parents=True, exist_ok=True)
        # Install next to the cache and rename: concurrent synths never see half a cache.
        staging = self.cache_root / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",  # bytecode for the host Python would be useless on Lambda
            "--platform",
            PLATFORM,
            "--implementation",
            IMPLEMENTATION,
            "--python-version",
            self.python_version,
            "--only-binary=:all:",
            "--target",
            str(staging),
            "--requirement",
            str(self.requirements),
        ]
        # The command is built here from fixed flags and project paths, never from input.
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise BundlingError(
                "could not install the Lambda dependencies "
                f"({' '.join(command[3:])}):\n{result.stderr.strip()}\n"
                f"Run the synth once with network access to fill {self.cache_root}, or set "
                f"{SKIP_DEPS_ENV}=1 to synthesize without them (never deploy that asset)."
            )
        try:
            staging.rename(target)
        except OSError:
            # Another synth finished the same install first; keep its copy.
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def fill(self, output_dir: Path) -> None:
        """Write the asset's files into ``output_dir``."""
        if not self.skip_deps:
            _copy_tree(self.ensure_deps(), output_dir)
        for name in CODE_DIRS:
            source = self.project_root / name
            if source.is_dir():
                shutil.copytree(
                    source,
                    output_dir / name,
                    ignore=shutil.ignore_patterns(*_IGNORED),
                    dirs_exist_ok=True,
                )
        shutil.copyfile(self.config_file, output_dir / CONFIG_NAME)


@jsii.implements(cdk.ILocalBundling)
class LocalBundler:
    """CDK's local-bundling hook: fills the asset folder on this machine, never in Docker."""

    def __init__(self, bundle: LambdaBundle) -> None:
        self._bundle = bundle

    def try_bundle(self, output_dir: str, *_options: Any, **_kw: Any) -> bool:
        self._bundle.fill(Path(output_dir))
        return True


def lambda_code(bundle: LambdaBundle) -> lambda_.Code:
    """The shared code asset of every fedkeeper function."""
    return lambda_.Code.from_asset(
        str(bundle.project_root / "lambdas"),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=bundle.asset_hash(),
        bundling=cdk.BundlingOptions(
            # Required by the API, never pulled: local bundling always succeeds.
            image=cdk.DockerImage.from_registry("scratch"),
            local=LocalBundler(bundle),
        ),
    )


def skip_deps_requested(context_value: Any) -> bool:
    """Whether the dependency install is switched off (environment or CDK context)."""
    values = (os.environ.get(SKIP_DEPS_ENV, ""), str(context_value or ""))
    return any(v.strip().lower() in {"1", "true", "yes"} for v in values)


def _files(root: Path, dirs: Iterable[str]) -> Iterator[Path]:
    for name in dirs:
        base = root / name
        if not base.is_dir():
            continue
        for path in base.rglob("*"):
            parts = set(path.relative_to(root).parts)
            if path.is_file() and not parts & {"__pycache__", ".mypy_cache", ".pytest_cache"}:
                if path.suffix in {".pyc", ".pyo"}:
                    continue
                yield path


def _copy_tree(source: Path, target: Path) -> None:
    """Hard-link the cached packages into the asset (fast); copy across file systems."""
    try:
        shutil.copytree(source, target, copy_function=os.link, dirs_exist_ok=True)
    except OSError:
        shutil.copytree(source, target, dirs_exist_ok=True)
