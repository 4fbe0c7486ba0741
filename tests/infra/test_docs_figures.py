"""The stacks, functions and alarms the docs speak of are those the app synthesizes.

Every count written in words or digits before "stack(s)", "function(s)" or "alarm(s)" in
README.md and docs/ is compared with the synthesized templates, and so are the stack names
and handler lists the docs draw. Figures another issue owns and has not yet brought up to
date are listed in :data:`OWNED_ELSEWHERE` (by their exact words): they are skipped, and a
test fails once they are gone, so the list never outlives them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import PROJECT_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("infra")]

DOCS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
NUMBERS = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
        ]
    )
}
_COUNT = re.compile(
    rf"\b({'|'.join(NUMBERS)}|\d+) ((?:Lambda |CloudWatch |TunnelState |failure )?)"
    r"(stacks?|functions?|alarms?)\b",
    re.I,
)
# (doc, exact words) -> the issue that owns the figure and is bringing it up to date.
OWNED_ELSEWHERE: dict[tuple[str, str], str] = {}


def fedkeeper_functions(templates: dict[str, dict[str, Any]]) -> list[str]:
    """The handler modules of the Lambda functions fedkeeper deploys (not the CDK's own)."""
    out = []
    # The automation's functions; the calico stack's installer is a deploy-time custom
    # resource, counted on its own ("1 installer") where DEPLOY.md lists what a deploy makes.
    for name, template in templates.items():
        if not name.endswith("-automation"):
            continue
        for resource in template["Resources"].values():
            handler = str(resource.get("Properties", {}).get("Handler", ""))
            if resource["Type"] == "AWS::Lambda::Function" and handler.startswith("lambdas."):
                out.append(handler.split(".")[1])
    return sorted(out)


def alarms(templates: dict[str, dict[str, Any]]) -> int:
    return sum(
        1
        for template in templates.values()
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    )


def count_problems(text: str, doc: str, truth: dict[str, int]) -> list[str]:
    """Counts of stacks, functions or alarms in ``text`` that are not ``truth``'s."""
    problems = []
    for match in _COUNT.finditer(text):
        words = " ".join(match.group(0).split())
        if (doc, words) in OWNED_ELSEWHERE:
            continue
        raw, qualifier, noun = match.groups()
        plural = noun.lower().endswith("s")
        if plural != (raw.lower() not in ("one", "1")):
            continue  # "0 alarm" (a table's cells), "the one function every entry point runs"
        lambda_ = qualifier.strip() == "Lambda"
        if noun.lower().startswith("function") and not (lambda_ or (plural and not qualifier)):
            continue  # "the one function every entry point runs" is no count of Lambdas
        key = noun.lower().rstrip("s")
        if key == "alarm" and qualifier.strip():
            continue  # a kind of alarm (TunnelState, failure): a part of the total
        value = NUMBERS.get(raw.lower()) if not raw.isdigit() else int(raw)
        if value != truth[key]:
            problems.append(f"{doc}: {words!r}, but the app has {truth[key]} {key}s")
    return problems


@pytest.fixture(scope="module")
def truth(templates: dict[str, dict[str, Any]]) -> dict[str, int]:
    return {
        "stack": len(templates),
        "function": len(fedkeeper_functions(templates)),
        "alarm": alarms(templates),
    }


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_counts_of_stacks_functions_and_alarms_in_the_docs_are_the_apps(
    doc: Path, truth: dict[str, int]
) -> None:
    name = str(doc.relative_to(PROJECT_ROOT))
    prose = re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.M | re.S)  # not sample output
    assert count_problems(" ".join(prose.split()), name, truth) == []


def test_the_stacks_package_says_how_many_stacks_it_builds(truth: dict[str, int]) -> None:
    text = (PROJECT_ROOT / "stacks" / "__init__.py").read_text()
    assert count_problems(" ".join(text.split()), "stacks/__init__.py", truth) == []


def test_a_wrong_count_is_caught(truth: dict[str, int]) -> None:
    wrong = truth["stack"] + 1
    assert count_problems(f"it builds {wrong} stacks", "x.md", truth)


def test_figures_owned_elsewhere_are_still_there_to_be_fixed() -> None:
    for (doc, words), owner in OWNED_ELSEWHERE.items():
        text = " ".join((PROJECT_ROOT / doc).read_text().split())
        assert words in text, f"{doc} no longer says {words!r}: remove it ({owner}) from the list"


def test_the_readme_diagram_draws_every_stack_and_every_function(
    templates: dict[str, dict[str, Any]],
) -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    diagram = readme.split("```mermaid", 1)[1].split("```", 1)[0]
    drawn = set(re.findall(r'subgraph \w+\["<name>-(\w+)"\]', diagram))
    assert drawn == {name.rsplit("-", 1)[-1] for name in templates}
    lambdas = re.search(r"Lambdas: ([^\"]+)\"", diagram)
    assert lambdas is not None
    drawn_functions = sorted(f.strip() for f in lambdas.group(1).replace("<br/>", "").split(","))
    assert drawn_functions == fedkeeper_functions(templates)


def test_the_architecture_page_names_every_stack(templates: dict[str, dict[str, Any]]) -> None:
    row = next(
        line
        for line in (PROJECT_ROOT / "docs" / "ARCHITECTURE.md").read_text().splitlines()
        if line.startswith("| CDK app |")
    )
    named = set(re.findall(r"the (\w+) stack\b", row))
    assert named == {name.rsplit("-", 1)[-1] for name in templates}
