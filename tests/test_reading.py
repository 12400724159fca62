"""Finished folders damaged after the fact: every file of a small run folder corrupted in several
ways (truncated, garbage, valid Parquet of the wrong content, impossible values, a manifest of
the wrong shape), then `escsim report` and `escsim compare` on it. Each is one message naming
the file, exit code 2, no traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import sim
from sim.cli import main
from tests.conftest import SCENARIOS


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    """A run of the baseline (calibrated: its trials name posterior particles), one of a what-if,
    and a comparison of the two folders."""
    root = tmp_path_factory.mktemp("reading")
    sim.run(SCENARIOS / "baseline.toml", trials=40, seed=3, workers=1, out=root / "a", progress=False)
    sim.run(SCENARIOS / "us_leaves_iraq.toml", trials=40, seed=3, workers=1, out=root / "b", progress=False)
    sim.compare([root / "a", root / "b"], out=root / "cmp", progress=False)
    return root


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes())


def _table_change(change):
    def corrupt(path: Path) -> None:
        table = pq.read_table(path)
        pq.write_table(change(table), path)
    return corrupt


def _set(column: str, values):
    """The column replaced by `values(old numpy values)`, of the same type."""
    def change(table: pa.Table) -> pa.Table:
        old = table.column(column)
        new = pa.array(values(old.to_numpy().copy()), old.type)
        return table.set_column(table.schema.get_field_index(column), column, new)
    return _table_change(change)


def _first(values, value):
    values[0] = value
    return values


TRIALS = {
    "truncated": _truncate,
    "garbage": _garbage,
    "missing column": _table_change(lambda t: t.drop_columns(["max_rung"])),
    "extra column": _table_change(lambda t: t.append_column("x", pa.array(np.zeros(t.num_rows)))),
    "wrong dtype": _table_change(lambda t: t.set_column(1, "n_events", t.column("n_events").cast(pa.float64()))),
    "other table": _table_change(lambda t: pa.table({"a": [1, 2, 3]})),
    "negative count": _set("attacks_on_israel", lambda v: _first(v, -5)),
    "rung 999": _set("max_rung", lambda v: _first(v, 999)),
    "every trial 0": _set("trial", lambda v: v * 0),
    "trials out of order": _set("trial", lambda v: v[::-1]),
    "day past the horizon": _set("t_us_strikes_in_iraq", lambda v: _first(v, 400.0)),
    "negative day": _set("t_us_strikes_in_iraq", lambda v: _first(v, -1.0)),
    "particle out of range": _set("particle", lambda v: _first(v, 10**6)),
    "rows missing": _table_change(lambda t: t.slice(0, 20)),
}
MONTHLY = {
    "truncated": _truncate,
    "garbage": _garbage,
    "negative count": _set("count", lambda v: _first(v, -1)),
    "rows missing": _table_change(lambda t: t.slice(0, 100)),
    "other table": _table_change(lambda t: pa.table({"a": [1]})),
}
MANIFEST = {
    "kind only": lambda p: p.write_text('{"kind": "run"}'),
    "100,000 deep": lambda p: p.write_text("[" * 100_000 + "]" * 100_000),
    "deep object": lambda p: p.write_text('{"a":' * 100_000 + "1" + "}" * 100_000),
    "truncated": _truncate,
    "garbage": _garbage,
    "a list": lambda p: p.write_text("[1, 2]"),
    "trials as text": lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "trials": "40"})),
}
SUMMARY = {"garbage": _garbage, "other columns": lambda p: p.write_text("x,y\n1,2\n")}
CASES = [(name, kind, corrupt) for name, cases in (("trials.parquet", TRIALS), ("monthly.parquet", MONTHLY),
                                                   ("manifest.json", MANIFEST), ("summary.csv", SUMMARY))
         for kind, corrupt in cases.items()]


def _refused(result, file: Path) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    assert result.output.startswith(f"error: {file}"), result.output
    assert result.output.count("\n") == 1, result.output


@pytest.mark.parametrize(("name", "kind", "corrupt"), CASES, ids=[f"{n}-{k}" for n, k, _ in CASES])
def test_a_damaged_run_folder_is_refused_by_report_and_compare(folders, tmp_path, name, kind, corrupt):
    run = tmp_path / "run"
    shutil.copytree(folders / "a", run)
    corrupt(run / name)
    _refused(CliRunner().invoke(main, ["report", str(run)]), run / name)
    _refused(CliRunner().invoke(main, ["compare", str(run), str(folders / "b"), "--out", str(tmp_path / "cmp")]),
             run / name)
    assert not (tmp_path / "cmp").exists() or not any((tmp_path / "cmp").iterdir())


@pytest.mark.parametrize("kind", ["truncated", "rung 999", "negative count"])
def test_a_comparison_whose_run_is_damaged_is_refused_by_report(folders, tmp_path, kind):
    case = tmp_path / "case"
    for name in ("a", "b", "cmp"):
        shutil.copytree(folders / name, case / name)
    manifest = json.loads((case / "cmp" / "manifest.json").read_text())
    for entry, name in zip(manifest["scenarios"], ("a", "b"), strict=True):
        entry["folder"] = str(case / name)
    (case / "cmp" / "manifest.json").write_text(json.dumps(manifest))
    TRIALS[kind](case / "b" / "trials.parquet")
    _refused(CliRunner().invoke(main, ["report", str(case / "cmp")]), case / "b" / "trials.parquet")


@pytest.mark.parametrize("kind", ["kind only", "100,000 deep", "a list"])
def test_a_comparison_manifest_of_the_wrong_shape_is_refused(folders, tmp_path, kind):
    shutil.copytree(folders / "cmp", tmp_path / "cmp")
    path = tmp_path / "cmp" / "manifest.json"
    MANIFEST[kind](path) if kind != "kind only" else path.write_text('{"kind": "compare"}')
    _refused(CliRunner().invoke(main, ["report", str(tmp_path / "cmp")]), path)


def test_an_intact_run_folder_rebuilds_as_before(folders, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(folders / "a", run)
    before = (run / "report.md").read_bytes()
    result = CliRunner().invoke(main, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert (run / "report.md").read_bytes() == before


def _posterior_weights_negative(path: Path) -> None:
    table = pq.read_table(path)
    i = table.schema.get_field_index("weight")
    pq.write_table(table.set_column(i, "weight", pa.array(-table.column(i).to_numpy(), pa.float64())), path)


FIT = {
    ("posterior.parquet", "truncated"): _truncate,
    ("posterior.parquet", "garbage"): _garbage,
    ("posterior.parquet", "text column"): lambda p: pq.write_table(pa.table({"weight": ["x"], "distance": [1.0]}), p),
    ("posterior.parquet", "negative weights"): _posterior_weights_negative,
    ("generations.csv", "garbage"): _garbage,
    ("generations.csv", "other columns"): lambda p: p.write_text("a,b\n1,2\n"),
    ("predictive_monthly.csv", "truncated"): _truncate,
    ("predictive_targets.csv", "text for numbers"): lambda p: p.write_text(
        p.read_text().replace(",True,", ",maybe,", 1).replace(",False,", ",maybe,", 1)),
    ("scores.csv", "other columns"): lambda p: p.write_text("x\n1\n"),
}


@pytest.mark.parametrize(("name", "kind"), list(FIT), ids=[f"{n}-{k}" for n, k in FIT])
def test_a_damaged_fit_folder_is_refused_by_report(tmp_path, monkeypatch, name, kind):
    from tests.conftest import ROOT

    monkeypatch.chdir(ROOT)  # the fit names its targets file from the repository's root
    fit = tmp_path / "fit"
    shutil.copytree(ROOT / "calibration" / "fits" / "default", fit)
    FIT[name, kind](fit / name)
    _refused(CliRunner().invoke(main, ["report", str(fit)]), fit / name)


SWEEP = {
    ("sensitivity.csv", "garbage"): _garbage,
    ("sensitivity.csv", "text for numbers"): lambda p: p.write_text(
        "output,parameter,index,estimate,lo,hi,interval,note\na,b,swing,x,1,2,,\n"),
    ("points.parquet", "truncated"): _truncate,
    ("points.parquet", "rows missing"): _table_change(lambda t: t.slice(0, t.num_rows - 1)),
    ("manifest.json", "kind only"): lambda p: p.write_text('{"kind": "sweep"}'),
}


@pytest.mark.parametrize(("name", "kind"), list(SWEEP), ids=[f"{n}-{k}" for n, k in SWEEP])
def test_a_damaged_sweep_folder_is_refused_by_report(tmp_path, name, kind):
    from tests.test_sweeps import TINY_PARAMETERS, write_spec

    spec = write_spec(tmp_path, "oat", 2, {"rate": TINY_PARAMETERS["rate"]}, ["mean_attacks_on_s"], trials_per_point=10)
    sim.sweep(spec, workers=1, out=tmp_path / "sweep", progress=False)
    SWEEP[name, kind](tmp_path / "sweep" / name)
    _refused(CliRunner().invoke(main, ["report", str(tmp_path / "sweep")]), tmp_path / "sweep" / name)
