"""The Amazon EKS Kubernetes release calendar, as data, and what it says about a version.

Source: Amazon EKS User Guide, "Understand the Kubernetes version lifecycle on EKS",
section "Amazon EKS Kubernetes release calendar"
(https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html#kubernetes-release-calendar).
Dates are UTC; billing for extended support starts at the beginning of the end-of-standard-
support day. A version is in standard support for 14 months after its EKS release, then in
extended support (billed per cluster hour) for 12 more; past that EKS creates no new
cluster on it and upgrades existing control planes.

Refresh this table when EKS publishes a new version (``aws eks describe-cluster-versions``
prints the same dates), together with the kubectl layer the cluster stack uses.

This module is pure: it imports neither boto3, kubernetes nor Powertools.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

CALENDAR_SOURCE = (
    "https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html"
    "#kubernetes-release-calendar"
)


class Support(StrEnum):
    STANDARD = "standard support"
    EXTENDED = "extended support"
    ENDED = "no longer supported"
    NOT_YET = "not yet released on EKS"
    UNKNOWN = "not in fedkeeper's EKS calendar"


@dataclass(frozen=True)
class EksRelease:
    """One Kubernetes minor version on EKS and its support dates."""

    version: str
    eks_release: date
    end_of_standard_support: date
    end_of_extended_support: date

    def support_on(self, day: date) -> Support:
        if day < self.eks_release:
            return Support.NOT_YET
        if day < self.end_of_standard_support:
            return Support.STANDARD
        if day < self.end_of_extended_support:
            return Support.EXTENDED
        return Support.ENDED


# Newest first. 1.36: released on EKS 2026-06-02 (EKS user guide, "Review release notes for
# Kubernetes versions on standard support": "Kubernetes 1.36 is now available in Amazon EKS");
# standard support for 14 months from then, extended support for 12 more.
CALENDAR: tuple[EksRelease, ...] = (
    EksRelease("1.36", date(2026, 6, 2), date(2027, 8, 2), date(2028, 8, 2)),
    EksRelease("1.35", date(2026, 1, 27), date(2027, 3, 27), date(2028, 3, 27)),
    EksRelease("1.34", date(2025, 10, 2), date(2026, 12, 2), date(2027, 12, 2)),
    EksRelease("1.33", date(2025, 5, 29), date(2026, 7, 29), date(2027, 7, 29)),
    EksRelease("1.32", date(2025, 1, 23), date(2026, 3, 23), date(2027, 3, 23)),
    EksRelease("1.31", date(2024, 9, 26), date(2025, 11, 26), date(2026, 11, 26)),
    EksRelease("1.30", date(2024, 5, 23), date(2025, 7, 23), date(2026, 7, 23)),
    EksRelease("1.29", date(2024, 1, 23), date(2025, 3, 23), date(2026, 3, 23)),
)
RELEASES = {release.version: release for release in CALENDAR}

# The default for new clusters: the newest version that aws-cdk-lib's aws_eks_v2 knows
# (2.275: KubernetesVersion.V1_36), that a published kubectl Lambda layer ships
# (aws-cdk.lambda-layer-kubectl-v36) and that is in EKS standard support (until 2027-08-02).
DEFAULT_VERSION = "1.36"
# The kubectl/helm version of the layer the cluster stack deploys with. kubectl supports
# API servers one minor version older or newer than itself (Kubernetes version skew policy).
KUBECTL_LAYER_VERSION = "1.36"
# `fedkeeper preflight` refuses a version with less standard support left than this: a
# deployment should not need a control-plane upgrade (or start paying for extended support)
# within its first months.
MIN_STANDARD_SUPPORT_LEFT_DAYS = 183


def support(version: str, day: date) -> Support:
    """Where ``version`` stands on ``day`` in EKS's calendar."""
    release = RELEASES.get(version)
    return release.support_on(day) if release else Support.UNKNOWN


def standard_support_end(version: str) -> date | None:
    """The day ``version`` leaves EKS standard support, by fedkeeper's calendar."""
    release = RELEASES.get(version)
    return release.end_of_standard_support if release else None


def _minor(version: str) -> int:
    return int(version.split(".")[1])


def version_warnings(version: str, day: date, field: str = "eks.kubernetes_version") -> list[str]:
    """Why ``version`` would cost more or break on ``day``, in ``field: problem; fix`` lines."""
    warnings: list[str] = []
    status = support(version, day)
    newest = next(r for r in CALENDAR if r.support_on(day) is Support.STANDARD)
    release = RELEASES.get(version)
    if status is Support.EXTENDED and release is not None:
        warnings.append(
            f"{field}: {version} left EKS standard support on "
            f"{release.end_of_standard_support.isoformat()}; the cluster is billed extended "
            f"support until {release.end_of_extended_support.isoformat()}. Use "
            f'"{newest.version}" ({CALENDAR_SOURCE})'
        )
    elif status is Support.ENDED and release is not None:
        warnings.append(
            f"{field}: {version} left EKS extended support on "
            f"{release.end_of_extended_support.isoformat()}; EKS creates no cluster on it and "
            f'upgrades existing control planes. Use "{newest.version}" ({CALENDAR_SOURCE})'
        )
    elif status is Support.NOT_YET and release is not None:
        warnings.append(
            f"{field}: {version} is released on EKS on {release.eks_release.isoformat()}; "
            f'until then use "{newest.version}"'
        )
    elif status is Support.UNKNOWN:
        warnings.append(
            f"{field}: {version} is not in fedkeeper's EKS release calendar; check that EKS "
            f"offers it ({CALENDAR_SOURCE}) and that the kubectl layer "
            f"({KUBECTL_LAYER_VERSION}) is within one minor version of it"
        )
    if abs(_minor(version) - _minor(KUBECTL_LAYER_VERSION)) > 1:
        warnings.append(
            f"{field}: {version} is more than one minor version from the stack's kubectl "
            f"{KUBECTL_LAYER_VERSION}; the Helm and manifest deployments are unsupported there"
        )
    return warnings
