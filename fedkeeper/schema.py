"""The sections of federation.yaml, and how a problem in them is worded.

Both forms of the file (today's two-cluster ``aws``/``eks``/``onprem`` sections and the
``clusters:`` form of fedkeeper.topology) are built from these sections, so a field added here
carries over to both. Each error names the field (a dotted path such as ``aws.vpc.cidr``) and
says how to fix it. The product's config type and its loader are in fedkeeper.config.

This module is pure: it imports neither boto3, kubernetes nor Powertools.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from fedkeeper.eks_versions import DEFAULT_VERSION
from fedkeeper.errors import ConfigError
from fedkeeper.wording import MAX_SHOWN, closest, shown

IPv4Net = ipaddress.IPv4Network

# Private (RFC 6996) and public 2-byte/4-byte ASNs are all accepted; 0, 23456 (AS_TRANS)
# and 4294967295 are reserved. The VGW accepts 64512–65534 and 4200000000–4294967294.
_ASN_MIN, _ASN_MAX = 1, 4_294_967_294
_VGW_ASN_RANGES = ((64512, 65534), (4_200_000_000, 4_294_967_294))
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_CLUSTER_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$")
_SCHEDULE = re.compile(r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\))$")
_RATE = re.compile(r"^rate\((\d+) (minute|hour|day)(s?)\)$")
REGION_PATTERN = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d")
_FIELD_PATH = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*|\[\d+\])*: ")


class _Model(BaseModel):
    """Strict base: unknown keys are errors, models are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _cidr(value: Any) -> IPv4Net:
    if isinstance(value, IPv4Net):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an IPv4 CIDR string such as 10.100.0.0/16")
    try:
        net = ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is not a valid IPv4 CIDR ({exc}); write the network address, "
            "e.g. 10.100.0.0/16"
        ) from None
    if not isinstance(net, IPv4Net):
        raise ValueError(f"{value!r} is IPv6; fedkeeper manages IPv4 CIDRs only")
    return net


Cidr = Annotated[IPv4Net, Field(json_schema_extra={"format": "ipv4-cidr"})]


class Mode(StrEnum):
    """apply writes repairs; plan (the kill switch) only reports what it would do."""

    APPLY = "apply"
    PLAN = "plan"


class DisabledPoolPolicy(StrEnum):
    """When the on-prem cluster gets a disabled IP pool for each VPC CIDR."""

    AUTO = "auto"  # only when an enabled on-prem pool does outgoing NAT
    ALWAYS = "always"
    NEVER = "never"


class VpcConfig(_Model):
    cidr: Cidr = Field(description="Primary IPv4 CIDR of the VPC")
    az_count: int = Field(2, description="Availability zones (at least 2)")
    public_subnet_prefix: int = Field(24, description="Mask length of each public subnet")
    private_subnet_prefix: int = Field(19, description="Mask length of each private subnet")
    nat_gateways: int = Field(1, description="NAT gateways (1 to az_count)")
    interface_endpoints: bool = Field(
        False,
        description="Interface VPC endpoints for the AWS APIs the Lambdas call, so repairs "
        "need no NAT gateway (docs/DEPLOY.md: cost)",
    )

    _cidr_check = field_validator("cidr", mode="before")(_cidr)

    @field_validator("az_count")
    @classmethod
    def _two_azs(cls, v: int) -> int:
        if v < 2:
            raise ValueError(f"is {v}; the federation needs at least 2 availability zones")
        if v > 6:
            raise ValueError(f"is {v}; use at most 6 availability zones")
        return v

    @field_validator("public_subnet_prefix", "private_subnet_prefix")
    @classmethod
    def _prefix(cls, v: int) -> int:
        if not 16 <= v <= 28:
            raise ValueError(f"is /{v}; AWS subnets must be between /16 and /28")
        return v

    @model_validator(mode="after")
    def _fits(self) -> VpcConfig:
        if self.nat_gateways < 1 or self.nat_gateways > self.az_count:
            raise ValueError(
                f"nat_gateways is {self.nat_gateways}; set it between 1 and az_count "
                f"({self.az_count})"
            )
        for field in ("public_subnet_prefix", "private_subnet_prefix"):
            prefix = getattr(self, field)
            if prefix < self.cidr.prefixlen:
                raise ValueError(
                    f"{field} /{prefix} is larger than the VPC {self.cidr}; use a longer prefix"
                )
        needed = self.az_count * (
            2 ** (32 - self.public_subnet_prefix) + 2 ** (32 - self.private_subnet_prefix)
        )
        if needed > self.cidr.num_addresses:
            raise ValueError(
                f"{self.az_count} public /{self.public_subnet_prefix} and private "
                f"/{self.private_subnet_prefix} subnets need {needed} addresses but "
                f"{self.cidr} has {self.cidr.num_addresses}; use smaller subnets or a "
                "larger VPC CIDR"
            )
        return self


