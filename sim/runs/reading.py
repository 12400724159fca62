"""Reading finished run, sweep and comparison folders back, checked before anything uses them.

`escsim report` and `escsim compare` (given run folders) read files that a user may have moved,
truncated, edited or replaced. Every file is checked against what the folder's own
`scenario.toml` and `manifest.json` say it must hold: the manifest's shape, each Parquet file's
columns and types, its row count, and values a run cannot produce (negative counts, a rung
beyond the ladder, days outside the horizon, trials out of order). A file that fails is one
`InputError` naming the file and what was wrong in it, never its content. The checks read one
column at a time, without threads, so that checking is a small part of reading.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sim.errors import InputError
from sim.runs.layout import RunLayout, monthly_schema, trials_schema
from sim.runs.manifest import read_json
from sim.scenario import Scenario, load_scenario

TEXT, NUMBER, INTEGER, MAPPING, LIST = "text", "a number", "an integer", "a table", "a list"
COMMON = {"seed": INTEGER, "trials": INTEGER, "command": TEXT, "reproduce": TEXT, "versions": MAPPING}
# The keys each kind of manifest must hold, and what each is: what the reports and compare read.
MANIFEST_KEYS = {
    "run": {**COMMON, "scenario": TEXT, "config_hash": TEXT, "started_at": TEXT, "finished_at": TEXT,
            "plan": MAPPING},
    "sweep": {**COMMON, "sweep": TEXT, "design": TEXT, "samples": INTEGER, "points": INTEGER,
              "trials_per_point": INTEGER, "parameters": MAPPING, "outputs": LIST, "started_at": TEXT,
              "finished_at": TEXT},
    "compare": {**COMMON, "scenarios": LIST},
}


def _is(value, kind: str) -> bool:
    if kind == INTEGER:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if kind == NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, {TEXT: str, MAPPING: dict, LIST: list}[kind])


def _found(value) -> str:
    """What a value is, without quoting what it holds."""
    if value is None:
        return "nothing"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "text", dict: "a table",
            list: "a list"}.get(type(value), type(value).__name__)


def read_manifest(folder: Path, kind: str) -> dict:
    """`folder/manifest.json` of a finished `kind` ("run", "sweep", "compare"), checked for the keys
    the reports and compare read."""
    path = Path(folder) / "manifest.json"
    manifest = read_json(path)
    found = manifest.get("kind", "run")
    if found != kind:
        shown = repr(found) if found in MANIFEST_KEYS else "another kind" if isinstance(found, str) else _found(found)
        raise InputError(f"error: {path}: kind: expected {kind!r}, found {shown}")
    for key, what in MANIFEST_KEYS[kind].items():
        if not _is(manifest.get(key), what):
            found = f"no {key}" if key not in manifest else _found(manifest[key])
            raise InputError(f"error: {path}: {key}: expected {what}, found {found}; the manifest of a finished "
                             f"{kind} is written by `escsim {kind}`: make the folder again with it")
    if kind == "compare":
        for k, entry in enumerate(manifest["scenarios"]):
            if not isinstance(entry, dict) or not all(isinstance(entry.get(key), str) for key in ("name", "folder")):
                raise InputError(f"error: {path}: scenarios[{k}]: expected a table with a name and a folder, "
                                 f"found {_found(entry) if not isinstance(entry, dict) else 'one without them'}")
        if len(manifest["scenarios"]) < 2:
            raise InputError(f"error: {path}: scenarios: expected at least two, found {len(manifest['scenarios'])}")
    return manifest


def read_run_folder(folder: Path) -> tuple[dict, Scenario]:
    """A finished run folder's manifest and scenario, once its files are checked (`check_run_files`)."""
    folder = Path(folder)
    missing = [n for n in ("manifest.json", "scenario.toml", "trials.parquet", "monthly.parquet", "summary.csv")
               if not (folder / n).is_file()]
    if missing:
        raise InputError(f"error: {folder}: expected a finished run folder, found no {', '.join(missing)} there")
    manifest = read_manifest(folder, "run")
    scenario = load_scenario(folder / "scenario.toml")
    check_run_files(folder, scenario, manifest["trials"])
    return manifest, scenario


