"""Today's two-cluster files load unchanged as a two-cluster mesh that keeps every name, and
their errors name their own fields."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from fedkeeper.config import FederationConfig, TwoClusterConfig, VpcConfig, load_config
from fedkeeper.errors import ConfigError
from fedkeeper.topology import (
    EksCluster,
    MeshConfig,
    OnPremCluster,
    is_legacy,
    legacy_names,
    load_mesh,
    migrate,
    parse_mesh,
)
from tests.conftest import EXAMPLE

Change = Callable[[dict[str, Any]], None]


def example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return data


def changed(change: Change) -> dict[str, Any]:
    data = copy.deepcopy(example())
    change(data)
    return data


def _defaults(d: dict[str, Any]) -> None:
    d["federation"] = {}  # tests/unit/test_config.py: the RCC names default


def _rcc_names(d: dict[str, Any]) -> None:
    d["federation"].update(eks_rcc_name="site-a", onprem_rcc_name="aws-side")


def _infra_variant(d: dict[str, Any]) -> None:
    # tests/infra/test_config_variants.py
    d["mode"] = "plan"
    d["aws"]["vpc"].update(az_count=3, nat_gateways=2)
    d["eks"]["node_group"]["instance_types"] = ["m7g.large"]
    d["onprem"]["api_endpoint"] = "https://k8s.onprem.example"
    d["onprem"]["credentials_secret"] = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:x"
    d["reconcile"]["schedule"] = "rate(5 minutes)"
    d["aws"]["cloudtrail"] = "existing"
    d["eks"]["calico"]["chart_file"] = "charts/tigera-operator-v3.23.1.tgz"
    d["eks"]["calico"]["values"] = {"installation": {"controlPlaneReplicas": 3}}


def _wrapped_vpc(d: dict[str, Any]) -> None:
    # tests/unit/test_free_cidrs.py
    d["aws"]["vpc"]["cidr"] = "10.255.0.0/16"
    d["onprem"].update(pod_cidrs=["10.0.0.0/9"], service_cidrs=["10.128.0.0/10"])


def _vpc_in_192_168(d: dict[str, Any]) -> None:
    # tests/unit/test_free_cidrs.py
    d["aws"]["vpc"]["cidr"] = "192.168.0.0/17"
    d["onprem"]["host_cidrs"] = ["172.16.0.0/16"]


def _ikev1_and_defaults(d: dict[str, Any]) -> None:
    # tests/unit/test_config_deploy.py: IKE versions, and sections left to their defaults
    d["aws"]["vpn"]["ike_versions"] = ["ikev1", "ikev2"]
    d["aws"].pop("cloudtrail")
    d["eks"].pop("calico")
    d["aws"]["vpn"].pop("vgw_asn")


def _eks_name_not_a_label(d: dict[str, Any]) -> None:
    # An EKS cluster name that is no DNS label: its default RCC name is made into one.
    d["eks"]["cluster_name"] = "Fed_EKS"
    d["federation"] = {"access_secret_namespace": "fedkeeper", "disabled_pool_policy": "never"}


VARIANTS: dict[str, Change] = {
    "example": lambda d: None,
    "default-rcc-names": _defaults,
    "own-rcc-names": _rcc_names,
    "infra-variant": _infra_variant,
    "vpc-wrapped": _wrapped_vpc,
    "vpc-in-192-168": _vpc_in_192_168,
    "ikev1-and-defaults": _ikev1_and_defaults,
    "eks-name-not-a-label": _eks_name_not_a_label,
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_two_cluster_file_becomes_the_same_two_cluster_mesh(variant: str) -> None:
    # Given a two-cluster file the tests use, and what today's model makes of it
    # (its sections as the two-cluster form's own models read them)
    data = changed(VARIANTS[variant])
    legacy = TwoClusterConfig.model_validate(copy.deepcopy(data))
    # ... and the RCC names each side holds: as set, or the other cluster's (lowered) name
    eks_rcc_name = legacy.federation.eks_rcc_name or legacy.onprem.cluster_name
    onprem_rcc_name = legacy.federation.onprem_rcc_name or re.sub(
        r"[^a-z0-9-]", "-", legacy.eks.cluster_name.lower()
    ).strip("-")
    # When it loads as a mesh
    mesh = parse_mesh(data)
    eks, site = mesh.clusters
    assert isinstance(eks, EksCluster) and isinstance(site, OnPremCluster)
    # Then each cluster is named as the RCC its peer already holds, both ways
    assert site.name == eks_rcc_name
    assert eks.name == onprem_rcc_name
    assert mesh.pairs() == sorted([(eks.name, site.name), (site.name, eks.name)])
    # ... and the clusters keep their own names
    assert eks.cluster_name == legacy.eks.cluster_name
    assert site.cluster_name == legacy.onprem.cluster_name
    # ... the network is the VPC and the VGW's ASN
    assert (
        eks.network.model_dump(include=set(VpcConfig.model_fields)) == legacy.aws.vpc.model_dump()
    )
    assert eks.network.vgw_asn == legacy.aws.vpn.vgw_asn
    # ... the site keeps its ranges, endpoint and router, and has the one VPN
    assert site.model_dump(
        exclude={"name", "kind", "cluster_name", "customer_gateway", "vpns"}
    ) == (legacy.onprem.model_dump(exclude={"cluster_name"}))
    assert site.customer_gateway == legacy.aws.vpn.customer_gateway
    assert [(v.site, v.eks, list(v.ike_versions)) for v in mesh.vpns()] == [
        (site.name, eks.name, legacy.aws.vpn.ike_versions)
    ]
    # ... and everything else is as it was
    assert eks.model_dump(include={"kubernetes_version", "node_group", "calico"}) == (
        legacy.eks.model_dump(include={"kubernetes_version", "node_group", "calico"})
    )
    assert (mesh.name, mesh.mode, mesh.reconcile) == (legacy.name, legacy.mode, legacy.reconcile)
    assert (mesh.aws.region, mesh.aws.cloudtrail) == (legacy.aws.region, legacy.aws.cloudtrail)
    assert mesh.federation.model_dump() == legacy.federation.model_dump(
        exclude={"eks_rcc_name", "onprem_rcc_name"}
    )
    # ... and the legacy names helper agrees
    assert legacy_names(data) == (onprem_rcc_name, eks_rcc_name)


@pytest.mark.parametrize("variant", VARIANTS)
def test_migrate_writes_the_same_mesh_in_the_new_form(variant: str) -> None:
    # Given a two-cluster file
    data = changed(VARIANTS[variant])
    # When it is migrated
    text = migrate(data, "federation.yaml")
    written = yaml.safe_load(text)
    # Then the output is in the new form, and loads to the same federation
    assert not is_legacy(written) and "eks" not in written and "onprem" not in written
    assert parse_mesh(written) == parse_mesh(data)
    assert text.startswith("# federation.yaml in the clusters: form")


def test_migrating_a_new_form_file_rewrites_it_unchanged(tmp_path: Any) -> None:
    from tests.unit.topology_meshes import MESH_EXAMPLE

    mesh = load_mesh(MESH_EXAMPLE)
    assert parse_mesh(yaml.safe_load(migrate(yaml.safe_load(MESH_EXAMPLE.read_text())))) == mesh


def test_load_mesh_reads_the_two_cluster_example() -> None:
    mesh: MeshConfig = load_mesh(EXAMPLE)
    assert mesh.names() == ["fed-eks", "onprem"]


def test_the_products_config_type_is_the_mesh_model() -> None:
    # One model, no copy: load_config returns the mesh for both file forms
    from tests.unit.topology_meshes import MESH_EXAMPLE

    assert FederationConfig is MeshConfig
    assert load_config(EXAMPLE) == load_mesh(EXAMPLE)
    assert load_config(MESH_EXAMPLE) == load_mesh(MESH_EXAMPLE)


def errors_of(data: Any) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_mesh(data)
    return exc.value.errors


LEGACY_ERRORS: dict[str, tuple[Change, str]] = {
    "vpc-overlaps-pods": (
        lambda d: d["aws"]["vpc"].update(cidr="10.244.0.0/16"),
        "onprem.pod_cidrs[0]: the pod CIDR 10.244.0.0/16 of onprem overlaps the VPC CIDR "
        "10.244.0.0/16 of fed-eks (aws.vpc.cidr)",
    ),
    "one-az": (lambda d: d["aws"]["vpc"].update(az_count=1), "aws.vpc.az_count: is 1"),
    "vgw-asn": (lambda d: d["aws"]["vpn"].update(vgw_asn=70000), "aws.vpn.vgw_asn: is 70000"),
    "same-asns": (
        lambda d: d["aws"]["vpn"]["customer_gateway"].update(bgp_asn=64512),
        "aws.vpn.customer_gateway.bgp_asn: the ASN 64512 of onprem equals the ASN of the VGW "
        "of fed-eks (aws.vpn.vgw_asn)",
    ),
    "ike": (lambda d: d["aws"]["vpn"].update(ike_versions=[]), "aws.vpn.ike_versions: is empty"),
    "cgw-ip": (
        lambda d: d["aws"]["vpn"]["customer_gateway"].update(ip="x"),
        "aws.vpn.customer_gateway.ip: Input is not a valid IPv4 address",
    ),
    "unknown-key": (
        lambda d: d["aws"]["vpc"].update(cidr_block="10.0.0.0/16"),
        "aws.vpc.cidr_block: is not a known key; remove it",
    ),
    "new-form-key": (
        lambda d: d.update(topology={"pairs": "all"}),
        "topology: is not a known key; remove it",
    ),
    "onprem-name": (
        lambda d: d["onprem"].update(cluster_name="On_Prem"),
        "onprem.cluster_name: 'On_Prem' must be a DNS label",
    ),
    "rcc-names-equal": (
        lambda d: d["federation"].update(eks_rcc_name="fed-eks"),
        "federation.eks_rcc_name: 'fed-eks' is also federation.onprem_rcc_name",
    ),
    "no-eks": (lambda d: d.pop("eks"), "eks: is required; add it"),
    "vpn-not-a-mapping": (lambda d: d["aws"].update(vpn=5), "aws.vpn: Input should be a valid"),
    "chart": (
        lambda d: d["eks"]["calico"].update(chart_version="v3.19.0"),
        "eks.calico.chart_version: v3.19.0 predates",
    ),
}


@pytest.mark.parametrize("case", LEGACY_ERRORS)
def test_errors_in_a_two_cluster_file_name_its_own_fields(case: str) -> None:
    change, expected = LEGACY_ERRORS[case]
    errors = errors_of(changed(change))
    assert any(e.startswith(expected) for e in errors), errors
    # No line speaks of the new form's paths the file does not have.
    assert not any("clusters[" in e for e in errors), errors


def test_a_two_cluster_file_lists_every_problem_at_once() -> None:
    data = changed(lambda d: d["aws"]["vpc"].update(cidr="10.244.0.0/16", az_count=1))
    data["reconcile"]["schedule"] = "every 5 minutes"
    errors = errors_of(data)
    assert {e.split(":")[0] for e in errors} >= {
        "aws.vpc.az_count",
        "reconcile.schedule",
        "onprem.pod_cidrs[0]",
    }


def test_migrate_refuses_an_invalid_file_with_its_own_paths() -> None:
    data = changed(lambda d: d["aws"]["vpc"].update(az_count=1))
    with pytest.raises(ConfigError) as exc:
        migrate(data)
    assert exc.value.errors[0].startswith("aws.vpc.az_count: ")


def test_the_file_itself_is_reported_in_config_pys_words(tmp_path: Any) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="no such file"):
        load_mesh(missing)
    twice = tmp_path / "twice.yaml"
    twice.write_text("name: a\nname: b\n")
    with pytest.raises(ConfigError, match="appears twice"):
        load_mesh(twice)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="the file is empty"):
        load_mesh(empty)
