"""federation.yaml validation: every error names its field and the fix; good files load."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from fedkeeper.cli import main
from fedkeeper.config import DisabledPoolPolicy, Mode, parse_config
from fedkeeper.errors import ConfigError
from tests.conftest import EXAMPLE


def example() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


def errors_of(data: Any) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    return exc.value.errors


def test_example_config_is_valid() -> None:
    cfg = parse_config(example())
    assert cfg.mode is Mode.APPLY
    assert cfg.federation.disabled_pool_policy is DisabledPoolPolicy.AUTO
    assert cfg.sole_site().name == "onprem"
    assert cfg.sole_eks().name == "fed-eks"


def test_rcc_names_default_to_the_other_cluster() -> None:
    data = example()
    data["federation"] = {}
    cfg = parse_config(data)
    assert cfg.sole_site().name == cfg.sole_site().cluster_name
    assert cfg.sole_eks().name == "fed-eks"


def test_vpc_overlapping_onprem_pods_names_both_fields() -> None:
    data = example()
    data["aws"]["vpc"]["cidr"] = "10.244.0.0/16"
    errs = errors_of(data)
    assert any(
        e.startswith("onprem.pod_cidrs[0]:") and "(aws.vpc.cidr)" in e and "choose" in e
        for e in errs
    )


def test_vpc_overlapping_onprem_services_is_rejected() -> None:
    data = example()
    data["onprem"]["service_cidrs"] = ["10.96.0.0/12"]
    errs = errors_of(data)
    assert any("onprem.service_cidrs[0]" in e for e in errs)


def test_malformed_cidr_names_the_field() -> None:
    data = example()
    data["onprem"]["host_cidrs"] = ["192.168.0.0/33"]
    errs = errors_of(data)
    assert any(e.startswith("onprem.host_cidrs") and "not a valid IPv4 CIDR" in e for e in errs)


def test_cidr_with_host_bits_is_rejected_with_fix() -> None:
    data = example()
    data["aws"]["vpc"]["cidr"] = "10.100.0.1/16"
    errs = errors_of(data)
    assert any(e.startswith("aws.vpc.cidr") and "network address" in e for e in errs)


def test_asn_out_of_range() -> None:
    data = example()
    data["aws"]["vpn"]["vgw_asn"] = 70000
    errs = errors_of(data)
    assert any(e.startswith("aws.vpn.vgw_asn") and "64512" in e for e in errs)


def test_equal_asns_on_both_sides() -> None:
    data = example()
    data["aws"]["vpn"]["customer_gateway"]["bgp_asn"] = 64512
    errs = errors_of(data)
    assert any("different ASN" in e and e.startswith("aws.vpn") for e in errs)


def test_fewer_than_two_azs() -> None:
    data = example()
    data["aws"]["vpc"]["az_count"] = 1
    errs = errors_of(data)
    assert any(e.startswith("aws.vpc.az_count") and "at least 2" in e for e in errs)


def test_unknown_key_is_named_with_fix() -> None:
    data = example()
    data["aws"]["vpc"]["cidr_block"] = "10.0.0.0/16"
    errs = errors_of(data)
    assert "aws.vpc.cidr_block: is not a known key; remove it" in errs[0]


def test_duplicate_cidrs_and_cluster_names() -> None:
    data = example()
    data["onprem"]["pod_cidrs"] = ["10.244.0.0/16", "10.244.0.0/16"]
    data["onprem"]["cluster_name"] = "fed-eks"
    errs = errors_of(data)
    assert any(e.startswith("onprem.pod_cidrs") and "more than once" in e for e in errs)


def test_same_cluster_name_on_both_sides() -> None:
    # Given the default RCC names, each the other cluster's name: they would collide
    data = example()
    data["federation"] = {}
    data["onprem"]["cluster_name"] = "fed-eks"
    errs = errors_of(data)
    assert any(e.startswith("onprem.cluster_name") for e in errs)


def test_every_error_is_listed_not_just_the_first() -> None:
    data = example()
    data["aws"]["vpc"]["az_count"] = 1
    data["aws"]["vpn"]["vgw_asn"] = 1
    data["reconcile"]["schedule"] = "every 5 minutes"
    errs = errors_of(data)
    assert len(errs) >= 3


def test_missing_section_is_required() -> None:
    data = example()
    del data["onprem"]
    assert "onprem: is required; add it" in errors_of(data)


def test_non_mapping_file() -> None:
    assert "mapping" in errors_of(["a", "b"])[0]


def test_validate_command_on_good_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "10.100.0.0/16" in out


def test_validate_command_lists_errors_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy.deepcopy(example())
    data["aws"]["vpc"]["cidr"] = "10.244.0.0/16"
    data["aws"]["vpc"]["az_count"] = 1
    bad = tmp_path / "federation.yaml"
    bad.write_text(yaml.safe_dump(data))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "aws.vpc.cidr" in err and "aws.vpc.az_count" in err
    assert "Traceback" not in err


def test_validate_command_on_broken_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "federation.yaml"
    bad.write_text("name: [unclosed\n")
    assert main(["validate", str(bad)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_validate_command_on_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
