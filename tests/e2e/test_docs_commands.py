"""Every command in README.md and docs/ runs as written in a fresh clone, or says it needs an
AWS account.

A command is a line of a shell block (```sh, ```bash, or an unlabelled block) that starts
with a known program. One needs an AWS account when its line or its block's first line says
``# needs an AWS account``, or its page says "Every command on this page needs an AWS
account". The others run here, in a directory holding only the repository's tracked files
(a fresh clone: no federation.yaml of anyone's): ``make`` targets must exist; ``fedkeeper``
commands run through the real CLI and must end without an error (exit 0, or 1 when they
report drift). A block that starts a persistent sandbox (``fedkeeper sandbox up``) runs as
one sequence, in order, on free ports, and whatever it leaves running is stopped.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedkeeper.cli import UsageError, build_parser, main

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
    block: int = 0  # line of its block's opening fence

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
                fence_line = block[0][0] - 1
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
                        out.append(DocCommand(path.name, n, cmd, aws, fence_line))
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


def _starts_sandbox(c: DocCommand) -> bool:
    return c.argv[0].endswith("fedkeeper") and c.argv[1:3] == ["sandbox", "up"]


# A block with `sandbox up` is one case: its commands depend on each other, in order.
SEQUENCES = [
    [c for c in COMMANDS if c.doc == first.doc and c.block == first.block]
    for first in COMMANDS
    if _starts_sandbox(first)
]
SINGLE = [c for c in COMMANDS if not any(c in seq for seq in SEQUENCES)]


@pytest.fixture
def fresh_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with the tracked files only (each top-level entry linked)."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in sorted({path.split("/", 1)[0] for path in tracked}):
        (clone / name).symlink_to(ROOT / name)
    monkeypatch.chdir(clone)
    monkeypatch.setenv("FEDKEEPER_SANDBOX_HOME", str(tmp_path / "sandbox-home"))
    monkeypatch.setenv("FEDKEEPER_SANDBOX_PORT", "0")
    # `apply` waits for its add-on update to roll out: a second here, not EKS's minute.
    monkeypatch.setenv("FEDKEEPER_SANDBOX_ADDON_ROLLOUT_S", "1")
    return clone


def _run(command: DocCommand, capsys: pytest.CaptureFixture[str]) -> None:
    program, *args = command.argv
    assert program in OFFLINE_PROGRAMS, f"{command.text!r}: mark it '{AWS_MARK}' or make it run"
    if program == "make":
        targets = re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M)
        assert all(a in targets for a in args), f"{command.text!r}: no such make target"
        return
    code = main(args)
    err = capsys.readouterr().err
    assert code in (0, 1), f"{command.doc}:{command.line} {command.text}: {err}"
    assert not [line for line in err.splitlines() if line.startswith("fedkeeper: ")], err


@pytest.mark.parametrize("command", SINGLE, ids=[_id(c) for c in SINGLE])
def test_doc_command_runs_as_written_or_needs_aws(
    command: DocCommand, fresh_clone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if command.needs_aws:
        if command.argv[0].endswith("fedkeeper"):
            # It cannot run here, but it must still be a command the CLI takes.
            try:
                build_parser().parse_args(command.argv[1:])
            except UsageError as exc:
                pytest.fail(f"{command.doc}:{command.line} {command.text}: {exc}")
        return
    _run(command, capsys)


@pytest.mark.slow
@pytest.mark.xdist_group("persistent-sandbox")
@pytest.mark.parametrize("sequence", SEQUENCES, ids=[_id(s[0]) for s in SEQUENCES])
def test_a_doc_block_on_the_persistent_sandbox_runs_in_order(
    sequence: list[DocCommand], fresh_clone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fedkeeper.sandbox.persistent import stop_world

    try:
        for command in sequence:
            _run(command, capsys)
    finally:
        stop_world()


def test_the_docs_show_the_persistent_sandbox_loop() -> None:
    assert SEQUENCES, "no doc block starts a persistent sandbox"
    assert any(c.argv[1:3] == ["sandbox", "down"] for c in SEQUENCES[0])
