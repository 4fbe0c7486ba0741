"""What a converged full run reads, counted by the emulators (deterministic, so asserted).

The deployed functions' connections (``build_connections``, the ids the stack sets) read
everything fedkeeper manages every run and one group of the checks' preconditions; the CLI
reads them all every run. The counts are the ones docs/BENCHMARKS.md explains read by read.
"""

from __future__ import annotations

from typing import Any

from bench.reconcile_calls import deployed_connections as deployed
from fedkeeper.model import Report, Scope
from fedkeeper.sandbox import Sandbox
from fedkeeper.service import Connections, reconcile

READS_TARGET = 22
PRECONDITIONS = (  # what each precondition group reads, as the emulators log it
    ("eks", "/apis/projectcalico.org/v3/ippools"),
    ("eks", "/apis/projectcalico.org/v3/kubecontrollersconfigurations/default"),
    ("onprem", "/apis/projectcalico.org/v3/bgppeers"),
    ("onprem", "/apis/projectcalico.org/v3/kubecontrollersconfigurations/default"),
)


def full_run(sb: Sandbox, conns: Connections, **kw: Any) -> tuple[Report, list[str]]:
    """One full reconcile on ``conns``; its Report and every read the emulators saw."""
    sb.clear_logs()
    report = reconcile(conns, Scope.everything(), "apply", **kw)
    reads = [f"aws {svc}:{op}" for svc, op in sb.aws.calls if svc != "sts"]
    for name, server in (("eks", sb.eks_server), ("onprem", sb.onprem_server)):
        reads += [f"{name} {r.method} {r.path}" for r in server.requests if not r.is_write]
    assert not [r for r in sb.eks_server.requests + sb.onprem_server.requests if r.is_write]
    return report, reads


def test_a_converged_deployed_run_reads_at_most_22_times_and_writes_nothing(
    sandbox: Sandbox,
) -> None:
    # Given a deployed function's connections, past their first run
    conns = deployed(sandbox)
    full_run(sandbox, conns)

    # When the federation stays converged for three more scheduled runs
    runs = [full_run(sandbox, conns) for _ in range(3)]

    # Then each reads at most 22 times, each read once, and none writes
    for report, reads in runs:
        assert report.converged and not report.changes
        assert len(reads) <= READS_TARGET, reads
        assert len(reads) == len(set(reads)), reads
        assert report.api.total_writes() == 0


def test_every_precondition_is_read_again_within_three_runs(sandbox: Sandbox) -> None:
    conns = deployed(sandbox)
    full_run(sandbox, conns)

    seen: set[str] = set()
    for _ in range(3):
        _, reads = full_run(sandbox, conns)
        seen |= {r for r in reads if "cloudtrail" in r}
        seen |= {f"{b} GET {p}" for b, p in PRECONDITIONS if f"{b} GET {p}" in reads}

    assert seen == {
        "aws cloudtrail:DescribeTrails",
        "aws cloudtrail:GetTrailStatus",
        *(f"{b} GET {p}" for b, p in PRECONDITIONS),
    }


def test_a_stopped_trail_is_reported_by_a_deployed_function_within_three_runs(
    sandbox: Sandbox,
) -> None:
    # Given a warm function that last saw the trail logging
    conns = deployed(sandbox)
    full_run(sandbox, conns)
    full_run(sandbox, conns)

    # When someone stops the trail
    trail = f"{sandbox.config.name}-api-calls"
    sandbox.aws_session().client("cloudtrail").stop_logging(Name=trail)

    # Then one of the next three runs says so
    checks = [
        [f.check for f in full_run(sandbox, conns)[0].findings if f.check == "checks.cloudtrail"]
        for _ in range(3)
    ]
    assert ["checks.cloudtrail"] in checks


def test_a_manual_status_reads_every_precondition_now(sandbox: Sandbox) -> None:
    conns = deployed(sandbox)
    full_run(sandbox, conns)

    _, reads = full_run(sandbox, conns, fresh_preconditions=True)

    assert {"aws cloudtrail:DescribeTrails", "aws cloudtrail:GetTrailStatus"} <= set(reads)
    assert {f"{b} GET {p}" for b, p in PRECONDITIONS} <= set(reads)


def test_the_cli_reads_every_precondition_every_run(sandbox: Sandbox) -> None:
    conns = sandbox.connections()  # as `fedkeeper plan|apply` builds them

    for _ in range(2):
        _, reads = full_run(sandbox, conns)
        assert {f"{b} GET {p}" for b, p in PRECONDITIONS} <= set(reads)
        assert "aws cloudtrail:GetTrailStatus" in reads


def test_a_failed_precondition_read_is_read_again_on_the_next_run(sandbox: Sandbox) -> None:
    conns = deployed(sandbox)
    full_run(sandbox, conns)
    # The on-prem group is not due this run: on-prem BGP peers fail when it is read again.
    sandbox.onprem_server.fail_next(503, times=3, path_contains="bgppeers")
    full_run(sandbox, conns, fresh_preconditions=True)

    _, reads = full_run(sandbox, conns)

    assert "onprem GET /apis/projectcalico.org/v3/bgppeers" in reads


def test_the_token_secret_comes_from_the_list_of_owned_secrets(sandbox: Sandbox) -> None:
    sa = sandbox.config.federation.remote_service_account

    _, reads = full_run(sandbox, deployed(sandbox))

    by_name = f"/api/v1/namespaces/{sa.namespace}/secrets/{sa.name}"
    assert not [r for r in reads if r.endswith(by_name)]
    assert f"eks GET /api/v1/namespaces/{sa.namespace}/secrets" in reads


def test_a_token_secret_made_by_hand_is_still_read_and_used_as_it_is(sandbox: Sandbox) -> None:
    # Given the remote service account's token Secret loses fedkeeper's labels
    sa = sandbox.config.federation.remote_service_account

    def disown(o: dict[str, Any]) -> None:
        o["metadata"]["labels"] = {}

    sandbox.eks_server.mutate("v1", "Secret", sa.name, sa.namespace, disown)

    # When a run reads the cluster
    report, reads = full_run(sandbox, deployed(sandbox))

    # Then it reads the Secret by name, re-creates nothing and reports it as adoptable
    assert f"eks GET /api/v1/namespaces/{sa.namespace}/secrets/{sa.name}" in reads
    assert not report.changes
    adoptable = [f.message for f in report.findings if f.check == "rcc.adoptable"]
    assert adoptable and f"Secret {sa.namespace}/{sa.name} on fed-eks" in adoptable[0]


def test_the_controllers_deployment_is_read_only_when_the_configuration_is_silent(
    sandbox: Sandbox,
) -> None:
    deployment = "/apis/apps/v1/namespaces/calico-system/deployments/calico-kube-controllers"
    _, reads = full_run(sandbox, sandbox.connections())
    assert f"onprem GET {deployment}" not in reads

    # When on-prem's KubeControllersConfiguration leaves federatedServices out
    api = sandbox.config.federation.calico_api

    def silent(o: dict[str, Any]) -> None:
        o["spec"]["controllers"].pop("federatedServices", None)

    sandbox.onprem_server.mutate(
        f"{api.group}/{api.version}", "KubeControllersConfiguration", "default", None, silent
    )
    report, reads = full_run(sandbox, sandbox.connections())

    # Then the Deployment is read to tell, and the finding says how to turn it on
    assert f"onprem GET {deployment}" in reads
    assert any(f.check == "checks.federated-services" for f in report.findings)
