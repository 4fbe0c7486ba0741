"""Invariant 6 (checks): API-call events reach EventBridge only while a trail logs here."""

from __future__ import annotations

from fedkeeper.invariants.checks import trail_findings
from fedkeeper.model import Severity, Trail

REGION = "eu-west-1"


def trail(
    name: str = "fed-api-calls",
    *,
    home: str = REGION,
    multi: bool = False,
    logging: bool | None = True,
    error: str = "",
) -> Trail:
    return Trail(
        name=name,
        arn=f"arn:aws:cloudtrail:{home}:111122223333:trail/{name}",
        home_region=home,
        multi_region=multi,
        organization=False,
        logging=logging,
        status_error=error,
    )


def test_a_logging_trail_of_the_region_is_enough() -> None:
    assert trail_findings(REGION, [trail()]) == []


def test_a_logging_multi_region_trail_from_another_home_region_covers_this_one() -> None:
    assert trail_findings(REGION, [trail(home="us-east-1", multi=True)]) == []


def test_no_trail_means_events_cannot_arrive_and_repairs_wait_for_the_schedule() -> None:
    (finding,) = trail_findings(REGION, [], "rate(15 minutes)")

    assert finding.severity is Severity.WARNING
    assert finding.check == "checks.cloudtrail"
    assert (
        "no CloudTrail trail covers eu-west-1: API-call events cannot arrive; repairs wait "
        "for the schedule (rate(15 minutes))" in finding.message
    )


def test_a_single_region_trail_of_another_region_does_not_count() -> None:
    (finding,) = trail_findings(REGION, [trail(home="us-east-1")])

    assert "no CloudTrail trail covers eu-west-1" in finding.message


def test_a_covering_trail_that_stopped_logging_is_named() -> None:
    (finding,) = trail_findings(REGION, [trail("org-trail", logging=False)])

    assert finding.severity is Severity.WARNING
    assert "trail(s) org-trail cover eu-west-1 but do not log" in finding.message
    assert "API-call events cannot arrive" in finding.message


def test_an_unreadable_status_is_reported_as_unknown_not_as_missing() -> None:
    (finding,) = trail_findings(
        REGION, [trail("org-trail", logging=None, error="AccessDeniedException")]
    )

    assert finding.severity is Severity.INFO
    assert "org-trail (AccessDeniedException)" in finding.message


def test_one_logging_trail_outweighs_stopped_ones() -> None:
    assert trail_findings(REGION, [trail("a", logging=False), trail("b")]) == []
