"""Today's two-cluster federation.yaml (aws, eks and onprem sections) in the new form.

A two-cluster file is converted before validation, so every rule is written once, and the
conversion keeps every name a converged deployment already has, so that migrating writes
nothing:

* the EKS cluster's name is ``federation.onprem_rcc_name`` or its default (the EKS cluster
  name as a DNS label): the name of the RCC on the on-prem cluster;
* the on-prem cluster's name is ``federation.eks_rcc_name`` or its default
  (``onprem.cluster_name``): the name of the RCC on EKS; its ``cluster_name`` stays
  ``onprem.cluster_name`` (the name in the kubeconfig of the access Secret on EKS);
* ``aws.vpc`` and ``aws.vpn.vgw_asn`` become the EKS cluster's ``network``,
  ``aws.vpn.customer_gateway`` the site's ``customer_gateway``, and ``aws.vpn.ike_versions``
  the site's one VPN.

Errors still name the legacy paths (``aws.vpc.cidr``, not ``clusters[0].network.cidr``):
the user edits the file they have.

This module is pure: it imports neither boto3, kubernetes nor Powertools.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from fedkeeper.schema import (
    AwsConfig,
    EksConfig,
    FederationSettings,
    OnPremConfig,
    TwoClusterConfig,
    VpcConfig,
    VpnConfig,
    _dns_label,
    format_validation_error,
)
from fedkeeper.topology.rules import PathNamer

# The sections of a two-cluster file, with the model that says which keys each may hold.
_LEGACY_SECTIONS: tuple[tuple[tuple[str, ...], type[BaseModel]], ...] = (
    ((), TwoClusterConfig),
    (("aws",), AwsConfig),
    (("aws", "vpc"), VpcConfig),
    (("aws", "vpn"), VpnConfig),
    (("eks",), EksConfig),
    (("onprem",), OnPremConfig),
    (("federation",), FederationSettings),
)
_REQUIRED = {("aws",), ("aws", "vpc"), ("aws", "vpn"), ("eks",), ("onprem",)}


def is_legacy(data: Mapping[str, Any]) -> bool:
    """Whether a mapping is today's two-cluster form (it has no ``clusters``)."""
    return "clusters" not in data


def _get(data: Any, *keys: str) -> Any:
    cur = data
    for key in keys:
        cur = cur.get(key) if isinstance(cur, Mapping) else None
    return cur


def _section(data: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """A section with only the keys its legacy model knows; {} when it is not a mapping
    (legacy_problems reports both)."""
    model = dict(_LEGACY_SECTIONS)[keys]
    section = _get(data, *keys) if keys else data
    if not isinstance(section, Mapping):
        return {}
    return {k: v for k, v in section.items() if k in model.model_fields}


def broken_sections(data: Mapping[str, Any]) -> list[str]:
    """The paths of sections that are missing (when required) or not mappings: what is
    converted from them is empty, so the conversion's errors beneath them are noise."""
    broken: list[str] = []
    for keys, _ in _LEGACY_SECTIONS[1:]:
        parent, section = _get(data, *keys[:-1]), _get(data, *keys)
        if (
            isinstance(parent, Mapping)
            and not isinstance(section, Mapping)
            and (keys[-1] in parent or keys in _REQUIRED)
        ):
            broken.append(".".join(keys))
    return broken


def legacy_problems(data: Mapping[str, Any]) -> list[str]:
    """What config.py refuses in a two-cluster file's shape (unknown keys, missing or odd
    sections), in its words; the conversion drops unknown keys and empties broken sections."""
    details: list[Any] = []
    for keys, model in _LEGACY_SECTIONS:
        section = _get(data, *keys) if keys else data
        if isinstance(section, Mapping):
            details += [
                {"type": "extra_forbidden", "loc": (*keys, str(k)), "input": v}
                for k, v in section.items()
                if k not in model.model_fields
            ]
    for path in broken_sections(data):
        keys = tuple(path.split("."))
        parent = _get(data, *keys[:-1])
        if keys[-1] in parent:
            details.append({"type": "dict_type", "loc": keys, "input": parent[keys[-1]]})
        else:
            details.append({"type": "missing", "loc": keys, "input": parent})
    if not details:
        return []
    return format_validation_error(ValidationError.from_exception_data("federation.yaml", details))


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def legacy_names(data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The names of today's EKS and on-prem clusters in the mesh: the RCC names their peers
    hold (``federation.onprem_rcc_name`` and ``.eks_rcc_name`` or their defaults), None where
    not derivable."""
    eks_cluster, onprem_cluster = (
        _get(data, "eks", "cluster_name"),
        _get(data, "onprem", "cluster_name"),
    )
    eks = _text(_get(data, "federation", "onprem_rcc_name")) or (
        _dns_label(eks_cluster) if isinstance(eks_cluster, str) else None
    )
    site = _text(_get(data, "federation", "eks_rcc_name")) or (
        onprem_cluster if isinstance(onprem_cluster, str) else None
    )
    return eks, site


def legacy_to_mesh(data: Mapping[str, Any]) -> dict[str, Any]:
    """A two-cluster mapping as a new-form mapping (unknown legacy keys left out)."""
    eks_name, site_name = legacy_names(data)
    top, aws, vpc, vpn, eks, onprem, federation = (_section(data, k) for k, _ in _LEGACY_SECTIONS)
    network = {**vpc, **{k: v for k, v in vpn.items() if k == "vgw_asn"}}
    # Every other key of aws.vpn (ike_versions, and any added later) belongs to the site's VPN.
    site_vpn = {
        "to": eks_name or "",
        **{k: v for k, v in vpn.items() if k not in ("vgw_asn", "customer_gateway")},
    }
    out: dict[str, Any] = {k: v for k, v in top.items() if k not in ("aws", "eks", "onprem")}
    out["aws"] = {k: v for k, v in aws.items() if k not in ("vpc", "vpn")}
    out["clusters"] = [
        {**_named(eks_name), "kind": "eks", **eks, "network": network},
        {
            **_named(site_name),
            "kind": "onprem",
            **onprem,
            **{k: v for k, v in vpn.items() if k == "customer_gateway"},
            "vpns": [site_vpn],
        },
    ]
    if "federation" in top:
        out["federation"] = {
            k: v for k, v in federation.items() if k not in ("eks_rcc_name", "onprem_rcc_name")
        }
    return out


def _named(name: str | None) -> dict[str, str]:
    return {"name": name} if name is not None else {}


def legacy_path_namer(data: Mapping[str, Any]) -> PathNamer:
    """Turns a new-form path of the converted file into the two-cluster file's own path."""
    fed = data.get("federation")
    eks_name = (
        "federation.onprem_rcc_name" if _text(_get(fed, "onprem_rcc_name")) else "eks.cluster_name"
    )
    site_name = (
        "federation.eks_rcc_name" if _text(_get(fed, "eks_rcc_name")) else "onprem.cluster_name"
    )
    prefixes = (
        ("clusters[0].network.vgw_asn", "aws.vpn.vgw_asn"),
        ("clusters[0].network", "aws.vpc"),
        ("clusters[0].name", eks_name),
        ("clusters[0]", "eks"),
        ("clusters[1].customer_gateway", "aws.vpn.customer_gateway"),
        ("clusters[1].vpns[0]", "aws.vpn"),
        ("clusters[1].vpns", "aws.vpn"),
        ("clusters[1].name", site_name),
        ("clusters[1]", "onprem"),
        ("clusters", "<file>"),
    )

    def where(path: str) -> str:
        for new, old in prefixes:
            if path == new or path.startswith((new + ".", new + "[")):
                return old + path[len(new) :]
        return path

    return where
