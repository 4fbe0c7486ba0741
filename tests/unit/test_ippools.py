"""Invariant 3 (ippools), pure."""

from __future__ import annotations

from typing import Any

from fedkeeper.config import DisabledPoolPolicy
from fedkeeper.invariants.ippools import IpPoolsObservation, plan_ippools, pool_name
from fedkeeper.model import Action

OWNED = {"app.kubernetes.io/managed-by": "fedkeeper", "fedkeeper.io/federation": "fed-demo"}


def pool(
    name: str, cidr: str, *, owned: bool = False, rv: str = "7", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "IPPool",
        "metadata": {"name": name, "resourceVersion": rv, "labels": dict(OWNED) if owned else {}},
        "spec": {"cidr": cidr, **spec},
    }


NAT_POOL = pool("default-ipv4-ippool", "10.244.0.0/16", natOutgoing=True)
GOOD = {
    "disabled": True,
    "natOutgoing": False,
    "disableBGPExport": True,
    "ipipMode": "Never",
    "vxlanMode": "Never",
}


def obs(
    pools: list[dict[str, Any]],
    cidrs: list[str] | None = None,
    policy: DisabledPoolPolicy = DisabledPoolPolicy.AUTO,
    ranges: list[tuple[str, str]] | None = None,
) -> IpPoolsObservation:
    return IpPoolsObservation(
        "fed-demo",
        "projectcalico.org/v3",
        cidrs if cidrs is not None else ["10.100.0.0/16"],
        pools,
        policy,
        ranges or [],
    )


def test_pool_name_is_deterministic() -> None:
    assert pool_name("10.100.0.0/16") == "fedkeeper-aws-10-100-0-0-16"


def test_missing_pool_is_created_disabled_and_owned() -> None:
    [change] = plan_ippools(obs([NAT_POOL])).changes
    assert change.action is Action.CREATE
    body = change.payload["body"]
    assert body["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "fedkeeper"
    assert body["spec"] == {"cidr": "10.100.0.0/16", **GOOD}
    assert "default-ipv4-ippool (10.244.0.0/16) does outgoing NAT" in change.reason


def test_secondary_cidr_gets_its_own_pool() -> None:
    existing = pool(pool_name("10.100.0.0/16"), "10.100.0.0/16", owned=True, **GOOD)
    [change] = plan_ippools(obs([NAT_POOL, existing], ["10.100.0.0/16", "10.101.0.0/16"])).changes
    assert change.name == "fedkeeper-aws-10-101-0-0-16"


def test_converged_pools_plan_nothing() -> None:
    existing = pool(pool_name("10.100.0.0/16"), "10.100.0.0/16", owned=True, blockSize=26, **GOOD)
    plan = plan_ippools(obs([NAT_POOL, existing]))
    assert plan.changes == [] and plan.findings == []


def test_auto_policy_without_nat_needs_no_pool() -> None:
    plan = plan_ippools(obs([pool("default", "10.244.0.0/16", natOutgoing=False)]))
    assert plan.changes == []


def test_always_and_never_policies() -> None:
    no_nat = [pool("default", "10.244.0.0/16", natOutgoing=False)]
    assert len(plan_ippools(obs(no_nat, policy=DisabledPoolPolicy.ALWAYS)).changes) == 1
    assert plan_ippools(obs([NAT_POOL], policy=DisabledPoolPolicy.NEVER)).changes == []


def test_cidr_removed_from_vpc_deletes_the_owned_pool() -> None:
    gone = pool(pool_name("10.101.0.0/16"), "10.101.0.0/16", owned=True, rv="9", **GOOD)
    keep = pool(pool_name("10.100.0.0/16"), "10.100.0.0/16", owned=True, **GOOD)
    [change] = plan_ippools(obs([NAT_POOL, keep, gone])).changes
    assert change.action is Action.DELETE and change.name == gone["metadata"]["name"]
    assert change.resource_version == "9"
    assert "no longer associated with the VPC" in change.reason


def test_never_prunes_on_an_empty_vpc_observation() -> None:
    owned_pool = pool(pool_name("10.100.0.0/16"), "10.100.0.0/16", owned=True, **GOOD)
    assert plan_ippools(obs([NAT_POOL, owned_pool], cidrs=[])).changes == []


def test_unowned_pools_are_never_deleted() -> None:
    foreign = pool("someone-elses", "10.50.0.0/16", disabled=True)
    assert plan_ippools(obs([NAT_POOL, foreign])).changes[0].action is Action.CREATE
    assert all(c.name != "someone-elses" for c in plan_ippools(obs([NAT_POOL, foreign])).changes)


def test_drifted_owned_pool_is_patched_back() -> None:
    drifted = pool(
        pool_name("10.100.0.0/16"),
        "10.100.0.0/16",
        owned=True,
        rv="11",
        **{**GOOD, "natOutgoing": True, "disabled": False},
    )
    [change] = plan_ippools(obs([NAT_POOL, drifted])).changes
    assert change.action is Action.UPDATE
    assert change.payload["patch"]["spec"]["natOutgoing"] is False
    assert change.payload["patch"]["spec"]["disabled"] is True
    assert change.resource_version == "11"
    assert "natOutgoing is True (want False)" in change.reason


def test_owned_pool_with_wrong_cidr_is_deleted_and_recreated() -> None:
    wrong = pool(pool_name("10.100.0.0/16"), "10.100.0.0/17", owned=True, **GOOD)
    changes = plan_ippools(obs([NAT_POOL, wrong])).changes
    assert [c.action for c in changes] == [Action.DELETE, Action.CREATE]


def test_opt_out_annotation_is_respected() -> None:
    drifted = pool(
        pool_name("10.100.0.0/16"), "10.100.0.0/16", owned=True, **{**GOOD, "natOutgoing": True}
    )
    drifted["metadata"]["annotations"] = {"fedkeeper.io/ignore": "true"}
    assert plan_ippools(obs([NAT_POOL, drifted])).changes == []


def test_pool_with_our_name_but_not_owned_is_left_alone() -> None:
    squatter = pool(pool_name("10.100.0.0/16"), "10.100.0.0/16", natOutgoing=True)
    plan = plan_ippools(obs([NAT_POOL, squatter]))
    assert plan.changes == []
    assert plan.findings
