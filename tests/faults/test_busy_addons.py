"""Busy systems defer to the next trigger: no retry storm, no dead letters, no alert.

An add-on that is UPDATING (someone's update, or fedkeeper's own) or DEGRADED is not updated:
EKS would answer 409 ResourceInUseException while an update rolls out, and a Lambda retry
cannot outlast one. Each trigger reports one deferral and returns; the first trigger after
the add-on is ACTIVE again repairs it. Events go through the deployed rules and the real
handlers, with Lambda's async retries (``Sandbox.dispatch``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from fedkeeper.config import load_config
from fedkeeper.invariants.snat import EXTERNAL_SNAT
from fedkeeper.model import Result
from fedkeeper.sandbox import Sandbox, event_factory
from fedkeeper.sandbox.world import Delivery
from tests.conftest import EXAMPLE

pytestmark = pytest.mark.xdist_group("busy-addons")

ADDON = "aws/Addon/fed-eks/vpc-cni"
MINUTE = 60.0


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox.start(load_config(EXAMPLE)) as sandbox:
        yield sandbox


def _scheduled(sb: Sandbox) -> Delivery:
    return sb.dispatch(event_factory.scheduled(sb.config.aws.region))


def _someone_updates(sb: Sandbox, values: dict[str, object], seconds: float) -> None:
    """Another team's UpdateAddon that EKS rolls out for ``seconds``."""
    usual, sb.aws.addon_update_s = sb.aws.addon_update_s, seconds
    try:
        sb.aws_session().client("eks").update_addon(
            clusterName=sb.config.sole_eks().cluster_name,
            addonName="vpc-cni",
            configurationValues=json.dumps(values),
            resolveConflicts="OVERWRITE",
        )
    finally:
        sb.aws.addon_update_s = usual


def _alerts(sb: Sandbox) -> list[str]:
    return [s for s, _ in sb.notifications() if "persistent trouble" in s]


def _one_quiet_deferral(delivery: Delivery) -> None:
    assert delivery.dead_letters == [] and delivery.attempts == {"repair": 1}
    assert [d.target for d in delivery.report.deferred] == [ADDON], delivery.report.to_dict()
    assert not any(d.retry for d in delivery.report.deferred)
    assert delivery.report.changes == []


def test_an_addon_busy_for_twenty_minutes_defers_once_per_trigger_then_is_repaired(
    sb: Sandbox,
) -> None:
    # Given someone's add-on update that drops external SNAT and rolls out for 20 minutes
    _someone_updates(sb, {"env": {}}, 20 * MINUTE)
    # When the schedule fires every 5 minutes meanwhile
    during = []
    for _ in range(4):
        during.append(_scheduled(sb))
        sb.advance_time(5 * MINUTE)
    # Then each trigger defers once, quietly: one invocation, no retry, no dead letter
    for delivery in during:
        _one_quiet_deferral(delivery)
    # And the first trigger after it is ACTIVE repairs it (its own rollout is deferred)
    after = _scheduled(sb)
    assert after.dead_letters == [] and after.attempts == {"repair": 1}
    assert [(c.change.target, c.result) for c in after.report.changes] == [(ADDON, Result.APPLIED)]
    [own] = after.report.deferred
    assert own.target == ADDON and "fedkeeper's update" in own.reason and not own.retry
    assert _alerts(sb) == []  # never an alert for fedkeeper's own update
    sb.advance_time(sb.aws.addon_seconds_left())
    assert _scheduled(sb).report.converged


def test_a_degraded_addon_is_not_updated_and_defers_each_trigger_without_an_alert(
    sb: Sandbox,
) -> None:
    cluster = sb.config.sole_eks().cluster_name
    sb.aws.reset_addon_configuration(cluster, "vpc-cni", "{}")  # external SNAT lost
    issue = {"code": "InsufficientNumberOfReplicas", "message": "2 of 3 aws-node pods ready"}
    sb.aws.set_addon_status(cluster, "vpc-cni", "DEGRADED", [issue])
    for _ in range(4):  # an hour of the schedule
        delivery = _scheduled(sb)
        _one_quiet_deferral(delivery)
        [finding] = [f for f in delivery.report.findings if f.check == "snat.addon"]
        assert "DEGRADED: InsufficientNumberOfReplicas: 2 of 3 aws-node pods ready" in (
            finding.message
        )
        sb.advance_time(15 * MINUTE)
    assert _alerts(sb) == []
    values = json.loads(sb.aws.addon(cluster, "vpc-cni")["configurationValues"] or "{}")  # type: ignore[index]
    assert EXTERNAL_SNAT not in values.get("env", {})  # not touched while degraded


def test_resource_in_use_on_update_defers_the_change_instead_of_failing_it(
    sb: Sandbox,
) -> None:
    # The add-on became busy between DescribeAddon and UpdateAddon.
    sb.aws.reset_addon_configuration(sb.config.sole_eks().cluster_name, "vpc-cni", "{}")
    sb.aws.fail_next(
        "eks", "UpdateAddon", "ResourceInUseException", status=409, message="Addon is updating"
    )
    delivery = _scheduled(sb)
    assert delivery.dead_letters == [] and delivery.attempts == {"repair": 1}
    [outcome] = delivery.report.changes
    assert (outcome.result, outcome.retryable) == (Result.DEFERRED, False)
    assert [d.target for d in delivery.report.deferred] == [ADDON]
    assert delivery.report.errors == [] and delivery.report.failed_targets == []


def test_a_change_skipped_after_a_permanent_failure_is_not_retried_by_lambda(
    sb: Sandbox,
) -> None:
    # An owned binding bound elsewhere is deleted then re-created; the delete is refused.
    name = sb.config.federation.remote_service_account.name
    rbac = "rbac.authorization.k8s.io"

    def bound_elsewhere(o: dict[str, object]) -> None:
        o["roleRef"] = {"apiGroup": rbac, "kind": "ClusterRole", "name": "view"}

    sb.onprem_server.mutate(f"{rbac}/v1", "ClusterRoleBinding", name, None, bound_elsewhere)
    sb.onprem_server.fail_next(
        403, times=100, method="DELETE", path_contains=f"/clusterrolebindings/{name}"
    )
    delivery = _scheduled(sb)
    results = {c.change.action.value: (c.result, c.retryable) for c in delivery.report.changes}
    assert results == {"delete": (Result.FAILED, False), "create": (Result.SKIPPED, False)}
    assert delivery.attempts == {"repair": 1} and delivery.dead_letters == []