def check_run_files(folder: Path, scenario: Scenario, trials: int | None = None) -> None:
    """Check a run folder's `trials.parquet`, `monthly.parquet` and `summary.csv` against its scenario
    (and the manifest's trial count)."""
    folder = Path(folder)
    layout = RunLayout.of(scenario)
    n = _check_trials(folder / "trials.parquet", layout, scenario, trials)
    _check_monthly(folder / "monthly.parquet", layout, n)
    _check_summary(folder / "summary.csv")


def open_parquet(path: Path, what: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path, pre_buffer=False)
    except (pa.ArrowException, OSError, ValueError):
        raise InputError(f"error: {path}: expected {what} (a Parquet file), found a file that is not one or is "
                         "truncated; run the job again") from None


def _schema(path: Path, file: pq.ParquetFile, expected: pa.Schema, what: str) -> None:
    found = file.schema_arrow
    missing = [f.name for f in expected if f.name not in found.names]
    extra = [name for name in found.names if name not in expected.names]
    wrong = [f"{f.name} ({found.field(f.name).type}, not {f.type})" for f in expected
             if f.name in found.names and not found.field(f.name).type.equals(f.type)]
    problems = ([f"no column {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"] if missing else []) + \
               ([f"columns it should not have ({', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''})"] if extra else []) + \
               ([f"columns of another type: {', '.join(wrong[:5])}"] if wrong else [])
    if not problems and found.names != expected.names:
        problems = ["its columns in another order"]
    if problems:
        raise InputError(f"error: {path}: expected the {len(expected)} columns of {what} for the folder's scenario.toml, "
                         f"found {'; '.join(problems)}; run the job again")


def _column(path: Path, file: pq.ParquetFile, name: str) -> pa.ChunkedArray:
    try:
        return file.read(columns=[name], use_threads=False).column(0)
    except (pa.ArrowException, OSError, ValueError):
        raise InputError(f"error: {path}: column {name}: expected values that can be read, found a damaged or "
                         "truncated file; run the job again") from None


def _bad(path: Path, name: str, expected: str, found: str):
    return InputError(f"error: {path}: column {name}: expected {expected}, found {found}; the file was not "
                      "written by this run: run it again")


def _check_trials(path: Path, layout: RunLayout, scenario: Scenario, trials: int | None) -> int:
    file = open_parquet(path, "the trials of a run")
    _schema(path, file, trials_schema(layout), "trials.parquet")
    n = file.metadata.num_rows
    if trials is not None and n != trials:
        raise InputError(f"error: {path}: expected {trials:,} rows, one per trial as the manifest says, found {n:,}")
    if n == 0:
        return 0
    trial = _column(path, file, "trial").to_numpy()
    if not np.array_equal(trial, np.arange(n)):
        raise _bad(path, "trial", f"the trial indices 0 to {n - 1:,} in order", "others")
    counts = ["n_events", *layout.series]
    for name in counts:
        low = pc.min(_column(path, file, name)).as_py()
        if low is None or low < 0:
            raise _bad(path, name, "counts of 0 or more", "a negative count" if low is not None else "missing values")
    rungs = _column(path, file, "max_rung")
    low, high = pc.min(rungs).as_py(), pc.max(rungs).as_py()
    if low is None or low < 0 or high > len(layout.ladder):
        raise _bad(path, "max_rung", f"rungs from 0 to {len(layout.ladder)} (the ladder's)",
                   f"rung {low if low is None or low < 0 else high}")
    for m in layout.milestones:
        days = _column(path, file, f"t_{m}")
        finite = pc.filter(days, pc.invert(pc.is_nan(days)))
        low, high = pc.min(finite).as_py(), pc.max(finite).as_py()
        if days.null_count or (low is not None and (low < 0 or high > layout.horizon_days or math.isinf(high))):
            raise _bad(path, f"t_{m}", f"days from 0 to the horizon ({layout.horizon_days:g}) or NaN (not reached)",
                       "missing values" if days.null_count else f"day {low if low < 0 else high:g}")
        roots = _column(path, file, f"root_{m}")
        named = pc.invert(pc.is_null(roots)).to_numpy(zero_copy_only=False)
        if not np.array_equal(named, ~np.isnan(days.to_numpy())):
            raise _bad(path, f"root_{m}", f"a root for each trial that reached {m} and none for the others",
                       "other rows")
        unknown = set(pc.unique(roots.combine_chunks().dictionary_decode()).drop_null().to_pylist()) - set(layout.roots)
        if unknown:
            raise _bad(path, f"root_{m}", "roots of this scenario (its shocks, and its militias' fronts)",
                       f"{len(unknown)} other{'s' if len(unknown) > 1 else ''}")
    if layout.particles:
        particles = _column(path, file, "particle")
        size = len(scenario.parameters.posterior.weights)
        low, high = pc.min(particles).as_py(), pc.max(particles).as_py()
        if low is None or low < 0 or high >= size:
            raise _bad(path, "particle", f"rows of the fit's posterior (0 to {size - 1})",
                       f"row {low if low is None or low < 0 else high}")
    return n


