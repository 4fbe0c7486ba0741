"""How what a person typed is echoed back in messages: near misses get a suggestion, long
values are cut.

Suggestions come from :func:`difflib.get_close_matches` (the standard library's
Ratcliff/Obershelp similarity). It is chosen over a faster third-party matcher (rapidfuzz)
because the lists matched here are tiny (a section's keys, twelve scenario names, AWS
regions), because the config module is imported by the Lambdas, whose package and cold
start should not grow for an error message, and because its 0.6 cutoff already catches the
typos people make (``vcp`` for ``vpc``, ``eu-wst-1`` for ``eu-west-1``) without
suggesting unrelated words.

This module is pure: no boto3, kubernetes or Powertools.
"""

from __future__ import annotations

from collections.abc import Iterable

# Longer values are cut when a message repeats them: a 5,000-character paste must not
# become a 5,000-character error.
MAX_SHOWN = 60


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` most likely misspells, or None when none is close."""
    import difflib  # only on the way to an error message, never on a Lambda's cold start

    options = [c for c in choices if c != word]
    matches = difflib.get_close_matches(word, options, n=3, cutoff=0.6)
    # Swapped letters are the commonest slip (``vcp``): among close matches, prefer one
    # with the very same letters; a different case counts as the same word (``VPC``).
    same = [c for c in [*matches, *options] if sorted(c.lower()) == sorted(word.lower())]
    if same:
        return same[0]
    return matches[0] if matches else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean X?"`` for a near miss, else ``""`` (to append to a message)."""
    match = closest(word, choices)
    return f"; did you mean {match}?" if match else ""


def shown(value: object, limit: int = MAX_SHOWN) -> str:
    """``repr(value)``, cut to ``limit`` characters with its full length said."""
    text = repr(value)
    if len(text) <= limit:
        return text
    length = len(value) if isinstance(value, str) else len(text)
    return f"{text[: limit - 1]}… ({length:,} characters)"
