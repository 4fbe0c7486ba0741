"""Pure domain types shared by every layer: scopes, changes, findings and the Report.

Nothing here performs I/O or imports an SDK. A :class:`Change` carries what the adapter
needs to write (``payload``) but the Report only ever shows its target, action, reason and
result, so secrets in a payload never reach a log or a report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, TypeAlias

# Where a change lands: "aws", or a cluster by its mesh name (a DNS label, the name of the RCC
# its peers hold for it).
Backend: TypeAlias = str
AWS_BACKEND: Backend = "aws"
BACKENDS: tuple[Backend, ...] = (AWS_BACKEND,)  # every federation's; its clusters follow
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def backend(name: str) -> Backend:
    """``name`` as a backend: "aws" or a cluster's mesh name (an RFC 1123 DNS label).

    ValueError names the value and the rule: lowercase letters, digits and '-', at most 63
    characters, starting and ending with a letter or digit.
    """
    if name == AWS_BACKEND or _DNS_LABEL.match(name):
        return name
    raise ValueError(
        f"backend {name!r} is neither 'aws' nor a cluster name: a cluster name is a DNS label "
        "(lowercase letters, digits and '-', at most 63 characters, starting and ending with a "
        "letter or digit)"
    )


class Invariant(StrEnum):
    """The concerns fedkeeper keeps consistent (docs/ARCHITECTURE.md, "The invariants")."""

    ROUTES = "routes"
    SNAT = "snat"
    IPPOOLS = "ippools"
    RCC = "rcc"
    VPN = "vpn"
    CHECKS = "checks"


ALL_INVARIANTS: tuple[Invariant, ...] = tuple(Invariant)
# The order a full reconcile runs in: read-only VPN state first (it decides whether the
# on-prem cluster is reachable), then AWS, then the clusters.
RUN_ORDER: tuple[Invariant, ...] = (
    Invariant.VPN,
    Invariant.ROUTES,
    Invariant.SNAT,
    Invariant.IPPOOLS,
    Invariant.RCC,
    Invariant.CHECKS,
)


@dataclass(frozen=True)
class Scope:
    """Which invariants one run looks at."""

    invariants: frozenset[Invariant]

    @classmethod
    def of(cls, *names: Invariant | str) -> Scope:
        return cls(frozenset(Invariant(n) for n in names))

    @classmethod
    def everything(cls) -> Scope:
        return cls(frozenset(ALL_INVARIANTS))

    @classmethod
    def parse(cls, names: Iterable[str] | None) -> Scope:
        """Scope from user input; ValueError names the unknown entry and the valid ones."""
        if names is None:
            return cls.everything()
        out: set[Invariant] = set()
        for n in names:
            try:
                out.add(Invariant(n))
            except ValueError:
                valid = ", ".join(i.value for i in ALL_INVARIANTS)
                raise ValueError(f"unknown scope {n!r}; use any of: {valid}") from None
        return cls(frozenset(out)) if out else cls.everything()

    def __contains__(self, item: object) -> bool:
        return item in self.invariants

    def union(self, other: Scope) -> Scope:
        return Scope(self.invariants | other.invariants)

    def ordered(self) -> list[Invariant]:
        return [i for i in RUN_ORDER if i in self.invariants]

    def names(self) -> list[str]:
        return [i.value for i in self.ordered()]


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class Result(StrEnum):
    PLANNED = "planned"  # mode plan: nothing written
    APPLIED = "applied"
    FAILED = "failed"
    SKIPPED = "skipped"  # not attempted: a write it depends on failed in this run
    DEFERRED = "deferred"  # not done: its target is busy; the next trigger tries again


@dataclass(frozen=True)
class Change:
    """One write the plan wants, with the reason an operator reads.

    ``kind`` and ``payload`` tell the adapter what to do; ``payload`` is never reported.
    ``resource_version`` is the version the plan was made against (optimistic locking).
    """

    backend: Backend
    kind: str
    name: str
    action: Action
    reason: str
    invariant: Invariant
    namespace: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    resource_version: str | None = None
    # Targets of writes in the same plan this one needs first: not attempted if they failed.
    after: tuple[str, ...] = field(default=(), compare=False)

    @property
    def target(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.backend}/{self.kind}/{ns}{self.name}"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Finding:
    """Something an operator should know that fedkeeper will not (or cannot) write."""

    severity: Severity
    check: str
    message: str
    # The object it is about (``onprem Secret ns/name``), when one: persistent trouble with
    # an object is one episode per object (not serialized: the message names it).
    subject: str | None = None

    def to_dict(self) -> dict[str, str]:
        return {"severity": self.severity.value, "check": self.check, "message": self.message}


@dataclass(frozen=True)
class Deferred:
    """Work skipped this run because its target was unreachable; retried later.

    ``retry``: the run asks to be retried soon (e.g. an add-on still UPDATING, work not
    reached before the deadline) rather than waiting for the next event or schedule.
    """

    target: str
    reason: str
    retry: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.target, "reason": self.reason}
        if self.retry:
            out["retry"] = True
        return out


@dataclass
class TargetFailure:
    """A target (a cluster or an AWS service) that failed this run, and what to do about it."""

    target: str
    reason: str
    fix: str | None
    invariants: list[str] = field(default_factory=list)  # the work it held up

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "target": self.target,
            "reason": self.reason,
            "invariants": list(self.invariants),
        }
        if self.fix:
            out["fix"] = self.fix
        return out


@dataclass
class ChangeOutcome:
    change: Change
    result: Result
    error: str | None = None
    retryable: bool = False  # a FAILED write that trying again may fix (throttled, 5xx, 409)
    # The target (cluster or aws/<service>) whose failure it was: the root cause a
    # notification names once (not serialized: the error says it).
    cause: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "target": self.change.target,
            "invariant": self.change.invariant.value,
            "action": self.change.action.value,
            "reason": self.change.reason,
            "result": self.result.value,
        }
        if self.error:
            out["error"] = self.error
            out["retryable"] = self.retryable
        return out


@dataclass(frozen=True)
class RunError:
    """A failure that stopped part of a run; ``retryable`` says whether trying later helps."""

    invariant: str
    message: str
    retryable: bool
    target: str | None = None  # the cluster or AWS service that failed, when known

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "invariant": self.invariant,
            "error": self.message,
            "retryable": self.retryable,
        }
        if self.target:
            out["target"] = self.target
        return out


@dataclass
class ApiCounter:
    """API calls per backend, split into reads and writes."""

    reads: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BACKENDS, 0))
    writes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BACKENDS, 0))

    def count(self, backend: str, *, write: bool) -> None:
        bucket = self.writes if write else self.reads
        bucket[backend] = bucket.get(backend, 0) + 1

    def totals(self) -> dict[str, int]:
        keys = sorted(set(self.reads) | set(self.writes), key=_backend_order)
        return {k: self.reads.get(k, 0) + self.writes.get(k, 0) for k in keys}

    def total_writes(self) -> int:
        return sum(self.writes.values())

    def snapshot(self) -> ApiCounter:
        return ApiCounter(dict(self.reads), dict(self.writes))

    def plus(self, other: ApiCounter) -> ApiCounter:
        """The calls of both (two runs reported as one)."""
        keys = set(self.reads) | set(self.writes) | set(other.reads) | set(other.writes)
        return ApiCounter(
            {k: self.reads.get(k, 0) + other.reads.get(k, 0) for k in keys},
            {k: self.writes.get(k, 0) + other.writes.get(k, 0) for k in keys},
        )

    def since(self, before: ApiCounter) -> ApiCounter:
        keys = set(self.reads) | set(self.writes) | set(before.reads) | set(before.writes)
        return ApiCounter(
            {k: self.reads.get(k, 0) - before.reads.get(k, 0) for k in keys},
            {k: self.writes.get(k, 0) - before.writes.get(k, 0) for k in keys},
        )


def is_cluster_target(target: str) -> bool:
    """Whether a deferred or failed ``target`` is a whole cluster (its mesh name), not an
    object (``<backend>/<Kind>/<name>``), AWS, nor an invariant left for lack of time."""
    return (
        "/" not in target
        and target != AWS_BACKEND
        and target not in {i.value for i in Invariant}
        and _DNS_LABEL.match(target) is not None
    )


def _backend_order(name: str) -> tuple[int, str]:
    return (BACKENDS.index(name) if name in BACKENDS else len(BACKENDS), name)


@dataclass
class Report:
    """What one run saw and did; every handler and CLI command returns it."""

    mode: Literal["plan", "apply"]
    scope: Scope
    changes: list[ChangeOutcome] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    deferred: list[Deferred] = field(default_factory=list)
    errors: list[RunError] = field(default_factory=list)
    failed_targets: list[TargetFailure] = field(default_factory=list)
    api: ApiCounter = field(default_factory=ApiCounter)
    duration_ms: int = 0
    trigger: str | None = None
    tunnels_up: int | None = None
    # Targets (``eks``, ``onprem``, ``aws/<service>``) a call to which succeeded in this run:
    # the only news that a target in trouble is well again (not serialized).
    reached: set[str] = field(default_factory=set)

    @property
    def converged(self) -> bool:
        """True when nothing is left to do: no failure, nothing deferred, nothing pending.

        An error finding is something broken that fedkeeper will not or cannot write (a
        covering pool that NATs, an address overlap): never "converged" while it stands.
        """
        if self.errors or self.deferred or self.failed_targets:
            return False
        if any(f.severity is Severity.ERROR for f in self.findings):
            return False
        return all(c.result is Result.APPLIED for c in self.changes) if self.changes else True

    @property
    def writes(self) -> int:
        return self.api.total_writes()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mode": self.mode,
            "scope": self.scope.names(),
            "changes": [c.to_dict() for c in self.changes],
            "findings": [f.to_dict() for f in self.findings],
            "deferred": [d.to_dict() for d in self.deferred],
            "converged": self.converged,
            "api_calls": self.api.totals(),
            "api_writes": {k: v for k, v in self.api.writes.items() if v},
            "duration_ms": self.duration_ms,
        }
        if self.errors:
            out["errors"] = [e.to_dict() for e in self.errors]
        if self.failed_targets:
            out["failed_targets"] = [t.to_dict() for t in self.failed_targets]
        if self.trigger:
            out["trigger"] = self.trigger
        if self.tunnels_up is not None:
            out["tunnels_up"] = self.tunnels_up
        return out


# --- observations of AWS (filled by adapters, read by the pure invariants) -----------------


@dataclass(frozen=True)
class Route:
    destination: str
    target: str
    origin: str
    state: str

    @property
    def propagated(self) -> bool:
        return self.origin == "EnableVgwRoutePropagation"


@dataclass(frozen=True)
class RouteTable:
    id: str
    name: str
    subnet_ids: tuple[str, ...]
    main: bool
    routes: tuple[Route, ...]
    propagating_vgws: frozenset[str]
    tags: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def private(self) -> bool:
        """Serves subnets and has no default route to an internet gateway."""
        if not self.subnet_ids:
            return False
        return not any(
            r.destination == "0.0.0.0/0" and r.target.startswith("igw-") for r in self.routes
        )

    @property
    def ignored(self) -> bool:
        return self.tags.get(IGNORE_TAG, "").lower() == "true"


@dataclass(frozen=True)
class Vpc:
    id: str
    cidrs: tuple[str, ...]  # IPv4 CIDRs in state "associated", primary first


@dataclass(frozen=True)
class Tunnel:
    outside_ip: str
    up: bool
    accepted_routes: int
    last_change: str
    message: str


@dataclass(frozen=True)
class VpnConnection:
    id: str
    state: str
    tunnels: tuple[Tunnel, ...]
    static_routes_only: bool
    customer_gateway_id: str = ""  # the site's router at the other end


@dataclass(frozen=True)
class Addon:
    cluster: str
    name: str
    version: str
    status: str
    configuration_values: str
    issues: tuple[str, ...] = ()  # health issues EKS reports, "code: message"


IGNORE_TAG = "fedkeeper.io/ignore"
IGNORE_ANNOTATION = "fedkeeper.io/ignore"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "fedkeeper"
FEDERATION_LABEL = "fedkeeper.io/federation"


class Ownership(StrEnum):
    """Whose an object is, from its labels.

    See docs/ARCHITECTURE.md, "Rules fedkeeper never breaks".
    """

    OURS = "ours"  # both labels, this federation: kept, repaired, pruned
    # ``managed-by: fedkeeper`` without a federation label (how objects were once labelled,
    # and what operators were once told to add): adopted when it has a name this federation
    # gives, otherwise left alone like any foreign object.
    UNCLAIMED = "unclaimed"
    OTHER_FEDERATION = "other-federation"  # fedkeeper's, for another federation: never touched
    FOREIGN = "foreign"  # not fedkeeper's


def ownership(obj: object, federation: str) -> Ownership:
    """The ownership of any object read from a cluster, whatever its shape."""
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    if not isinstance(labels, Mapping) or labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        return Ownership.FOREIGN
    fed = labels.get(FEDERATION_LABEL)
    if fed is None or fed == "":
        return Ownership.UNCLAIMED
    return Ownership.OURS if fed == federation else Ownership.OTHER_FEDERATION


def owner_labels(federation: str) -> dict[str, str]:
    """The labels that make an object this federation's: the one way anything is labelled."""
    return {MANAGED_BY_LABEL: MANAGED_BY_VALUE, FEDERATION_LABEL: federation}


@dataclass(frozen=True)
class Trail:
    """A CloudTrail trail visible in the region (its own, a multi-region or an org trail).

    ``logging`` is None when its status could not be read (``status_error`` says why), e.g.
    an organization trail whose status the member account may not read.
    """

    name: str
    arn: str
    home_region: str
    multi_region: bool
    organization: bool
    logging: bool | None
    status_error: str = ""

    def covers(self, region: str) -> bool:
        return self.multi_region or self.home_region == region