class CustomerGatewayConfig(_Model):
    ip: ipaddress.IPv4Address = Field(description="Public IP of the on-prem VPN router")
    bgp_asn: int = Field(description="BGP ASN of the on-prem VPN router")

    @field_validator("bgp_asn")
    @classmethod
    def _asn(cls, v: int) -> int:
        if not _ASN_MIN <= v <= _ASN_MAX or v == 23456:
            raise ValueError(f"is {v}; use an ASN from 1 to 4294967294 (not 23456)")
        return v


IkeVersion = Literal["ikev1", "ikev2"]


def _ikev2_only() -> list[IkeVersion]:
    return ["ikev2"]


class VpnConfig(_Model):
    vgw_asn: int = Field(64512, description="Amazon-side ASN of the virtual private gateway")
    customer_gateway: CustomerGatewayConfig
    ike_versions: list[IkeVersion] = Field(
        default_factory=_ikev2_only,
        description="IKE versions the VPN tunnels accept (ikev2; add ikev1 only for a router "
        "that lacks IKEv2)",
    )

    @field_validator("ike_versions")
    @classmethod
    def _ike(cls, v: list[IkeVersion]) -> list[IkeVersion]:
        if not v:
            raise ValueError("is empty; list ikev2 (or ikev1 for a router without IKEv2)")
        if len(set(v)) != len(v):
            raise ValueError("lists a version more than once; list each IKE version once")
        return v

    @field_validator("vgw_asn")
    @classmethod
    def _vgw_asn(cls, v: int) -> int:
        if not any(lo <= v <= hi for lo, hi in _VGW_ASN_RANGES):
            raise ValueError(
                f"is {v}; a VGW takes a private ASN from 64512 to 65534 or from "
                "4200000000 to 4294967294"
            )
        return v

    @model_validator(mode="after")
    def _distinct(self) -> VpnConfig:
        if self.vgw_asn == self.customer_gateway.bgp_asn:
            raise ValueError(
                f"vgw_asn and customer_gateway.bgp_asn are both {self.vgw_asn}; eBGP over "
                "the VPN needs a different ASN on each side"
            )
        return self


class CloudTrailMode(StrEnum):
    """Where the CloudTrail trail comes from that feeds the API-call rules.

    EventBridge delivers "AWS API Call via CloudTrail" events only while a trail with
    logging covers the region. ``create`` (the default) deploys a minimal write-only
    management-events trail, so the event-driven repairs work in any account from the first
    deployment: in an account without a trail it is the free first copy of management
    events (only its S3 storage is paid). ``existing`` deploys none: choose it when an
    organization or account trail already covers the region, since a second trail's copy
    of management events is billed ($2 per 100,000 events).
    """

    CREATE = "create"
    EXISTING = "existing"


class AwsConfig(_Model):
    region: str = Field(description="AWS region, e.g. eu-west-1")
    vpc: VpcConfig
    vpn: VpnConfig
    cloudtrail: CloudTrailMode = Field(
        CloudTrailMode.CREATE,
        description="create: deploy a write-only management-events trail; existing: rely "
        "on a trail that already covers the region (checked by `checks`)",
    )

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not REGION_PATTERN.fullmatch(v):
            raise ValueError(f"{v!r} is not an AWS region name such as eu-west-1")
        return v


