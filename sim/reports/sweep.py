"""The report of a sweep folder: the parameters and their ranges, then for each output the design's
figure (tornado, Sobol or Morris indices, grid heat map, PRCC with scatter) and its sensitivity table,
so a reader can see which assumptions move each result, and by how much beyond Monte Carlo noise.

`report.md` holds the same tables as Markdown; `parameters.csv` the parameters' table, and `sensitivity.csv`
(written by the sweep) the indices. All are rebuilt byte for byte from the saved files.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sim.errors import InputError
from sim.reports import markdown as md
from sim.reports import sweep_figures as figs
from sim.reports.figures import BLUE, GREY
from sim.reports.html import render
from sim.reports.run import require_files
from sim.runs.storage import write_text
from sim.scenario import load_scenario
from sim.sweeps.indices import CONSTANT, WIDE, design_warnings

DESIGNS = {
    "oat": "one at a time (OAT)",
    "grid": "full grid",
    "lhs": "Latin hypercube with partial rank correlations (PRCC)",
    "sobol": "Sobol' variance decomposition (Saltelli sampling)",
    "morris": "Morris elementary effects",
}
SAMPLES = {
    "oat": "values per parameter",
    "grid": "values per parameter unless a parameter sets its own levels",
    "lhs": "points of the Latin hypercube",
    "sobol": "base samples N of Saltelli's scheme",
    "morris": "trajectories of d + 1 points",
}
INDICES = {
    "oat": ["at_low", "at_high", "swing"],
    "grid": ["main_effect"],
    "lhs": ["prcc"],
    "sobol": ["S1", "ST"],
    "morris": ["mu", "mu_star", "sigma"],
}
INDEX_LABELS = {"at_low": "At low", "at_high": "At high", "swing": "Swing", "main_effect": "Main effect",
                "prcc": "PRCC", "S1": "S1", "ST": "ST", "mu": "μ", "mu_star": "μ*", "sigma": "σ"}
UNDEFINED = "not defined (the output did not vary)"
# A Latin hypercube's scatter panels draw at most this many points (a random sample beyond): an
# inline SVG of 10^5 points would weigh hundreds of MB, and so would drawing it.
SCATTER_POINTS = 1000
SCATTER_SEED = 20240604


REPORT_FILES = ("report.html", "report.md", "parameters.csv")


SENSITIVITY_COLUMNS = ("output", "parameter", "index", "estimate", "lo", "hi")  # then interval and note


def _sensitivity(path: Path) -> pd.DataFrame:
    """A sweep's `sensitivity.csv`, checked for its columns (estimate, lo, hi numbers); one written
    before it had `interval` and `note` gets them empty. A file that is not one is an InputError."""
    try:
        table = pd.read_csv(path, keep_default_na=False, na_values=[""],
                            dtype={"output": str, "parameter": str, "index": str, "interval": str, "note": str})
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        table = None
    if table is not None and "note" not in table:  # a folder written before sensitivity.csv had notes
        table = table.assign(interval="", note="")
    if table is None or tuple(table.columns) != (*SENSITIVITY_COLUMNS, "interval", "note") or not all(
            pd.api.types.is_numeric_dtype(table[c]) for c in ("estimate", "lo", "hi")):
        raise InputError(f"error: {path}: expected the table escsim sweep writes there (columns "
                         f"{', '.join(SENSITIVITY_COLUMNS)}, interval, note; estimate, lo and hi numbers), found a "
                         "file that is not one or holds other columns or values; run the sweep again")
    return table


def write_sweep_report(out: Path, *, manifest: dict) -> list[Path]:
    """Write the report files (`REPORT_FILES`) of a sweep folder from its saved files; return their paths."""
    out = Path(out)
    sensitivity = _sensitivity(out / "sensitivity.csv")
    sensitivity["note"] = sensitivity["note"].fillna("").astype(str)
    sensitivity["interval"] = sensitivity["interval"].fillna("").astype(str)
    scenario = load_scenario(out / "scenario.toml")
    base = scenario.scenario
    labels = Labels.of(scenario)
    design = manifest["design"]
    parameters = manifest["parameters"]
    sections = []
    for output in manifest["outputs"]:
        rows = output_rows(out / "points.parquet", output)
        found = sensitivity[sensitivity["output"] == output]
        values = {(r.parameter, r.index): (float(r.estimate), float(r.lo), float(r.hi))
                  for r in found.itertuples(index=False)}
        notes = {part for text in found["note"] for part in text.split("; ") if part}
        methods = sorted((m for m in set(found.loc[found["index"] == "swing", "interval"]) if m),
                         key=lambda m: (m == "identical in every trial", m))
        sections.append(_section(design, output, parameters, rows, values, labels.output(output),
                                 constant=CONSTANT in notes, wide=int(found["note"].str.contains(WIDE, regex=False).sum()),
                                 swing_methods=methods))
    table = [{"name": k, "path": p["path"], "low": f"{p['low']:g}", "high": f"{p['high']:g}",
              "scale": p.get("scale", "linear"), "why": p.get("why", ""), "levels": p.get("levels", "")}
             for k, p in parameters.items()]
    any_levels = any("levels" in p for p in parameters.values())
    context = {"manifest": manifest, "base": base, "design_name": DESIGNS.get(design, design),
               "samples_meaning": SAMPLES.get(design, ""), "elapsed": _duration(manifest.get("elapsed_seconds")),
               "parameters": table, "any_levels": any_levels, "sections": sections,
               "warnings": design_warnings(sensitivity)}
    render("sweep.html.j2", out / "report.html", title=f"escalation-sim sweep: {manifest['sweep']}",
           reproduce=manifest["reproduce"], versions=manifest["versions"], **context)
    write_text(out / "report.md", _markdown(**context))
    columns = ["name", "path", "low", "high", "scale", *(["levels"] if any_levels else []), "why"]
    write_text(out / "parameters.csv", pd.DataFrame(
        [[row[c] for c in columns] for row in table], columns=columns).to_csv(index=False))
    return [out / name for name in REPORT_FILES]


def output_rows(path: Path, output: str) -> pd.DataFrame:
    """One output's rows of `points.parquet` in point order, read a row group at a time, so that
    a large sweep's whole table (every output's rows) is never in memory at once."""
    file = pq.ParquetFile(path, pre_buffer=False)
    parts = []
    for batch in file.iter_batches(use_threads=False):
        column = batch.column("output")
        if pa.types.is_dictionary(column.type):
            column = column.cast(pa.string())
        parts.append(batch.filter(pc.equal(column, output)))
    rows = pa.Table.from_batches(parts, schema=file.schema_arrow).to_pandas()
    return rows.sort_values("point", kind="stable").reset_index(drop=True)


def rebuild_sweep_report(out: Path) -> list[Path]:
    """Rebuild the report files of a finished sweep folder from its saved files only; return their paths."""
    out = Path(out)
    from sim.runs.reading import check_points, read_manifest

    require_files(out, ("manifest.json", "points.parquet", "sensitivity.csv", "scenario.toml"), "sweep")
    manifest = read_manifest(out, "sweep")
    check_points(out / "points.parquet", manifest)
    return write_sweep_report(out, manifest=manifest)


def _markdown(*, manifest: dict, base, design_name: str, samples_meaning: str, elapsed: str, parameters: list[dict],
              any_levels: bool, sections: list[dict], warnings: list[str]) -> str:
    parts = [f"# Sweep: {manifest['sweep']}\n"]
    if manifest.get("description"):
        parts.append(f"{manifest['description']}\n")
    parts += [
        f"- Base scenario: {base.name}" + (f": {base.description}" if base.description else ""),
        f"- Design: {design_name} ({md.code(manifest['design'])})",
        f"- Samples: {manifest['samples']} ({samples_meaning})",
        f"- Points: {manifest['points']:,}",
        f"- Trials per point: {manifest['trials_per_point']:,} (common random numbers: every point runs the same "
        "trial seeds)",
        f"- Trials in all: {manifest['trials']:,}",
        f"- Seed: {manifest['seed']}",
        f"- Run: {manifest['started_at']} → {manifest['finished_at']} ({elapsed})",
        f"- Versions: {md.versions(manifest['versions'])}",
        f"- Command: {md.code(manifest['command'])}",
        f"- Reproduce: {md.code(manifest['reproduce'])}\n",
        *(f"**Warning:** {w}.\n" for w in warnings),
        "## Parameters\n",
        md.table(["Parameter", "Key path", "Low", "High", "Scale", *(["Levels"] if any_levels else []), "Why this range"],
                 [[p["name"], md.code(p["path"]), p["low"], p["high"], p["scale"],
                   *([p["levels"]] if any_levels else []), p["why"]] for p in parameters],
                 left=(0, 1, 4, 5, 6) if any_levels else (0, 1, 4, 5)),
    ]
    for s in sections:
        parts.append(f"## {s['label']} ({md.code(s['metric'])})\n")
        parts += [f"{note}\n" for note in s["notes"]]
        if s["table"] is not None:
            parts.append(md.table(["Parameter", *s["table"]["columns"]],
                                  [[r["parameter"], *r["cells"]] for r in s["table"]["rows"]]))
        if s["pairs"]:
            parts.append("Second-order indices S2: the share of the output's variance due to each pair's interaction "
                         "alone.\n")
            parts.append(md.table(["Pair", "S2", "95% interval"],
                                  [[f"{p['a']} × {p['b']}", p["estimate"], p["interval"]] for p in s["pairs"]]))
    parts.append("The tables round to 3 significant digits; `sensitivity.csv` holds every index with its interval, "
                 "`points.parquet` every point's parameter values and estimates, `parameters.csv` the parameters.\n")
    return "\n".join(parts)


SERIES = re.compile(r"(attacks|hits|casualties|deaths)_on_(.+)|(attacks|strikes)_by_(.+)")


def actor_name(actor: str) -> str:
    """An actor's id as a name in a sentence: short ids are acronyms (us → US, iri → IRI), others
    capitalised (israel → Israel). A local rule of the sweep report."""
    return actor.upper() if len(actor) <= 3 else actor[:1].upper() + actor[1:]


def series_label(series: str) -> str:
    """attacks_on_israel → attacks on Israel; strikes_by_us → strikes by US."""
    if m := SERIES.fullmatch(series):
        what, actor = (m[1], m[2]) if m[1] else (m[3], m[4])
        return f"{what} {'on' if m[1] else 'by'} {actor_name(actor)}"
    return series.replace("_", " ")


class Labels:
    """Readable names of a sweep's outputs: milestones by their labels, series by their actors."""

    def __init__(self, milestones: dict[str, str]):
        self.milestones = milestones

    @classmethod
    def of(cls, scenario) -> Labels:
        return cls({k: (m.label or k.replace("_", " ")) for k, m in scenario.milestones.items()})

    def output(self, metric: str) -> str:
        return output_label(metric, self.milestones)


