"""The watch function repairs cluster-side drift in seconds, through the real client.

Each test runs the watcher in the background on the sandbox (as the reconciler, under the
RBAC the product deploys) and waits, with a bound, for what it must do.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from fedkeeper.errors import PermanentError
from fedkeeper.invariants.ippools import pool_name
from fedkeeper.invariants.rcc import REMOTE_RULES, TYPHA_RULES
from fedkeeper.rbac import RECONCILER
from fedkeeper.sandbox import Sandbox
from fedkeeper.service import Connections, Targets
from fedkeeper.watch import watch_targets
from tests.watch_support import settled, wait

RBAC = "rbac.authorization.k8s.io/v1"


def _calico(sb: Sandbox) -> str:
    api = sb.config.federation.calico_api
    return f"{api.group}/{api.version}"


def _rcc(sb: Sandbox, side: str) -> Any:
    server = sb.eks_server if side == "eks" else sb.onprem_server
    name = sb.config.sole_site().name if side == "eks" else sb.config.sole_eks().name
    return server.get_object(_calico(sb), "RemoteClusterConfiguration", name)


def _delete_rcc(sb: Sandbox, side: str) -> None:
    server = sb.eks_server if side == "eks" else sb.onprem_server
    name = sb.config.sole_site().name if side == "eks" else sb.config.sole_eks().name
    server.delete_object(_calico(sb), "RemoteClusterConfiguration", name)


def test_a_deleted_rcc_is_recreated_by_the_watch_within_seconds_without_an_echo_run(
    sandbox: Sandbox,
) -> None:
    with sandbox.watching() as w:
        before = settled(w)
        _delete_rcc(sandbox, "onprem")
        took = wait(lambda: _rcc(sandbox, "onprem") is not None)
        wait(lambda: w.summary.skipped_own >= 1)
    assert took < 5
    # One run on the on-prem queue repairs it; rcc spans both clusters, so a run of both
    # follows and finds nothing left to write.
    runs = w.summary.reports[before:]
    assert {tuple(r.scope.names()) for r in runs} == {("rcc",)}
    assert {r.trigger for r in runs} == {"watch"}
    assert sum(r.writes for r in runs) == 1


def test_a_version_the_server_no_longer_holds_410_is_answered_by_a_relist_that_repairs(
    sandbox: Sandbox,
) -> None:
    with sandbox.watching() as w:
        settled(w)
    # Between two invocations: the RCC goes, and the server compacts its history.
    _delete_rcc(sandbox, "eks")
    sandbox.eks_server.compact()
    with sandbox.watching() as w:
        wait(lambda: _rcc(sandbox, "eks") is not None)
        wait(w.ready)
    assert w.summary.relists >= 1
    assert any(r.writes for r in w.summary.reports)


def test_an_onprem_outage_mid_watch_leaves_the_eks_watch_repairing_and_is_retried(
    sandbox: Sandbox,
) -> None:
    with sandbox.watching(backoff=(0.05, 0.2)) as w:
        settled(w)
        sandbox.onprem_server.set_unreachable(True)
        wait(lambda: not w.state.clusters["onprem"].live)
        _delete_rcc(sandbox, "eks")
        wait(lambda: _rcc(sandbox, "eks") is not None)
        assert w.state.clusters["fed-eks"].live
        sandbox.onprem_server.set_unreachable(False)
        wait(lambda: w.state.clusters["onprem"].live, seconds=15)
        _delete_rcc(sandbox, "onprem")
        wait(lambda: _rcc(sandbox, "onprem") is not None, seconds=15)
    assert w.summary.reconnects >= 1


def test_a_burst_of_50_unrelated_changes_costs_at_most_2_runs_and_no_write(
    sandbox: Sandbox,
) -> None:
    api = _calico(sandbox)
    sandbox.onprem_server.seed(
        {
            "apiVersion": api,
            "kind": "IPPool",
            "metadata": {"name": "team-b-workloads"},
            "spec": {"cidr": "172.30.0.0/16", "natOutgoing": True},
        }
    )
    with sandbox.watching() as w:
        before = settled(w)
        for i in range(50):
            sandbox.onprem_server.mutate(
                api,
                "IPPool",
                "team-b-workloads",
                None,
                lambda p, i=i: p["metadata"].setdefault("labels", {}).update(edit=str(i)),
            )
        wait(lambda: w.summary.events >= 50)
        wait(lambda: len(w.summary.reports) > before)
        time.sleep(w.max_delay + w.debounce)  # any second run would have started by now
        runs = w.summary.reports[before:]
    assert 1 <= len(runs) <= 2
    assert sum(r.writes for r in runs) == 0


def test_an_edited_owned_pool_is_put_back_by_the_watch(sandbox: Sandbox) -> None:
    api, pool = _calico(sandbox), pool_name(str(sandbox.config.sole_eks().network.cidr))
    with sandbox.watching() as w:
        settled(w)
        sandbox.onprem_server.mutate(
            api, "IPPool", pool, None, lambda p: p["spec"].update(natOutgoing=True)
        )
        wait(
            lambda: (
                not sandbox.onprem_server.get_object(api, "IPPool", pool)["spec"].get(  # type: ignore[index]
                    "natOutgoing"
                )
            )
        )


def _watch_rules(sb: Sandbox) -> list[tuple[str, str, str | None, int]]:
    """(side, kind, namespace, index) of each reconciler rule carrying ``watch``, except
    those it holds only to grant them (the remote ClusterRole's and Typha's)."""
    granted = [r["resources"] for r in (*REMOTE_RULES, *TYPHA_RULES)]
    out = []
    for side, server in (("eks", sb.eks_server), ("onprem", sb.onprem_server)):
        for kind in ("ClusterRole", "Role"):
            for role in server.list_objects(RBAC, kind):
                if role["metadata"]["name"] != RECONCILER:
                    continue
                for index, rule in enumerate(role["rules"]):
                    if "watch" in rule["verbs"] and rule["resources"] not in granted:
                        out.append((side, kind, role["metadata"].get("namespace"), index))
    return out


def test_every_watch_verb_the_reconciler_holds_is_needed_by_a_watch(sandbox: Sandbox) -> None:
    conns = Connections(
        sandbox.config,
        sandbox.reconciler_session(),
        targets=Targets(),
        clock=sandbox.clock.monotonic,
    )
    targets = watch_targets(sandbox.config)

    def refused(side: str, resources: list[str] | None = None) -> list[str]:
        """The targets on ``side`` (of those ``resources``) whose list or watch is refused."""
        kube = conns.eks() if side == "eks" else conns.onprem()
        server = sandbox.eks_server if side == "eks" else sandbox.onprem_server
        out = []
        for t in targets:
            plural = conns.types[t.kind].plural
            backend = conns.eks_name if side == "eks" else conns.site_name
            if t.backend != backend or (resources is not None and plural not in resources):
                continue
            try:
                _, rv = kube.list_at(t.kind, t.namespace, field_selector=t.field_selector)
                stream = kube.watch(
                    t.kind,
                    t.namespace,
                    resource_version=rv,
                    timeout_seconds=60,
                    field_selector=t.field_selector,
                )
                ender = threading.Timer(0.05, server.end_watches)  # an open watch: end it
                ender.start()
                list(stream)
                ender.join()
            except PermanentError as exc:
                out.append(f"{t.key}: {exc}")
        return out

    assert refused("eks") == [] and refused("onprem") == []
    cases = _watch_rules(sandbox)
    assert cases
    for side, kind, ns, index in cases:
        server = sandbox.eks_server if side == "eks" else sandbox.onprem_server

        def drop(role: dict[str, Any], index: int = index) -> None:
            role["rules"][index]["verbs"].remove("watch")

        def put_back(role: dict[str, Any], index: int = index) -> None:
            role["rules"][index]["verbs"].append("watch")

        rule = server.mutate(RBAC, kind, RECONCILER, ns, drop)["rules"][index]
        try:
            assert any("HTTP 403" in m for m in refused(side, rule["resources"])), rule
        finally:
            server.mutate(RBAC, kind, RECONCILER, ns, put_back)
    conns.close()


def test_status_shows_whether_the_watch_is_live_on_each_cluster(sandbox: Sandbox) -> None:
    from fedkeeper.status import federation_status

    def facts() -> list[str]:
        status = federation_status(sandbox.connections())
        return [f for s in status.sections for f in s.facts if f.startswith("watch")]

    assert facts() == ["watch: no state stored yet (the watch function has not run)"]
    with sandbox.watching() as w:
        wait(w.ready)
        wait(lambda: any(f.startswith("watch on fed-eks: live") for f in facts()))
        _delete_rcc(sandbox, "onprem")
        wait(lambda: _rcc(sandbox, "onprem") is not None)
    after = facts()
    assert [f.split(" (")[0] for f in after] == [
        "watch on fed-eks: NOT live",
        "watch on onprem: NOT live",
    ]
    assert "last change seen 20" in after[1]


def test_the_watch_lambda_watches_until_its_margin_then_stores_where_it_stopped(
    sandbox: Sandbox,
) -> None:
    import json

    from fedkeeper.lambda_runtime import Runtime, Settings, use_runtime
    from fedkeeper.sandbox.lambda_context import FakeLambdaContext
    from fedkeeper.watch import state_parameter_name, watch_targets
    from fedkeeper.watch_function import MARGIN_S
    from lambdas.watch import handler

    name = state_parameter_name(sandbox.config)
    settings = Settings.from_env().model_copy(update={"watch_state_parameter": name})
    context = FakeLambdaContext(function_name="fed-demo-watch", timeout_s=int(MARGIN_S) + 2)
    with use_runtime(Runtime(settings, sandbox.config, connections=sandbox.connections())):
        started = time.perf_counter()
        out = handler({"source": "aws.events", "detail-type": "Scheduled Event"}, context)
    took = time.perf_counter() - started

    assert 1.5 < took < 10  # two seconds of watching, then home
    stored = json.loads(
        sandbox.aws_session().client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
    )
    assert stored == out["state"]
    assert stored["federation"] == sandbox.config.name
    assert set(stored["rv"]) == {str(i) for i in range(len(watch_targets(sandbox.config)))}
    assert {c["live"] for c in stored["clusters"].values()} == {False}  # until the next one
    assert out["writes"] == 0


def test_a_watch_repair_emits_its_metrics_at_once_and_leaves_the_handlers_set_alone(
    sandbox: Sandbox, capsys: Any
) -> None:
    import json

    from fedkeeper.lambda_runtime import metrics

    # Given a watch running in this process beside the handlers (as in the sandbox)
    metrics.clear_metrics()
    with sandbox.watching() as w:
        before = settled(w)
        capsys.readouterr()
        sandbox.function_logs.clear()
        # When it repairs a deleted RCC
        _delete_rcc(sandbox, "onprem")
        wait(lambda: len(w.summary.reports) > before and w.idle())
    # Then that run's metrics went out as their own EMF document, on the function's log
    # stream (not on the terminal of whoever runs the sandbox)
    emitted = [json.loads(line) for line in sandbox.function_logs if '"_aws"' in line]
    repaired = [doc["DriftRepaired"] for doc in emitted if "DriftRepaired" in doc]
    assert [n for n in repaired if n != [0.0]] == [[1.0]]
    assert '"_aws"' not in capsys.readouterr().out
    # And nothing is left for the next handler invocation to flush as its own
    assert metrics.metric_set == {}
