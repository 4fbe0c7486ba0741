"""The docs say what the program does: generated blocks are current, every reference to a
file or section points at one that exists, and the figures a person wrote match the code.

Figures about the synthesized stacks (stacks, functions, alarms) are checked against the
templates in ``tests/infra/test_docs_figures.py``.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from docgen import sections
from docgen.__main__ import problems_in_docs
from fedkeeper import cli
from fedkeeper.sandbox import persistent
from fedkeeper.sandbox.scenarios import SCENARIOS, Scenario, ScenarioResult
from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CODE = [
    *sorted(
        p
        for top in ("fedkeeper", "lambdas", "stacks", "bench", "docgen", "tests")
        for p in (ROOT / top).rglob("*.py")
    ),
    ROOT / "app.py",
]


def tracked_files() -> list[str]:
    import subprocess

    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.split()


# --- generated blocks --------------------------------------------------------------------------


def test_every_generated_block_of_the_docs_is_current() -> None:
    assert problems_in_docs() == []


def test_a_new_scenario_without_make_docs_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = Scenario("new-fault", "a fault added later", print, lambda sb: {}, lambda sb: True)
    monkeypatch.setitem(SCENARIOS, "new-fault", extra)

    problems = problems_in_docs()

    assert any("(demo-sample)" in p and "13 scenario(s)" in p for p in problems)
    assert any("(scenarios): out of date" in p for p in problems)


def test_a_new_json_key_without_make_docs_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    to_dict = ScenarioResult.to_dict
    monkeypatch.setattr(ScenarioResult, "to_dict", lambda self: {**to_dict(self), "new": 1})

    assert any("(demo-json-keys): out of date" in p for p in problems_in_docs())


def test_the_demo_json_keys_in_the_readme_are_those_of_a_real_result() -> None:
    readme = (ROOT / "README.md").read_text()
    line = sections.render_demo_json_keys()
    assert line in readme
    for key in ("scenario", "trigger", "time_to_repair_s", "report"):
        assert f'"{key}"' in line


# --- references to files and sections ------------------------------------------------------------

_SPAN = re.compile(r"`([^`\s]+)`")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_PATHLIKE = re.compile(r"^[\w.-]+(/[\w.-]+)*/?$")
# `docs/X.md, "Section"`, `docs/X.md "Section"`, `docs/X.md ("Section")`
_SECTION_AFTER_FILE = re.compile(
    r"(?<![\"\w/.-])([\w/.-]+\.md)`?(?:,\s*|\s+\(?)\"([A-Z][^\"\n]{2,80})\""
)
_SEE_SECTION = re.compile(r"\(see \"([^\"]+)\"\)")


def plain(text: str) -> str:
    """A heading or a reference to it, without Markdown's marks, in lower case."""
    return re.sub(r"[`*]", "", text).strip().lower()


def headings(path: Path) -> set[str]:
    return {plain(line.lstrip("#")) for line in path.read_text().splitlines() if line[:1] == "#"}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def file_reference_problems(text: str, source: str, tracked: list[str]) -> list[str]:
    """Spans and links in ``text`` that name a file of this repository that does not exist."""
    top = {p.split("/", 1)[0] for p in tracked}
    dirs = {part for p in tracked for part in p.split("/")[:-1]}
    basenames = {p.rsplit("/", 1)[-1] for p in tracked}
    problems = []
    for raw in _SPAN.findall(text) + _LINK.findall(text):
        ref = raw.split("#", 1)[0].removeprefix("./")
        if not ref or "://" in ref or not _PATHLIKE.match(ref) or ref.startswith("."):
            continue
        first = ref.split("/", 1)[0]
        if "/" not in ref:
            if ref.endswith((".py", ".md")) and ref not in basenames and ref not in top:
                problems.append(f"{source}: `{ref}` is no file of the repository")
            continue
        if first in top:
            exists = (ROOT / ref).exists()
        elif first in dirs:  # a path inside the tree, written from a subfolder
            exists = any(p == ref or p.endswith("/" + ref) or p.startswith(ref) for p in tracked)
            exists = exists or any(f"/{ref.rstrip('/')}/" in f"/{p}" for p in tracked)
        else:
            continue  # another project's path (an upstream source cited)
        if not exists:
            problems.append(f"{source}: `{ref}` does not exist")
    return problems


