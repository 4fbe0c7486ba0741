"""Output for people: colour only where it is wanted, tables that stay aligned, relative times.

The CLI and the sandbox demo both print through this module, so neither imports the other.
Colour is used only on a terminal and never when ``NO_COLOR`` is set (https://no-color.org);
widths are measured without the colour codes, so tables line up either way.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, Any

from fedkeeper.model import Report

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CODES = {"green": 32, "red": 31, "yellow": 33, "magenta": 35, "bold": 1, "dim": 2}
HEALTH_COLOURS = {"healthy": "green", "degraded": "yellow", "broken": "red", "unknown": "magenta"}


def colour_wanted(stream: IO[str] | None = None) -> bool:
    """True on a terminal, unless NO_COLOR is set (to anything) or TERM is dumb."""
    stream = stream if stream is not None else sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, colour: str, enabled: bool) -> str:
    return f"\033[{_CODES[colour]}m{text}\033[0m" if enabled else text


def visible_width(text: str) -> int:
    return len(_ANSI.sub("", text))


def pad(text: str, width: int) -> str:
    """Left-justify to ``width`` visible characters (colour codes take no room)."""
    return text + " " * max(0, width - visible_width(text))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, indent: str = "") -> str:
    """Columns aligned by their visible width; the last column is not padded."""
    widths = [visible_width(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], visible_width(cell))
    lines = []
    for row in (headers, *rows):
        cells = [pad(c, widths[i]) if i < len(row) - 1 else c for i, c in enumerate(row)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return "\n".join(lines)


def yes_no(value: bool, colour: bool) -> str:
    return paint("yes" if value else "NO", "green" if value else "red", colour)


def ago(when: datetime | str | None, now: datetime | None = None) -> str:
    """``3 min ago`` for a timestamp (ISO text or datetime); '' when there is none."""
    if when is None or when == "":
        return ""
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            return str(when)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    seconds = int((now - when).total_seconds())
    if seconds < 0:
        return "just now"
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if unit == 'day' and n > 1 else ''} ago"
    return f"{seconds} s ago"


def render_report(
    report: Report | Mapping[str, Any], *, title: str | None = None, colour: bool = False
) -> str:
    """A Report (or its JSON, e.g. a Lambda's answer) for people: changes, findings,
    deferred work and the verdict."""
    d = report.to_dict() if isinstance(report, Report) else report
    lines: list[str] = []
    head = title or f"{d['mode']} · scope {', '.join(d['scope']) or '(none)'}"
    if d.get("trigger"):
        head += f" · trigger: {d['trigger']}"
    lines.append(head)
    if d["changes"]:
        lines.append("  changes:")
        for c in d["changes"]:
            err = f" — {c['error']}" if c.get("error") else ""
            result = paint(c["result"], "red" if c["result"] == "failed" else "bold", colour)
            lines.append(f"    [{result}] {c['action']} {c['target']}{err}")
            lines.append(f"        why: {c['reason']}")
    else:
        lines.append("  changes: none")
    for f in d["findings"]:
        lines.append(f"  {f['severity']:<7} {f['check']}: {f['message']}")
    for x in d["deferred"]:
        lines.append(f"  deferred {x['target']}: {x['reason']}")
    for e in d.get("errors", []):
        kind = "retryable" if e["retryable"] else "permanent"
        lines.append(f"  error ({kind}) {e['invariant']}: {e['error']}")
    calls = ", ".join(f"{k} {v}" for k, v in d["api_calls"].items())
    converged = bool(d["converged"])
    verdict = paint("converged" if converged else "NOT converged", _ok(converged), colour)
    lines.append(f"  {verdict} · api calls: {calls} · {d['duration_ms']} ms")
    return "\n".join(lines)


def _ok(value: bool) -> str:
    return "green" if value else "red"


def render_status(
    status: Mapping[str, Any], *, colour: bool = False, fixes: Mapping[str, str] | None = None
) -> str:
    """The health view (``Status.to_dict()``): each invariant, its facts and reasons, and for
    each unhealthy one the command that would fix it (``fixes``, by invariant)."""

    def health(h: str) -> str:
        return paint(h, HEALTH_COLOURS.get(h, "bold"), colour)

    lines = [f"federation: {health(status['health'])}"]
    for s in status["sections"]:
        lines.append(f"  {s['invariant']:<8} {health(s['health'])}")
        lines += [f"      · {f}" for f in s["facts"]]
        lines += [f"      ! {r}" for r in s["reasons"]]
        fix = (fixes or {}).get(s["invariant"])
        if s["health"] != "healthy" and fix:
            lines.append(f"      → fix: {fix}")
    return "\n".join(lines)


class Progress:
    """One status line on a terminal (stderr), rewritten in place; silent elsewhere."""

    def __init__(self, stream: IO[str] | None = None, *, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"
        self.enabled = enabled
        self._shown = False

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        self.stream.write("\r\033[K" + text[:200])
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False
