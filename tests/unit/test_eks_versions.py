"""The EKS release calendar: the default version and the warnings `validate` prints."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from fedkeeper.cli import main
from fedkeeper.eks_versions import (
    CALENDAR,
    DEFAULT_VERSION,
    KUBECTL_LAYER_VERSION,
    Support,
    support,
    version_warnings,
)
from tests.conftest import EXAMPLE

TODAY = date(2026, 12, 1)


def test_the_calendar_is_newest_first_with_14_months_of_standard_support() -> None:
    versions = [r.version for r in CALENDAR]
    assert versions == sorted(versions, key=lambda v: int(v.split(".")[1]), reverse=True)
    for release in CALENDAR:
        months = (release.end_of_standard_support.year - release.eks_release.year) * 12 + (
            release.end_of_standard_support.month - release.eks_release.month
        )
        assert months == 14, release.version
        assert release.end_of_extended_support.year == release.end_of_standard_support.year + 1


def test_the_default_is_in_standard_support_and_matches_the_kubectl_layer() -> None:
    assert support(DEFAULT_VERSION, TODAY) is Support.STANDARD
    assert DEFAULT_VERSION == KUBECTL_LAYER_VERSION
    assert version_warnings(DEFAULT_VERSION, TODAY) == []


def test_the_default_is_the_newest_calendar_version_in_standard_support() -> None:
    newest = next(r.version for r in CALENDAR if r.support_on(TODAY) is Support.STANDARD)
    assert newest == DEFAULT_VERSION


def test_standard_support_ends_at_the_start_of_its_day() -> None:
    assert support("1.34", date(2026, 12, 1)) is Support.STANDARD
    assert support("1.34", date(2026, 12, 2)) is Support.EXTENDED


def test_a_version_past_standard_support_warns_with_dates_and_the_newest() -> None:
    (billing, *_) = version_warnings("1.33", TODAY)

    assert billing.startswith("eks.kubernetes_version: 1.33 left EKS standard support on ")
    assert "2026-07-29" in billing and "2027-07-29" in billing
    assert 'Use "1.36"' in billing


def test_a_version_past_extended_support_warns_that_eks_creates_no_cluster() -> None:
    (warning, *_) = version_warnings("1.31", TODAY)

    assert "left EKS extended support on 2026-11-26" in warning


def test_a_version_unknown_to_the_calendar_warns_to_check_eks() -> None:
    (warning,) = version_warnings("1.37", TODAY)

    assert "not in fedkeeper's EKS release calendar" in warning


def test_a_version_beyond_kubectls_skew_warns() -> None:
    warnings = version_warnings("1.33", TODAY)

    assert any("more than one minor version from the stack's kubectl 1.36" in w for w in warnings)


def test_validate_prints_the_support_warning_and_still_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "federation.yaml"
    # 1.29 left extended support on 2026-03-23: the warning holds whenever this runs.
    config.write_text(EXAMPLE.read_text().replace('"1.36"', '"1.29"'))

    assert main(["validate", str(config)]) == 0
    assert "warning: eks.kubernetes_version: 1.29 left EKS extended support" in (
        capsys.readouterr().out
    )