def output_label(metric: str, milestones: dict[str, str] | None = None) -> str:
    """A readable name for a `summary.csv` metric, e.g. p_israel_strikes_in_iraq → P(Israel strikes
    inside Iraq) with the milestone's label, mean_attacks_on_israel → Mean attacks on Israel."""
    milestones = milestones or {}

    def milestone(name: str) -> str:
        return milestones.get(name, name.replace("_", " "))

    if (m := re.fullmatch(r"p_(.+)_by_(\d+(?:_\d+)?)d", metric)) and metric[2:] not in milestones:
        return f"P({milestone(m[1])} within {m[2].replace('_', '.')} days)"
    if metric.startswith("p_"):
        return f"P({milestone(metric[2:])})"
    if metric.startswith("median_t_"):
        return f"Median day of {milestone(metric[9:])} (if reached)"
    if metric == "mean_max_rung":
        return "Mean highest rung of the ladder"
    if m := re.fullmatch(r"q(\d\d)_(.+)", metric):
        return (f"{int(m[1])}th percentile of {series_label(m[2])}" if m[1] != "50"
                else f"Median of {series_label(m[2])}")
    if metric.startswith("mean_"):
        return f"Mean {series_label(metric[5:])}"
    return metric.replace("_", " ")


def _section(design: str, output: str, parameters: dict, rows: pd.DataFrame, values: dict, label: str, *,
             constant: bool = False, wide: int = 0, swing_methods: list[str] | None = None) -> dict:
    names = list(parameters)
    y = rows["estimate"].to_numpy(dtype=float)
    finite = y[np.isfinite(y)]
    notes = []
    if constant:
        # No index to draw: the output is the same at every point of the design.
        notes.append(f"Constant over the design: {figs.fmt(float(finite[0]))} at every point, so no parameter "
                     "moved it and no indices are drawn"
                     + (" (each swing is 0, its paired interval [0, 0] where no trial changed)." if design == "oat"
                        else "."))
        section = {"metric": output, "label": label, "figures": [], "notes": notes, "pairs": None,
                   "table": _table(design, names, lambda p, i: values.get((p, i), (math.nan,) * 3))
                   if design in ("oat", "morris") else None}
        return section
    if wide:
        notes.append(f"Warning: {wide} of the S1/ST intervals below are wider than 0.5: the design is too small for "
                     "them (use a larger N).")
    if design == "oat" and swing_methods:
        notes.append("Swing intervals: " + ", ".join(swing_methods) + " (paired: the same trials at both ends).")
    if finite.size == 0:
        why = "not defined (the output was not a finite number at any point)"
    elif finite.min() == finite.max():
        why = UNDEFINED
        notes.append(f"The output took the same value ({figs.fmt(float(finite[0]))}) at every point"
                     + (" where it was defined." if finite.size < y.size else "."))
    else:
        why = "not defined" + (" (the output was not a finite number at every point)" if finite.size < y.size else "")

    def get(p: str, index: str) -> tuple[float, float, float]:
        return values.get((p, index), (math.nan, math.nan, math.nan))

    key = {"oat": ("swing", abs), "grid": ("main_effect", float), "lhs": ("prcc", abs),
           "sobol": ("ST", float), "morris": ("mu_star", float)}.get(design)
    order = names
    if key:
        order = sorted(names, key=lambda p: _sort_key(key[1](get(p, key[0])[0])))
    defined = key is not None and any(math.isfinite(get(p, key[0])[0]) for p in names)
    section = {"metric": output, "label": label, "figures": [], "notes": notes, "pairs": None}
    if key and not defined:
        section["notes"].append(f"Sensitivity indices: {why}.")
    elif key and not all(math.isfinite(get(p, key[0])[0]) for p in names):
        section["notes"].append("Indices shown as — are not defined for that parameter.")
    outside = sorted({p for (p, _), (e, lo, hi) in values.items() if math.isfinite(lo + hi + e) and not lo <= e <= hi})
    if outside:
        section["notes"].append(f"Some estimates lie outside their own 95% interval ({', '.join(outside)}); "
                                "read those intervals as a rough guide only.")

    if design == "oat":
        _oat(section, order, parameters, rows, get, label, defined)
    elif design == "sobol" and defined:
        _sobol(section, order, names, values, get)
    elif design == "morris" and defined:
        mu_star = [get(p, "mu_star") for p in order]
        section["figures"].append(figs.morris_scatter(
            order, [m[0] for m in mu_star], [m[1] for m in mu_star], [m[2] for m in mu_star],
            [get(p, "sigma")[0] for p in order],
            "μ*: mean |change of the output| across a parameter's range (bars: bootstrap 95% interval)"))
    elif design == "grid":
        if finite.size:
            _grid(section, names, parameters, rows, label)
        if defined:
            est = [get(p, "main_effect") for p in order]
            section["figures"].append(figs.index_bars(
                order, [("main effect", *zip(*est, strict=True), BLUE)],
                "main-effect share of the output's variance over the grid (bars: 95% interval)", xlim=(0, 1.05)))
    elif design == "lhs":
        if defined:
            est = [get(p, "prcc") for p in order]
            section["figures"].append(figs.index_bars(
                order, [("PRCC", *zip(*est, strict=True), BLUE)],
                f"partial rank correlation with {label} (bars: Fisher-z 95% interval)", xlim=(-1.05, 1.05)))
        if finite.size:
            shown = scatter_sample(rows)
            panels = [(p, shown[p].tolist(), shown["estimate"].tolist(), shown["lo"].tolist(), shown["hi"].tolist(),
                       parameters[p].get("scale") == "log") for p in order]
            section["figures"].append(figs.scatter_panels(panels, label, of=len(rows)))
            if len(shown) < len(rows):
                section["notes"].append(
                    f"The small panels show {len(shown):,} of the {len(rows):,} points, drawn at random (a fixed "
                    "seed: the same points for every output and every rebuild), so that the report stays small; "
                    "the indices use every point, and `points.parquet` holds them all.")
    section["table"] = _table(design, order, get)
    return section