def _check_monthly(path: Path, layout: RunLayout, trials: int) -> None:
    file = open_parquet(path, "the monthly counts of a run")
    _schema(path, file, monthly_schema(), "monthly.parquet")
    expected = trials * len(layout.months) * len(layout.monthly_series)
    if file.metadata.num_rows != expected:
        raise InputError(f"error: {path}: expected {expected:,} rows (each trial's {len(layout.months)} months × "
                         f"{len(layout.monthly_series)} series), found {file.metadata.num_rows:,}; run the job again")
    if expected:
        low = pc.min(_column(path, file, "count")).as_py()
        if low is None or low < 0:
            raise _bad(path, "count", "counts of 0 or more", "a negative count" if low is not None else "missing values")


def _check_summary(path: Path) -> None:
    import pandas as pd

    try:
        table = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"metric": str})
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError):
        raise InputError(f"error: {path}: expected the CSV table escsim run writes, found a file that is not one; "
                         "run the job again") from None
    if list(table.columns) != ["metric", "estimate", "lo", "hi"] or \
            not all(pd.api.types.is_numeric_dtype(table[c]) for c in ("estimate", "lo", "hi")):
        raise InputError(f"error: {path}: expected the columns metric, estimate, lo, hi (numbers), found "
                         f"{len(table.columns)} others or other values; run the job again")


def check_points(path: Path, manifest: dict) -> None:
    """A sweep's `points.parquet`: the columns its report reads, of their types, one row per point
    and output, points in 0..points-1."""
    file = open_parquet(path, "the points of a sweep")
    found = file.schema_arrow
    expected = {"point": pa.int64(), **{name: pa.float64() for name in manifest["parameters"]},
                "estimate": pa.float64(), "lo": pa.float64(), "hi": pa.float64()}
    problems = [f"no column {name}" if name not in found.names else f"column {name} of type {found.field(name).type}"
                for name, kind in expected.items() if name not in found.names or not found.field(name).type.equals(kind)]
    if "output" not in found.names or not (pa.types.is_string(found.field("output").type)
                                          or pa.types.is_dictionary(found.field("output").type)):
        problems.append("no column output of text")
    if problems:
        raise InputError(f"error: {path}: expected the columns of a sweep's points.parquet, found "
                         f"{'; '.join(problems[:5])}; run the sweep again")
    rows = manifest["points"] * len(manifest["outputs"])
    if file.metadata.num_rows != rows:
        raise InputError(f"error: {path}: expected {rows:,} rows ({manifest['points']:,} points × "
                         f"{len(manifest['outputs'])} outputs, as the manifest says), found {file.metadata.num_rows:,}")
    if rows:
        points = _column(path, file, "point")
        low, high = pc.min(points).as_py(), pc.max(points).as_py()
        if low is None or low < 0 or high >= manifest["points"]:
            raise _bad(path, "point", f"points 0 to {manifest['points'] - 1:,}", f"point {low if low is None or low < 0 else high}")
