"""`fedkeeper status` on the sandbox: healthy when healthy; names the broken thing and why."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from fedkeeper.config import load_config
from fedkeeper.render import render_status as render
from fedkeeper.sandbox import Sandbox
from fedkeeper.sandbox.scenarios import SCENARIOS
from fedkeeper.status import Status, federation_status
from tests.conftest import EXAMPLE

pytestmark = pytest.mark.xdist_group("status")

# The section each scenario's fault shows up in, and a word its reason must contain.
EXPECTED = {
    "route-propagation-disabled": ("routes", "does not propagate"),
    "snat-reset-by-addon-update": ("snat", "AWS_VPC_K8S_CNI_EXTERNALSNAT"),
    "snat-reset-self-managed": ("snat", "self-managed"),
    "vpc-secondary-cidr": ("ippools", "10.101.0.0/16"),
    "vpc-cidr-removed": ("ippools", "no longer associated"),
    "onprem-pool-drifted": ("ippools", "natOutgoing"),
    "foreign-overlapping-pool": ("ippools", "covered by on-prem pool team-b-aws-range"),
    "rcc-deleted-onprem": ("rcc", "RemoteClusterConfiguration fed-eks is missing"),
    "rcc-deleted-eks": ("rcc", "RemoteClusterConfiguration onprem is missing"),
    "token-rotated": ("rcc", "token rotated"),
    "tunnels-down-then-up": ("vpn", "no VPN tunnel is up"),
    # Set by hand with kubectl, not in the add-on: the next add-on update would reset it.
    "adopt-manual-setup": ("snat", "AWS_VPC_K8S_CNI_EXTERNALSNAT"),
}
# Faults that are no fault: an unowned pool that covers a VPC CIDR does the job (reported).
HEALTHY_BY_DESIGN = {"foreign-overlapping-pool"}


def render_status(status: Status) -> str:
    return render(status.to_dict())


@pytest.fixture
def fresh() -> Iterator[Sandbox]:
    with Sandbox.start(load_config(EXAMPLE)) as sb:
        yield sb


def test_every_scenario_has_an_expectation() -> None:
    assert set(EXPECTED) == set(SCENARIOS)


def test_healthy_sandbox_says_healthy(fresh: Sandbox) -> None:
    status = federation_status(fresh.connections())
    assert status.healthy, render_status(status)
    text = render_status(status)
    assert (
        re.search(r"UP \(changed \d+ (s|min) ago\)", text)
        and "AWS_VPC_K8S_CNI_EXTERNALSNAT=true" in text
    )
    assert fresh.emulator_writes().total == 0


@pytest.mark.parametrize("name", list(EXPECTED))
def test_status_names_the_broken_thing(fresh: Sandbox, name: str) -> None:
    SCENARIOS[name].inject(fresh)
    fresh.connections().forget_onprem()
    fresh.clear_logs()
    status = federation_status(fresh.connections())
    section, word = EXPECTED[name]
    sec = next(s for s in status.sections if s.invariant == section)
    if name in HEALTHY_BY_DESIGN:
        assert sec.health == "healthy", render_status(status)
        assert any(word in f for f in sec.facts), render_status(status)
    else:
        assert sec.health in {"broken", "degraded"}, render_status(status)
        assert any(word in r for r in sec.reasons), render_status(status)
    assert fresh.emulator_writes().total == 0  # status never writes
