"""Failure domains and the time budget of one run (pure: no SDK).

A :class:`RunGuard` is shared by the adapters for the length of one reconcile:

* Before a call it refuses, at once, a target that already failed in a way that concerns
  the whole target (unreachable, timed out, 401, 5xx, throttled): a read that failed is
  not tried again by the next invariant in the same run, and the time it would cost is
  not spent again.
* It refuses a call whose worst case (timeouts × attempts) would pass the run's deadline,
  so the work is reported as deferred instead of the Lambda being killed mid-run.

:func:`fix_for` turns a failure into the sentence an operator acts on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fedkeeper.errors import (
    AnswerTimeoutError,
    ConflictError,
    FedkeeperError,
    NotFoundError,
    OutOfTimeError,
    RetryableError,
    UnauthorizedError,
    UnreachableError,
)


def domain_wide(exc: FedkeeperError) -> bool:
    """True when the failure says the whole target is unusable for this run."""
    if isinstance(exc, ConflictError | NotFoundError | OutOfTimeError):
        return False
    return isinstance(exc, UnreachableError | UnauthorizedError | RetryableError)


@dataclass
class RunGuard:
    """Deadline and failed targets of one run; see the module docstring."""

    deadline: float | None = None  # in ``clock`` seconds; None: no budget
    clock: Callable[[], float] = time.monotonic
    down: dict[str, FedkeeperError] = field(default_factory=dict)
    reached: set[str] = field(default_factory=set)  # targets that answered a call

    @classmethod
    def within(cls, seconds: float | None, clock: Callable[[], float] = time.monotonic) -> RunGuard:
        return cls(None if seconds is None else clock() + seconds, clock)

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - self.clock()

    def before(self, target: str, worst_case: float) -> None:
        """Raise instead of calling ``target`` when it is down or time is too short."""
        known = self.down.get(target)
        if known is not None:
            raise known
        left = self.remaining()
        if left is not None and left < worst_case:
            err = OutOfTimeError(
                f"{target}: not reached: {max(left, 0):.0f} s of the run's time budget "
                f"left, a call may take {worst_case:.0f} s"
            )
            err.target = target
            raise err

    def failed(self, target: str, exc: FedkeeperError) -> None:
        """Record a failure of ``target``; domain-wide ones stop further calls this run."""
        if exc.target is None:
            exc.target = target
        if domain_wide(exc):
            self.down.setdefault(target, exc)

    def succeeded(self, target: str) -> None:
        """``target`` answered a call (its answer, even "not found", says it is up)."""
        self.reached.add(target)

    def mark_down(self, target: str, exc: FedkeeperError) -> None:
        exc.target = exc.target or target
        self.down.setdefault(target, exc)


def fix_for(
    target: str,
    exc: FedkeeperError,
    *,
    credentials: str | None = None,
    kind: str | None = None,
) -> str | None:
    """What an operator does about ``exc`` on ``target``; None when nothing specific.

    ``kind``: ``"eks"`` or ``"onprem"`` when ``target`` is one of the federation's clusters
    (a backend is the cluster's mesh name), None for AWS."""
    status = exc.status
    cluster = kind is not None
    site = kind == "onprem"
    if isinstance(exc, OutOfTimeError):
        return "nothing: the next run starts with a fresh time budget"
    if status == 401 and site:
        where = f"secret {credentials}" if credentials else "the on-prem kubeconfig"
        return (
            f"the credentials in {where} were rejected; rotate them with "
            "`fedkeeper onprem-bootstrap`"
        )
    if status == 401 and kind == "eks":
        return (
            "the reconciler role's token was rejected; check the EKS access entry for the "
            "reconciler role (`cdk deploy` the cluster stack)"
        )
    if status == 403 and cluster:
        how = "`fedkeeper onprem-bootstrap`" if site else "`cdk deploy` the cluster stack"
        return f"the reconciler's RBAC refuses this request; re-apply its RBAC with {how}"
    if status == 404 and cluster:
        return "a Calico API group is not served: install the Calico (Tigera) API server"
    if isinstance(exc, AnswerTimeoutError):
        return "the endpoint accepted the connection but did not answer in time; check its load"
    if isinstance(exc, UnreachableError):
        if "TLS" in str(exc):
            if site:
                where = f"secret {credentials}" if credentials else "the on-prem kubeconfig"
                return (
                    "the server's certificate does not match the CA in the kubeconfig of "
                    f"{where}; store the cluster's current CA there (`fedkeeper "
                    "onprem-bootstrap --apply` writes a kubeconfig with it)"
                )
            return (
                "the server's certificate does not match the cluster CA from "
                "`eks describe-cluster`; check for a proxy in between"
            )
        if site:
            return (
                "check the on-prem API endpoint address, DNS, the VPN routes and the "
                "security groups between the Lambda subnets and it"
            )
        if cluster:
            return "check the EKS endpoint access (private endpoint, security groups)"
        return "check the VPC endpoints or NAT route for the AWS API"
    if status is not None and (status == 429 or status >= 500):
        return "the API server is failing or throttling; the next run tries again"
    return None