def scatter_sample(rows: pd.DataFrame, size: int = SCATTER_POINTS, seed: int = SCATTER_SEED) -> pd.DataFrame:
    """The rows drawn in the scatter panels: all of them up to `size`, else `size` of them at
    random (fixed seed, kept in point order). Every output has a row per point, so each output
    shows the same points."""
    if len(rows) <= size:
        return rows
    keep = np.sort(np.random.default_rng(seed).choice(len(rows), size=size, replace=False))
    return rows.iloc[keep]


def _sort_key(v: float) -> tuple[int, float]:
    return (1, 0.0) if not math.isfinite(v) else (0, -v)


def _oat(section: dict, order: list[str], parameters: dict, rows: pd.DataFrame, get, label: str,
         defined: bool) -> None:
    base = rows[rows[list(parameters)].isna().all(axis=1)]
    base = base if len(base) else rows[rows["point"] == 0]
    b = base.iloc[0] if len(base) else {"estimate": math.nan, "lo": math.nan, "hi": math.nan}
    bars = []
    for p in order:
        low, high = get(p, "at_low"), get(p, "at_high")
        bars.append({"label": p, "low": low[0], "low_lo": low[1], "low_hi": low[2],
                     "high": high[0], "high_lo": high[1], "high_hi": high[2],
                     "low_value": f"{parameters[p]['low']:g}", "high_value": f"{parameters[p]['high']:g}"})
    if any(math.isfinite(v) for r in bars for v in (r["low"], r["high"])):
        section["figures"].append(figs.tornado(bars, float(b["estimate"]), float(b["lo"]), float(b["hi"]),
                                               f"{label} (whiskers: 95% Monte Carlo interval of each point)"))
        if not defined:
            section["notes"].append("The swings are not defined: the bars show what could be drawn.")


