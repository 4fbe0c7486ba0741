"""The sandbox scenarios' extra VPC CIDRs come from space the config leaves free."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from fedkeeper.config import parse_config
from fedkeeper.sandbox.scenarios import free_cidrs
from tests.conftest import EXAMPLE


def _config(**changes: Any) -> Any:
    data = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))
    if "vpc" in changes:
        data["aws"]["vpc"]["cidr"] = changes["vpc"]
    for key in ("host_cidrs", "pod_cidrs", "service_cidrs"):
        if key in changes:
            data["onprem"][key] = changes[key]
    return parse_config(data)


def test_the_example_gets_the_next_two_blocks_after_its_vpc() -> None:
    assert free_cidrs(_config()) == ["10.101.0.0/16", "10.102.0.0/16"]


def test_blocks_the_on_prem_side_uses_are_skipped() -> None:
    cfg = _config(pod_cidrs=["10.101.0.0/16"], service_cidrs=["10.102.0.0/20"])
    assert free_cidrs(cfg) == ["10.103.0.0/16", "10.104.0.0/16"]


def test_a_vpc_at_the_end_of_its_range_wraps_around() -> None:
    cfg = _config(vpc="10.255.0.0/16", pod_cidrs=["10.0.0.0/9"], service_cidrs=["10.128.0.0/10"])
    assert free_cidrs(cfg) == ["10.192.0.0/16", "10.193.0.0/16"]


def test_a_vpc_in_192_168_stays_in_its_own_range() -> None:
    cfg = _config(vpc="192.168.0.0/17", host_cidrs=["172.16.0.0/16"])
    assert free_cidrs(cfg) == ["192.168.128.0/20", "192.168.144.0/20"]


def test_when_the_primarys_range_is_full_the_shared_space_is_used() -> None:
    cfg = _config(vpc="172.16.0.0/16", host_cidrs=["172.17.0.0/16"], pod_cidrs=["172.18.0.0/15"])
    cfg_full = _config(
        vpc="172.16.0.0/16",
        host_cidrs=["172.17.0.0/16", "172.20.0.0/14"],
        pod_cidrs=["172.18.0.0/15"],
        service_cidrs=["172.24.0.0/13"],
    )
    assert free_cidrs(cfg) == ["172.20.0.0/16", "172.21.0.0/16"]
    assert free_cidrs(cfg_full) == ["100.64.0.0/16", "100.65.0.0/16"]
