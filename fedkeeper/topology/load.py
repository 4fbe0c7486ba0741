"""Load federation.yaml, in either form, as one MeshConfig; every error at once.

This module is pure: it imports neither boto3, kubernetes nor Powertools.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from fedkeeper.eks_versions import version_warnings
from fedkeeper.errors import ConfigError
from fedkeeper.schema import TwoClusterConfig, _loc, format_validation_error, read_config_file
from fedkeeper.topology.facts import read_facts
from fedkeeper.topology.legacy import (
    broken_sections,
    is_legacy,
    legacy_path_namer,
    legacy_problems,
    legacy_to_mesh,
)
from fedkeeper.topology.model import PATH_NAMER, MeshConfig
from fedkeeper.topology.rules import PathNamer, federation_problems, quota_warnings, same_path

_KINDS = ("eks", "onprem")


def _without_kind(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """A location without the tag pydantic inserts after ``clusters[i]`` (eks or onprem)."""
    if len(loc) >= 3 and loc[0] == "clusters" and isinstance(loc[1], int) and loc[2] in _KINDS:
        return (*loc[:2], *loc[3:])
    return loc


def _user_loc(path: str) -> tuple[int | str, ...]:
    """A dotted path such as ``aws.vpn.ike_versions[0]`` as a location (``<file>``: ())."""
    if path == "<file>":
        return ()
    return tuple(int(part) if part.isdigit() else part for part in re.findall(r"[^.\[\]]+", path))


def _error_lines(
    exc: ValidationError, where: PathNamer, text: str | None = None, legacy: bool = False
) -> list[str]:
    """schema.py's ``field.path: problem; fix`` lines, with the user's paths (``text``: the
    file as written, to quote a value YAML read as a number)."""
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        loc = _without_kind(tuple(err["loc"]))
        path = _loc(loc)
        # A two-cluster file's location, so the quoted value is found in the file as written.
        file_loc = _user_loc(where(path)) if legacy and path else loc
        if err["type"] in ("union_tag_not_found", "union_tag_invalid"):
            tag = err.get("ctx", {}).get("tag")
            problem = "is required" if tag is None else f"is {tag!r}"
            lines.append(f"{where(path + '.kind')}: {problem}; write eks or onprem")
            continue
        # The same error at the user's location; its message as pydantic wrote it.
        moved = ValidationError.from_exception_data(
            exc.title,
            [
                {
                    "type": PydanticCustomError(err["type"], err["msg"]),
                    "loc": file_loc,
                    "input": err["input"],
                }
            ],
        )
        shown_path = _loc(file_loc)
        lines += [
            where(path) + line[len(shown_path) :]
            if path and line.startswith(shown_path + ":")
            else line
            for line in format_validation_error(
                moved, text, TwoClusterConfig if legacy else MeshConfig
            )
        ]
    return lines


def parse_mesh(data: Any, source: str = "federation.yaml", text: str | None = None) -> MeshConfig:
    """Validate a mapping in either form as a MeshConfig, or raise ConfigError listing every
    problem. A two-cluster file is converted first and its errors name its own paths.

    ``text``: the YAML the mapping came from (lets a message quote a value as written).
    """
    if data is None:
        raise ConfigError(
            [f"{source}: the file is empty; start from `fedkeeper init` (the commented example)"]
        )
    if not isinstance(data, Mapping):
        raise ConfigError(
            [f"{source}: the file must be a YAML mapping of keys (see federation.example.yaml)"]
        )
    errors: list[str] = []
    where: PathNamer = same_path
    mesh = dict(data)
    if is_legacy(data):
        errors, where, mesh = (
            legacy_problems(data),
            legacy_path_namer(data),
            legacy_to_mesh(data),
        )
    try:
        config = MeshConfig.model_validate(mesh, context={PATH_NAMER: where})
    except ValidationError as exc:
        errors += _error_lines(exc, where, text, is_legacy(data))
        errors += federation_problems(read_facts(mesh), where)
    else:
        if not errors:
            return config
    if is_legacy(data):
        # The conversion writes the VPN's `to`, and nothing beneath a broken section: errors
        # there follow from one already reported.
        noise = ("aws.vpn.to:", *(f"{path}." for path in broken_sections(data)))
        errors = [e for e in errors if not e.startswith(noise)]
    raise ConfigError(list(dict.fromkeys(errors)))


def load_mesh(path: str | Path) -> MeshConfig:
    """Read and validate federation.yaml in either form; ConfigError names each problem."""
    data, text = read_config_file(path)
    return parse_mesh(data, str(Path(path)), text)


def mesh_warnings(config: MeshConfig, today: date, where: PathNamer = same_path) -> list[str]:
    """What is valid but will cost more or needs a quota increase, as ``field: problem`` lines."""
    warnings: Iterable[str] = (
        line
        for i, cluster in enumerate(config.clusters)
        if cluster.kind == "eks"
        for line in version_warnings(
            cluster.kubernetes_version, today, where(f"clusters[{i}].kubernetes_version")
        )
    )
    return [*warnings, *quota_warnings(config.facts, where)]
