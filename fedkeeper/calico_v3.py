"""How the Calico API server stores and serves v3 objects, so desired and observed compare.

The v3 types serialize with Go's ``encoding/json``: ``omitempty`` fields are left out when
they hold their zero value (``false``, ``""``, ``0``, empty lists), and the Calico client
fills defaults on every write and read. A pool created with ``natOutgoing: false`` is
therefore served *without* ``natOutgoing``; comparing field by field against the raw
desired spec would see drift on every run. Both sides go through the same rules here.

Sources: projectcalico/calico ``api/pkg/apis/projectcalico/v3/ippool.go`` (IPPoolSpec json
tags), ``libcalico-go/lib/clientv3/ippool.go`` (``validateAndSetDefaults``,
``convertIpPoolFromStorage``: blockSize 26/122, nodeSelector ``all()``, allowedUses
``[Workload, Tunnel]``, ipipMode/vxlanMode ``Never``, assignmentMode ``Automatic``, the
CIDR in canonical form); tigera/api ``pkg/apis/projectcalico/v3/remoteclusterconfig.go``
(RemoteClusterConfigurationSpec: every field ``omitempty``; ``syncOptions`` defaults to
``{overlayRoutingMode: Disabled}``).

Pure: no I/O, no SDKs.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Mapping
from typing import Any

# IPPoolSpec fields whose Go zero value is left out of the JSON, with that zero value.
IPPOOL_OMITEMPTY: dict[str, Any] = {
    "vxlanMode": "",
    "ipipMode": "",
    "natOutgoing": False,
    "disabled": False,
    "disableBGPExport": False,
    "blockSize": 0,
    "nodeSelector": "",
    "namespaceSelector": "",
    "allowedUses": [],
}
IPPOOL_DEFAULT_ALLOWED_USES = ("Workload", "Tunnel")

# RemoteClusterConfigurationSpec: every field is omitempty (strings, one bool, two structs).
RCC_OMITEMPTY_STRINGS = (
    "datastoreType",
    "etcdEndpoints",
    "etcdUsername",
    "etcdPassword",
    "etcdKeyFile",
    "etcdCertFile",
    "etcdCACertFile",
    "etcdKey",
    "etcdCert",
    "etcdCACert",
    "kubeconfig",
    "k8sAPIEndpoint",
    "k8sKeyFile",
    "k8sCertFile",
    "k8sCAFile",
    "k8sAPIToken",
    "kubeconfigInline",
)
RCC_DEFAULT_OVERLAY_ROUTING = "Disabled"


def _is_zero(value: Any, zero: Any) -> bool:
    return value is None or value == zero


def _pool_network(cidr: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        return None


def served_ippool_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """An IPPool spec as the Calico API server returns it: defaults filled in, zero-valued
    ``omitempty`` fields left out, the CIDR canonical. Unknown fields are kept."""
    out = copy.deepcopy(dict(spec))
    network = _pool_network(out.get("cidr")) if out.get("cidr") else None
    if network is not None:
        out["cidr"] = str(network)
    if not out.get("nodeSelector"):
        out["nodeSelector"] = "all()"
    if not out.get("blockSize") and network is not None:
        out["blockSize"] = 122 if network.version == 6 else 26
    if not out.get("allowedUses"):
        out["allowedUses"] = list(IPPOOL_DEFAULT_ALLOWED_USES)
    if not out.get("ipipMode"):
        out["ipipMode"] = "Never"
    if not out.get("vxlanMode"):
        out["vxlanMode"] = "Never"
    if out.get("assignmentMode") is None:
        out["assignmentMode"] = "Automatic"
    for key, zero in IPPOOL_OMITEMPTY.items():
        if key in out and _is_zero(out[key], zero):
            del out[key]
    return out


def ippool_field(spec: Mapping[str, Any], key: str) -> Any:
    """One field of a pool spec as served, with an omitted ``omitempty`` field read as its
    zero value (``natOutgoing`` absent is ``false``)."""
    served = served_ippool_spec(spec)
    return served.get(key, IPPOOL_OMITEMPTY.get(key))


def served_rcc_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A RemoteClusterConfiguration spec as the API server returns it: empty fields left
    out, ``syncOptions.overlayRoutingMode`` defaulted to ``Disabled``."""
    out = copy.deepcopy(dict(spec))
    for key in RCC_OMITEMPTY_STRINGS:
        if key in out and _is_zero(out[key], ""):
            del out[key]
    if "k8sInsecureSkipTLSVerify" in out and not out["k8sInsecureSkipTLSVerify"]:
        del out["k8sInsecureSkipTLSVerify"]
    ref = out.get("clusterAccessSecret")
    if isinstance(ref, dict):
        ref = {k: v for k, v in ref.items() if not _is_zero(v, "")}
        if ref:
            out["clusterAccessSecret"] = ref
        else:
            del out["clusterAccessSecret"]
    elif "clusterAccessSecret" in out and ref is None:
        del out["clusterAccessSecret"]
    sync = out.get("syncOptions")
    sync = dict(sync) if isinstance(sync, dict) else {}
    if not sync.get("overlayRoutingMode"):
        sync["overlayRoutingMode"] = RCC_DEFAULT_OVERLAY_ROUTING
    out["syncOptions"] = sync
    return out
