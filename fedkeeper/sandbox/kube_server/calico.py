"""Calico v3 kinds as the Calico API server stores them: defaulting, validation, and the
served form — Go's ``encoding/json`` leaves every ``omitempty`` field out while it holds its
zero value (``false``, ``0``, ``""``, an empty list or map).

Written from the upstream types, on purpose apart from :mod:`fedkeeper.calico_v3` (the
product's own reading of them), so a mistake there shows up here as drift instead of being
agreed with: projectcalico/calico ``api/pkg/apis/projectcalico/v3/ippool.go`` (IPPoolSpec
json tags), ``libcalico-go/lib/clientv3/ippool.go`` (defaults); tigera/api
``pkg/apis/projectcalico/v3/remoteclusterconfig.go`` (RemoteClusterConfigurationSpec)."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from typing import Any

from fedkeeper.sandbox.kube_server.api import ApiError, JSONObj, ResourceType, invalid_error
from fedkeeper.sandbox.kube_server.selector import selector_problem
from fedkeeper.sandbox.kube_server.store import Store

# IPPoolSpec: json name → omitempty. ``cidr`` is the one field without it.
_IPPOOL_JSON: dict[str, bool] = {
    "cidr": False,
    "vxlanMode": True,
    "ipipMode": True,
    "natOutgoing": True,
    "disabled": True,
    "disableBGPExport": True,
    "blockSize": True,
    "nodeSelector": True,
    "namespaceSelector": True,
    "allowedUses": True,
    "assignmentMode": True,
}
# RemoteClusterConfigurationSpec: every field is omitempty, the nested structs too
# (``clusterAccessSecret`` is a *ObjectReference, ``syncOptions`` a struct whose one field,
# ``overlayRoutingMode``, is omitempty).
_REFERENCE_JSON = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion")


# IPPoolAllowedUse (+kubebuilder:validation:Enum), tigera/api pkg/apis/projectcalico/v3/ippool.go
ALLOWED_USES = ("Workload", "Tunnel", "LoadBalancer", "HostSecondaryInterface", "L2Workload")


def _uses(spec: JSONObj, *wanted: str) -> bool:
    uses = spec.get("allowedUses")
    return isinstance(uses, list) and any(u in wanted for u in uses)


def _encap_off(spec: JSONObj) -> bool:
    return all(spec.get(f) in (None, "", "Never") for f in ("ipipMode", "vxlanMode"))


def _family6(spec: JSONObj) -> bool:
    try:
        return ipaddress.ip_network(str(spec.get("cidr")), strict=False).version == 6
    except ValueError:
        return False


# The IPPoolSpec CEL rules (+kubebuilder:validation:XValidation on IPPoolSpec in tigera/api
# pkg/apis/projectcalico/v3/ippool.go), each as (holds for spec, message, reason).
IPPOOL_CEL_RULES: tuple[tuple[Callable[[JSONObj], bool], str, str], ...] = (
    (
        lambda s: (
            s.get("ipipMode") in (None, "", "Never") or s.get("vxlanMode") in (None, "", "Never")
        ),
        "ipipMode and vxlanMode cannot both be enabled",
        "FieldValueForbidden",
    ),
    (
        lambda s: not _uses(s, "LoadBalancer") or _encap_off(s),
        "LoadBalancer IP pool cannot have IPIP or VXLAN enabled",
        "FieldValueForbidden",
    ),
    (
        lambda s: not _uses(s, "LoadBalancer") or not _uses(s, "Workload", "Tunnel"),
        "LoadBalancer cannot be combined with Workload or Tunnel allowed uses",
        "FieldValueForbidden",
    ),
    (
        lambda s: not _family6(s) or s.get("ipipMode") in (None, "", "Never"),
        "IPIP is not supported on IPv6 pools",
        "FieldValueForbidden",
    ),
    (
        lambda s: not _uses(s, "LoadBalancer") or not s.get("disableBGPExport"),
        "LoadBalancer IP pools cannot disable BGP export",
        "FieldValueForbidden",
    ),
    (
        lambda s: not _uses(s, "LoadBalancer") or s.get("nodeSelector") == "all()",
        "IP Pool with AllowedUse LoadBalancer must have nodeSelector set to all()",
        "FieldValueInvalid",
    ),
    (
        lambda s: not _uses(s, "Tunnel") or not s.get("namespaceSelector"),
        "IP Pool with AllowedUse Tunnel cannot have namespaceSelector",
        "FieldValueForbidden",
    ),
    (
        lambda s: (
            not _uses(s, "L2Workload")
            or not _uses(s, "Workload", "Tunnel", "LoadBalancer", "HostSecondaryInterface")
        ),
        "L2Workload cannot be combined with other allowed uses",
        "FieldValueForbidden",
    ),
    (
        lambda s: not _uses(s, "L2Workload") or _encap_off(s),
        "L2Workload IP pool cannot have IPIP or VXLAN enabled",
        "FieldValueForbidden",
    ),
    (
        lambda s: not _uses(s, "L2Workload") or s.get("disableBGPExport") is True,
        "L2Workload IP pools must disable BGP export",
        "FieldValueForbidden",
    ),
    (
        lambda s: "global(" not in str(s.get("nodeSelector") or ""),
        "global() selector is not valid for IPPool nodeSelector",
        "FieldValueInvalid",
    ),
    (
        lambda s: "global(" not in str(s.get("namespaceSelector") or ""),
        "global() selector is not valid for IPPool namespaceSelector",
        "FieldValueInvalid",
    ),
)


def _go_zero(value: Any) -> bool:
    """What ``omitempty`` leaves out: false, 0, "", nil, and empty lists and maps."""
    return value is None or value is False or value == 0 or value in ("", [], {})


def _encode(spec: JSONObj, omitempty: dict[str, bool] | None = None) -> JSONObj:
    """A struct through ``encoding/json``: omitempty zero fields dropped. Fields the Go type
    does not know are dropped too (the API server decodes into the type, then encodes it)
    when ``omitempty`` names them all; with None every field is taken as omitempty."""
    out: JSONObj = {}
    for key, value in spec.items():
        if omitempty is not None and key not in omitempty:
            continue
        if (omitempty is None or omitempty[key]) and _go_zero(value):
            continue
        out[key] = value
    return out


def _served_rcc(spec: JSONObj) -> JSONObj:
    out = _encode(spec)
    ref = out.get("clusterAccessSecret")
    if isinstance(ref, dict):
        ref = _encode({k: v for k, v in ref.items() if k in _REFERENCE_JSON})
        if ref:
            out["clusterAccessSecret"] = ref
        else:
            del out["clusterAccessSecret"]
    sync = out.get("syncOptions")
    sync = _encode(sync) if isinstance(sync, dict) else {}
    # Calico defaults the mode when it is left empty (Disabled without VXLAN).
    sync.setdefault("overlayRoutingMode", "Disabled")
    out["syncOptions"] = sync
    return out


def _check_ippool(
    store: Store,
    rt: ResourceType,
    name: str,
    obj: JSONObj,
    existing: JSONObj | None,
    *,
    validate: bool,
) -> None:
    spec = obj.get("spec")
    if spec is None:
        spec = obj["spec"] = {}
    if not isinstance(spec, dict):
        raise invalid_error(rt, name, "IPPool.Spec: must be an object", "spec")
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    cidr = spec.get("cidr")
    if isinstance(cidr, str) and cidr:
        try:
            network = ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            network = None
    ipv6 = network is not None and network.version == 6
    spec.setdefault("blockSize", 122 if ipv6 else 26)
    spec.setdefault("ipipMode", "Never")
    spec.setdefault("vxlanMode", "Never")
    spec.setdefault("natOutgoing", False)
    spec.setdefault("disabled", False)
    spec.setdefault("nodeSelector", "all()")
    spec.setdefault("allowedUses", ["Workload", "Tunnel"])
    spec.setdefault("assignmentMode", "Automatic")
    if network is not None:
        spec["cidr"] = str(network)
    if not validate:
        return

    def invalid(field: str, value: Any, why: str) -> ApiError:
        shown = f'"{value}"' if isinstance(value, str) else json.dumps(value)
        return invalid_error(rt, name, f"IPPool.Spec.{field}: Invalid value: {shown}: {why}", field)

    if not cidr:
        raise invalid_error(rt, name, "IPPool.Spec.CIDR: Required value", "CIDR")
    if network is None:
        raise invalid("CIDR", cidr, "must be a valid network CIDR (no host bits set)")
    block = spec["blockSize"]
    low, high = (116, 128) if ipv6 else (20, 32)
    if not isinstance(block, int) or isinstance(block, bool) or not low <= block <= high:
        raise invalid("BlockSize", block, f"block size must be between {low} and {high}")
    for field in ("ipipMode", "vxlanMode"):
        if spec[field] not in ("Never", "Always", "CrossSubnet"):
            raise invalid(
                field[0].upper() + field[1:],
                spec[field],
                "must be Never, Always or CrossSubnet",
            )
    for field in ("natOutgoing", "disabled", "disableBGPExport"):
        if field in spec and not isinstance(spec[field], bool):
            raise invalid(field[0].upper() + field[1:], spec[field], "must be a boolean")
    uses = spec["allowedUses"]
    if not isinstance(uses, list) or any(u not in ALLOWED_USES for u in uses):
        raise invalid("AllowedUses", uses, f"supported values: {', '.join(ALLOWED_USES)}")
    if len(uses) > 10:
        raise invalid("AllowedUses", uses, f"Too many: {len(uses)}: must have at most 10 items")
    if len(set(uses)) != len(uses):  # +listType=set
        dup = next(u for i, u in enumerate(uses) if u in uses[:i])
        raise invalid_error(
            rt, name, f'IPPool.Spec.AllowedUses: Duplicate value: "{dup}"', "AllowedUses"
        )
    if spec["assignmentMode"] not in ("Automatic", "Manual"):
        raise invalid(
            "AssignmentMode", spec["assignmentMode"], 'supported values: "Automatic", "Manual"'
        )
    for field in ("nodeSelector", "namespaceSelector"):
        value = spec.get(field, "")
        problem = selector_problem(value) if isinstance(value, str) else "must be a string"
        if problem:
            raise invalid(field[0].upper() + field[1:], value, f"invalid selector: {problem}")
    for rule, message, reason in IPPOOL_CEL_RULES:
        if not rule(spec):
            shown = "Forbidden" if reason == "FieldValueForbidden" else 'Invalid value: "object"'
            raise invalid_error(
                rt, name, f'IPPool.{rt.group} "{name}" is invalid: spec: {shown}: {message}', "spec"
            )
    if not spec["disabled"] and network.prefixlen > block:
        raise invalid(
            "CIDR",
            cidr,
            "IP pool size is too small for use with Calico IPAM. It must be equal to or "
            "greater than the block size.",
        )
    if existing is None:
        for (_, other_name), other in sorted(store.objects[rt].items()):
            other_cidr = (other.get("spec") or {}).get("cidr")
            try:
                other_net = ipaddress.ip_network(str(other_cidr), strict=False)
            except ValueError:
                continue
            if other_name != name and network.overlaps(other_net):
                raise invalid_error(
                    rt,
                    name,
                    f"IPPool({name}) CIDR overlaps with IPPool({other_name}) CIDR {other_cidr}",
                    "CIDR",
                )
        return
    old_spec = existing.get("spec") or {}
    if spec["cidr"] != old_spec.get("cidr"):
        raise invalid("CIDR", spec["cidr"], "field is immutable (IPPool CIDR cannot be modified)")
    if block != old_spec.get("blockSize"):
        raise invalid(
            "BlockSize", block, "field is immutable (IPPool BlockSize cannot be modified)"
        )


def validate_rcc(rt: ResourceType, name: str, obj: JSONObj) -> None:
    spec = obj.get("spec") or {}
    if not isinstance(spec, dict):
        raise invalid_error(rt, name, "RemoteClusterConfiguration.Spec: must be an object", "spec")
    datastore = spec.get("datastoreType")
    if datastore not in (None, "", "kubernetes", "etcdv3"):
        raise invalid_error(
            rt,
            name,
            f'RemoteClusterConfiguration.Spec.DatastoreType: Invalid value: "{datastore}": '
            "must be kubernetes or etcdv3",
            "DatastoreType",
        )
    mode = (spec.get("syncOptions") or {}).get("overlayRoutingMode")
    if mode not in (None, "", "Enabled", "Disabled"):
        raise invalid_error(
            rt,
            name,
            "RemoteClusterConfiguration.Spec.SyncOptions.OverlayRoutingMode: Invalid value: "
            f'"{mode}": must be Enabled or Disabled',
            "SyncOptions.OverlayRoutingMode",
        )
    if spec.get("clusterAccessSecret"):
        inline = sorted(
            k
            for k, v in spec.items()
            if k not in ("clusterAccessSecret", "syncOptions") and v not in (None, "", False)
        )
        if inline:
            raise invalid_error(
                rt,
                name,
                "RemoteClusterConfiguration.Spec: Invalid value: "
                f"{inline}: must be empty when clusterAccessSecret is set",
                "ClusterAccessSecret",
            )


def prepare_ippool(
    store: Store,
    rt: ResourceType,
    name: str,
    obj: JSONObj,
    existing: JSONObj | None,
    *,
    validate: bool,
) -> None:
    """Default and validate an IPPool as clientv3 does, then keep it in its served form."""
    _check_ippool(store, rt, name, obj, existing, validate=validate)
    obj["spec"] = _encode(obj["spec"], _IPPOOL_JSON)


def prepare_rcc(rt: ResourceType, name: str, obj: JSONObj, *, validate: bool) -> None:
    """Validate a RemoteClusterConfiguration, then keep it in its served form."""
    if validate:
        validate_rcc(rt, name, obj)
    spec = obj.get("spec")
    obj["spec"] = _served_rcc(spec if isinstance(spec, dict) else {})
