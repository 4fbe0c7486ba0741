"""The watch always recovers, against the Calico API server's watch behaviour.

The fake on-prem and EKS API servers serve Calico kinds (IPPool, RCC) as the Calico API
server does - an error is a Status with reason InternalError and no code, and no bookmark
ever comes - and core kinds as kube-apiserver's watch cache does (410 after compaction or
a restart, 504 for a version ahead of it). Each test runs the watch function's logic in the
background (as the reconciler) and moves the sandbox clock where time matters.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from fedkeeper.sandbox import Sandbox
from fedkeeper.watch import watch_targets
from tests.watch_support import (
    calico,
    nat_on_owned_pool,
    owned_pool,
    pool,
    pool_nats,
    settled,
    step_until,
    wait,
)

POOLS = "ippools"


def _stored(sb: Sandbox) -> dict[str, Any]:
    from fedkeeper.watch import state_parameter_name

    ssm = sb.aws_session().client("ssm")
    value = ssm.get_parameter(Name=state_parameter_name(sb.config))["Parameter"]["Value"]
    return dict(json.loads(value))


def _store(sb: Sandbox, state: dict[str, Any]) -> None:
    from fedkeeper.watch import state_parameter_name

    sb.aws_session().client("ssm").put_parameter(
        Name=state_parameter_name(sb.config), Value=json.dumps(state), Overwrite=True
    )


def _pool_position(sb: Sandbox) -> str:
    keys = [t.key for t in watch_targets(sb.config)]
    return str(keys.index("onprem/IPPool/*"))


def _delete_pool(sb: Sandbox) -> None:
    assert sb.onprem_server.delete_object(calico(sb), "IPPool", owned_pool(sb))


def test_an_owned_pool_deleted_after_a_compaction_is_repaired_in_under_5_s(
    sandbox: Sandbox,
) -> None:
    # Given a watch that stored where it stopped
    with sandbox.watching() as w:
        settled(w)
    # When, before the next invocation, the owned pool goes and the history is compacted
    _delete_pool(sandbox)
    sandbox.onprem_server.compact()
    with sandbox.watching() as w:
        took = wait(lambda: pool(sandbox) is not None)
    # Then the resume point the Calico API server refuses (InternalError, no code) relists
    assert took < 5
    assert w.summary.relists >= 1
    assert any(r.writes for r in w.summary.reports)


def test_an_owned_pool_deleted_after_an_api_server_restart_is_repaired_in_under_5_s(
    sandbox: Sandbox,
) -> None:
    with sandbox.watching() as w:
        settled(w)
        # Given changes the pool watch never sees (a Calico watch gets no bookmarks)
        sandbox.onprem_server.seed(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "unrelated"}}
        )
        # When the API server restarts (its watch cache starts after them) and the pool goes
        sandbox.onprem_server.restart()
        _delete_pool(sandbox)
        took = wait(lambda: pool(sandbox) is not None)
    # Then the pool watch's resume point was refused and relisted, and the pool is back
    assert took < 5
    assert w.summary.relists >= 1


@pytest.mark.parametrize(
    "stored",
    [
        "abc",  # not a version: refused (400)
        "99999999",  # ahead of the server (an etcd restore): "Too large resource version"
    ],
)
def test_a_stored_version_the_server_refuses_costs_one_relist_and_later_drift_is_repaired(
    sandbox: Sandbox, stored: str
) -> None:
    with sandbox.watching() as w:
        settled(w)
    state = _stored(sandbox)
    state["rv"][_pool_position(sandbox)] = stored
    _store(sandbox, state)
    with sandbox.watching() as w:
        settled(w)
        # Then it costs one relist, not a blind watch nor a refusal repeated forever
        assert (w.summary.relists, w.summary.lists) == (1, 1)
        assert w.state.clusters["onprem"].live
        nat_on_owned_pool(sandbox)
        wait(lambda: not pool_nats(sandbox))


def test_a_pool_watch_answered_too_old_forever_costs_at_most_12_lists_and_1_reconcile_a_minute(
    sandbox: Sandbox,
) -> None:
    # Given an API server that answers every IP pool watch "too old resource version"
    sandbox.onprem_server.expire_watches(POOLS)
    sandbox.onprem_server.clear_log()
    with sandbox.watching() as w:
        wait(lambda: w.summary.relists >= 1)
        # When two emulated minutes pass, second by second
        lists: list[int] = []
        runs: list[int] = []
        for _ in range(120):
            sandbox.advance_time(1.0)
            time.sleep(0.06)  # longer than the watcher's 0.05 s polls of the clock
            lists.append(sum(1 for r in sandbox.onprem_server.requests if _pool_list(r)))
            runs.append(sum(1 for r in w.summary.reports if "ippools" in r.scope.names()))
    # Then no minute holds more than 12 lists of pools, nor more than one pool reconcile
    per_minute = [lists[i + 59] - (lists[i - 1] if i else 0) for i in range(len(lists) - 59)]
    assert max(per_minute) <= 12
    assert max(runs[i + 59] - (runs[i - 1] if i else 0) for i in range(len(runs) - 59)) <= 1
    assert lists[-1] >= 4  # it kept trying


def _pool_list(record: Any) -> bool:
    return bool(
        record.method == "GET"
        and record.path.endswith("/" + POOLS)
        and "watch=" not in record.query
    )


def test_after_a_line_that_is_no_event_the_watch_stays_live_and_repairs_later_drift(
    sandbox: Sandbox,
) -> None:
    with sandbox.watching() as w:
        settled(w)
        # When the pool watch's stream carries lines that are not events
        for line in (b"[1, 2]", b'"a string"', b"not json", b'{"type": "ADDED"}'):
            sandbox.onprem_server.inject_watch_line(line, POOLS)
        wait(lambda: w.summary.malformed >= 4)
        # Then the watch is still open, and still repairs
        assert w.ready() and w.state.clusters["onprem"].live
        nat_on_owned_pool(sandbox)
        wait(lambda: not pool_nats(sandbox))
    assert any("watch event skipped" in line for line in sandbox.function_logs)


def test_a_silent_stream_is_detected_within_60_s(sandbox: Sandbox) -> None:
    with sandbox.watching() as w:
        settled(w)
        # When the on-prem API server's streams send their headers and then nothing
        sandbox.onprem_server.stall_watches()
        took = step_until(
            sandbox, lambda: w.summary.silent >= 1, step_s=5.0, limit_s=60.0, pause_s=0.4
        )
        # Then within 60 s the watch knows, says so, and is not reported live
        assert took <= 60
        wait(lambda: not w.state.clusters["onprem"].live)
        assert "silent" in (w.state.clusters["onprem"].error or "")
        assert w.state.clusters["fed-eks"].live
        # And once the server speaks again the watches are live and repair
        sandbox.onprem_server.stall_watches(False)
        step_until(sandbox, w.ready, step_s=5.0, limit_s=120.0)
        _delete_pool(sandbox)
        wait(lambda: pool(sandbox) is not None)


def test_a_state_stored_for_another_cluster_of_the_same_name_is_dropped_and_relisted(
    sandbox: Sandbox,
) -> None:
    with sandbox.watching() as w:
        settled(w)
    # Given resume points stored while "onprem" was another cluster (since rebuilt)
    state = _stored(sandbox)
    state["clusters"]["onprem"]["id"] = "uid-of-the-cluster-before"
    _store(sandbox, state)
    with sandbox.watching() as w:
        settled(w)
        # Then every on-prem watch relisted, and the EKS watches resumed where they were
        onprem = sum(1 for t in watch_targets(sandbox.config) if t.backend == "onprem")
        assert w.summary.lists == onprem
        assert w.state.clusters["onprem"].identity != "uid-of-the-cluster-before"
        _delete_pool(sandbox)
        wait(lambda: pool(sandbox) is not None)
