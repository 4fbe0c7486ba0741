"""Output for people: aligned with or without colour, no colour where it is not wanted."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from fedkeeper.render import Progress, ago, colour_wanted, paint, table, visible_width, yes_no


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_coloured_cells_line_up_with_plain_ones() -> None:
    rows = [["a", yes_no(True, True), "0"], ["longer-name", yes_no(False, True), "12"]]
    plain = [["a", "yes", "0"], ["longer-name", "NO", "12"]]

    coloured = table(["scenario", "ok", "writes"], rows).splitlines()
    expected = table(["scenario", "ok", "writes"], plain).splitlines()

    assert [visible_width(line) for line in coloured] == [len(line) for line in expected]
    assert [line.index("\033[") for line in coloured[1:]] == [len("longer-name  ")] * 2


def test_colour_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    assert colour_wanted(_Tty()) is True
    assert colour_wanted(io.StringIO()) is False  # a pipe or a file


def test_no_color_turns_colour_off_even_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert colour_wanted(_Tty()) is False


def test_paint_without_colour_is_the_text() -> None:
    assert paint("broken", "red", False) == "broken"
    assert paint("broken", "red", True) == "\033[31mbroken\033[0m"


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(seconds=5), "5 s ago"),
        (timedelta(minutes=3, seconds=59), "3 min ago"),
        (timedelta(hours=2, minutes=5), "2 h ago"),
        (timedelta(days=1, hours=1), "1 day ago"),
        (timedelta(days=3), "3 days ago"),
        (timedelta(seconds=-4), "just now"),
    ],
)
def test_times_read_as_how_long_ago(delta: timedelta, expected: str) -> None:
    now = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
    assert ago((now - delta).isoformat(), now) == expected


def test_progress_writes_only_to_a_terminal() -> None:
    pipe, tty = io.StringIO(), _Tty()
    for stream in (pipe, tty):
        p = Progress(stream)
        p.show("reconciling routes…")
        p.clear()
    assert pipe.getvalue() == ""
    assert "reconciling routes…" in tty.getvalue()
