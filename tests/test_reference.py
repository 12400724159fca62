"""The scenario reference and the JSON Schemas are generated from the schema and kept up to date,
and every shipped input file validates against its JSON Schema (as an editor would check it).

Files that `extends` others are partial: the scenario schema checks such a file's keys, types and
bounds without requiring any key (its `if extends then` branch), and the resolved scenario, which
is whole, is checked against the full schema too.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from sim.cli import main
from sim.reference import outputs
from sim.scenario import load_scenario, to_plain
from tests.conftest import ROOT

SCHEMAS = {name: json.loads((ROOT / "docs" / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8"))
           for name in ("scenario", "sweep", "targets")}
SHIPPED = {
    "scenario": sorted((ROOT / "scenarios").glob("*.toml")),
    "sweep": sorted((ROOT / "scenarios" / "sweeps").glob("*.toml")),
    "targets": sorted((ROOT / "calibration").glob("*.toml")),
}


def as_json(value):
    """TOML data as JSON Schema sees it (Taplo reads dates as strings)."""
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return value


def errors(kind: str, data: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMAS[kind], format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(as_json(data))]


def test_the_generated_files_are_up_to_date():
    """Fails when a field, a description or a bound changed without `escsim schema` being run."""
    stale = [str(path) for path, text in outputs(ROOT / "docs" / "schemas", ROOT / "docs" / "scenario-reference.md").items()
             if not path.is_file() or path.read_text(encoding="utf-8") != text]
    assert not stale, f"out of date (run `escsim schema` at the repository's root): {', '.join(stale)}"


def test_escsim_schema_writes_them_where_asked(tmp_path):
    result = CliRunner().invoke(main, ["schema", "--out", str(tmp_path / "s"), "--reference", str(tmp_path / "ref.md")])
    assert result.exit_code == 0, result.output
    for path, text in outputs(tmp_path / "s", tmp_path / "ref.md").items():
        assert path.read_text(encoding="utf-8") == text


@pytest.mark.parametrize("kind", SCHEMAS)
def test_each_schema_is_draft_7(kind):
    jsonschema.Draft7Validator.check_schema(SCHEMAS[kind])
    assert SCHEMAS[kind]["$schema"] == "http://json-schema.org/draft-07/schema#"


def test_every_field_has_a_description_and_the_reference_names_every_key():
    reference = (ROOT / "docs" / "scenario-reference.md").read_text(encoding="utf-8")
    from sim.reference import _tables, roots

    for root in roots().values():
        for table in _tables(root):
            for name, field in table.model.model_fields.items():
                assert field.description, f"{table.model.__name__}.{name} has no description"
    for path in ("actors.<actor>.rules.<rule>.response[].redirect", "actors.<actor>.attacks.<target>.initial_restraint.redirect",
                 "shocks.<shock>.effects[].redirect", "milestones.<milestone>.when.at", "`extends`", "`append`"):
        assert path in reference


@pytest.mark.parametrize("path", [p for files in SHIPPED.values() for p in files], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_shipped_file_validates_against_its_schema(path):
    kind = next(k for k, files in SHIPPED.items() if path in files)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert errors(kind, data) == []
    if kind == "scenario":  # whole once resolved: the full schema, with every required key
        resolved = to_plain(load_scenario(path))
        assert errors("scenario", resolved) == []


@pytest.mark.parametrize(("kind", "text", "where"), [
    ("scenario", 'extends = "baseline.toml"\n[actors.iri.attacks.us]\nrate_per_dy = 1.0\n', "actors.iri"),
    ("scenario", 'extends = "baseline.toml"\n[actors.iri.attacks.us]\nrate_per_day = -1.0\n', "actors.iri"),
    ("scenario", 'extends = "baseline.toml"\n[shocks.x]\nday = 3\neffects = [{ type = "restrain", front = "us", '
                 'factor = 0.5, duration_days = 10, redirect = "no" }]\n', "shocks.x.effects.0"),
    ("scenario", '[scenario]\nname = "no_actors"\nstart_date = 2024-01-01\nhorizon_days = 10\n', ""),
    ("sweep", '[sweep]\nname = "s"\nbase = "b.toml"\ndesign = "tornado"\nsamples = 2\noutputs = ["x"]\n', "sweep.design"),
    ("targets", '[fit]\nname = "f"\nscenario = "s.toml"\nfacts = "f.csv"\n[parameters.p]\npath = "a.b"\n'
                'prior = { dist = "normal", mu = 0 }\n', "parameters.p.prior"),
], ids=["typo-in-child", "negative-rate-in-child", "redirect-not-boolean", "whole-file-missing-tables",
        "unknown-design", "unknown-prior"])
def test_the_schemas_refuse_what_the_loader_refuses(kind, text, where):
    found = errors(kind, tomllib.loads(text))
    assert found, "expected the schema to refuse the file"
    assert any(e.startswith(where) for e in found), found


def test_taplo_config_maps_the_input_files_to_the_schemas():
    config = tomllib.loads((ROOT / ".taplo.toml").read_text(encoding="utf-8"))
    rules = {rule["schema"]["path"]: rule for rule in config["rule"]}
    for name in SCHEMAS:
        assert any(Path(p).name == f"{name}.schema.json" and (ROOT / p).is_file() for p in rules), name
    assert {"scenarios/**/*.toml"} <= {g for r in config["rule"] for g in r["include"]}
    assert {"calibration/*.toml"} <= {g for r in config["rule"] for g in r["include"]}
