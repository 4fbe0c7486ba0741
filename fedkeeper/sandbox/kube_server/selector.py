"""Calico selector syntax, as the Calico API server checks it (``validate:"selector"``).

Written from projectcalico/calico ``libcalico-go/lib/selector/tokenizer/tokenizer.go`` and
``libcalico-go/lib/selector/parser/parser.go``: expressions of ``all()``, ``global()``,
``has(label)``, ``label == "v"``, ``!=``, ``in {"a", "b"}``, ``not in {...}``,
``contains "s"``, ``starts with "s"``, ``ends with "s"``, joined by ``&&`` and ``||``,
negated by ``!``, grouped by parentheses; strings in single or double quotes. Only whether a
selector parses is emulated (the fake never evaluates one).
"""

from __future__ import annotations

import re

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"[^"]*"|'[^']*')
      | (?P<has>has\(\s*[A-Za-z0-9_./-]+\s*\))
      | (?P<op>==|!=|&&|\|\||!|\(|\)|\{|\}|,)
      | (?P<word>all\(\)|global\(\)|not\s+in\b|in\b|contains\b|starts\s+with\b|ends\s+with\b)
      | (?P<label>[A-Za-z0-9_./-]+)
    )""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while text[pos:].strip():
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"unexpected characters at {pos}: {text[pos : pos + 10]!r}")
        kind = match.lastgroup or ""
        out.append((kind, " ".join(match.group(kind).split())))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None, kind: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if (value is not None and token[1] != value) or (kind is not None and token[0] != kind):
            raise ValueError(f"expected {value or kind}, found {token[1] or 'the end'}")
        self.pos += 1
        return token

    def expression(self) -> None:
        self.conjunction()
        while self.peek()[1] == "||":
            self.take("||")
            self.conjunction()

    def conjunction(self) -> None:
        self.unary()
        while self.peek()[1] == "&&":
            self.take("&&")
            self.unary()

    def unary(self) -> None:
        kind, value = self.peek()
        if value == "!":
            self.take("!")
            self.unary()
        elif value == "(":
            self.take("(")
            self.expression()
            self.take(")")
        elif value in ("all()", "global()") or kind == "has":
            self.pos += 1
        elif kind == "label":
            self.pos += 1
            self.comparison()
        else:
            raise ValueError(f"expected a term, found {value or 'the end'}")

    def comparison(self) -> None:
        _, op = self.peek()
        if op in ("==", "!=", "contains", "starts with", "ends with"):
            self.pos += 1
            self.take(kind="string")
        elif op in ("in", "not in"):
            self.pos += 1
            self.take("{")
            if self.peek()[1] != "}":
                self.take(kind="string")
                while self.peek()[1] == ",":
                    self.take(",")
                    self.take(kind="string")
            self.take("}")
        else:
            raise ValueError(f"expected an operator after the label, found {op or 'the end'}")


def selector_problem(text: str) -> str | None:
    """Why ``text`` is not a Calico selector (None when it is; "" is the empty selector)."""
    if not text.strip():
        return None
    try:
        parser = _Parser(_tokens(text))
        parser.expression()
        if parser.peek()[0] != "end":
            raise ValueError(f"unexpected {parser.peek()[1]!r} after the expression")
    except ValueError as exc:
        return str(exc)
    return None