class NodeGroupConfig(_Model):
    name: str = "workers"
    # Calico Enterprise with log storage runs Elasticsearch, Kibana and the manager beside
    # calico-node and Typha: 4 vCPU / 16 GiB nodes leave room for them (m6i.large does not).
    instance_types: list[str] = Field(default_factory=lambda: ["m6i.xlarge"])
    min_size: int = 2
    desired_size: int = 2
    max_size: int = 4
    disk_size_gb: int = Field(
        50, description="Root volume (gp3) of each node: Calico Enterprise's images are large"
    )

    @field_validator("disk_size_gb")
    @classmethod
    def _disk(cls, v: int) -> int:
        if not 20 <= v <= 16384:
            raise ValueError(f"is {v}; give a gp3 root volume between 20 and 16384 GiB, e.g. 50")
        return v

    @field_validator("instance_types")
    @classmethod
    def _types(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("is empty; list at least one instance type, e.g. m6i.large")
        dupes = sorted({t for t in v if v.count(t) > 1})
        if dupes:
            raise ValueError(f"lists {', '.join(dupes)} more than once; list each type once")
        return v

    @model_validator(mode="after")
    def _sizes(self) -> NodeGroupConfig:
        if not 0 <= self.min_size <= self.desired_size <= self.max_size or self.max_size < 1:
            raise ValueError(
                f"sizes min {self.min_size} / desired {self.desired_size} / max "
                f"{self.max_size} must satisfy 0 <= min <= desired <= max and max >= 1"
            )
        return self


# Tigera's Calico Enterprise Helm repository and chart (docs.tigera.io, "Install Calico
# Enterprise using Helm": `helm repo add tigera-ee https://downloads.tigera.io/ee/charts`,
# chart tigera-operator, versions vMAJOR.MINOR.PATCH such as v3.21.9).
TIGERA_EE_CHART_REPOSITORY = "https://downloads.tigera.io/ee/charts"
# Calico Enterprise 3.23.1 (tigera/operator v1.42.4 release notes, 2026-07-04: "Calico
# Enterprise version: v3.23.1"); docs.tigera.io lists 3.23 as the latest release.
DEFAULT_CALICO_CHART_VERSION = "v3.23.1"
# From 3.20 Tigera supports "AWS CNI with Calico Enterprise network policy" on EKS
# (docs.tigera.io, Calico Enterprise "Support and compatibility", EKS).
_MIN_CALICO_MINOR = 20
_CHART_VERSION = re.compile(r"^v3\.(\d+)\.(\d+)(-\d+)?$")
# fedkeeper's invariants depend on these Installation values; ``values`` may not change them.
_FIXED_CALICO_VALUES = (
    ("installation", "kubernetesProvider"),
    ("installation", "cni"),
    ("installation", "calicoNetwork"),
    ("installation", "variant"),
    ("imagePullSecrets",),
)


class CalicoInstallConfig(_Model):
    """The tigera-operator chart on EKS (Calico Enterprise, policy-only)."""

    chart_repository: str = Field(
        TIGERA_EE_CHART_REPOSITORY,
        description="Helm repository of the tigera-operator chart (https:// or oci://)",
    )
    chart_version: str = Field(
        DEFAULT_CALICO_CHART_VERSION, description="tigera-operator chart version, e.g. v3.23.1"
    )
    chart_file: str = Field(
        "",
        description="Air-gapped installs: a local tigera-operator-<version>.tgz (relative to "
        "this file), shipped as an S3 asset instead of pulling from chart_repository",
    )
    values: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra chart values, merged over fedkeeper's (not the Installation's "
        "provider, CNI, network or variant)",
    )
    registry: str = "quay.io/"
    pull_secret_name: str = Field(
        "tigera-pull-secret", description="Secret in tigera-operator holding registry creds"
    )
    license_secret_name: str = Field(
        "tigera-license", description="Secrets Manager secret holding the LicenseKey manifest"
    )
    pull_secret_source: str = Field(
        "tigera-pull-secret",
        description="Secrets Manager secret (name or ARN) holding the registry credentials "
        "Tigera sends (config.json); the calico stack copies them into pull_secret_name",
    )
    log_storage: bool = Field(
        True,
        description="Calico Enterprise log storage (Elasticsearch on EBS through the "
        "tigera-elasticsearch StorageClass); false turns log storage, log collection and the "
        "manager UI off",
    )

    @field_validator("license_secret_name", "pull_secret_source")
    @classmethod
    def _secret_ref(cls, v: str) -> str:
        if not v or not re.fullmatch(r"(arn:aws[a-z-]*:secretsmanager:\S+|[\w/+=.@-]{1,512})", v):
            raise ValueError(
                f"{v!r} is not a Secrets Manager secret name or ARN; use a name such as "
                "tigera-license (letters, digits and /_+=.@-)"
            )
        return v

    @field_validator("chart_repository")
    @classmethod
    def _repository(cls, v: str) -> str:
        if not re.fullmatch(r"(https|oci)://[^\s/]+(/\S*)?", v):
            raise ValueError(
                f"{v!r} is not a Helm repository URL; use {TIGERA_EE_CHART_REPOSITORY} or "
                "your mirror (https:// or oci://)"
            )
        return v.rstrip("/")

    @field_validator("chart_version")
    @classmethod
    def _chart_version(cls, v: str) -> str:
        match = _CHART_VERSION.fullmatch(v)
        if not match:
            raise ValueError(
                f"{v!r} is not a Calico Enterprise chart version; write it as Tigera "
                f"publishes it, e.g. {DEFAULT_CALICO_CHART_VERSION}"
            )
        if int(match.group(1)) < _MIN_CALICO_MINOR:
            raise ValueError(
                f"{v} predates Calico Enterprise 3.{_MIN_CALICO_MINOR}, the first with AWS "
                f"VPC CNI policy-only support on EKS; use {DEFAULT_CALICO_CHART_VERSION}"
            )
        return v

    @field_validator("chart_file")
    @classmethod
    def _chart_file(cls, v: str) -> str:
        if v and not v.endswith(".tgz"):
            raise ValueError(
                f"{v!r} is not a packaged chart; use the tigera-operator-<version>.tgz that "
                "`helm pull tigera-ee/tigera-operator --version <version>` writes"
            )
        return v

    @field_validator("values")
    @classmethod
    def _values(cls, v: dict[str, Any]) -> dict[str, Any]:
        for path in _FIXED_CALICO_VALUES:
            cur: Any = v
            for key in path:
                cur = cur.get(key) if isinstance(cur, dict) else None
            if cur is not None:
                raise ValueError(
                    f"sets {'.'.join(path)}, which fedkeeper fixes (Calico policy-only on the "
                    "AWS VPC CNI; pull secrets by name only); remove it"
                )
        return v


