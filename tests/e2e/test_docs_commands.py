"""Every command in README.md and docs/ runs as written in a fresh clone, or says it needs an
AWS account.

A command is a line of a shell block (```sh, ```bash, or an unlabelled block) that starts
with a known program. One needs an AWS account when its line or its block's first line says
``# needs an AWS account``, or its page says "Every command on this page needs an AWS
account". The others run here: ``make`` targets must exist; ``fedkeeper`` commands run
through the real CLI and must end without an error (exit 0, or 1 when they report drift).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedkeeper.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROGRAMS = ("make", "fedkeeper", ".venv/bin/fedkeeper", "cdk", "aws", "npm", "python", "pip")
AWS_MARK = "# needs an AWS account"
PAGE_MARK = "Every command on this page needs an AWS account"
OFFLINE_PROGRAMS = ("make", "fedkeeper", ".venv/bin/fedkeeper")


@dataclass(frozen=True)
class DocCommand:
    doc: str
    line: int
    text: str
    needs_aws: bool

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text.split(" # ")[0], comments=True)


def _commands(path: Path) -> list[DocCommand]:
    text = path.read_text(encoding="utf-8")
    page_aws = PAGE_MARK in " ".join(text.split())
    out: list[DocCommand] = []
    block: list[tuple[int, str]] | None = None
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        fence = re.match(r"^```(\w*)", line)
        if fence and block is None:
            block = [] if fence.group(1) in ("", "sh", "bash", "shell") else None
            if block is None:
                block = [(-1, "")]  # another language: skip to its end
            continue
        if line.startswith("```") and block is not None:
            if block and block[0][0] != -1:
                block_aws = block[0][1].startswith(AWS_MARK)
                joined: list[tuple[int, str]] = []
                for n, cmd in block:
                    if joined and joined[-1][1].endswith("\\"):
                        joined[-1] = (joined[-1][0], joined[-1][1][:-1] + " " + cmd)
                    else:
                        joined.append((n, cmd))
                for n, cmd in joined:
                    if cmd.split(" ", 1)[0] in PROGRAMS:
                        aws = page_aws or block_aws or AWS_MARK in cmd
                        out.append(DocCommand(path.name, n, cmd, aws))
            block = None
            continue
        if block is not None and (not block or block[0][0] != -1):
            block.append((no, line))
    return out


COMMANDS = [c for doc in DOCS for c in _commands(doc)]


def _id(c: DocCommand) -> str:
    return f"{c.doc}:{c.line}:{c.text[:40]}"


def test_the_docs_hold_commands_to_check() -> None:
    assert any(c.argv[0] == "make" for c in COMMANDS)
    assert any(c.argv[0].endswith("fedkeeper") for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=[_id(c) for c in COMMANDS])
def test_doc_command_runs_as_written_or_needs_aws(
    command: DocCommand, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if command.needs_aws:
        return
    program, *args = command.argv
    assert program in OFFLINE_PROGRAMS, f"{command.text!r}: mark it '{AWS_MARK}' or make it run"
    if program == "make":
        targets = re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M)
        assert all(a in targets for a in args), f"{command.text!r}: no such make target"
        return
    monkeypatch.chdir(ROOT)
    code = main(args)
    err = capsys.readouterr().err
    assert code in (0, 1), err
    assert not [line for line in err.splitlines() if line.startswith("fedkeeper: ")], err
