"""Events end to end: a fault in the sandbox, the AWS delivery in through the deployed rules
and the real handler module, the world repaired, and a second delivery that writes nothing.

``Sandbox.deliver`` routes with the deployed patterns (moto's matcher) and invokes
``lambdas.<handler>.handler`` with the sandbox's connections injected; ``Sandbox.invoke``
calls one handler directly, as a manual invocation of the repair function would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fedkeeper.cli import main
from fedkeeper.model import Result
from fedkeeper.sandbox import Sandbox
from fedkeeper.sandbox.demo import onto_network
from fedkeeper.sandbox.scenarios import SCENARIOS
from tests.conftest import EXAMPLE
from tests.lambda_support import BAD_MANUAL, EVENTS, load_event

pytestmark = pytest.mark.slow


def on_sandbox(sb: Sandbox, name: str) -> dict[str, Any]:
    """A recorded event re-aimed at the sandbox's network (the file names another account's
    ids, which the deployed, narrowed route-change rule would not match)."""
    return onto_network(load_event(name), sb.network())[0]


def test_the_route_change_rule_is_narrowed_to_the_federations_network(sandbox: Sandbox) -> None:
    # Given the recorded event as CloudTrail wrote it in another account
    recorded = load_event("cloudtrail_ec2_DisableVgwRoutePropagation.json")

    # Then the sandbox's deployed rules (narrowed to its VGW and route tables) ignore it
    assert sandbox.route(recorded) == []
    # And the same call on the federation's own VGW reaches on_route_change
    own = on_sandbox(sandbox, "cloudtrail_ec2_DisableVgwRoutePropagation.json")
    assert sandbox.route(own) == ["on_route_change"]


def disable_propagation(sb: Sandbox) -> str:
    b = sb.baseline
    assert b is not None
    table = b.private_route_table_ids[0]
    sb.aws_session().client("ec2").disable_vgw_route_propagation(
        RouteTableId=table, GatewayId=b.vgw_id
    )
    return table


def set_tunnels(sb: Sandbox, *, up: bool) -> None:
    b = sb.baseline
    assert b is not None
    for ip in b.tunnel_outside_ips:
        sb.aws.set_tunnel(b.vpn_connection_id, ip, up=up, message="" if up else "IPSEC IS DOWN")
    sb.onprem_server.set_unreachable(not up)


def calico(sb: Sandbox) -> str:
    api = sb.config.federation.calico_api
    return f"{api.group}/{api.version}"


# --- routes ----------------------------------------------------------------------------------


def test_a_disabled_propagation_is_repaired_from_its_cloudtrail_event(sandbox: Sandbox) -> None:
    # Given someone turned off VGW propagation on a private route table
    table = disable_propagation(sandbox)
    assert sandbox.baseline is not None
    assert sandbox.baseline.vgw_id not in sandbox.aws.propagations(table)
    sandbox.clear_logs()
    event = on_sandbox(sandbox, "cloudtrail_ec2_DisableVgwRoutePropagation.json")

    # When CloudTrail's event arrives through the deployed rule
    delivery = sandbox.dispatch(event)

    # Then on_route_change ran once, re-enabled propagation, and said why
    assert delivery.handlers == ["on_route_change"]
    assert delivery.attempts == {"on_route_change": 1}
    report = delivery.report
    assert [(c.change.target, c.result) for c in report.changes] == [
        (f"aws/RouteTable/{table}", Result.APPLIED)
    ]
    assert sandbox.baseline.vgw_id in sandbox.aws.propagations(table)
    assert sandbox.emulator_writes().detail == ["aws ec2:EnableVgwRoutePropagation"]
    assert delivery.responses["on_route_change"] == report.to_dict()

    # And the same event again changes nothing
    sandbox.clear_logs()
    again = sandbox.deliver(event)
    assert again.changes == []
    assert again.converged
    assert sandbox.emulator_writes().total == 0


def test_the_function_logs_the_report_and_its_metrics(sandbox: Sandbox) -> None:
    disable_propagation(sandbox)
    delivery = sandbox.dispatch(
        on_sandbox(sandbox, "cloudtrail_ec2_DisableVgwRoutePropagation.json")
    )
    records = [json.loads(line) for line in delivery.logs]
    (log,) = [r for r in records if r.get("message") == "fedkeeper run finished"]
    assert log["report"] == delivery.report.to_dict()
    (emf,) = [r for r in records if "DriftRepaired" in r]
    assert emf["DriftRepaired"] == [1.0]
    assert emf["DriftRepaired.routes"] == [1.0]


# --- the tunnels -----------------------------------------------------------------------------


def test_a_tunnel_alarm_defers_onprem_work_until_ok_repairs_it(sandbox: Sandbox) -> None:
    # Given both tunnels are down and the on-prem API server is out of reach
    set_tunnels(sandbox, up=False)
    sandbox.clear_logs()

    # When the TunnelState alarm goes to ALARM
    down = sandbox.deliver(load_event("cloudwatch_tunnel_alarm_ALARM.json"))

    # Then the VPN is looked at, the on-prem work is deferred with a finding, nothing written
    assert down.scope.names() == ["vpn"]
    assert down.tunnels_up == 0
    assert [d.target for d in down.deferred] == ["onprem"]
    assert any(f.check == "vpn.tunnels" and f.severity == "error" for f in down.findings)
    assert not down.converged
    assert sandbox.emulator_writes().total == 0

    # And while cut off, on-prem drifts: its RCC is deleted
    name = sandbox.config.sole_eks().name
    sandbox.onprem_server.delete_object(calico(sandbox), "RemoteClusterConfiguration", name)

    # When the tunnels come back and the alarm returns to OK
    set_tunnels(sandbox, up=True)
    sandbox.clear_logs()
    up = sandbox.deliver(load_event("cloudwatch_tunnel_alarm_OK.json"))

    # Then everything is reconciled and the on-prem RCC is back
    assert up.scope.names() == ["vpn", "routes", "snat", "ippools", "rcc", "checks"]
    assert up.tunnels_up == 2
    assert up.deferred == []
    assert f"onprem/RemoteClusterConfiguration/{name}" in [c.change.target for c in up.changes]
    assert all(c.result is Result.APPLIED for c in up.changes)
    assert sandbox.onprem_server.get_object(calico(sandbox), "RemoteClusterConfiguration", name)

    # And a second OK writes nothing
    sandbox.clear_logs()
    assert sandbox.deliver(load_event("cloudwatch_tunnel_alarm_OK.json")).changes == []
    assert sandbox.emulator_writes().total == 0


def test_the_schedule_while_cut_off_still_repairs_eks_and_defers_onprem(
    sandbox: Sandbox,
) -> None:
    disable_propagation(sandbox)
    set_tunnels(sandbox, up=False)
    report = sandbox.deliver(load_event("scheduled_event.json"))
    assert "onprem" in [d.target for d in report.deferred]
    assert [c.result for c in report.changes if c.change.backend == "aws"] == [Result.APPLIED]
    assert not any(c.change.backend == "onprem" for c in report.changes)


def test_a_health_vpn_event_reads_the_vpn_and_writes_nothing(sandbox: Sandbox) -> None:
    report = sandbox.deliver(load_event("health_vpn_redundancy_loss.json"))
    assert report.scope.names() == ["vpn"]
    assert report.tunnels_up == 2
    assert report.trigger == "AWS Health VPN event AWS_VPN_REDUNDANCY_LOSS"
    assert sandbox.emulator_writes().total == 0


# --- each event file repairs the fault it signals ---------------------------------------------


@pytest.mark.parametrize(
    ("event_file", "scenario", "handler"),
    [
        ("cloudtrail_ec2_AssociateVpcCidrBlock.json", "vpc-secondary-cidr", "on_route_change"),
        ("cloudtrail_eks_UpdateAddon.json", "snat-reset-by-addon-update", "on_cluster_event"),
        ("eks_addon_update_succeeded.json", "snat-reset-by-addon-update", "on_cluster_event"),
        ("scheduled_event.json", "rcc-deleted-onprem", "repair"),
        ("scheduled_event.json", "snat-reset-self-managed", "repair"),
    ],
)
def test_an_event_repairs_its_fault_and_a_rerun_writes_nothing(
    sandbox: Sandbox, event_file: str, scenario: str, handler: str
) -> None:
    fault = SCENARIOS[scenario]
    fault.inject(sandbox)
    assert not fault.verify(sandbox)
    event = on_sandbox(sandbox, event_file)

    delivery = sandbox.dispatch(event)

    assert delivery.handlers == [handler]
    assert delivery.report.changes
    assert all(c.result is Result.APPLIED for c in delivery.report.changes)
    sandbox.advance_time(sandbox.aws.addon_seconds_left())  # an add-on update rolls out
    assert fault.verify(sandbox)
    sandbox.clear_logs()
    assert sandbox.deliver(event).changes == []
    assert sandbox.emulator_writes().total == 0


def test_an_event_no_rule_matches_invokes_nothing(sandbox: Sandbox) -> None:
    delivery = sandbox.dispatch(load_event("ec2_instance_state_change.json"))
    assert delivery.handlers == []
    assert delivery.logs == []
    assert delivery.report.trigger == "no rule matched"
    assert sandbox.emulator_writes().total == 0


def test_a_failed_call_reaches_the_handler_and_is_a_no_op(sandbox: Sandbox) -> None:
    disable_propagation(sandbox)
    sandbox.clear_logs()
    report = sandbox.deliver(
        on_sandbox(sandbox, "cloudtrail_ec2_DisableVgwRoutePropagation_denied.json")
    )
    assert report.trigger is not None
    assert report.trigger.startswith("ignored: ")
    assert sandbox.emulator_writes().total == 0


# --- retries ---------------------------------------------------------------------------------


def test_a_retryable_failure_is_retried_by_lambda_and_then_repairs(sandbox: Sandbox) -> None:
    # Given the EKS API server answers the next read of aws-node with a 503
    SCENARIOS["snat-reset-by-addon-update"].inject(sandbox)
    sandbox.eks_server.fail_next(503, method="GET", path_contains="daemonsets")

    # When the add-on event is delivered
    delivery = sandbox.dispatch(load_event("eks_addon_update_succeeded.json"))

    # Then the first invocation raised, Lambda's async retry ran it again, and it repaired
    assert delivery.attempts == {"on_cluster_event": 2}
    assert delivery.dead_letters == []
    sandbox.advance_time(sandbox.aws.addon_seconds_left())  # the add-on update rolls out
    assert SCENARIOS["snat-reset-by-addon-update"].verify(sandbox)


def test_a_failure_that_outlasts_the_retries_is_dead_lettered(sandbox: Sandbox) -> None:
    sandbox.eks_server.fail_next(503, times=10, method="GET", path_contains="daemonsets")
    delivery = sandbox.dispatch(load_event("eks_addon_update_succeeded.json"))
    assert delivery.attempts == {"on_cluster_event": 3}
    assert delivery.dead_letters == ["on_cluster_event"]
    assert delivery.responses["on_cluster_event"]["errorType"] == "RetryableError"
    assert delivery.report.errors[0].retryable


# --- the repair function invoked by hand -----------------------------------------------------


def test_manual_status_reports_drift_and_writes_nothing(sandbox: Sandbox) -> None:
    table = disable_propagation(sandbox)
    sandbox.clear_logs()
    response = sandbox.invoke("repair", load_event("manual/status.json"))
    assert response["mode"] == "plan"
    assert [c["target"] for c in response["changes"]] == [f"aws/RouteTable/{table}"]
    assert sandbox.emulator_writes().total == 0


def test_manual_apply_repairs_the_scope_asked_for(sandbox: Sandbox) -> None:
    disable_propagation(sandbox)
    response = sandbox.invoke("repair", load_event("manual/apply_routes_ippools.json"))
    assert response["scope"] == ["routes", "ippools"]
    assert [c["result"] for c in response["changes"]] == ["applied"]


def test_manual_apply_obeys_the_kill_switch(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    disable_propagation(sandbox)
    monkeypatch.setenv("FEDKEEPER_MODE", "plan")
    sandbox.clear_logs()
    response = sandbox.invoke("repair", {"action": "apply"})
    assert response["mode"] == "plan"
    assert sandbox.emulator_writes().total == 0


@pytest.mark.parametrize(("name", "field"), BAD_MANUAL.items())
def test_a_bad_manual_payload_names_the_field_and_writes_nothing(
    sandbox: Sandbox, name: str, field: str
) -> None:
    disable_propagation(sandbox)  # there is drift to repair: a bad request must not touch it
    sandbox.clear_logs()
    response = sandbox.invoke("repair", load_event(name))
    assert response["error"] == "invalid request"
    assert response["problems"][0].startswith(f"{field}: ")
    assert sandbox.emulator_writes().total == 0
    assert sandbox.aws.calls == []  # not even a read


# --- `fedkeeper demo --event` ----------------------------------------------------------------


def test_demo_event_applies_the_fault_and_prints_the_handlers_report(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = EVENTS / "cloudtrail_ec2_DisableVgwRoutePropagation.json"
    code = main(
        [
            "demo",
            "-c",
            str(EXAMPLE),
            "--event",
            str(path),
            "--scenario",
            "route-propagation-disabled",
            "--json",
        ]
    )
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["trigger"] == "CloudTrail DisableVgwRoutePropagation"
    assert [c["result"] for c in report["changes"]] == ["applied"]


def test_demo_event_for_people_names_the_rule_the_metrics_and_the_repair(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = EVENTS / "cloudwatch_tunnel_alarm_ALARM.json"
    code = main(
        ["demo", "-c", str(EXAMPLE), "--event", str(path), "--scenario", "tunnels-down-then-up"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "rule tunnel-state → lambdas/on_tunnel_state.py" in out
    assert "deferred onprem" in out
    assert "TunnelsUp 0" in out


def test_demo_event_refuses_a_file_that_is_not_an_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "event.json"
    bad.write_text("[1, 2]")
    assert main(["demo", "-c", str(EXAMPLE), "--event", str(bad)]) == 2
    assert "an event is a JSON object" in capsys.readouterr().err
