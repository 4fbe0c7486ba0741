"""``python -m docgen``: rewrite every generated block of README.md and docs/ (``make docs``).

``--check`` changes nothing and exits 1 when a computed block differs from what the program
says now, or a recorded block (a real run's output) no longer fits the program; ``make
test`` runs it. ``--computed`` renders the computed blocks only (no demo run).
"""

from __future__ import annotations

import argparse
import sys

from docgen.blocks import blocks, replace
from docgen.sections import ROOT, SECTIONS


def problems_in_docs(*, render_recorded: bool = False) -> list[str]:
    """Every generated block that is missing, unknown, stale or no longer true."""
    problems: list[str] = []
    known = {s.name for s in SECTIONS}
    for doc in ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))]:
        path = ROOT / doc if doc == "README.md" else ROOT / "docs" / doc
        for block in blocks(path.read_text(encoding="utf-8")):
            if block.name not in known:
                problems.append(
                    f"{path.relative_to(ROOT)}:{block.line}: no generator {block.name!r}"
                )
    for section in SECTIONS:
        path = ROOT / section.doc
        found = [b for b in blocks(path.read_text(encoding="utf-8")) if b.name == section.name]
        if not found:
            problems.append(f"{section.doc}: has no generated block {section.name!r}")
            continue
        where = f"{section.doc}:{found[0].line} ({section.name})"
        if section.validate is not None and not render_recorded:
            problems += [f"{where}: {p}; run `make docs`" for p in section.validate(found[0].body)]
        elif section.render().rstrip("\n") != found[0].body.rstrip("\n"):
            problems.append(f"{where}: out of date; run `make docs`")
    return problems


def write_docs(*, computed_only: bool = False) -> list[str]:
    """Render every block into its document; the documents that changed."""
    changed = []
    for section in SECTIONS:
        if computed_only and section.recorded:
            continue
        path = ROOT / section.doc
        text = path.read_text(encoding="utf-8")
        new = replace(text, section.name, section.render())
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(f"{section.doc} ({section.name})")
    return changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m docgen", description=__doc__)
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    p.add_argument("--computed", action="store_true", help="skip the recorded demo run")
    args = p.parse_args(argv)
    if args.check:
        problems = problems_in_docs()
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    changed = write_docs(computed_only=args.computed)
    print("\n".join(f"updated {c}" for c in changed) or "docs were up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
