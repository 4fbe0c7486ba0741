"""What the watch tests share: bounded waits, the owned pool, stepping emulated time, and
the watch state at its largest."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fedkeeper.config import FederationConfig
from fedkeeper.fights import MAX_TRACKED, Fights
from fedkeeper.invariants.ippools import pool_name
from fedkeeper.sandbox import Sandbox
from fedkeeper.watch import ClusterWatch, Watcher, WatchState, targets_digest, watch_targets


def wait(condition: Callable[[], bool], seconds: float = 10.0) -> float:
    """Real seconds until ``condition`` holds (the watcher works in its own threads)."""
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > seconds:
            raise AssertionError(f"not within {seconds} s")
        time.sleep(0.01)
    return time.perf_counter() - started


def settled(w: Watcher) -> int:
    """Wait until the watches are open and the start-up checks have run; the report count."""
    wait(w.ready)
    wait(w.idle)
    return len(w.summary.reports)


def calico(sb: Sandbox) -> str:
    api = sb.config.federation.calico_api
    return f"{api.group}/{api.version}"


def owned_pool(sb: Sandbox) -> str:
    return pool_name(str(sb.config.sole_eks().network.cidr))


def pool(sb: Sandbox) -> dict[str, Any] | None:
    return sb.onprem_server.get_object(calico(sb), "IPPool", owned_pool(sb))


def nat_on_owned_pool(sb: Sandbox) -> None:
    """Another actor turns outgoing NAT on in fedkeeper's pool (drift the watch repairs)."""
    sb.onprem_server.mutate(
        calico(sb), "IPPool", owned_pool(sb), None, lambda p: p["spec"].update(natOutgoing=True)
    )


def pool_nats(sb: Sandbox) -> bool:
    found = pool(sb)
    return bool(found and found["spec"].get("natOutgoing"))


def step_until(
    sb: Sandbox,
    condition: Callable[[], bool],
    *,
    step_s: float,
    limit_s: float,
    pause_s: float = 0.06,
) -> float:
    """Move the sandbox clock on by ``step_s`` at a time, giving the watcher up to ``pause_s``
    real seconds after each step (longer than its 0.05 s polls of the clock), until
    ``condition`` holds: the emulated seconds it took."""
    moved = 0.0
    while not condition():
        if moved >= limit_s:
            raise AssertionError(f"not within {limit_s} emulated seconds")
        sb.advance_time(step_s)
        moved += step_s
        until = time.perf_counter() + pause_s
        while time.perf_counter() < until and not condition():
            time.sleep(0.01)
    return moved


def worst_state(config: FederationConfig) -> WatchState:
    """Every field at its longest: 20-digit versions, long errors, every tracked object a
    fight with the longest target and manager, pending repairs on every queue."""
    fights = Fights()
    for i in range(MAX_TRACKED):
        target = f"onprem/IPPool/{'p' * 200}{i}"
        for t in range(8):
            fights.repaired(target, "ippools", "onprem", 1_800_000_000 + t, "m" * 200)
    assert len(fights.active()) == MAX_TRACKED
    targets = watch_targets(config)
    return WatchState(
        resource_versions={str(i): "9" * 20 for i in range(len(targets))},
        clusters={
            name: ClusterWatch(True, "2026-01-01T00:00:00Z", "e" * 5000, "u" * 36)
            for name in ("eks", "onprem")
        },
        updated="2026-01-01T00:00:00Z",
        federation=config.name,
        targets=targets_digest(targets),
        pending=[f"{q}:{i}" for q in ("eks", "onprem", "both") for i in ("ippools", "rcc", "snat")],
        fights=fights.to_json(),
    )
