"""Ordinary mistakes through the real ``fedkeeper`` command, one subprocess each: the
documented exit code, one line on stderr naming the fix, no traceback, nothing half done."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.bad_inputs import CASES, Case, default_command, make_files, run_case, shows_traceback


def test_the_table_covers_at_least_forty_mistakes() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_one_line_naming_the_fix(case: Case, tmp_path: Path) -> None:
    make_files(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())

    outcome = run_case(case, tmp_path, default_command())

    assert not shows_traceback(outcome.stderr), outcome.stderr
    assert outcome.code == case.code, outcome.stderr
    lines = outcome.stderr.strip().splitlines()
    if case.kind == "pipe":
        assert lines == []  # `| head` is not an error worth a word
    else:
        assert len(lines) == 1, outcome.stderr
        assert lines[0].startswith("fedkeeper: ")
        assert case.fix in lines[0]
    if case.kind == "run" and case.code == 2:
        assert outcome.stdout == ""  # refused before it started
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing was written
    if case.code == 1 and case.kind == "run":
        assert outcome.stdout.startswith("fedkeeper ")  # the header: what it acted on
