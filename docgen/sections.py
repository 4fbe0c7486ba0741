"""What each generated block of the docs says, computed from the program.

Two kinds of block:

* *computed*: rendered from the code and the files alone (fast, the same every time);
  ``python -m docgen --check`` renders them again and fails on any difference;
* *recorded*: a real run's output (the demo), rendered by ``make docs``; measured times
  differ from run to run, so the check re-validates what must not drift instead: the
  header, the scenario count, every scenario's row in order, the verdict.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = "federation.example.yaml"


@dataclass(frozen=True)
class Section:
    name: str
    doc: str  # relative to the repository root
    render: Callable[[], str]
    # For a recorded block: the problems of a recorded body ([] when it still holds).
    validate: Callable[[str], list[str]] | None = None

    @property
    def recorded(self) -> bool:
        return self.validate is not None


# --- README: the layout -------------------------------------------------------------------

# What a docstring cannot say: files without one, and folders that are not packages.
_LAYOUT_NOTES = {
    "app.py, cdk.json": "CDK app: reads federation.yaml, builds the stacks",
    "docs/": "ARCHITECTURE, SANDBOX, DEPLOY, BENCHMARKS",
    "fedkeeper/adapters/": "aws (boto3), kube (kubernetes client), auth (EKS token, kubeconfig)",
    "tests/": "unit (pure), integration (real clients), infra (CDK), e2e, faults",
    "Makefile": "demo, test (lint, types, docs, tests), docs, bench, synth",
}


def _summary(path: Path) -> str:
    """The first sentence of a module's (or package's) docstring, on one line."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    paragraph = " ".join(doc.split("\n\n")[0].split())
    return re.split(r"(?<=\.)\s", paragraph, maxsplit=1)[0].rstrip(".:").replace("``", "`")


def _line(name: str, text: str, indent: str = "") -> str:
    left = f"{indent}{name}"
    return f"{left:<26}{text}"


