"""The scenario reference and the JSON Schemas of the input files, generated from the schema.

`escsim schema` writes `docs/scenario-reference.md` (every key path of a scenario, sweep spec and
targets file with its type, unit, default, bounds and meaning, grouped by table) and
`docs/schemas/{scenario,sweep,targets}.schema.json` (JSON Schema Draft 7, for editors whose TOML
support reads JSON Schema, such as Taplo). Both come from the pydantic models and their field
descriptions only, so a test regenerates them and fails when the files in the repository differ.

A scenario file that `extends` others is partial (it writes only what it changes): its schema
checks the keys it writes, their types and bounds, but requires none of them.
"""

from __future__ import annotations

import datetime as dt
import json
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

DRAFT_7 = "http://json-schema.org/draft-07/schema#"
REFERENCE = Path("docs/scenario-reference.md")
SCHEMAS = Path("docs/schemas")

# The placeholder a key path shows for the names of a table of named things, by the table's key.
PLACEHOLDERS = {
    "weapons": "<weapon>", "actors": "<actor>", "attacks": "<target>", "harm": "<account>", "rules": "<rule>",
    "shocks": "<shock>", "milestones": "<milestone>", "interception": "<weapon>", "salvo": "<weapon>",
    "from": "<militia>", "ally_restraint": "<state>", "apply": "<parameter>", "parameters": "<parameter>",
    "counts": "<count>", "events": "<event>",
}


def roots() -> dict[str, type[BaseModel]]:
    """The input files' models by the name of their schema file."""
    from sim.calibration.targets import TargetsFile
    from sim.scenario.schema import Scenario
    from sim.sweeps.spec import SweepFile

    return {"scenario": Scenario, "sweep": SweepFile, "targets": TargetsFile}


# --- JSON Schema -------------------------------------------------------------------------------


def json_schema(name: str) -> dict:
    """The Draft 7 JSON Schema of one kind of input file ('scenario', 'sweep' or 'targets')."""
    model = roots()[name]
    schema = model.model_json_schema(by_alias=True, ref_template="#/definitions/{model}")
    definitions = schema.pop("$defs", {})
    out: dict[str, Any] = {"$schema": DRAFT_7, "$id": f"https://escalation-sim/schemas/{name}.schema.json"}
    out.update(schema)
    out["definitions"] = definitions
    if name == "scenario":
        _allow_partial(out)
    return _sorted(out)


def _allow_partial(schema: dict) -> None:
    """A scenario that `extends` others writes only what it changes: with `extends`, validate
    against a copy of every table with nothing required (and a union told apart by any member)."""
    partial_defs = {f"Partial{k}": _partial(v) for k, v in schema["definitions"].items()}
    top = {k: schema.pop(k) for k in ("properties", "required", "additionalProperties", "type") if k in schema}
    top["properties"] = dict(top["properties"])
    top["properties"]["extends"] = {
        "description": "Files this scenario is merged over, in order (relative to this file): one name or a list.",
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
    }
    top["properties"]["append"] = {
        "description": "Items to add to the end of inherited lists (a harm source, a rung of the ladder), by key path.",
        "type": "object",
    }
    partial_top = _partial(top)
    schema["definitions"].update(partial_defs)
    schema["if"] = {"required": ["extends"]}
    schema["then"] = partial_top
    schema["else"] = top
    schema["type"] = "object"


