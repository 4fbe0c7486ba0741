"""The Calico API server's served form: defaults filled, omitempty zero values left out."""

from __future__ import annotations

from fedkeeper.calico_v3 import ippool_field, served_ippool_spec, served_rcc_spec


def test_a_pool_spec_is_served_with_defaults_and_without_false_booleans() -> None:
    spec = {"cidr": "10.100.0.1/16", "natOutgoing": False, "disabled": True}
    assert served_ippool_spec(spec) == {
        "cidr": "10.100.0.0/16",
        "disabled": True,
        "blockSize": 26,
        "nodeSelector": "all()",
        "allowedUses": ["Workload", "Tunnel"],
        "ipipMode": "Never",
        "vxlanMode": "Never",
        "assignmentMode": "Automatic",
    }


def test_an_ipv6_pool_defaults_to_block_size_122() -> None:
    assert served_ippool_spec({"cidr": "fd00::/48"})["blockSize"] == 122


def test_an_omitted_boolean_reads_as_false() -> None:
    assert ippool_field({"cidr": "10.0.0.0/16"}, "natOutgoing") is False
    assert ippool_field({"cidr": "10.0.0.0/16", "natOutgoing": False}, "natOutgoing") is False
    assert ippool_field({"cidr": "10.0.0.0/16", "natOutgoing": True}, "natOutgoing") is True


def test_an_omitted_encapsulation_reads_as_never() -> None:
    assert ippool_field({"cidr": "10.0.0.0/16"}, "ipipMode") == "Never"


def test_an_rcc_spec_is_served_without_empty_fields_and_with_overlay_routing_disabled() -> None:
    spec = {
        "clusterAccessSecret": {"name": "s", "namespace": "calico-system", "kind": "Secret"},
        "kubeconfig": "",
        "k8sInsecureSkipTLSVerify": False,
    }
    assert served_rcc_spec(spec) == {
        "clusterAccessSecret": {"name": "s", "namespace": "calico-system", "kind": "Secret"},
        "syncOptions": {"overlayRoutingMode": "Disabled"},
    }


def test_an_rcc_keeps_an_explicit_overlay_routing_mode() -> None:
    served = served_rcc_spec({"syncOptions": {"overlayRoutingMode": "Enabled"}})
    assert served["syncOptions"] == {"overlayRoutingMode": "Enabled"}
