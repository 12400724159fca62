"""Key paths into scenario data: `actors.iri.redirect.share`, `shocks.x.effects[1].amplitude`.

Sweeps and calibration name parameters by these paths; the same syntax appears in error
messages. A path must lead to an existing number: it never creates keys.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from sim.errors import did_you_mean

_PART = re.compile(r"([a-z_][a-z0-9_]*)((?:\[\d+\])*)")


class PathError(ValueError):
    """A key path that does not lead to a value of the scenario."""


def parse(path: str) -> list[str | int]:
    """['shocks', 'x', 'effects', 1, 'amplitude'] for 'shocks.x.effects[1].amplitude'."""
    parts: list[str | int] = []
    for piece in path.split("."):
        match = _PART.fullmatch(piece)
        if match is None:
            raise PathError(f"expected a key path such as actors.iri.redirect.share, found {path!r}")
        parts.append(match.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    return parts


def get(data: dict, path: str) -> Any:
    node: Any = data
    walked = ""
    for part in parse(path):
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise PathError(f"{path}: expected a list with an item [{part}] at {walked or 'the top'}, found none")
            node = node[part]
            walked += f"[{part}]"
        else:
            if not isinstance(node, dict) or part not in node:
                where = walked or "the top level"
                keys = ", ".join(node) if isinstance(node, dict) else "no keys"
                hint = did_you_mean(part, node) if isinstance(node, dict) else ""
                raise PathError(f"{path}: expected a key '{part}' under {where} (one of: {keys}), found none{hint}")
            node = node[part]
            walked += ("." if walked else "") + part
    return node


def with_values(data: dict, values: dict[str, float]) -> dict:
    """A copy of `data` with each path set to its value; every path must lead to a number."""
    out = copy.deepcopy(data)
    for path, value in values.items():
        current = get(out, path)
        if isinstance(current, bool) or not isinstance(current, (int, float)):
            raise PathError(f"{path}: expected a path to a number, found {type(current).__name__}")
        parts = parse(path)
        parent = get(out, _join(parts[:-1])) if len(parts) > 1 else out
        parent[parts[-1]] = float(value) if isinstance(current, float) or not float(value).is_integer() else type(current)(value)
    return out


def _join(parts: list[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else ("." if text else "") + part
    return text