# The EKS managed add-ons the cluster stack creates; their versions move with the cluster's
# through eks.addon_versions and `cdk deploy` (docs/DEPLOY.md, "Upgrades: the cluster
# version and its add-ons move together").
MANAGED_ADDONS = (
    "eks-pod-identity-agent",
    "vpc-cni",
    "kube-proxy",
    "coredns",
    "aws-ebs-csi-driver",
)


class EksConfig(_Model):
    cluster_name: str
    kubernetes_version: str = Field(
        DEFAULT_VERSION,
        description="Kubernetes minor version of the EKS cluster (fedkeeper.eks_versions)",
    )
    node_group: NodeGroupConfig = Field(default_factory=NodeGroupConfig)
    calico: CalicoInstallConfig = Field(default_factory=CalicoInstallConfig)
    addon_versions: dict[str, str] = Field(
        default_factory=dict,
        description="EKS managed add-on versions (e.g. kube-proxy: v1.36.0-eksbuild.2); an "
        "add-on left out gets EKS's default for kubernetes_version when it is created",
    )

    @field_validator("addon_versions")
    @classmethod
    def _addon_versions(cls, v: dict[str, str]) -> dict[str, str]:
        for name, version in v.items():
            if name not in MANAGED_ADDONS:
                raise ValueError(
                    f"names {name!r}, which is not an add-on the cluster stack manages; use "
                    f"one of {', '.join(MANAGED_ADDONS)}"
                )
            if not re.fullmatch(r"v\d+\.\d+\.\d+-eksbuild\.\d+", str(version)):
                raise ValueError(
                    f"{name}: {version!r} is not an EKS add-on version; copy one from `aws eks "
                    f"describe-addon-versions --addon-name {name} --kubernetes-version <version>`"
                    ", e.g. v1.36.0-eksbuild.2"
                )
        return v

    @field_validator("cluster_name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _CLUSTER_NAME.fullmatch(v):
            raise ValueError(
                f"{v!r} is not a valid EKS cluster name (letters, digits, - and _, starting "
                "with a letter or digit, at most 100)"
            )
        return v

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not re.fullmatch(r"1\.\d{2}", v):
            raise ValueError(f'{v!r} is not an EKS version such as "{DEFAULT_VERSION}" (quote it)')
        return v


class OnPremConfig(_Model):
    cluster_name: str
    api_endpoint: str = Field(description="https://host:port of the on-prem API server")
    credentials_secret: str = Field(
        description="Secrets Manager secret (name or ARN) holding the on-prem kubeconfig"
    )
    host_cidrs: list[Cidr]
    pod_cidrs: list[Cidr]
    service_cidrs: list[Cidr]

    _cidrs = field_validator("host_cidrs", "pod_cidrs", "service_cidrs", mode="before")(
        lambda v: [_cidr(x) for x in v] if isinstance(v, list) else v
    )

    @field_validator("cluster_name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _DNS_LABEL.fullmatch(v) or len(v) > 63:
            raise ValueError(f"{v!r} must be a DNS label (lower-case letters, digits and -)")
        return v

    @field_validator("api_endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        if not re.fullmatch(r"https?://[^\s/]+(:\d+)?/?", v):
            raise ValueError(f"{v!r} must be a URL such as https://10.0.0.10:6443")
        return v.rstrip("/")

    @field_validator("host_cidrs", "pod_cidrs", "service_cidrs")
    @classmethod
    def _non_empty_unique(cls, v: list[IPv4Net]) -> list[IPv4Net]:
        if not v:
            raise ValueError("is empty; list at least one CIDR")
        dupes = sorted({str(c) for c in v if v.count(c) > 1})
        if dupes:
            raise ValueError(f"lists {', '.join(dupes)} more than once; list each CIDR once")
        return v

    def all_cidrs(self) -> list[tuple[str, IPv4Net]]:
        """Every on-prem CIDR with the field path it came from."""
        out: list[tuple[str, IPv4Net]] = []
        for field in ("host_cidrs", "pod_cidrs", "service_cidrs"):
            out += [(f"onprem.{field}[{i}]", c) for i, c in enumerate(getattr(self, field))]
        return out


class CalicoApiConfig(_Model):
    group: str = "projectcalico.org"
    version: str = "v3"


# fedkeeper's own namespace (its RBAC manifests create it): the access Secrets, and by default
# the remote service account with its token Secret, so one list of the Secrets fedkeeper owns
# there reads both; namespaces holding other components' Secrets can never be it.
DEFAULT_ACCESS_NAMESPACE = "fedkeeper-access"
SHARED_NAMESPACES = frozenset({"calico-system", "tigera-operator", "kube-system", "kube-public"})


class RemoteServiceAccountConfig(_Model):
    name: str = "tigera-federation-remote-cluster"
    # Tigera's guide uses calico-system; any namespace works (the RCC's kubeconfig carries
    # only the token). In fedkeeper's own namespace its token Secret is read with the access
    # Secrets, and the reconciler needs no access to Secrets in calico-system at all.
    namespace: str = DEFAULT_ACCESS_NAMESPACE


class FederationSettings(_Model):
    calico_api: CalicoApiConfig = Field(default_factory=CalicoApiConfig)
    eks_rcc_name: str = Field(
        "", description="RCC on EKS naming the on-prem cluster; default onprem.cluster_name"
    )
    onprem_rcc_name: str = Field(
        "", description="RCC on-prem naming the EKS cluster; default eks.cluster_name lowered"
    )
    access_secret_namespace: str = Field(
        DEFAULT_ACCESS_NAMESPACE,
        description="a namespace of its own for the RCCs' access Secrets (Typha reads them)",
    )
    remote_service_account: RemoteServiceAccountConfig = Field(
        default_factory=RemoteServiceAccountConfig
    )
    disabled_pool_policy: DisabledPoolPolicy = DisabledPoolPolicy.AUTO

    @field_validator("eks_rcc_name", "onprem_rcc_name", "access_secret_namespace")
    @classmethod
    def _dns(cls, v: str) -> str:
        if v and (not _DNS_LABEL.fullmatch(v) or len(v) > 63):
            raise ValueError(f"{v!r} must be a DNS label (lower-case letters, digits and -)")
        return v

    @field_validator("access_secret_namespace")
    @classmethod
    def _own_namespace(cls, v: str) -> str:
        # fedkeeper (and Typha) may read every Secret there: never a namespace holding other
        # components' secrets (calico-system holds typha-certs and its private key).
        if v in SHARED_NAMESPACES:
            raise ValueError(
                f"{v!r} holds other components' Secrets, and fedkeeper and Typha may read "
                "every Secret in the access namespace; give it a namespace of its own, such as "
                f"{DEFAULT_ACCESS_NAMESPACE}"
            )
        return v


class ReconcileConfig(_Model):
    schedule: str = Field("rate(15 minutes)", description="EventBridge schedule expression")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: str) -> str:
        if not _SCHEDULE.fullmatch(v):
            raise ValueError(
                f"{v!r} is not an EventBridge schedule; write rate(15 minutes) or cron(...)"
            )
        rate = _RATE.fullmatch(v)
        if rate:
            # EventBridge takes the singular unit for 1 and the plural for more, and no 0.
            n, unit, plural = int(rate.group(1)), rate.group(2), bool(rate.group(3))
            if n == 0:
                raise ValueError(f"{v!r} never fires; write a rate of 1 or more")
            if n == 1 and plural:
                raise ValueError(f"{v!r}: EventBridge wants the singular; write rate(1 {unit})")
            if n > 1 and not plural:
                raise ValueError(f"{v!r}: EventBridge wants the plural; write rate({n} {unit}s)")
        return v


class TwoClusterConfig(_Model):
    """The keys of today's two-cluster federation.yaml (fedkeeper.topology.legacy converts it
    to the ``clusters:`` form, where every rule across sections lives)."""

    name: str = Field(description="Naming prefix for every resource (account-agnostic)")
    mode: Mode = Mode.APPLY
    aws: AwsConfig
    eks: EksConfig
    onprem: OnPremConfig
    federation: FederationSettings = Field(default_factory=FederationSettings)
    reconcile: ReconcileConfig = Field(default_factory=ReconcileConfig)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _DNS_LABEL.fullmatch(v) or len(v) > 32:
            raise ValueError(
                f"{v!r} must be lower-case letters, digits and -, at most 32 characters"
            )
        return v


def _dns_label(value: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", value.lower()).strip("-")[:63]


def _loc(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-after[", "function-before[", "function-plain[")):
            continue
        else:
            # A key that is no plain word (a typo with a space, a newline) is quoted, so the
            # message stays one line and shows exactly what was written.
            key = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else repr(part)
            out += f".{key}" if out else key
    return out


_FIX_BY_TYPE = {
    "missing": "add it",
    "int_parsing": "write a whole number",
    "int_type": "write a whole number",
    "string_type": "write a string",
    "list_type": "write a list",
    "model_type": "write a mapping of keys",
    "dict_type": "write a mapping of keys",
    "enum": "use one of the allowed values",
    "bool_parsing": "write true or false",
    "ip_v4_address": "write an IPv4 address such as 203.0.113.10",
}


def _model_at(loc: Iterable[int | str], root: type[BaseModel]) -> type[BaseModel] | None:
    """The model whose keys are allowed at ``loc`` (a path into ``root``), if any."""
    model = root
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        for arg in getattr(annotation, "__args__", ()):  # list[Model], Model | None
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                annotation = arg
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _source_scalar(text: str | None, loc: tuple[int | str, ...]) -> tuple[str, int] | None:
    """The value at ``loc`` as written in the file, and its line (YAML turns an unquoted
    ``1.30`` into the number 1.3: the message must quote what the person wrote)."""
    if not text:
        return None
    try:
        node: Any = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            node = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            return None
    if not isinstance(node, yaml.ScalarNode):
        return None
    return str(node.value), node.start_mark.line + 1


def _cut_long_values(msg: str, value: Any) -> str:
    """A long value the message repeats, cut (see :func:`fedkeeper.wording.shown`)."""
    if not isinstance(value, str) or len(value) <= MAX_SHOWN:
        return msg
    msg = msg.replace(repr(value), shown(value))
    return msg.replace(value, shown(value))


def _not_a_string(err: Any, path: str, text: str | None) -> str | None:
    """A YAML number or boolean where a string belongs: say so, and how to quote it."""
    value = err.get("input")
    if err["type"] != "string_type" or not isinstance(value, bool | int | float):
        return None
    kind = "boolean" if isinstance(value, bool) else "number"
    written = _source_scalar(text, tuple(err["loc"]))
    raw, where = written if written else (str(value).lower(), 0)
    key = path.rsplit(".", 1)[-1]
    line = f" (line {where})" if where else ""
    return f'{path}: {raw} is a YAML {kind}{line}, not a string; quote it: {key}: "{raw}"'


def format_validation_error(
    exc: ValidationError, text: str | None = None, root: type[BaseModel] | None = None
) -> list[str]:
    """Turn a pydantic error into lines of ``field.path: problem; fix``.

    ``text``: the file as written, to quote a value YAML read as a number. ``root``: the model
    the error's locations start from (default: the two-cluster file), to suggest known keys.
    """
    errors = exc.errors(include_url=False)
    missing = {tuple(e["loc"]) for e in errors if e["type"] == "missing"}
    # A misspelt key is also a missing one: the line on the misspelling says both.
    folded: set[tuple[int | str, ...]] = set()
    lines: list[tuple[tuple[int | str, ...], str]] = []
    for err in errors:
        loc = tuple(err["loc"])
        path = _loc(loc)
        msg = str(err["msg"])
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        msg = _cut_long_values(msg, err.get("input"))
        if err["type"] == "value_error" and "\n" in msg:
            lines += [(loc, line) for line in msg.splitlines()]
            continue
        if err["type"] == "value_error" and _FIELD_PATH.match(msg):
            lines.append((loc, msg))
            continue
        quoted = _not_a_string(err, path, text)
        if quoted:
            lines.append((loc, quoted))
            continue
        if err["type"] == "extra_forbidden" and isinstance(loc[-1], str):
            line, twin = _unknown_key(loc, missing, root or TwoClusterConfig)
            if twin is not None:
                folded.add(twin)
            lines.append((loc, line))
            continue
        fix = _FIX_BY_TYPE.get(str(err["type"]))
        if err["type"] == "missing":
            msg = "is required"
        line = f"{path or '<file>'}: {msg}"
        if fix and fix not in msg:
            line += f"; {fix}"
        lines.append((loc, line))
    return [line for loc, line in lines if loc not in folded]


def _unknown_key(
    loc: tuple[int | str, ...], missing: set[tuple[int | str, ...]], root: type[BaseModel]
) -> tuple[str, tuple[int | str, ...] | None]:
    """The line for a key the model does not know, and the required key it misspells."""
    key = str(loc[-1])
    model = _model_at(loc[:-1], root)
    known = list(model.model_fields) if model else []
    path = _loc((*loc[:-1], shown(key) if len(key) > MAX_SHOWN else key))
    # The likeliest target is a required key that is missing right there.
    match = closest(key, [k for k in known if (*loc[:-1], k) in missing]) or closest(key, known)
    if match is None:
        keys = f" (keys here: {', '.join(known)})" if known else ""
        return f"{path}: is not a known key; remove it{keys}", None
    twin = (*loc[:-1], match)
    if twin in missing:
        return f"{path}: is not a known key; did you mean {match}? ({_loc(twin)} is required)", twin
    return f"{path}: is not a known key; did you mean {match}?", None


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: object, first: yaml.Mark, again: yaml.Mark) -> None:
        super().__init__(f"key {key!r} appears twice")
        self.key, self.first, self.again = key, first, again


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML says keys are unique;
    PyYAML would silently keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[object, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: construct_mapping reports it
            if first is not None:
                raise _DuplicateKey(key, first, key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """YAML → Python, refusing duplicate keys (raises yaml.YAMLError)."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def read_config_file(path: str | Path) -> tuple[Any, str]:
    """federation.yaml's data and text; ConfigError says what is wrong with the file itself
    (missing, not UTF-8, a key twice, not YAML) and how to fix it."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [
                f"{p}: no such file; pass the path of your federation.yaml (`fedkeeper init` "
                "writes one)"
            ]
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            [f"{p}: is a directory; pass the path of a file such as federation.yaml"]
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{p}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"]
        ) from None
    except OSError as exc:
        raise ConfigError([f"{p}: cannot be read ({exc.strerror or exc})"]) from None
    try:
        data = load_yaml(text)
    except _DuplicateKey as exc:
        raise ConfigError(
            [
                f"{p}: line {exc.again.line + 1}: key {exc.key!r} appears twice (first on line "
                f"{exc.first.line + 1}); keep one"
            ]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{p}:{where}: not valid YAML ({problem}); fix the syntax"]) from None
    return data, text
