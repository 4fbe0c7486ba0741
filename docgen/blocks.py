"""Generated blocks inside Markdown files: find them, and replace their contents.

A block is written between two HTML comments, which Markdown does not show::

    <!-- generated: NAME (make docs) -->
    ...contents...
    <!-- end generated: NAME -->

Everything between the markers belongs to the generator called NAME; everything outside
them belongs to the writer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BLOCK = re.compile(
    r"(?P<open><!-- generated: (?P<name>[a-z0-9-]+) \(make docs\) -->\n)"
    r"(?P<body>.*?)"
    r"(?P<close><!-- end generated: (?P=name) -->)",
    re.S,
)


@dataclass(frozen=True)
class Block:
    name: str
    body: str
    line: int  # 1-based line of the opening marker


def blocks(text: str) -> list[Block]:
    """The generated blocks of a document, in order."""
    return [
        Block(m.group("name"), m.group("body"), text.count("\n", 0, m.start()) + 1)
        for m in _BLOCK.finditer(text)
    ]


def replace(text: str, name: str, body: str) -> str:
    """``text`` with block ``name``'s contents replaced by ``body`` (one newline at its end)."""
    body = body.rstrip("\n") + "\n"
    found = False

    def swap(m: re.Match[str]) -> str:
        nonlocal found
        if m.group("name") != name:
            return m.group(0)
        found = True
        return m.group("open") + body + m.group("close")

    out = _BLOCK.sub(swap, text)
    if not found:
        raise KeyError(name)
    return out


def opening(name: str) -> str:
    return f"<!-- generated: {name} (make docs) -->"


def closing(name: str) -> str:
    return f"<!-- end generated: {name} -->"
