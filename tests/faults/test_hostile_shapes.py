"""The hostile-shapes matrix: bad data never stops a repair.

Every shape × owned/foreign × EKS/on-prem: one object fedkeeper reads (an RCC, an access
Secret's kubeconfig, the remote token Secret, the remote ClusterRole and binding, Typha's
Role and binding) is given a value of the wrong shape, as a hand edit or another tool would
leave it. *Owned*: the object keeps fedkeeper's labels. *Foreign*: its labels are stripped
first, so it is someone else's object under fedkeeper's name. Unrelated drift is added on
AWS (route propagation off) and on the other cluster (Typha's RoleBinding deleted), and the
schedule event goes through the deployed rules to the real repair handler.

Each case must give a finding that names the object (cluster, kind, namespace/name), land
the unrelated repairs, restore an owned object (its shape is sound again) and leave a
foreign one byte for byte as it was, with no traceback and no dead letter. One sandbox per
cluster is shared by its cases: each case undoes itself (a foreign object is removed and
the object is put back as it was).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from fedkeeper.config import load_config
from fedkeeper.invariants.rcc import TYPHA_ACCESS, access_secret_name, rcc_spec_problems
from fedkeeper.invariants.shapes import (
    binding_problems,
    decoded,
    metadata_problems,
    rules_problems,
    secret_kubeconfig,
)
from fedkeeper.model import FEDERATION_LABEL, MANAGED_BY_LABEL, Result
from fedkeeper.sandbox import Sandbox, event_factory
from fedkeeper.sandbox.kube_server import FakeKubeServer
from tests.conftest import EXAMPLE

Obj = dict[str, Any]
RBAC = "rbac.authorization.k8s.io/v1"
CALICO = "projectcalico.org/v3"


def _b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def _kubeconfig(secret: Obj) -> Any:
    return yaml.safe_load(base64.b64decode(secret["data"]["kubeconfig"]))


def _kc(edit: Callable[[Any], Any]) -> Callable[[Obj], None]:
    """A shape of the kubeconfig text inside an access Secret (opaque to the API server)."""

    def apply(secret: Obj) -> None:
        kc = edit(_kubeconfig(secret))
        text = kc if isinstance(kc, str | bytes) else yaml.safe_dump(kc)
        secret["data"]["kubeconfig"] = _b64(text)

    return apply


def _set(path: str, value: Any) -> Callable[[Obj], None]:
    def apply(obj: Obj) -> None:
        *parents, last = path.split(".")
        node = obj
        for key in parents:
            node = node[key]
        node[last] = value

    return apply


def _kc_set(path: str, value: Any) -> Callable[[Any], Any]:
    def edit(kc: Any) -> Any:
        node = kc
        *parents, last = path.split(".")
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value
        return kc

    return edit


def _inline(kubeconfig: Any) -> Callable[[Obj], None]:
    def apply(rcc: Obj) -> None:
        rcc["spec"] = {
            "datastoreType": "kubernetes",
            "kubeconfigInline": yaml.safe_dump(kubeconfig),
        }

    return apply


ROLE_SHAPES: dict[str, Any] = {
    "rules-a-number": 5,
    "rules-of-strings": ["get secrets"],
    "rule-fields-strings": [{"apiGroups": "", "resources": "secrets", "verbs": "get"}],
    "rule-items-wrong": [{"apiGroups": [5], "resources": [None], "verbs": [{}]}],
}
BINDING_SHAPES: dict[str, tuple[str, Any]] = {
    "role-ref-a-string": ("roleRef", "tigera-federation-remote-cluster"),
    "role-ref-fields-wrong": ("roleRef", {"apiGroup": 5, "kind": ["ClusterRole"], "name": None}),
    "subjects-a-number": ("subjects", 5),
    "subjects-of-strings": ("subjects", ["calico-typha"]),
    "subject-fields-wrong": ("subjects", [{"kind": "ServiceAccount", "name": 5, "namespace": []}]),
}
# kind → {shape: edit}
SHAPES: dict[str, dict[str, Callable[[Obj], None]]] = {
    "RemoteClusterConfiguration": {
        "secret-ref-a-string": _set("spec.clusterAccessSecret", "remote-cluster-secret-x"),
        "secret-ref-fields-wrong": _set("spec.clusterAccessSecret", {"name": 5, "namespace": []}),
        "inline-clusters-a-number": _inline({"clusters": 5, "current-context": "a"}),
        "inline-context-a-string": _inline(
            {"contexts": [{"name": "a", "context": "x"}], "current-context": "a"}
        ),
        "inline-users-a-string": _inline({"users": "abc", "current-context": "a"}),
        "endpoint-a-number": _set("spec.k8sAPIEndpoint", 5),
        "annotations-a-string": _set("metadata.annotations", "x"),
    },
    "Secret/access": {
        "kubeconfig-not-yaml": _kc(lambda _: "{{{ not: [yaml"),
        "kubeconfig-a-number": _kc(lambda _: "5"),
        "kubeconfig-a-list": _kc(lambda _: "[1, 2]"),
        "clusters-a-number": _kc(_kc_set("clusters", 5)),
        "clusters-of-strings": _kc(_kc_set("clusters", ["x"])),
        "cluster-entry-a-string": _kc(_kc_set("clusters.0.cluster", "x")),
        "contexts-a-string": _kc(_kc_set("contexts", "abc")),
        "context-oops": _kc(_kc_set("contexts.0.context", "oops")),
        "users-abc": _kc(_kc_set("users", "abc")),
        "user-a-number": _kc(_kc_set("users.0.user", 5)),
        "current-context-a-list": _kc(_kc_set("current-context", ["x"])),
        "current-context-nowhere": _kc(_kc_set("current-context", "nowhere")),
        "server-a-number": _kc(_kc_set("clusters.0.cluster.server", 5)),
        "token-an-object": _kc(_kc_set("users.0.user.token", {"a": 1})),
        "kubeconfig-not-utf8": _set("data.kubeconfig", _b64(b"\xff\xfe\xfd")),
    },
    "Secret/token": {
        "token-not-utf8": _set("data.token", _b64(b"\xff\xfe\xfd")),
    },
    "ClusterRole": {shape: _set("rules", value) for shape, value in ROLE_SHAPES.items()},
    "Role": {shape: _set("rules", value) for shape, value in ROLE_SHAPES.items()},
    "ClusterRoleBinding": {s: _set(*v) for s, v in BINDING_SHAPES.items()},
    "RoleBinding": {s: _set(*v) for s, v in BINDING_SHAPES.items()},
}
N_SHAPES = sum(len(shapes) for shapes in SHAPES.values())


@dataclass(frozen=True)
class Where:
    api: str
    kind: str
    name: str
    namespace: str | None

    def label(self, cluster: str) -> str:
        return f"{cluster} {self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"


def _where(sb: Sandbox, cluster: str, kind: str) -> Where:
    fed = sb.config.federation
    sa, access_ns = fed.remote_service_account, fed.access_secret_namespace
    rcc = sb.config.sole_site().name if cluster == "eks" else sb.config.sole_eks().name
    return {
        "RemoteClusterConfiguration": Where(CALICO, kind, rcc, None),
        "Secret/access": Where("v1", "Secret", access_secret_name(rcc), access_ns),
        "Secret/token": Where("v1", "Secret", sa.name, sa.namespace),
        "ClusterRole": Where(RBAC, kind, sa.name, None),
        "ClusterRoleBinding": Where(RBAC, kind, sa.name, None),
        "Role": Where(RBAC, kind, TYPHA_ACCESS, access_ns),
        "RoleBinding": Where(RBAC, kind, TYPHA_ACCESS, access_ns),
    }[kind]


def _problems(kind: str, obj: Obj) -> list[str]:
    """The shape problems fedkeeper itself would name (an owned object must have none)."""
    problems = metadata_problems(obj)
    if kind == "RemoteClusterConfiguration":
        problems += rcc_spec_problems(obj)
    elif kind == "Secret/access":
        problems += secret_kubeconfig(obj)[1]
    elif kind == "Secret/token":
        decoded((obj.get("data") or {}).get("token"), "data.token", problems)
    elif kind in ("ClusterRole", "Role"):
        problems += rules_problems(obj.get("rules"))
    else:
        problems += binding_problems(obj)
    return problems


def _cases() -> list[Any]:
    cases = []
    for cluster in ("eks", "onprem"):
        for kind, shapes in SHAPES.items():
            for shape in shapes:
                for whose in ("owned", "foreign"):
                    cases.append(
                        pytest.param(
                            cluster,
                            kind,
                            shape,
                            whose,
                            id=f"{cluster}-{kind.replace('/', '-')}-{shape}-{whose}",
                            marks=pytest.mark.xdist_group(f"hostile-{cluster}"),
                        )
                    )
    return cases


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox.start(load_config(EXAMPLE)) as sandbox:
        yield sandbox


def _server(sb: Sandbox, cluster: str) -> FakeKubeServer:
    return sb.eks_server if cluster == "eks" else sb.onprem_server


def _unrelated_drift(sb: Sandbox, cluster: str) -> set[str]:
    """Drift that has nothing to do with the hostile object; the targets of its repairs."""
    b = sb.baseline
    assert b is not None
    table = b.private_route_table_ids[0]
    sb.aws_session().client("ec2").disable_vgw_route_propagation(
        RouteTableId=table, GatewayId=b.vgw_id
    )
    other = "onprem" if cluster == "eks" else "eks"
    ns = sb.config.federation.access_secret_namespace
    assert _server(sb, other).delete_object(RBAC, "RoleBinding", TYPHA_ACCESS, ns)
    backend = sb.config.sole_eks().name if other == "eks" else sb.config.sole_site().name
    return {f"aws/RouteTable/{table}", f"{backend}/RoleBinding/{ns}/{TYPHA_ACCESS}"}


def test_the_matrix_has_at_least_thirty_shapes() -> None:
    assert N_SHAPES >= 30


@pytest.mark.parametrize(("cluster", "kind", "shape", "whose"), _cases())
def test_a_hostile_shape_is_named_and_never_stops_a_repair(
    sb: Sandbox, cluster: str, kind: str, shape: str, whose: str
) -> None:
    server, where = _server(sb, cluster), _where(sb, cluster, kind)

    def hostile(obj: Obj) -> None:
        if whose == "foreign":
            labels = obj["metadata"].get("labels") or {}
            for key in (MANAGED_BY_LABEL, FEDERATION_LABEL):
                labels.pop(key, None)
        SHAPES[kind][shape](obj)

    before = server.get_object(where.api, where.kind, where.name, where.namespace)
    assert before is not None
    server.mutate(where.api, where.kind, where.name, where.namespace, hostile)
    planted = server.get_object(where.api, where.kind, where.name, where.namespace)
    assert planted is not None and _problems(kind, planted), "the shape did not survive"
    repairs = _unrelated_drift(sb, cluster)

    delivery = sb.dispatch(event_factory.scheduled(sb.config.aws.region))

    report = delivery.report
    assert delivery.dead_letters == [] and delivery.attempts == {"repair": 1}, report.to_dict()
    assert not any("Traceback" in line for line in delivery.logs)
    assert not [e for e in report.errors if "malformed data" in e.message], report.to_dict()
    label = where.label(cluster)
    assert any(label in f.message for f in report.findings), (label, report.to_dict())
    applied = {c.change.target for c in report.changes if c.result is Result.APPLIED}
    assert repairs <= applied, (repairs - applied, report.to_dict())
    after = server.get_object(where.api, where.kind, where.name, where.namespace)
    if whose == "owned":
        assert after is not None and _problems(kind, after) == [], after
    else:
        assert after == planted  # byte for byte: never touched
        server.seed(before)  # undo the case: fedkeeper's own object again


# --- the issue's rows, one by one, on the same sandboxes -----------------------------------

ONPREM = pytest.mark.xdist_group("hostile-onprem")
EKS = pytest.mark.xdist_group("hostile-eks")


def _foreign_secret(name: str, ns: str, kubeconfig: Any) -> Obj:
    text = kubeconfig if isinstance(kubeconfig, str) else yaml.safe_dump(kubeconfig)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "data": {"datastoreType": _b64("kubernetes"), "kubeconfig": _b64(text)},
    }


def _foreign_rcc(name: str, spec: Obj) -> Obj:
    return {
        "apiVersion": CALICO,
        "kind": "RemoteClusterConfiguration",
        "metadata": {"name": name},
        "spec": spec,
    }


@ONPREM
@pytest.mark.parametrize(
    "through", ["inline-context-a-string", "inline-clusters-5", "secret-context-a-string"]
)
def test_another_team_s_malformed_rcc_on_prem_does_not_stop_the_eks_rcc_s_restore(
    sb: Sandbox, through: str
) -> None:
    ns = sb.config.federation.access_secret_namespace
    bad = (
        {"contexts": [{"name": "a", "context": "x"}], "current-context": "a"}
        if "context" in through
        else {"clusters": 5, "current-context": "a"}
    )
    if through.startswith("secret"):
        sb.onprem_server.seed(_foreign_secret("partner-access", ns, bad))
        spec: Obj = {"clusterAccessSecret": {"name": "partner-access", "namespace": ns}}
    else:
        spec = {"datastoreType": "kubernetes", "kubeconfigInline": yaml.safe_dump(bad)}
    sb.onprem_server.seed(_foreign_rcc("partner", spec))
    planted = sb.onprem_server.get_object(CALICO, "RemoteClusterConfiguration", "partner")
    sb.eks_server.delete_object(CALICO, "RemoteClusterConfiguration", sb.config.sole_site().name)
    try:
        delivery = sb.dispatch(event_factory.scheduled(sb.config.aws.region))
        report = delivery.report
        assert delivery.dead_letters == [] and not report.errors, report.to_dict()
        applied = {c.change.target for c in report.changes if c.result is Result.APPLIED}
        assert f"fed-eks/RemoteClusterConfiguration/{sb.config.sole_site().name}" in applied
        named = (
            "onprem Secret " + ns + "/partner-access"
            if through.startswith("secret")
            else ("onprem RemoteClusterConfiguration partner")
        )
        assert any(named in f.message for f in report.findings), report.to_dict()
        partner = sb.onprem_server.get_object(CALICO, "RemoteClusterConfiguration", "partner")
        assert partner == planted
    finally:
        sb.onprem_server.delete_object(CALICO, "RemoteClusterConfiguration", "partner")
        sb.onprem_server.delete_object("v1", "Secret", "partner-access", ns)


@ONPREM
def test_onprem_credentials_with_users_abc_fail_onprem_clearly_and_eks_is_repaired(
    sb: Sandbox,
) -> None:
    sm = sb.aws_session().client("secretsmanager")
    name = sb.config.sole_site().credentials_secret
    good = sm.get_secret_value(SecretId=name)["SecretString"]
    kubeconfig = yaml.safe_load(good)
    kubeconfig["users"] = "abc"
    sm.put_secret_value(SecretId=name, SecretString=yaml.safe_dump(kubeconfig))
    sb.connections().forget_onprem()
    sb.eks_server.delete_object(CALICO, "RemoteClusterConfiguration", sb.config.sole_site().name)
    try:
        delivery = sb.dispatch(event_factory.scheduled(sb.config.aws.region))
    finally:
        sm.put_secret_value(SecretId=name, SecretString=good)
        sb.connections().forget_onprem()
    report = delivery.report
    assert delivery.dead_letters == []
    assert not [e for e in report.errors if "malformed data" in e.message]
    [failed] = report.failed_targets
    assert failed.target == "onprem"
    assert f"secret {name}: the kubeconfig is malformed: users is a string" in failed.reason
    assert sorted(failed.invariants) == ["checks", "ippools", "rcc"]
    applied = {c.change.target for c in report.changes if c.result is Result.APPLIED}
    assert f"fed-eks/RemoteClusterConfiguration/{sb.config.sole_site().name}" in applied


@EKS
def test_an_aws_node_env_entry_that_is_a_string_is_named_and_snat_still_repaired(
    sb: Sandbox,
) -> None:
    before = sb.eks_server.get_object("apps/v1", "DaemonSet", "aws-node", "kube-system")
    assert before is not None

    def garble(ds: Obj) -> None:
        ds["spec"]["template"]["spec"]["containers"][0]["env"].append("WARM_IP_TARGET=5")

    sb.eks_server.mutate("apps/v1", "DaemonSet", "aws-node", "kube-system", garble)
    sb.aws.reset_addon_configuration(sb.config.sole_eks().cluster_name, "vpc-cni", "{}")
    try:
        delivery = sb.dispatch(event_factory.scheduled(sb.config.aws.region))
        report = delivery.report
        assert delivery.dead_letters == [] and not report.errors, report.to_dict()
        [finding] = [f for f in report.findings if f.check == "snat.malformed"]
        assert "eks DaemonSet kube-system/aws-node is malformed" in finding.message
        assert "env[3] is not an object" in finding.message
        applied = {c.change.target for c in report.changes if c.result is Result.APPLIED}
        assert f"aws/Addon/{sb.config.sole_eks().cluster_name}/vpc-cni" in applied
    finally:
        sb.advance_time(sb.aws.addon_seconds_left())
        sb.eks_server.seed(before)
        sb.reconcile(None, "apply")


@ONPREM
def test_a_third_cluster_s_rcc_under_our_name_is_refused_and_never_touched(
    sb: Sandbox,
) -> None:
    """An unowned on-prem RCC named like fedkeeper's, reading a third cluster: it is not the
    federation's RCC, adopt refuses it with a finding, and neither it nor its Secret ever
    changes — through a run, an adopt --apply and the next run."""
    from fedkeeper.adopt import adopt

    ns = sb.config.federation.access_secret_namespace
    name = sb.config.sole_eks().name
    third = {
        "clusters": [{"name": "c3", "cluster": {"server": "https://10.9.9.9:6443"}}],
        "users": [{"name": "u3", "user": {"token": "third-cluster-token"}}],
        "contexts": [{"name": "c3", "context": {"cluster": "c3", "user": "u3"}}],
        "current-context": "c3",
    }
    ours = {
        "rcc": sb.onprem_server.get_object(CALICO, "RemoteClusterConfiguration", name),
        "secret": sb.onprem_server.get_object("v1", "Secret", access_secret_name(name), ns),
    }
    sb.onprem_server.delete_object(CALICO, "RemoteClusterConfiguration", name)
    sb.onprem_server.seed(_foreign_secret("third-cluster-access", ns, third))
    sb.onprem_server.seed(
        _foreign_rcc(
            name,
            {
                "clusterAccessSecret": {"name": "third-cluster-access", "namespace": ns},
                "syncOptions": {"overlayRoutingMode": "Disabled"},
            },
        )
    )

    def theirs() -> tuple[Obj | None, Obj | None]:
        return (
            sb.onprem_server.get_object(CALICO, "RemoteClusterConfiguration", name),
            sb.onprem_server.get_object("v1", "Secret", "third-cluster-access", ns),
        )

    planted = theirs()
    try:
        run = sb.dispatch(event_factory.scheduled(sb.config.aws.region)).report
        [taken] = [f for f in run.findings if f.check == "rcc.name-taken"]
        assert "reads https://10.9.9.9:6443, not fed-eks's API server" in taken.message
        adopted = adopt(sb.connections(), "apply")
        [refused] = [f for f in adopted.findings if f.check == "adopt.refused"]
        assert refused.message.startswith(f"onprem RemoteClusterConfiguration {name} is not")
        assert not [c for c in adopted.changes if c.change.name in (name, "third-cluster-access")]
        sb.dispatch(event_factory.scheduled(sb.config.aws.region))
        assert theirs() == planted  # byte for byte, after a run, an adopt and a run
    finally:
        sb.onprem_server.delete_object(CALICO, "RemoteClusterConfiguration", name)
        sb.onprem_server.delete_object("v1", "Secret", "third-cluster-access", ns)
        for obj in ours.values():
            assert obj is not None
            sb.onprem_server.seed(obj)
        sb.reconcile(None, "apply")