def render_layout() -> str:
    """The repository's layout: each top folder, and each fedkeeper module, with its summary."""
    lines = ["```text", _line("app.py, cdk.json", _LAYOUT_NOTES["app.py, cdk.json"])]
    modules = sorted(p.name for p in (ROOT / "stacks").glob("*.py") if p.stem != "__init__")
    summary = _summary(ROOT / "stacks" / "__init__.py")
    lines.append(_line("stacks/", f"{summary}: {', '.join(modules)}"))
    lines.append(_line("lambdas/", _summary(ROOT / "lambdas" / "__init__.py")))
    lines.append("fedkeeper/")
    package = ROOT / "fedkeeper"
    for entry in sorted(package.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(("_", ".")) or entry.name == "py.typed":
            continue
        if entry.is_dir():
            key = f"fedkeeper/{entry.name}/"
            text = _LAYOUT_NOTES.get(key) or _summary(entry / "__init__.py")
            lines.append(_line(f"{entry.name}/", text, "  "))
        elif entry.suffix == ".py":
            lines.append(_line(entry.name, _summary(entry), "  "))
    lines.append(_line("docgen/", _summary(ROOT / "docgen" / "__init__.py")))
    lines.append(_line("bench/", _summary(ROOT / "bench" / "__init__.py")))
    lines.append(_line("docs/", _LAYOUT_NOTES["docs/"]))
    lines.append(_line("tests/", _LAYOUT_NOTES["tests/"]))
    lines.append(_line("Makefile", _LAYOUT_NOTES["Makefile"]))
    lines.append("```")
    return "\n".join(lines)


# --- README: the demo ---------------------------------------------------------------------


def _example_header() -> str:
    from fedkeeper.cli import Loaded, header
    from fedkeeper.config import load_config

    loaded = Loaded(EXAMPLE, load_config(ROOT / EXAMPLE))
    return header("demo", loaded, "sandbox", loaded.config.aws.region)


def render_demo_sample() -> str:
    """A real ``fedkeeper demo`` run: its first lines, its summary table and its verdict."""
    import os

    from fedkeeper.config import load_config
    from fedkeeper.sandbox.demo import run_demo

    os.environ["NO_COLOR"] = "1"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run_demo(load_config(ROOT / EXAMPLE), header=_example_header())
    lines = out.getvalue().splitlines()
    table_start = max(i for i, line in enumerate(lines) if line.startswith("scenario "))
    return "\n".join(["```text", *lines[:3], "...", *lines[table_start:], "```"])


def validate_demo_sample(body: str) -> list[str]:
    from fedkeeper.sandbox.demo import summary_table
    from fedkeeper.sandbox.scenarios import SCENARIOS

    lines = [line for line in body.strip("\n").splitlines() if not line.startswith("```")]
    names = list(SCENARIOS)
    problems = []
    if not lines or lines[0] != _example_header():
        problems.append(f"the first line is not the demo's header ({_example_header()!r})")
    if len(lines) < 2 or lines[1] != f"{len(names)} scenario(s)":
        problems.append(f"the count line is not '{len(names)} scenario(s)'")
    headers = summary_table([], colour=False).split()
    starts = [i for i, line in enumerate(lines) if line.startswith("scenario ")]
    if not starts or lines[starts[0]].split() != headers:
        problems.append(f"the table's header is not {' '.join(headers)!r}")
        return problems
    rows = lines[starts[0] + 1 : starts[0] + 1 + len(names)]
    shown = [row.split()[0] for row in rows]
    if shown != names:
        problems.append(f"the table's scenarios are {shown}, the demo runs {names}")
    verdict = lines[-1] if lines else ""
    want = rf"^{len(names)}/{len(names)} scenarios healed in [0-9.]+ s$"
    if not re.match(want, verdict):
        problems.append(f"the last line {verdict!r} is not '{len(names)}/{len(names)} ...'")
    return problems


def render_demo_json_keys() -> str:
    """The keys of each object ``fedkeeper demo --json`` prints."""
    from fedkeeper.model import Report, Scope
    from fedkeeper.sandbox.scenarios import ScenarioResult

    report = Report(mode="apply", scope=Scope(frozenset()))

    def result(latency_source: str = "", prelude: list[Report] | None = None) -> ScenarioResult:
        return ScenarioResult(
            scenario="",
            description="",
            detected=True,
            repaired=True,
            converged=True,
            writes_on_rerun=0,
            report=report,
            rerun=report,
            writes=0,
            prelude=prelude or [],
            latency_source=latency_source,
        )

    always = list(result().to_dict())
    full = result(latency_source="x", prelude=[report]).to_dict()
    optional = [k for k in full if k not in always]
    keys = ", ".join(f'"{k}"' for k in always)
    when = " and ".join(f"`{k}`" for k in optional)
    return f"`--json` prints a list of `{{{keys}}}` ({when} only when there are any)."


# --- ARCHITECTURE: the Report's JSON ------------------------------------------------------


def render_report_keys() -> str:
    """The keys of a Report's JSON (``plan``/``apply --json``, the Lambdas' answer)."""
    from fedkeeper.model import (
        Action,
        Change,
        ChangeOutcome,
        Deferred,
        Finding,
        Invariant,
        Report,
        Result,
        RunError,
        Scope,
        Severity,
        TargetFailure,
    )

    empty = Report(mode="apply", scope=Scope(frozenset()))
    change = Change("onprem", "IPPool", "p", Action.CREATE, "why", Invariant.IPPOOLS)
    full = Report(
        mode="apply",
        scope=Scope(frozenset()),
        changes=[ChangeOutcome(change, Result.FAILED, error="e", retryable=True)],
        findings=[Finding(Severity.INFO, "c", "m")],
        deferred=[Deferred("t", "r", retry=True)],
        errors=[RunError("ippools", "m", retryable=True, target="onprem")],
        failed_targets=[TargetFailure("onprem", "r", "fix", ["ippools"])],
        trigger="t",
        tunnels_up=2,
    ).to_dict()
    always = list(empty.to_dict())
    lines = [
        f"- always: {', '.join(f'`{k}`' for k in always)}",
        f"- when there are any: {', '.join(f'`{k}`' for k in full if k not in always)}",
    ]
    for key in ("changes", "findings", "deferred", "errors", "failed_targets"):
        item = full[key][0]
        lines.append(f"- each of `{key}`: {', '.join(f'`{k}`' for k in item)}")
    return "\n".join(lines)


# --- SANDBOX: the scenarios ----------------------------------------------------------------


def render_scenarios() -> str:
    """Every demo scenario: its name, what it breaks, and what finds the drift."""
    from fedkeeper.sandbox.scenarios import SCENARIOS

    rows = [f"The demo's {len(SCENARIOS)} scenarios (`fedkeeper demo --list`):", ""]
    rows += ["| scenario | what breaks | found by |", "|---|---|---|"]
    for s in SCENARIOS.values():
        found = "the watch function" if s.watched else "its AWS event, or the schedule"
        if s.act is not None:
            found = "the operator (`fedkeeper adopt`)"
        rows.append(f"| `{s.name}` | {s.description} | {found} |")
    return "\n".join(rows)


SECTIONS = [
    Section("demo-sample", "README.md", render_demo_sample, validate_demo_sample),
    Section("demo-json-keys", "README.md", render_demo_json_keys),
    Section("layout", "README.md", render_layout),
    Section("report-keys", "docs/ARCHITECTURE.md", render_report_keys),
    Section("scenarios", "docs/SANDBOX.md", render_scenarios),
]
