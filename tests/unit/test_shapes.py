"""Objects of any shape are findings naming them, never a crash of an invariant (pure).

Given a converged pair of clusters, when one object anywhere holds a value of the wrong
shape, then planning goes on: an object fedkeeper owns is restored, anyone else's is left
alone, and a finding names the object (cluster, kind, namespace/name) and the bad field.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fedkeeper.config import DisabledPoolPolicy
from fedkeeper.invariants.checks import ChecksObservation, ControllerState, plan_checks
from fedkeeper.invariants.ippools import IpPoolsObservation, plan_ippools
from fedkeeper.invariants.rcc import RccObservation, desired_rcc, plan_rcc
from fedkeeper.invariants.shapes import read_kubeconfig
from fedkeeper.invariants.snat import SnatObservation, plan_snat
from fedkeeper.model import Action, Addon, Severity
from tests.unit.test_rcc import NAMES, b64, converged_pair, replace, with_rv
from tests.unit.test_rcc_one_per_cluster import manual_rcc, manual_secret

ANY = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
FIELDS = {
    "service_account": ("metadata",),
    "token_secret": ("type", "data", "metadata"),
    "cluster_role": ("rules",),
    "cluster_role_binding": ("roleRef", "subjects"),
    "typha_role": ("rules",),
    "typha_binding": ("roleRef", "subjects"),
    "access_secret": ("data",),
}
SOME = settings(max_examples=60, deadline=None, derandomize=True)


def _kubeconfig_secret(kubeconfig: Any) -> dict[str, Any]:
    secret = copy.deepcopy(converged_pair()[0].access_secret)
    assert secret is not None
    secret["data"]["kubeconfig"] = b64(yaml.safe_dump(kubeconfig))
    return dict(secret)


@SOME
@given(field=st.sampled_from(sorted(FIELDS)), value=ANY, side=st.sampled_from(["eks", "onprem"]))
def test_rcc_plans_around_an_object_with_a_field_of_any_shape(
    field: str, value: Any, side: str
) -> None:
    eks, onprem = converged_pair()
    target = eks if side == "eks" else onprem
    obj = copy.deepcopy(getattr(target, field))
    key = FIELDS[field][len(str(value)) % len(FIELDS[field])]
    obj[key] = value
    changed = replace(target, **{field: obj})
    obs = (
        RccObservation(NAMES, changed, onprem)
        if side == "eks"
        else RccObservation(NAMES, eks, changed)
    )
    plan_rcc(obs)  # never raises, whatever the shape


@SOME
@given(kubeconfig=ANY)
def test_a_kubeconfig_of_any_shape_is_read_without_crashing(kubeconfig: Any) -> None:
    meaning, problems = read_kubeconfig(yaml.safe_dump(kubeconfig))
    assert meaning is None or isinstance(meaning.server, str)
    assert all(isinstance(p, str) for p in problems)


@SOME
@given(spec=ANY)
def test_pools_checks_and_snat_plan_around_any_shape(spec: Any) -> None:
    pool = {"metadata": {"name": "odd"}, "spec": spec}
    plan_ippools(
        IpPoolsObservation(
            "fed-demo", "projectcalico.org/v3", ["10.100.0.0/16"], [pool], DisabledPoolPolicy.AUTO
        )
    )
    deployment = {"spec": {"template": {"spec": {"containers": spec}}}}
    plan_checks(
        ChecksObservation(
            vpc_cidrs=["10.100.0.0/16"],
            eks_pools=[pool],
            onprem_pools=[pool],
            onprem_bgp_peers=[],
            eks_controllers=ControllerState({"spec": spec}, deployment),
            onprem_controllers=ControllerState(None, deployment),
        )
    )
    daemonset = {
        "spec": {"template": {"spec": {"containers": [{"name": "aws-node", "env": spec}]}}}
    }
    addon = Addon("fed-eks", "vpc-cni", "v1", "ACTIVE", '{"env": {}}')
    plan_snat(SnatObservation("fed-eks", addon, daemonset))


def _findings(plan: Any, check: str) -> list[str]:
    return [f.message for f in plan.findings if f.check == check]


def test_a_foreign_rcc_with_a_malformed_inline_kubeconfig_is_named_and_the_rest_is_planned() -> (
    None
):
    eks, onprem = converged_pair()
    partner = {
        "kind": "RemoteClusterConfiguration",
        "metadata": {"name": "partner", "resourceVersion": "3"},
        "spec": {
            "datastoreType": "kubernetes",
            "kubeconfigInline": yaml.safe_dump({"clusters": 5, "current-context": "a"}),
        },
    }
    eks = replace(eks, rccs=[])  # fedkeeper's own EKS RCC was deleted
    onprem = replace(onprem, rccs=[*onprem.rccs, partner])
    plan = plan_rcc(RccObservation(NAMES, eks, onprem))
    [message] = _findings(plan, "rcc.malformed")
    assert message.startswith("onprem RemoteClusterConfiguration partner is malformed:")
    assert "spec.kubeconfigInline: clusters is a number, not a list" in message
    assert "leaves it alone" in message
    assert [(c.target, c.action) for c in plan.changes] == [
        ("eks/RemoteClusterConfiguration/onprem", Action.CREATE)
    ]


def test_an_owned_access_secret_whose_context_is_a_string_is_rewritten() -> None:
    eks, onprem = converged_pair()
    bad = _kubeconfig_secret(
        {
            "clusters": [{"name": "c", "cluster": {"server": "https://x:6443"}}],
            "contexts": [{"name": "c", "context": "oops"}],
            "users": [],
            "current-context": "c",
        }
    )
    plan = plan_rcc(RccObservation(NAMES, replace(eks, access_secret=bad), onprem))
    [change] = plan.changes
    assert (change.target, change.action) == (
        "eks/Secret/calico-system/remote-cluster-secret-onprem",
        Action.UPDATE,
    )
    assert "contexts[0].context is a string, not an object" in change.reason
    [message] = _findings(plan, "rcc.malformed")
    assert message.startswith("eks Secret calico-system/remote-cluster-secret-onprem is malformed")
    assert message.endswith("fedkeeper owns it and restores it")


def test_an_owned_binding_whose_role_ref_is_a_string_is_deleted_and_re_created() -> None:
    eks, onprem = converged_pair()
    crb = copy.deepcopy(onprem.cluster_role_binding)
    assert crb is not None
    crb["roleRef"] = "tigera-federation-remote-cluster"
    plan = plan_rcc(RccObservation(NAMES, eks, replace(onprem, cluster_role_binding=crb)))
    target = "onprem/ClusterRoleBinding/tigera-federation-remote-cluster"
    assert [(c.target, c.action) for c in plan.changes] == [
        (target, Action.DELETE),
        (target, Action.CREATE),
    ]
    assert plan.changes[1].after == (target,)
    assert "roleRef is a string, not an object" in _findings(plan, "rcc.malformed")[0]


def test_an_owned_binding_bound_to_another_role_is_re_created_not_patched() -> None:
    eks, onprem = converged_pair()
    rb = copy.deepcopy(eks.typha_binding)
    assert rb is not None
    rb["roleRef"] = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "other"}
    plan = plan_rcc(RccObservation(NAMES, replace(eks, typha_binding=rb), onprem))
    assert [c.action for c in plan.changes] == [Action.DELETE, Action.CREATE]
    assert "its roleRef is Role other (want Role remote-cluster-secret-access)" in (
        plan.changes[0].reason
    )
    assert plan.changes[1].payload["body"]["roleRef"]["name"] == "remote-cluster-secret-access"


def test_an_owned_cluster_role_whose_rules_are_a_number_is_restored() -> None:
    eks, onprem = converged_pair()
    role = copy.deepcopy(eks.cluster_role)
    assert role is not None
    role["rules"] = 5
    plan = plan_rcc(RccObservation(NAMES, replace(eks, cluster_role=role), onprem))
    [change] = plan.changes
    assert change.action is Action.UPDATE and change.payload["patch"]["rules"]


def test_a_foreign_binding_with_a_malformed_role_ref_is_named_once_and_left_alone() -> None:
    eks, onprem = converged_pair()
    crb = copy.deepcopy(eks.cluster_role_binding)
    assert crb is not None
    crb["metadata"]["labels"] = {}
    crb["roleRef"] = 7
    plan = plan_rcc(RccObservation(NAMES, replace(eks, cluster_role_binding=crb), onprem))
    assert plan.changes == []
    named = [f for f in plan.findings if "ClusterRoleBinding tigera-federation" in f.message]
    assert [f.check for f in named] == ["rcc.malformed"]


def test_an_unowned_rcc_under_our_name_reading_a_third_cluster_is_not_the_federation_s() -> None:
    eks, onprem = converged_pair()
    third = manual_rcc("fed-eks", "third-access")
    secret = manual_secret("third-access", "https://10.9.9.9:6443", "t3")
    onprem = replace(
        onprem,
        rccs=[third],
        rcc_secrets={**onprem.rcc_secrets, "calico-system/third-access": secret},
    )
    plan = plan_rcc(RccObservation(NAMES, eks, onprem))
    assert not [c for c in plan.changes if c.backend == "onprem" and "fed-eks" in c.target]
    [error] = [f for f in plan.findings if f.severity is Severity.ERROR]
    assert error.check == "rcc.name-taken"
    assert "reads https://10.9.9.9:6443" in error.message
    assert "federation.onprem_rcc_name" in error.message
    assert not _findings(plan, "rcc.adoptable")


def test_an_owned_rcc_reading_a_third_cluster_under_another_name_is_never_pruned() -> None:
    eks, onprem = converged_pair()
    stray = manual_rcc("old-third", "old-third-access")
    stray["metadata"]["labels"] = dict(onprem.rccs[0]["metadata"]["labels"])
    secret = manual_secret("old-third-access", "https://10.9.9.9:6443", "t3")
    onprem = replace(
        onprem,
        rccs=[*onprem.rccs, stray],
        rcc_secrets={**onprem.rcc_secrets, "calico-system/old-third-access": secret},
    )
    plan = plan_rcc(RccObservation(NAMES, eks, onprem))
    assert plan.changes == []
    assert _findings(plan, "rcc.third-cluster")


def test_an_unowned_rcc_under_our_name_that_reads_the_other_cluster_is_still_the_federation_s() -> (
    None
):
    eks, onprem = converged_pair()
    rcc = with_rv(desired_rcc(NAMES, "fed-eks"))
    rcc["metadata"]["labels"] = {}
    plan = plan_rcc(RccObservation(NAMES, eks, replace(onprem, rccs=[rcc])))
    assert plan.changes == []
    assert _findings(plan, "rcc.adoptable")