def _sobol(section: dict, order: list[str], names: list[str], values: dict, get) -> None:
    s1, st = [get(p, "S1") for p in order], [get(p, "ST") for p in order]
    section["figures"].append(figs.index_bars(
        order, [("S1: alone", *zip(*s1, strict=True), GREY), ("ST: with all its interactions", *zip(*st, strict=True), BLUE)],
        "share of the output's variance (bars: bootstrap 95% interval)"))
    ends = [v for t in s1 + st for v in t if math.isfinite(v)]
    if ends and (min(ends) < -0.05 or max(ends) > 1.05):
        section["notes"].append("Some estimates or intervals fall outside [0, 1], the range of the indices: that is "
                                "sampling error of a small design; more base samples narrow it.")
    pairs = []
    for a in range(len(names)):
        for c in range(a + 1, len(names)):
            v = values.get((f"{names[a]}:{names[c]}", "S2"))
            if v is not None:
                pairs.append((names[a], names[c], *v))
    if pairs:
        pairs.sort(key=lambda t: (_sort_key(t[2]), t[0], t[1]))
        section["pairs"] = [{"a": a, "b": c, "estimate": figs.fmt(e),
                             "interval": _interval(lo, hi) if math.isfinite(e) else "—"}
                            for a, c, e, lo, hi in pairs]


