"""Taking over a federation set up by hand: no duplicates, nothing adopted silently, then kept."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from fedkeeper.adopt import adopt
from fedkeeper.config import load_config
from fedkeeper.lambda_runtime import parse_manual
from fedkeeper.model import Action, Result, Severity
from fedkeeper.sandbox import Sandbox
from fedkeeper.sandbox.scenarios import (
    MANUAL_POOL,
    MANUAL_RCC,
    SCENARIOS,
    federation_objects,
    run_scenario,
)
from tests.conftest import EXAMPLE, ROOT

pytestmark = pytest.mark.xdist_group("adopt")


@pytest.fixture
def manual() -> Iterator[Sandbox]:
    """The manual procedure's end state: hand-made RCCs, Secrets, pool; aws-node by hand."""
    with Sandbox.start(load_config(EXAMPLE)) as sb:
        SCENARIOS["adopt-manual-setup"].inject(sb)
        sb.connections().forget_onprem()
        sb.clear_logs()
        yield sb


def test_a_reconcile_creates_no_duplicate_of_the_hand_made_federation(manual: Sandbox) -> None:
    first = manual.reconcile(None, "apply")  # the add-on's lost SNAT: its update rolls out
    manual.advance_time(manual.aws.addon_seconds_left())
    report = manual.reconcile(None, "apply")
    created = [
        c.change.target
        for r in (first, report)
        for c in r.changes
        if c.change.action is Action.CREATE
    ]
    assert created == []
    for backend, server in (("eks", manual.eks_server), ("onprem", manual.onprem_server)):
        rccs = server.list_objects("projectcalico.org/v3", "RemoteClusterConfiguration")
        assert [r["metadata"]["name"] for r in rccs] == [MANUAL_RCC[backend]]
    checks = {f.check for f in report.findings if f.severity is Severity.INFO}
    assert {"rcc.adoptable", "ippools.coverage"} <= checks
    assert report.converged, report.to_dict()


def test_nothing_is_adopted_by_a_reconcile(manual: Sandbox) -> None:
    manual.reconcile(None, "apply")
    assert federation_objects(manual)["onprem"]["owned"] == 0


def test_adopt_plan_lists_every_hand_made_object_and_writes_nothing(manual: Sandbox) -> None:
    report = adopt(manual.connections(), "plan")
    targets = {c.change.target for c in report.changes}
    assert f"onprem/IPPool/{MANUAL_POOL}" in targets
    assert "onprem/RemoteClusterConfiguration/aws-cluster" in targets
    assert "fed-eks/Secret/fedkeeper-access/remote-cluster-secret-onprem-cluster" in targets
    assert "onprem/ClusterRole/tigera-federation-remote-cluster" in targets
    assert all(c.result is Result.PLANNED for c in report.changes)
    counts = federation_objects(manual)
    assert len(targets) == sum(c["unowned"] for c in counts.values())
    assert manual.emulator_writes().total == 0


def test_adopt_apply_labels_only_and_keeps_names_and_specs(manual: Sandbox) -> None:
    api = "projectcalico.org/v3"
    before = manual.onprem_server.get_object(api, "RemoteClusterConfiguration", "aws-cluster")
    report = adopt(manual.connections(), "apply")
    assert report.converged, report.to_dict()
    after = manual.onprem_server.get_object(api, "RemoteClusterConfiguration", "aws-cluster")
    assert before is not None and after is not None
    assert after["spec"] == before["spec"]
    assert after["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "fedkeeper",
        "fedkeeper.io/federation": "fed-demo",
    }


def test_adopt_only_takes_the_selected_targets(manual: Sandbox) -> None:
    pool = f"onprem/IPPool/{MANUAL_POOL}"
    report = adopt(manual.connections(), "apply", only=[pool, "onprem/IPPool/typo"])
    assert [c.change.target for c in report.changes] == [pool]
    assert any(f.check == "adopt.unknown" and "typo" in f.message for f in report.findings)


def test_object_counts_before_and_after_adoption_show_no_duplicate(manual: Sandbox) -> None:
    before = federation_objects(manual)
    report = manual.invoke(
        "repair", json.loads((ROOT / "tests/events/manual/adopt_apply.json").read_text())
    )
    assert report["trigger"] == "manual adopt apply"
    manual.reconcile(None, "apply")
    after = federation_objects(manual)
    print(f"objects before adoption {before}; after {after}")
    for backend in ("eks", "onprem"):
        assert after[backend]["total"] == before[backend]["total"]
        assert before[backend]["owned"] == 0 and after[backend]["unowned"] == 0


def test_adopted_objects_are_kept_like_owned_ones(manual: Sandbox) -> None:
    adopt(manual.connections(), "apply")
    sa = manual.config.federation.remote_service_account
    manual.onprem_server.rotate_token(sa.namespace, sa.name)
    manual.onprem_server.mutate(
        "projectcalico.org/v3",
        "IPPool",
        MANUAL_POOL,
        None,
        lambda p: p["spec"].update(natOutgoing=True),
    )
    report = manual.reconcile(None, "apply")
    targets = {c.change.target for c in report.changes}
    assert f"onprem/IPPool/{MANUAL_POOL}" in targets
    assert "fed-eks/Secret/fedkeeper-access/remote-cluster-secret-onprem-cluster" in targets
    assert all(c.result is Result.APPLIED for c in report.changes)


def test_the_adopt_manual_setup_scenario_heals() -> None:
    with Sandbox.start(load_config(EXAMPLE)) as sb:
        result = run_scenario(sb, SCENARIOS["adopt-manual-setup"])
    assert result.ok, result.report.to_dict()


def test_the_manual_payload_offers_adopt_with_plan_as_default() -> None:
    assert parse_manual({"action": "adopt"}).mode == "plan"  # type: ignore[union-attr]


def test_a_bad_adopt_mode_is_refused_naming_the_field() -> None:
    from fedkeeper.lambda_runtime import InvalidRequestError

    with pytest.raises(InvalidRequestError) as exc:
        parse_manual({"action": "adopt", "mode": "now"})
    assert exc.value.errors[0].startswith("mode: 'now' is not a mode")


def test_the_cli_shows_the_take_over_and_writes_nothing_by_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fedkeeper.cli import main

    code = main(["adopt", "--sandbox", "--scenario", "adopt-manual-setup", "-c", str(EXAMPLE)])
    out = capsys.readouterr().out
    assert code == 1  # like `plan`: something is planned
    assert f"[planned] update onprem/IPPool/{MANUAL_POOL}" in out
    assert "[planned] update onprem/RemoteClusterConfiguration/aws-cluster" in out


def test_the_kill_switch_turns_an_adopt_apply_into_a_plan(
    manual: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDKEEPER_MODE", "plan")
    report = manual.invoke("repair", {"action": "adopt", "mode": "apply"})
    assert report["mode"] == "plan" and report["changes"]
    assert manual.emulator_writes().total == 0


def test_adopt_exits_0_when_there_is_nothing_to_take_over(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fedkeeper.cli import main

    code = main(["adopt", "--sandbox", "-c", str(EXAMPLE)])
    assert "changes: none" in capsys.readouterr().out
    assert code == 0
