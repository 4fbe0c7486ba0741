"""Each Lambda handler with realistic events, over the real engine and a stub world.

The runtime is injected (``use_runtime``): stub runners stand in for the invariants and a
recording adapter for AWS, so these tests need no emulator. What the functions write (JSON
logs and EMF metrics) is captured as CloudWatch Logs would receive it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fedkeeper.config import FederationConfig
from fedkeeper.errors import PermanentError, RetryableError, UnreachableError
from fedkeeper.invariants import Plan
from fedkeeper.lambda_runtime import Runtime, Settings, use_runtime
from fedkeeper.model import Invariant
from lambdas import on_cluster_event, on_route_change, on_tunnel_state, repair
from tests.lambda_support import (
    BAD_MANUAL,
    FunctionOutput,
    StubWorld,
    context,
    drifted_routes,
    failing,
    function_output,
    load_event,
    tunnels,
)


@pytest.fixture(autouse=True)
def out() -> Iterator[FunctionOutput]:
    with function_output() as captured:
        _output[:] = [captured]
        yield captured


_output: list[FunctionOutput] = []


def call(module: Any, event: Any) -> dict[str, Any]:
    """Invoke a handler as Lambda does, its stdout (EMF) captured with its logs.

    (pytest resets sys.stdout between a fixture and the test, hence the redirect here.)
    """
    with contextlib.redirect_stdout(_output[0].buffer):
        result: dict[str, Any] = module.handler(event, context(module.__name__.split(".")[-1]))
    return result


def world(config: FederationConfig, **runners: Any) -> StubWorld:
    table = {Invariant(k): v for k, v in runners.items()}
    for inv in Invariant:
        table.setdefault(inv, lambda r: Plan())
    return StubWorld(config, table)


def invoke(w: StubWorld, module: Any, event: Any) -> dict[str, Any]:
    with use_runtime(w.runtime()):
        return call(module, event)


# --- on_route_change -------------------------------------------------------------------------


def test_a_disabled_propagation_is_repaired_and_counted(
    example_config: FederationConfig, out: FunctionOutput
) -> None:
    # Given a private route table that lost propagation
    w = world(example_config, routes=drifted_routes("rtb-1"))
    # When CloudTrail reports DisableVgwRoutePropagation
    report = invoke(
        w, on_route_change, load_event("cloudtrail_ec2_DisableVgwRoutePropagation.json")
    )
    # Then only routes is reconciled, and the repair is applied, reported and counted
    assert w.ran == ["routes"]
    assert w.written == ["rtb-1"]
    assert report["mode"] == "apply"
    assert report["trigger"] == "CloudTrail DisableVgwRoutePropagation"
    assert [c["result"] for c in report["changes"]] == ["applied"]
    assert report["converged"] is True
    m = out.metrics()
    assert (m["DriftFound"], m["DriftRepaired"], m["DriftRepaired.routes"]) == (1, 1, 1)
    assert (m["Failures"], m["Deferred"], m["Findings"]) == (0, 0, 0)
    assert "TunnelsUp" not in m


def test_a_cidr_association_also_reconciles_the_pools(example_config: FederationConfig) -> None:
    w = world(example_config)
    report = invoke(w, on_route_change, load_event("cloudtrail_ec2_AssociateVpcCidrBlock.json"))
    assert w.ran == ["routes", "ippools", "checks"]
    assert report["scope"] == ["routes", "ippools", "checks"]


def test_a_failed_api_call_is_a_no_op_that_says_why(
    example_config: FederationConfig, out: FunctionOutput
) -> None:
    w = world(example_config, routes=drifted_routes("rtb-1"))
    report = invoke(
        w, on_route_change, load_event("cloudtrail_ec2_DisableVgwRoutePropagation_denied.json")
    )
    assert w.ran == []
    assert w.written == []
    assert report["mode"] == "plan"
    assert report["scope"] == []
    assert report["changes"] == []
    assert "Client.UnauthorizedOperation" in report["trigger"]
    assert report["trigger"].startswith("ignored: ")
    assert out.metrics()["EventsIgnored"] == 1


@pytest.mark.parametrize("event", [{}, {"hello": "world"}, [], "ping", None])
def test_garbage_is_a_no_op_not_an_exception(example_config: FederationConfig, event: Any) -> None:
    w = world(example_config)
    report = invoke(w, on_route_change, event)
    assert report["changes"] == []
    assert w.ran == []


def test_the_kill_switch_turns_repairs_into_a_plan(
    example_config: FederationConfig, out: FunctionOutput
) -> None:
    w = world(example_config, routes=drifted_routes("rtb-1"))
    w.settings = Settings.from_env({"FEDKEEPER_MODE": "plan"})
    report = invoke(
        w, on_route_change, load_event("cloudtrail_ec2_DisableVgwRoutePropagation.json")
    )
    assert report["mode"] == "plan"
    assert [c["result"] for c in report["changes"]] == ["planned"]
    assert w.written == []
    m = out.metrics()
    assert (m["DriftFound"], m["DriftRepaired"]) == (1, 0)


# --- failures: retryable ones are raised, permanent ones reported ----------------------------


def test_a_retryable_failure_is_raised_after_logging_and_metrics(
    example_config: FederationConfig, out: FunctionOutput
) -> None:
    w = world(example_config, routes=failing(RetryableError("Throttling: rate exceeded")))
    with pytest.raises(RetryableError, match="routes: Throttling: rate exceeded"):
        invoke(w, on_route_change, load_event("cloudtrail_ec2_DisableVgwRoutePropagation.json"))
    assert out.metrics()["Failures"] == 1
    (record,) = [r for r in out.records() if r.get("message") == "fedkeeper run finished"]
    assert record["level"] == "WARNING"
    assert record["report"]["errors"][0]["retryable"] is True
    assert w.reports[0].errors[0].retryable


def test_a_raised_error_carries_no_token(example_config: FederationConfig) -> None:
    w = world(example_config, snat=failing(RetryableError("503 for Bearer eyJhbGciOi.x.y")))
    with pytest.raises(RetryableError) as exc:
        invoke(w, on_cluster_event, load_event("cloudtrail_eks_UpdateAddon.json"))
    assert "eyJhbGciOi" not in str(exc.value)


def test_a_permanent_failure_is_reported_not_raised(
    example_config: FederationConfig, out: FunctionOutput
) -> None:
    w = world(example_config, routes=failing(PermanentError("AccessDenied: ec2:Describe*")))
    report = invoke(
        w, on_route_change, load_event("cloudtrail_ec2_DisableVgwRoutePropagation.json")
    )
    assert report["errors"] == [
        {"invariant": "routes", "error": "AccessDenied: ec2:Describe*", "retryable": False}
    ]
    assert out.metrics()["Failures"] == 1


class BrokenConnections(Runtime):
    def __init__(self, base: Runtime, exc: Exception) -> None:
        super().__init__(base.settings, base.config, runners=base.runners)
        self.exc = exc

    def connections(self) -> Any:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "raised"),
    [(UnreachableError("sts unreachable", target="aws"), True), (PermanentError("bad"), False)],
)
def test_an_error_escaping_the_engine_follows_the_same_rule(
    example_config: FederationConfig, exc: Exception, raised: bool
) -> None:
    rt = BrokenConnections(world(example_config).runtime(), exc)
    event = load_event("cloudtrail_ec2_DisableVgwRoutePropagation.json")
    with use_runtime(rt):
        if raised:
            with pytest.raises(RetryableError):
                call(on_route_change, event)
        else:
            report = call(on_route_change, event)
            assert report["errors"] == [{"invariant": "run", "error": "bad", "retryable": False}]


def test_an_unreadable_config_is_a_permanent_error_report(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, out: FunctionOutput
) -> None:
    monkeypatch.setenv("FEDKEEPER_CONFIG_PATH", str(tmp_path / "federation.yaml"))
    with use_runtime(None):
        report = call(on_route_change, load_event("cloudtrail_ec2_DisableVgwRoutePropagation.json"))
    assert report["errors"][0]["invariant"] == "config"
    assert "no such file" in report["errors"][0]["error"]
    assert out.metrics()["Failures"] == 1


# --- on_tunnel_state -------------------------------------------------------------------------


def test_an_alarm_with_no_tunnel_up_defers_the_onprem_work(
    example_config: FederationConfig, out: FunctionOutput
) -> None:
    w = world(example_config, vpn=tunnels(up=0))
    report = invoke(w, on_tunnel_state, load_event("cloudwatch_tunnel_alarm_ALARM.json"))
    assert w.ran == ["vpn"]
    assert report["tunnels_up"] == 0
    assert report["deferred"] == [
        {"target": "onprem", "reason": "no VPN tunnel up; runs when a tunnel alarm returns to OK"}
    ]
    assert report["converged"] is False
    m = out.metrics()
    assert (m["TunnelsUp"], m["Deferred"], m["Findings"]) == (0, 1, 1)


def test_an_alarm_with_one_tunnel_still_up_defers_nothing(
    example_config: FederationConfig,
) -> None:
    w = world(example_config, vpn=tunnels(up=1))
    report = invoke(w, on_tunnel_state, load_event("cloudwatch_tunnel_alarm_ALARM.json"))
    assert report["deferred"] == []
    assert report["tunnels_up"] == 1


def test_a_tunnel_ok_reconciles_everything(example_config: FederationConfig) -> None:
    w = world(example_config, vpn=tunnels(up=2))
    report = invoke(w, on_tunnel_state, load_event("cloudwatch_tunnel_alarm_OK.json"))
    assert w.ran == ["vpn", "routes", "snat", "ippools", "rcc", "checks"]
    assert report["trigger"] == "tunnel alarm fed-demo-tunnel-1-state is OK"


def test_a_health_vpn_event_looks_at_the_vpn(example_config: FederationConfig) -> None:
    w = world(example_config, vpn=tunnels(up=2))
    report = invoke(w, on_tunnel_state, load_event("health_vpn_redundancy_loss.json"))
    assert w.ran == ["vpn"]
    assert report["trigger"] == "AWS Health VPN event AWS_VPN_REDUNDANCY_LOSS"


# --- on_cluster_event ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["cloudtrail_eks_UpdateAddon.json", "eks_addon_update_succeeded.json"]
)
def test_an_addon_change_reconciles_snat_and_rcc(
    example_config: FederationConfig, name: str
) -> None:
    w = world(example_config)
    report = invoke(w, on_cluster_event, load_event(name))
    assert w.ran == ["snat", "rcc"]
    assert report["scope"] == ["snat", "rcc"]


def test_events_are_never_logged(example_config: FederationConfig, out: FunctionOutput) -> None:
    # The UpdateAddon call carries a clientRequestToken and configuration values
    event = load_event("cloudtrail_eks_UpdateAddon.json")
    invoke(world(example_config), on_cluster_event, event)
    params = event["detail"]["requestParameters"]
    assert params["clientRequestToken"] not in out.text
    assert "WARM_ENI_TARGET" not in out.text
    assert event["detail"]["userIdentity"]["accessKeyId"] not in out.text


def test_the_correlation_id_is_the_event_id(
    example_config: FederationConfig, out: FunctionOutput
) -> None:
    event = load_event("eks_addon_update_succeeded.json")
    invoke(world(example_config), on_cluster_event, event)
    (record,) = out.records()
    assert record["correlation_id"] == event["id"]
    assert record["function_name"] == "fedkeeper-on-cluster-event"
    assert record["handler"] == "on_cluster_event"


# --- repair: schedule and manual -------------------------------------------------------------


def test_the_schedule_reconciles_everything(example_config: FederationConfig) -> None:
    w = world(example_config, routes=drifted_routes("rtb-1"))
    report = invoke(w, repair, load_event("scheduled_event.json"))
    assert w.ran == ["vpn", "routes", "snat", "ippools", "rcc", "checks"]
    assert report["trigger"] == "scheduled reconcile"
    assert w.written == ["rtb-1"]


def test_manual_status_is_read_only(example_config: FederationConfig) -> None:
    w = world(example_config, routes=drifted_routes("rtb-1"))
    report = invoke(w, repair, load_event("manual/status.json"))
    assert report["mode"] == "plan"
    assert report["trigger"] == "manual status"
    assert len(w.ran) == 6
    assert w.written == []


def test_manual_plan_writes_nothing(example_config: FederationConfig) -> None:
    w = world(example_config, routes=drifted_routes("rtb-1"))
    report = invoke(w, repair, load_event("manual/plan.json"))
    assert [c["result"] for c in report["changes"]] == ["planned"]
    assert w.written == []


def test_manual_apply_repairs_the_scope_asked_for(example_config: FederationConfig) -> None:
    w = world(example_config, routes=drifted_routes("rtb-1"))
    report = invoke(w, repair, load_event("manual/apply_routes_ippools.json"))
    assert w.ran == ["routes", "ippools"]
    assert w.written == ["rtb-1"]
    assert report["trigger"] == "manual apply"


def test_manual_apply_obeys_the_kill_switch(example_config: FederationConfig) -> None:
    w = world(example_config, routes=drifted_routes("rtb-1"))
    w.settings = Settings.from_env({"FEDKEEPER_MODE": "plan"})
    report = invoke(w, repair, {"action": "apply"})
    assert report["mode"] == "plan"
    assert w.written == []


@pytest.mark.parametrize(("name", "field"), BAD_MANUAL.items())
def test_a_bad_manual_payload_is_refused_and_changes_nothing(
    example_config: FederationConfig, out: FunctionOutput, name: str, field: str
) -> None:
    w = world(example_config, routes=drifted_routes("rtb-1"))
    response = invoke(w, repair, load_event(name))
    assert response["error"] == "invalid request"
    assert response["problems"][0].startswith(f"{field}: ")
    assert "action" in response["usage"]
    assert w.ran == []
    assert w.written == []
    assert w.reports == []
    assert out.metrics()["InvalidRequests"] == 1


def test_metrics_use_the_configured_namespace_and_only_the_service_dimension(
    example_config: FederationConfig, out: FunctionOutput
) -> None:
    invoke(world(example_config), repair, load_event("scheduled_event.json"))
    blobs = [b for b in out.emf_blobs() if "DriftFound" in b]
    (directive,) = blobs[-1]["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Fedkeeper"
    assert directive["Dimensions"] == [["service"]]
    assert blobs[-1]["service"] == "fedkeeper"
    assert blobs[-1]["handler"] == "repair"  # metadata, not a dimension