def section_reference_problems(text: str, source: Path) -> list[str]:
    problems = []
    for doc, section in _SECTION_AFTER_FILE.findall(text):
        target = next((d for d in DOCS if str(d).endswith("/" + doc.removeprefix("./"))), None)
        if target is None:
            problems.append(f"{source.name}: {doc} does not exist")
        elif plain(section) not in headings(target):
            problems.append(f'{source.name}: {doc} has no section "{section}"')
    if source.suffix == ".md":
        for section in _SEE_SECTION.findall(text):
            if plain(section) not in headings(source):
                problems.append(f'{source.name}: no section "{section}" here')
        for link in _LINK.findall(text):
            if "#" not in link or "://" in link:
                continue
            doc, anchor = link.split("#", 1)
            target = (source.parent / doc).resolve() if doc else source
            if not target.exists() or anchor not in {slug(h) for h in headings(target)}:
                problems.append(f"{source.name}: link {link} names no section")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_file_a_doc_names_exists(doc: Path) -> None:
    assert file_reference_problems(doc.read_text(), doc.name, tracked_files()) == []


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_section_a_doc_names_exists(doc: Path) -> None:
    assert section_reference_problems(doc.read_text(), doc) == []


def test_every_doc_the_code_cites_exists_with_the_section_it_names() -> None:
    problems = []
    for path in CODE:
        if path == Path(__file__):  # its own examples of broken references
            continue
        text = path.read_text()
        for doc in re.findall(r"\b([\w/.-]*[A-Z][\w-]*\.md)\b", text):
            if not any(str(d).endswith(doc) for d in DOCS):
                problems.append(f"{path.relative_to(ROOT)}: cites {doc}, which does not exist")
        problems += section_reference_problems(text, path)
    assert problems == []


def test_the_reference_check_catches_a_missing_file_and_a_missing_section() -> None:
    text = 'See `fedkeeper/nothing.py`, `DESIGN.md` and docs/SANDBOX.md, "No such part".'
    assert len(file_reference_problems(text, "x.md", tracked_files())) == 2
    assert section_reference_problems(text, ROOT / "README.md") == [
        'README.md: docs/SANDBOX.md has no section "No such part"'
    ]


# --- figures written by hand ------------------------------------------------------------------


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_the_readme_synopsis_names_every_command_and_only_real_options() -> None:
    readme = (ROOT / "README.md").read_text()
    synopsis = readme.split("## The CLI", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    commands = _commands()
    for name, parser in commands.items():
        lines = [line for line in synopsis.splitlines() if line.split()[1:2] == [name]]
        assert lines, f"the README's CLI synopsis leaves out `fedkeeper {name}`"
        known = {o for a in parser._actions for o in a.option_strings}
        for sub in parser._actions:
            if isinstance(sub, argparse._SubParsersAction):
                known |= {
                    o for p in sub.choices.values() for a in p._actions for o in a.option_strings
                }
        for line in lines:
            options = re.findall(r"(--[a-z][\w-]*)", line.split("#", 1)[0])
            assert set(options) <= known, f"{line}: {set(options) - known}"


def test_the_architecture_page_lists_every_command() -> None:
    row = next(
        line
        for line in (ROOT / "docs" / "ARCHITECTURE.md").read_text().splitlines()
        if line.startswith("| CLI |")
    )
    listed = set(re.findall(r"[a-z][\w-]*", row.split("`fedkeeper", 1)[1]))
    assert set(_commands()) <= listed


def test_the_readme_exit_codes_are_the_clis() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("**Exit codes**", 1)[1].split("\n\n", 2)[1]
    documented = re.findall(r"^\| (\d+) \|", table, re.M)
    assert documented == re.findall(r"^  (\d+) ", cli.EXIT_CODES, re.M)


def test_the_readme_deadline_figures_are_the_clis() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    low, high = f"{cli.MIN_DEADLINE_S:g}", f"{cli.MAX_DEADLINE_S:g}"
    assert f"(default {cli.DEFAULT_DEADLINE_S:g}," in readme
    assert f"{low} to {high})" in readme


def test_the_sandbox_ports_in_the_docs_are_the_defaults() -> None:
    base = persistent.DEFAULT_PORT
    assert base == cli._SANDBOX_PORT
    readme = " ".join((ROOT / "README.md").read_text().split())
    sandbox_doc = " ".join((ROOT / "docs" / "SANDBOX.md").read_text().split())
    for text in (readme, sandbox_doc):
        assert f"AWS on {base}, EKS on {base + 1}, on-prem on {base + 2}" in text


def test_the_readme_versions_are_the_pinned_ones() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    requirements = (ROOT / "requirements.txt").read_text()
    cdk = re.search(r"^aws-cdk-lib==(\d+\.\d+)\.\d+$", requirements, re.M)
    kube = re.search(r"^kubernetes>=(\d+)\.", requirements, re.M)
    assert cdk and f"aws-cdk-lib {cdk.group(1)}" in readme
    assert kube and f"kubernetes {kube.group(1)}.x" in readme
    from importlib.metadata import version

    jsii = ".".join(version("jsii").split(".")[:2])
    assert f"jsii ({jsii} here" in readme


def test_the_layout_names_every_tracked_top_level_folder() -> None:
    layout = sections.render_layout()
    folders = {p.split("/", 1)[0] for p in tracked_files() if "/" in p and not p.startswith(".")}
    assert {f for f in folders if f"{f}/" not in layout} == set()
