"""A controller that keeps changing an owned object back: the fight ends, nobody is flooded."""

from __future__ import annotations

import time

from kubernetes.client import CustomObjectsApi

from fedkeeper.model import Result
from fedkeeper.sandbox import Sandbox
from tests.watch_support import owned_pool, pool_nats, settled, wait

GITOPS = "gitops-controller"


def test_a_controller_fighting_for_10_minutes_gets_at_most_20_writes_and_1_notification(
    sandbox: Sandbox,
) -> None:
    api = sandbox.config.federation.calico_api
    pools = CustomObjectsApi(sandbox.onprem_client())
    target = f"onprem/IPPool/{owned_pool(sandbox)}"

    def fight() -> None:
        """The other controller: it wants outgoing NAT on the pool, and says who it is."""
        pools.patch_cluster_custom_object(
            api.group,
            api.version,
            "ippools",
            owned_pool(sandbox),
            {"spec": {"natOutgoing": True}},
            field_manager=GITOPS,
        )

    with sandbox.watching(debounce=0.05, max_delay=0.2) as w:
        settled(w)
        # When it puts its value back within 10 s of every change, for 10 emulated minutes
        for _ in range(60):
            if not pool_nats(sandbox):
                fight()
            time.sleep(0.06)
            wait(w.idle)
            sandbox.advance_time(10.0)
    repairs = [
        c
        for r in w.summary.reports
        for c in r.changes
        if c.change.target == target and c.result is Result.APPLIED
    ]
    fedkeeper_writes = [
        r
        for r in sandbox.onprem_server.writes()
        if owned_pool(sandbox) in r.path and "fieldManager=fedkeeper" in r.query
    ]
    # Then fedkeeper wrote the pool at most 20 times, and said so once: an episode naming the
    # object and the field manager fighting it
    assert 4 <= len(repairs) <= 20
    assert len(fedkeeper_writes) == len(repairs)
    notes = sandbox.notifications()
    assert len(notes) == 1
    subject, message = notes[0]
    assert f"fight:{target}" in subject
    assert GITOPS in message
    # And the runs it held back said why
    held = [f for r in w.summary.reports for f in r.findings if f.check == "watch.held"]
    assert held and all(f.message.startswith(target) for f in held)
