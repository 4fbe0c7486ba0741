"""The watch section of docs/ARCHITECTURE.md states what the code computes."""

from __future__ import annotations

import re

from fedkeeper.config import FederationConfig
from fedkeeper.fights import FIGHT_REPAIRS, HOLD_FIRST_S, HOLD_MAX_S, most_writes_in_an_hour
from fedkeeper.watch import ERROR_CHARS, MAX_LISTS_PER_MINUTE, SERVER_TIMEOUT, SILENCE_S
from fedkeeper.watch_function import (
    LEASE_S,
    MARGIN_S,
    RENEW_S,
    STATE_BUDGET,
    watch_figures,
)
from tests.conftest import ROOT
from tests.watch_support import worst_state

DOC = ROOT / "docs" / "ARCHITECTURE.md"


def _section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## The watch function")
    return text[start : text.index("\n## ", start + 3)]


def _n(value: float) -> str:
    return f"{round(value):,}"


def test_the_cost_and_load_table_holds_the_figures_the_settings_give(
    config: FederationConfig,
) -> None:
    table = re.search(r"<!-- watch-figures.*?-->(.*)<!-- /watch-figures -->", _section(), re.S)
    assert table is not None
    rows = table.group(1)
    figures = {c.name: watch_figures(config, c.name) for c in config.clusters}
    assert len(set(map(str, figures.values()))) == 1  # the same load on both API servers
    f = watch_figures(config)
    for phrase in (
        f"**{_n(f['holder_gb_s'])} GB-s/month ≈ ${f['holder_usd']:.2f}**",
        f"of which {_n(f['invocations_per_hour'] * 730)} hold the lease "
        f"({_n(f['invocations_per_hour'])} an hour) and {_n(f['quick_starts'])} find it held",
        f"≈ ${f['quick_usd']:.2f} with the requests",
        f"{_n(f['lease_writes'])} lease writes/month",
        f"≈ ${f['lease_usd']:.2f}",
        f"**{_n(f['watches'])}** | 0",
        f"**{_n(f['steady_requests_per_hour'])}**: each watch re-opened every "
        f"{SERVER_TIMEOUT} s ({_n(f['watch_opens_per_hour_per_watch'])} an hour)",
        f"**{_n(f['worst_requests_per_hour'])}**",
        f"({_n(f['worst_lists_per_hour_per_watch'])} lists and as many refused watches",
    ):
        assert phrase in rows, phrase


def test_the_watch_section_states_the_settings_and_bounds_it_runs_with(
    config: FederationConfig,
) -> None:
    most, last_hour = most_writes_in_an_hour()
    section = " ".join(_section().split())
    for phrase in (
        f"at most {MAX_LISTS_PER_MINUTE} lists a minute per watch",
        f"says nothing for {SILENCE_S:.0f} s",
        f"end it after {SERVER_TIMEOUT} s",
        f"repaired more than {FIGHT_REPAIRS} times within an hour",
        f"{HOLD_FIRST_S // 60} minute, then twice as long each time, up to an hour"
        if HOLD_MAX_S == 3600
        else "",
        f"at most {most} times in any hour, and once an hour" if last_hour == 1 else "",
        f"renewed every {RENEW_S:.0f} s to last {LEASE_S:.0f} s",
        f"until {MARGIN_S:.0f} s before its 15-minute timeout",
        f"cut to {ERROR_CHARS} characters",
        f"At its largest it is {_n(len(worst_state(config).to_json()))} characters",
        f"a state over {_n(STATE_BUDGET)} is trimmed",
    ):
        assert phrase in section, phrase