def _grid(section: dict, names: list[str], parameters: dict, rows: pd.DataFrame, label: str) -> None:
    if len(names) == 1:
        p = names[0]
        line = rows.sort_values(p, kind="stable")
        section["figures"].append(figs.grid_line(line[p].tolist(), line["estimate"].tolist(), line["lo"].tolist(),
                                                 line["hi"].tolist(), p, label, parameters[p].get("scale") == "log"))
        return
    first, second = names[0], names[1]
    table = rows.groupby([first, second], sort=True)["estimate"].mean().unstack(second)
    table = table.sort_index(axis=0).sort_index(axis=1)
    section["figures"].append(figs.heat_map(table.index.tolist(), table.columns.tolist(), table.to_numpy(dtype=float),
                                            first, second, label))
    if len(names) > 2:
        others = ", ".join(names[2:])
        section["notes"].append(f"The heat map shows {first} × {second}; each cell averages the output over the "
                                f"other parameters' grid values ({others}).")


def _table(design: str, order: list[str], get) -> dict:
    indices = INDICES.get(design, [])
    with_interval = [i for i in indices if any(math.isfinite(get(p, i)[1]) for p in order)]
    columns = []
    for i in indices:
        columns.append(INDEX_LABELS.get(i, i))
        if i in with_interval:
            columns.append("95% interval")
    rows = []
    for p in order:
        cells = []
        for i in indices:
            est, lo, hi = get(p, i)
            cells.append(figs.fmt(est))
            if i in with_interval:
                cells.append(_interval(lo, hi) if math.isfinite(est) else "—")
        rows.append({"parameter": p, "cells": cells})
    return {"columns": columns, "rows": rows}


def _interval(lo: float, hi: float) -> str:
    return "—" if not (math.isfinite(lo) and math.isfinite(hi)) else f"[{figs.fmt(lo)}, {figs.fmt(hi)}]"


def _duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min {seconds - 60 * minutes:.0f} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"
