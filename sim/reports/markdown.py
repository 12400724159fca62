"""Markdown for `report.md`: GitHub tables and inline code that survive any cell text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence


def cell(text) -> str:
    """One table cell: `|` escaped and line breaks flattened, so a value can never split the row."""
    return re.sub(r"\s*[\r\n]+\s*", " ", str(text)).replace("|", "\\|")


_SPECIAL = re.compile(r"[\\`*\[\]<>$~&]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def text(value) -> str:
    """Text from the user (a name, label or description) as itself: every character Markdown would read as markup
    (emphasis, links, HTML, maths; `|` is `cell`'s) escaped with a backslash, so `$x^$` or `<b>` show as written."""
    return _SPECIAL.sub(lambda m: "\\" + m[0], str(value))


def table(header: Sequence[str], rows: Iterable[Sequence], left: Iterable[int] = (0,)) -> str:
    """A GitHub Markdown table; the columns in `left` align left (text), the others right (numbers)."""
    left = set(left)
    lines = ["| " + " | ".join(cell(h) for h in header) + " |",
             "|" + "|".join("---" if k in left else "---:" for k in range(len(header))) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def code(text) -> str:
    """Inline code around any text, with a fence longer than the longest run of backticks inside it."""
    text = str(text)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def versions(found: dict) -> str:
    """The versions a manifest records, in one line."""
    return ", ".join(f"{k} {v}" for k, v in found.items())