def _partial(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "required" and isinstance(value, list):
                continue
            if key == "$ref" and isinstance(value, str):
                out[key] = value.replace("#/definitions/", "#/definitions/Partial")
            elif key == "oneOf":
                out["anyOf"] = _partial(value)
            elif key == "discriminator":
                continue
            else:
                out[key] = _partial(value)
        return out
    if isinstance(node, list):
        return [_partial(v) for v in node]
    return node


def _sorted(schema: dict) -> dict:
    """Definitions in a fixed order (pydantic's depends on the order models were built)."""
    schema["definitions"] = dict(sorted(schema["definitions"].items()))
    return schema


# --- the markdown reference --------------------------------------------------------------------


class _Table:
    def __init__(self, path: str, model: type[BaseModel], note: str = ""):
        self.path, self.model, self.note = path, model, note


def _tables(root: type[BaseModel], prefix: str = "") -> list[_Table]:
    """Every table of a file, in order, with the key path it sits at."""
    found: list[_Table] = []
    seen: set[tuple[str, type]] = set()

    def visit(path: str, model: type[BaseModel], note: str = "") -> None:
        if (path, model) in seen:
            return
        seen.add((path, model))
        found.append(_Table(path, model, note))
        for name, field in model.model_fields.items():
            key = field.alias or name
            for sub, sub_model, sub_note in _nested(f"{path}.{key}" if path else key, key, field.annotation):
                visit(sub, sub_model, sub_note)

    visit(prefix, root)
    return found


def _nested(path: str, key: str, tp: Any) -> list[tuple[str, type[BaseModel], str]]:
    tp = _strip(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _is_union(tp):
        members = [m for m in args if m is not type(None)]
        out = []
        for m in members:
            tag = _tag(m)
            out += _nested(path, key, m) if tag is None else [(path, _strip(m), tag)]
        return out
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [(path, tp, "")]
    if origin is dict:
        return _nested(f"{path}.{PLACEHOLDERS.get(key, '<name>')}", key, args[1])
    if origin is list:
        return _nested(f"{path}[]", key, args[0])
    return []


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _tag(model: Any) -> str | None:
    model = _strip(model)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    for key in ("kind", "type", "dist"):
        field = model.model_fields.get(key)
        if field is not None and typing.get_origin(field.annotation) is typing.Literal:
            return f'{key} = "{typing.get_args(field.annotation)[0]}"'
    return None


def _type_text(tp: Any) -> str:
    tp = _strip(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _is_union(tp):
        members = [m for m in args if m is not type(None)]
        if all(_tag(m) for m in members):
            return "table (" + " or ".join(_tag(m) for m in members) + ")"
        return " or ".join(_type_text(m) for m in members)
    if origin is typing.Literal:
        return " or ".join(f'"{a}"' for a in args)
    if origin is list:
        return f"list of {_type_text(args[0])}"
    if origin is dict:
        inner = _type_text(args[1])
        return f"table of named {inner.replace('table', 'tables', 1)}" if inner.startswith("table") \
            else f"table of {inner} by name"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "table"
    return {float: "number", int: "integer", str: "string", bool: "boolean", dt.date: "date"}.get(tp, str(tp))


def _constraints(field: FieldInfo) -> list[str]:
    """Bounds of a field and of what it holds (an optional's value, a list's or table's items)."""
    words: list[str] = []

    def collect(metadata, subject: str) -> None:
        for m in metadata:
            for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
                value = getattr(m, attr, None)
                if value is not None:
                    words.append(f"{subject}{sign} {_number(value)}")
            for attr, sign in (("min_length", "≥"), ("max_length", "≤")):
                value = getattr(m, attr, None)
                if value is not None:
                    words.append(f"{subject}length {sign} {value:,}")
            if getattr(m, "pattern", None):
                words.append(f"{subject}matches `{m.pattern}`")

    collect(field.metadata, "")

    def inner(tp: Any, subject: str) -> None:
        if typing.get_origin(tp) is typing.Annotated:
            args = typing.get_args(tp)
            collect(args[1:], subject)
            tp = args[0]
        if _is_union(tp):
            for m in typing.get_args(tp):
                if m is not type(None):
                    inner(m, subject)
        elif typing.get_origin(tp) in (list, dict):
            inner(typing.get_args(tp)[-1], "each ")

    inner(field.annotation, "")
    return list(dict.fromkeys(words))


def _number(value: Any) -> str:
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:,}" if value != 2**63 else "2⁶³"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _unit(key: str, field: FieldInfo) -> str:
    if key.endswith("_per_day"):
        return "per day"
    if key.endswith("days") or key in ("day", "duration_days"):
        return "days"
    if key in ("date", "start_date", "start", "end", "fit_until"):
        return "date"
    bounds = _constraints(field)
    if "≥ 0" in bounds and "≤ 1" in bounds:
        return "probability or share"
    return ""


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None:
        return "absent"
    if isinstance(value, BaseModel):
        return "its keys' defaults"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (dict, list)) and not value:
        return "{}" if isinstance(value, dict) else "[]"
    if isinstance(value, list):
        return "[" + ", ".join(_number(v) for v in value) + "]"
    return _number(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


TITLES = {"scenario": "Scenario files", "sweep": "Sweep specs", "targets": "Calibration targets files"}
INTRO = {
    "scenario": "A scenario file (`scenarios/*.toml`). A file with `extends` names the files it is merged over, "
                "in order, and writes only what it changes; its `[append]` table adds items to the end of inherited "
                "lists (`append.ladder = [\"x\"]`). `escsim validate FILE` prints the resolved scenario.",
    "sweep": "A sweep spec (`scenarios/sweeps/*.toml`), run by `escsim sweep`.",
    "targets": "A calibration targets file (`calibration/*.toml`), fitted by `escsim calibrate`.",
}


def reference_markdown() -> str:
    """docs/scenario-reference.md."""
    lines = [
        "# Scenario, sweep and targets reference",
        "",
        "<!-- Generated by `escsim schema` from sim/scenario/schema.py, sim/sweeps/spec.py and",
        "     sim/calibration/targets.py: do not edit; a test fails when it is out of date. -->",
        "",
        "Every key of the three kinds of input file, table by table: its type, unit, default, bounds and",
        "meaning. A key path such as `actors.<actor>.attacks.<target>.rate_per_day` names the keys a",
        "`--set`, a sweep's or a fit's `path` uses (`<actor>` stands for a name of your choosing, made of",
        "lowercase letters, digits and `_`). Unknown keys are errors; numbers are never read from strings.",
        "The JSON Schemas of the same files are in `docs/schemas/`.",
        "",
    ]
    for name, root in roots().items():
        lines += [f"## {TITLES[name]}", "", INTRO[name], ""]
        for table in _tables(root):
            title = table.path or "(top level)"
            lines += [f"### `{title}`" + (f" ({table.note})" if table.note else ""), ""]
            doc = " ".join((table.model.__doc__ or "").split())
            if doc and table.model.__doc__ is not BaseModel.__doc__:
                lines += [doc, ""]
            lines += ["| key | type | unit | default | bounds | meaning |", "| --- | --- | --- | --- | --- | --- |"]
            for field_name, field in table.model.model_fields.items():
                key = field.alias or field_name
                full = f"{table.path}.{key}" if table.path else key
                lines.append("| " + " | ".join(_cell(c) for c in (
                    f"`{full}`", _type_text(field.annotation), _unit(key, field), _default(field),
                    ", ".join(_constraints(field)), field.description or "",
                )) + " |")
            if name == "scenario" and not table.path:
                lines += [
                    "| `extends` | string or list of string |  | absent |  | Files this one is merged over, in order "
                    "(relative to it); it then writes only what it changes. |",
                    "| `append` | table of lists by key path |  | absent |  | Items added to the end of inherited lists "
                    "(`append.ladder`, `append.actors.<actor>.harm.<account>.sources`). |",
                ]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# --- writing -----------------------------------------------------------------------------------


def outputs(out: Path = SCHEMAS, reference: Path = REFERENCE) -> dict[Path, str]:
    """Each generated file and its text."""
    files = {Path(out) / f"{name}.schema.json": json.dumps(json_schema(name), indent=2, ensure_ascii=False) + "\n"
             for name in roots()}
    files[Path(reference)] = reference_markdown()
    return files


def write(out: Path = SCHEMAS, reference: Path = REFERENCE) -> list[Path]:
    """Write the JSON Schemas into `out` and the reference to `reference`; the paths written."""
    from sim.errors import InputError
    from sim.runs.storage import write_text

    written = []
    for path, text in outputs(out, reference).items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text(path, text)
        except OSError as e:
            raise InputError(f"error: {path}: expected a file that can be written, found {e.strerror or e}") from None
        written.append(path)
    return written

