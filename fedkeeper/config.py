"""federation.yaml, modelled and validated: the product's one config type.

The file has two forms, and both load as one :class:`FederationConfig`, which *is*
:class:`fedkeeper.topology.MeshConfig`: the ``clusters:`` form (one federation of N clusters)
as written, and today's two-cluster form (``aws``/``eks``/``onprem`` sections) converted to it
first, its errors still naming its own fields (``aws.vpc.cidr``). Every rule that a person can
break in the file is written once, so `fedkeeper validate`, the CDK app, the Lambdas and the
CLI all refuse the same bad input with the same words. The sections both forms share live in
fedkeeper.schema; the rules across clusters in fedkeeper.topology.

This module is pure: it imports neither boto3, kubernetes nor Powertools.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

from fedkeeper.errors import ConfigError
from fedkeeper.schema import (
    DEFAULT_ACCESS_NAMESPACE,
    DEFAULT_CALICO_CHART_VERSION,
    MANAGED_ADDONS,
    REGION_PATTERN,
    SHARED_NAMESPACES,
    TIGERA_EE_CHART_REPOSITORY,
    AwsConfig,
    CalicoApiConfig,
    CalicoInstallConfig,
    Cidr,
    CloudTrailMode,
    CustomerGatewayConfig,
    DisabledPoolPolicy,
    EksConfig,
    FederationSettings,
    IkeVersion,
    IPv4Net,
    Mode,
    NodeGroupConfig,
    OnPremConfig,
    ReconcileConfig,
    RemoteServiceAccountConfig,
    TwoClusterConfig,
    VpcConfig,
    VpnConfig,
    format_validation_error,
    load_yaml,
)
from fedkeeper.topology import MeshConfig, load_mesh, mesh_warnings, parse_mesh
from fedkeeper.topology.legacy import is_legacy, legacy_path_namer

__all__ = [
    "DEFAULT_ACCESS_NAMESPACE",
    "DEFAULT_CALICO_CHART_VERSION",
    "MANAGED_ADDONS",
    "REGION_PATTERN",
    "SHARED_NAMESPACES",
    "TIGERA_EE_CHART_REPOSITORY",
    "AwsConfig",
    "CalicoApiConfig",
    "CalicoInstallConfig",
    "Cidr",
    "CloudTrailMode",
    "ConfigError",
    "CustomerGatewayConfig",
    "DisabledPoolPolicy",
    "EksConfig",
    "FederationConfig",
    "FederationSettings",
    "IPv4Net",
    "IkeVersion",
    "Mode",
    "ModeName",
    "NodeGroupConfig",
    "OnPremConfig",
    "ReconcileConfig",
    "RemoteServiceAccountConfig",
    "TwoClusterConfig",
    "VpcConfig",
    "VpnConfig",
    "config_warnings",
    "example_text",
    "format_validation_error",
    "load_config",
    "load_yaml",
    "parse_config",
]

# The one model of federation.yaml (an alias, not a copy).
FederationConfig = MeshConfig

ModeName = Literal["apply", "plan"]


def parse_config(
    data: Any, source: str = "federation.yaml", text: str | None = None
) -> FederationConfig:
    """Validate a mapping in either form, or raise ConfigError listing every error.

    ``text``: the YAML the mapping came from (lets a message quote a value as written).
    """
    return parse_mesh(data, source, text)


def load_config(path: str | Path) -> FederationConfig:
    """Read and validate federation.yaml in either form; ConfigError names each bad field
    and its fix."""
    return load_mesh(path)


def config_warnings(config: FederationConfig, today: date, data: Any = None) -> list[str]:
    """What is valid but will cost more or break later, as ``field: problem; fix`` lines.

    Never errors: a version leaving standard support must not stop the Lambdas that keep an
    existing cluster healthy. ``fedkeeper validate`` prints these. ``data``: the file as
    read, so a two-cluster file's warnings name its own fields.
    """
    if data is not None and is_legacy(data):
        return mesh_warnings(config, today, legacy_path_namer(data))
    return mesh_warnings(config, today)


def example_text() -> str:
    """federation.example.yaml (every key commented), as ``fedkeeper init`` writes it."""
    import sys

    here = Path(__file__).resolve().parent
    for candidate in (
        here.parent / "federation.example.yaml",  # a checkout (or an editable install)
        Path(sys.prefix) / "share" / "fedkeeper" / "federation.example.yaml",  # pip install
    ):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    raise ConfigError(
        ["federation.example.yaml is not installed; reinstall fedkeeper (`pip install .`)"]
    )
