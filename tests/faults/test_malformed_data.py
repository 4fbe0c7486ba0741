"""Malformed data is a finding, never a crash: any shape, through the real clients.

Hypothesis writes values of any JSON shape into what fedkeeper reads (owned access Secret,
token Secret, RCC spec, IP pool spec, the add-on's configurationValues, a foreign RCC) by
editing the emulators' stores directly, as a hand edit would. Each run must end with a
Report; a bad owned object is repaired by the next run; a foreign one is left as it is.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fedkeeper.config import load_config
from fedkeeper.invariants.ippools import pool_name
from fedkeeper.sandbox import Sandbox
from tests.conftest import EXAMPLE
from tests.faults.test_faults import heal

pytestmark = pytest.mark.xdist_group("malformed")

CALICO = "projectcalico.org/v3"
ANY = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
FEW = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox.start(load_config(EXAMPLE)) as sandbox:
        yield sandbox


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _no_crash_then_healed(sb: Sandbox) -> None:
    first = sb.reconcile(None, "apply")
    crashes = [e for e in first.errors if "malformed data" in e.message]
    assert not crashes, first.to_dict()
    healed = heal(sb)
    assert healed.converged, healed.to_dict()


def _edit(
    server: Any, api: str, kind: str, name: str, ns: str | None
) -> Callable[[Callable[[dict[str, Any]], None]], None]:
    return lambda fn: server.mutate(api, kind, name, ns, fn)


@FEW
@given(value=ANY)
def test_an_owned_access_secret_of_any_shape_is_repaired(sb: Sandbox, value: Any) -> None:
    def bad(s: dict[str, Any]) -> None:
        s["data"] = {"kubeconfig": _b64(yaml.safe_dump(value)), "datastoreType": _b64("x")}

    _edit(sb.eks_server, "v1", "Secret", "remote-cluster-secret-onprem", "fedkeeper-access")(bad)
    _no_crash_then_healed(sb)


@FEW
@given(value=ANY)
def test_an_owned_rcc_spec_of_any_shape_is_repaired(sb: Sandbox, value: Any) -> None:
    def bad(r: dict[str, Any]) -> None:
        r["spec"] = value if isinstance(value, dict) else {"clusterAccessSecret": value}

    _edit(sb.onprem_server, CALICO, "RemoteClusterConfiguration", "fed-eks", None)(bad)
    _no_crash_then_healed(sb)


@FEW
@given(value=ANY)
def test_an_owned_pool_with_fields_of_any_shape_is_repaired(sb: Sandbox, value: Any) -> None:
    def bad(p: dict[str, Any]) -> None:
        p["spec"]["natOutgoing"] = value
        p["spec"]["ipipMode"] = value

    _edit(sb.onprem_server, CALICO, "IPPool", pool_name("10.100.0.0/16"), None)(bad)
    _no_crash_then_healed(sb)


ENV = st.dictionaries(
    st.sampled_from(["AWS_VPC_K8S_CNI_EXTERNALSNAT", "WARM_IP_TARGET", "AWS_VPC_K8S_CNI_LOGLEVEL"]),
    st.sampled_from(["true", "false", "True", "", " true", "1"]) | st.text(max_size=4),
    max_size=3,
)


@FEW
@given(env=ENV)
def test_addon_configuration_values_of_any_shape_never_crash(
    sb: Sandbox, env: dict[str, str]
) -> None:
    # EKS validates configurationValues against the add-on's schema (strings in "env"):
    # only what it accepts can be read back.
    try:
        sb.aws.reset_addon_configuration(
            sb.config.sole_eks().cluster_name, "vpc-cni", json.dumps({"env": env})
        )
    except Exception:
        assume(False)
    report = sb.reconcile(None, "apply")
    assert not [e for e in report.errors if "malformed data" in e.message], report.to_dict()
    sb.aws.reset_addon_configuration(sb.config.sole_eks().cluster_name, "vpc-cni", "{}")
    assert heal(sb).converged


@FEW
@given(value=ANY)
def test_a_foreign_rcc_of_any_shape_is_reported_and_left_alone(sb: Sandbox, value: Any) -> None:
    body = {"metadata": {"name": "partner"}, "spec": value}
    sb.onprem_server.delete_object(CALICO, "RemoteClusterConfiguration", "partner")
    sb.onprem_server.seed({"apiVersion": CALICO, "kind": "RemoteClusterConfiguration", **body})
    seeded = sb.onprem_server.get_object(CALICO, "RemoteClusterConfiguration", "partner")
    report = sb.reconcile(None, "apply")
    assert not [e for e in report.errors if "malformed data" in e.message], report.to_dict()
    kept = sb.onprem_server.get_object(CALICO, "RemoteClusterConfiguration", "partner")
    assert kept == seeded
    assert not any("partner" in c.change.target for c in report.changes)
    sb.onprem_server.delete_object(CALICO, "RemoteClusterConfiguration", "partner")


@FEW
@given(value=ANY)
def test_onprem_credentials_of_any_shape_are_a_clear_error_and_eks_is_still_repaired(
    sb: Sandbox, value: Any
) -> None:
    sm = sb.aws_session().client("secretsmanager")
    name = sb.config.sole_site().credentials_secret
    good = sm.get_secret_value(SecretId=name)["SecretString"]
    sm.put_secret_value(SecretId=name, SecretString=yaml.safe_dump(value))
    sb.connections().forget_onprem()
    sb.eks_server.delete_object(CALICO, "RemoteClusterConfiguration", "onprem")
    try:
        report = sb.reconcile(None, "apply")
    finally:
        sm.put_secret_value(SecretId=name, SecretString=good)
        sb.connections().forget_onprem()
    assert not [e for e in report.errors if "malformed data" in e.message], report.to_dict()
    assert any(name in f.reason for f in report.failed_targets), report.to_dict()
    applied = {c.change.target for c in report.changes if c.result.value == "applied"}
    assert "fed-eks/RemoteClusterConfiguration/onprem" in applied
    assert heal(sb).converged
