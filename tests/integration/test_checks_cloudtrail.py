"""The checks invariant reads CloudTrail through boto3 against the emulated account."""

from __future__ import annotations

from fedkeeper.sandbox import Sandbox


def cloudtrail_findings(sb: Sandbox) -> list[str]:
    report = sb.reconcile(["checks"], mode="plan")
    return [f.message for f in report.findings if f.check == "checks.cloudtrail"]


def test_the_stacks_trail_logging_in_the_region_raises_no_finding(sandbox: Sandbox) -> None:
    assert cloudtrail_findings(sandbox) == []


def test_a_stopped_trail_is_reported_with_what_it_costs(sandbox: Sandbox) -> None:
    # Given someone stops the federation's trail
    trail = f"{sandbox.config.name}-api-calls"
    sandbox.aws_session().client("cloudtrail").stop_logging(Name=trail)

    # When the checks run
    (message,) = cloudtrail_findings(sandbox)

    # Then they say events cannot arrive and the schedule is what repairs now
    assert f"trail(s) {trail} cover {sandbox.config.aws.region} but do not log" in message
    assert "API-call events cannot arrive; repairs wait for the schedule" in message


def test_no_trail_at_all_is_reported(sandbox: Sandbox) -> None:
    sandbox.aws_session().client("cloudtrail").delete_trail(Name=f"{sandbox.config.name}-api-calls")

    (message,) = cloudtrail_findings(sandbox)

    assert message.startswith(f"no CloudTrail trail covers {sandbox.config.aws.region}")
