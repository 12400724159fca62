"""`escsim compare`: scenarios side by side, trial by trial.

Every scenario is run with the same seed and trial count (or an existing run folder made so is
read): trial i of each uses the same random streams, so outcomes are paired by trial and the
differences between scenarios are their assumptions', not noise. For each pair (A, B) and
metric, `comparison.csv` gives both estimates, the difference B − A, a paired 95% interval, a
test and its p-value, the interval the same data would give unpaired, and the share of the
variance that pairing removed.

The compare folder holds `comparison.csv`, `manifest.json`, the report, and under `runs/` the
run folder of each scenario it ran (folders given as input are read where they are).
"""

from __future__ import annotations

import datetime as dt
import itertools
import shlex
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.comparison import stats
from sim.errors import InputError
from sim.forecast import resolve_forecast
from sim.runs import manifest as manifests
from sim.runs.folders import check_out, finish_folder, locked, prepare_folder
from sim.runs.layout import RunLayout
from sim.runs.manifest import read_json
from sim.runs.reading import read_run_folder
from sim.runs.runner import run
from sim.runs.storage import read_frame, write_json, write_text
from sim.runs.summary import count_quantile, day_label
from sim.scenario import Scenario, config_hash, load_scenario

COLUMNS = ["a", "b", "metric", "estimate_a", "estimate_b", "difference", "lo", "hi", "interval", "test", "statistic",
           "p_value", "unpaired_lo", "unpaired_hi", "variance_reduction", "only_in"]
# Which pairs a comparison of several scenarios reports: every pair, or each against the first.
PAIRS = ("all", "first")
# The `interval` of the mean highest rung of two scenarios whose ladders differ: rung r is another milestone in each.
NOT_COMPARABLE = "none: the ladders differ"


# The most trials a comparison reads: it holds a pair's per-trial columns (21 per run for the
# baseline, 8 bytes each) and the arrays its tests sort, so memory grows with the trials.
MAX_COMPARE_TRIALS = 5_000_000

@dataclass
class Arm:
    """One scenario of a comparison: its name and its finished run folder."""

    name: str
    folder: Path
    manifest: dict
    scenario: Scenario

    @property
    def layout(self) -> RunLayout:
        return RunLayout.of(self.scenario)

    def trials(self, columns: list[str]) -> pd.DataFrame:
        return read_frame(self.folder / "trials.parquet", columns=columns)


@dataclass
class CompareResult:
    out: Path
    comparison: pd.DataFrame
    manifest: dict
    arms: list[Arm]


def compare(
    items: list[str | Path],
    *,
    trials: int | None = None,
    seed: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    progress: bool | None = None,
    command: list[str] | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    pairs: str = "all",
) -> CompareResult:
    """Compare scenarios (files, run with common random numbers) and finished run folders.
    `overrides` set scenario values as `--set` does: a mapping (key path → value) for every
    scenario file, or `--set` words, each for every scenario file or, prefixed `N:`, for the N-th.
    Everything that can refuse the comparison (pairing, the folder) is checked before anything
    runs; `resume` completes an interrupted comparison in `out` (its runs under `runs/` resume).
    `pairs` "all" compares every pair (A–B, A–C, B–C), "first" each scenario against the first (A–B, A–C)."""
    if pairs not in PAIRS:
        raise InputError(f"error: --pairs: expected one of {', '.join(PAIRS)}, found {pairs!r}")
    if len(items) < 2:
        raise InputError(f"error: compare: expected at least two scenarios or run folders, found {len(items)}")
    per_item = arm_overrides(overrides, items)
    if out is not None:
        check_out(Path(out))
    sources = [_source(Path(item), changes) for item, changes in zip(items, per_item, strict=True)]
    seed, trials = _pairing(sources, seed, trials)
    if trials > MAX_COMPARE_TRIALS:
        raise InputError(
            f"error: --trials: expected at most {MAX_COMPARE_TRIALS:,} trials to compare (the comparison holds "
            "each pair's per-trial columns in memory and its rank tests sort them), "
            f"found {trials:,}; {MAX_COMPARE_TRIALS // 10:,} already give probabilities to ±0.0014 or better")
    names: set[str] = set()
    planned = [(_unique(scenario.scenario.name, names), path, scenario, manifest)
               for path, scenario, manifest in sources]
    _check_horizons([Arm(name, path, manifest or {}, scenario) for name, path, scenario, manifest in planned])
    plan = {"scenarios": [{"name": name, "config_hash": config_hash(scenario),
                           "folder": str(path) if manifest is not None else None}
                          for name, path, scenario, manifest in planned],
            "seed": seed, "trials": trials, "pairs": pairs}
    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="escsim-compare-"))
    with locked(out, "comparison"):
        finished = prepare_folder(out, plan, resume, what="comparison", options="scenarios, seed, trial count or pairs")
        if finished is not None:
            arms = [Arm(name, out / "runs" / name if manifest is None else path,
                        manifest if manifest is not None else read_json(out / "runs" / name / "manifest.json"), scenario)
                    for name, path, scenario, manifest in planned]
            return CompareResult(out, pd.read_csv(out / "comparison.csv"), finished, arms)
        return _compare(out, items, planned, per_item, plan, seed, trials, workers, scheduler, resume, progress,
                        command, pairs)


def _compare(out: Path, items, planned, per_item, plan: dict, seed: int, trials: int, workers, scheduler,
             resume: bool, progress, command, pairs: str) -> CompareResult:
    started = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    arms = []
    for (name, path, scenario, manifest), changes in zip(planned, per_item, strict=True):
        if manifest is None:
            result = run(scenario, trials=trials, seed=seed, workers=workers, scheduler=scheduler,
                         out=out / "runs" / name, resume=resume, progress=progress,
                         command=["escsim", "run", str(path), "--trials", str(trials), "--seed", str(seed),
                                  *(w for s in changes for w in ("--set", s))], overrides=changes)
            arms.append(Arm(name, result.out, result.manifest, scenario))
        else:
            arms.append(Arm(name, path, manifest, scenario))
    table = pd.DataFrame([row for a, b in arm_pairs(arms, pairs) for row in compare_pair(a, b)], columns=COLUMNS)
    write_text(out / "comparison.csv", table.to_csv(index=False, float_format="%.6g"))
    manifest = {
        "kind": "compare",
        "scenarios": [{"name": a.name, "folder": str(a.folder), "description": a.scenario.scenario.description,
                       "config_hash": a.manifest.get("config_hash"), "set": changes}
                      for a, changes in zip(arms, per_item, strict=True)],
        "seed": seed,
        "trials": trials,
        "plan": plan,
        "pairs": pairs,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "elapsed_seconds": round(time.perf_counter() - clock, 3),
        "command": shlex.join(command or ["escsim", "compare", *map(str, items), "--trials", str(trials),
                                          "--seed", str(seed)]),
        "reproduce": shlex.join(["escsim", "compare", *(str(a.folder / "scenario.toml") for a in arms),
                                 "--trials", str(trials), "--seed", str(seed),
                                 *(["--pairs", pairs] if pairs != "all" else []), "--out", "NEW_FOLDER"]),
        "versions": manifests.versions(),
    }
    from sim.reports.compare import write_compare_report

    write_compare_report(out, manifest=manifest)
    write_json(out / "manifest.json", manifest)
    finish_folder(out)
    return CompareResult(out, table, manifest, arms)


def arm_pairs(items: list, pairs: str = "all") -> list[tuple]:
    """The pairs (A, B) a comparison reports, B − A: every pair in order, or each item against the first."""
    if pairs == "first":
        return [(items[0], item) for item in items[1:]]
    return list(itertools.combinations(items, 2))


def arm_overrides(overrides: Mapping[str, Any] | Sequence[str] | None, items: list) -> list[list[str]]:
    """The `--set` words for each item: a word `N:KEY=VALUE` goes to the N-th item only (1 = the first),
    any other to every item."""
    if not overrides:
        return [[] for _ in items]
    words = manifests.override_words(overrides)
    out: list[list[str]] = [[] for _ in items]
    for word in words:
        head, colon, rest = word.partition(":")
        if colon and head.strip().isdigit() and "=" not in head:
            n = int(head)
            if not 1 <= n <= len(items):
                raise InputError(f"error: --set {word}: expected a scenario number from 1 to {len(items)} before ':', "
                                 f"found {n}")
            out[n - 1].append(rest)
        else:
            for changes in out:
                changes.append(word)
    return out


def _source(path: Path, changes: list[str] = ()) -> tuple[Path, Scenario, dict | None]:
    """A scenario file (to run, with its `--set` changes) or a finished run folder (to read)."""
    if path.is_dir() and changes:
        raise InputError(f"error: --set {changes[0]}: expected a scenario file to set it in, found the run folder "
                         f"{path} (a finished run is read as it is); number the --set (N:KEY=VALUE) for the files only")
    if path.is_dir():
        manifest_file = path / "manifest.json"
        if not manifest_file.is_file() or not (path / "trials.parquet").is_file():
            raise InputError(f"error: {path}: expected a scenario file or a finished run folder (with manifest.json "
                             "and trials.parquet), found a folder without them")
        manifest, scenario = read_run_folder(path)  # every file checked before any is compared
        return path, scenario, manifest
    return path, resolve_forecast(load_scenario(path, overrides=list(changes)), str(path)), None


def _pairing(sources, seed: int | None, trials: int | None) -> tuple[int, int]:
    """The seed and trial count every scenario shares; refuse run folders that cannot pair."""
    folders = [(path, m) for path, _, m in sources if m is not None]
    for path, m in folders:
        if (seed is not None and m.get("seed") != seed) or (trials is not None and m.get("trials") != trials):
            raise InputError(
                f"error: {path}: expected a run with seed {seed if seed is not None else m.get('seed')} and "
                f"{trials if trials is not None else m.get('trials'):,} trials to pair trial by trial, found seed "
                f"{m.get('seed')} and {m.get('trials'):,} trials; run it again with --seed and --trials, or leave them out")
    if folders:
        first, m0 = folders[0]
        for path, m in folders[1:]:
            if (m.get("seed"), m.get("trials")) != (m0.get("seed"), m0.get("trials")):
                raise InputError(
                    f"error: {path}: expected runs made with the same seed and trial count, to pair trial i with "
                    f"trial i, found seed {m.get('seed')} and {m.get('trials'):,} trials there but seed "
                    f"{m0.get('seed')} and {m0.get('trials'):,} trials in {first}")
        return int(m0["seed"]), int(m0["trials"])
    scenario = sources[0][1]
    return (scenario.run.seed if seed is None else seed), (scenario.run.trials if trials is None else trials)


def _check_horizons(arms: list[Arm]) -> None:
    """Arms pair only over the same days: the same start date and horizon (checked before any runs)."""
    first = arms[0]
    for arm in arms[1:]:
        if arm.scenario.scenario.horizon_days != first.scenario.scenario.horizon_days:
            raise InputError(
                f"error: {arm.folder}: scenario.horizon_days: expected the horizon of {first.name} "
                f"({first.scenario.scenario.horizon_days:g} days) to compare probabilities by the same date, found "
                f"{arm.scenario.scenario.horizon_days:g}")
        if arm.scenario.scenario.start_date != first.scenario.scenario.start_date:
            raise InputError(
                f"error: {arm.folder}: scenario.start_date: expected the start date of {first.name} "
                f"({first.scenario.scenario.start_date}) to pair trials over the same days, found "
                f"{arm.scenario.scenario.start_date}")


def _unique(name: str, taken: set[str]) -> str:
    candidate, k = name, 2
    while candidate in taken:
        candidate, k = f"{name}-{k}", k + 1
    taken.add(candidate)
    return candidate


def _union(first: list, second: list) -> list:
    """The items of both lists: the first's in its order, then the second's others."""
    return list(dict.fromkeys([*first, *second]))


def compare_pair(a: Arm, b: Arm) -> list[tuple]:
    """The rows of `comparison.csv` for one pair: B − A for each metric both runs have, and for a metric only one
    run has (a milestone or an actor the other scenario lacks) its estimate there, named in `only_in`, with no
    difference. The mean highest rung is compared only when both climb the same ladder."""
    la, lb = a.layout, b.layout
    milestones = _union(la.ordered, lb.ordered)
    series = _union(la.series, lb.series)
    by_days = sorted(set(la.by_days) | set(lb.by_days))
    horizon = la.horizon_days
    rows = []

    def columns(layout: RunLayout) -> list[str]:
        return [f"t_{m}" for m in milestones if m in layout.milestones] + [s for s in series if s in layout.series] \
            + ["max_rung"]

    ta, tb = a.trials(columns(la)), b.trials(columns(lb))

    def one_side(metric: str, x: np.ndarray | None, y: np.ndarray | None, estimate) -> None:
        """A metric only one arm has: its estimate there, no difference."""
        only, values = (a.name, x) if x is not None else (b.name, y)
        e = estimate(values)
        rows.append((a.name, b.name, metric, e if x is not None else np.nan, e if y is not None else np.nan,
                     np.nan, np.nan, np.nan, f"none: only {only} has it", "", np.nan, np.nan, np.nan, np.nan, np.nan,
                     only))

    def binary(metric: str, x: np.ndarray | None, y: np.ndarray | None) -> None:
        if x is None or y is None:
            return one_side(metric, x, y, np.mean)
        paired = stats.paired_proportion_difference(x, y)
        unpaired = stats.unpaired_proportion_difference(x, y)
        test = stats.mcnemar(x, y)
        rows.append((a.name, b.name, metric, x.mean(), y.mean(), paired.estimate, paired.lo, paired.hi,
                     "Newcombe paired (method 10)", test.method, test.statistic, test.p_value, unpaired.lo,
                     unpaired.hi, stats.variance_reduction(paired, unpaired), ""))

    def mean(metric: str, x: np.ndarray | None, y: np.ndarray | None, test) -> None:
        if x is None or y is None:
            return one_side(metric, x, y, np.mean)
        paired = stats.paired_mean_difference(x, y)
        unpaired = stats.unpaired_mean_difference(x, y)
        test = test(x, y)
        rows.append((a.name, b.name, metric, x.mean(), y.mean(), paired.estimate, paired.lo, paired.hi,
                     "paired t", test.method, test.statistic, test.p_value, unpaired.lo, unpaired.hi,
                     stats.variance_reduction(paired, unpaired), ""))

    def times(table: pd.DataFrame, layout: RunLayout, m: str) -> np.ndarray | None:
        return table[f"t_{m}"].to_numpy() if m in layout.milestones else None

    def apply(f, *values):
        return None if any(v is None for v in values) else f(*values)

    for m in milestones:
        xa, xb = times(ta, la, m), times(tb, lb, m)
        binary(f"p_{m}", apply(lambda t: ~np.isnan(t), xa), apply(lambda t: ~np.isnan(t), xb))
        for d in by_days:
            def by(t, d=d):
                return np.nan_to_num(t, nan=np.inf) <= d
            binary(f"p_{m}_by_{day_label(d)}d", apply(by, xa), apply(by, xb))
    for m in milestones:
        xa, xb = times(ta, la, m), times(tb, lb, m)

        def capped(t):
            return np.nan_to_num(t, nan=horizon)
        mean(f"rmst_{m}", apply(capped, xa), apply(capped, xb), lambda x, y, xa=xa, xb=xb: stats.log_rank(xa, xb, horizon))
    for s in series:
        xa = ta[s].to_numpy(dtype=float) if s in la.series else None
        xb = tb[s].to_numpy(dtype=float) if s in lb.series else None
        mean(f"mean_{s}", xa, xb, stats.wilcoxon_signed_rank)
        if xa is None or xb is None:
            one_side(f"q95_{s}", xa, xb, lambda v: count_quantile(v, 0.95))
            continue
        q95 = stats.paired_bootstrap_difference(xa, xb, lambda v: count_quantile(v, 0.95))
        test = stats.anderson_darling_k_sample(xa, xb)
        rows.append((a.name, b.name, f"q95_{s}", count_quantile(xa, 0.95), count_quantile(xb, 0.95), q95.estimate,
                     q95.lo, q95.hi, "paired bootstrap", test.method, test.statistic, test.p_value, np.nan, np.nan,
                     np.nan, ""))
    xa, xb = ta["max_rung"].to_numpy(dtype=float), tb["max_rung"].to_numpy(dtype=float)
    if la.ladder == lb.ladder:
        mean("mean_max_rung", xa, xb, stats.wilcoxon_signed_rank)
    else:  # rung 3 of one ladder is not rung 3 of the other
        rows.append((a.name, b.name, "mean_max_rung", xa.mean(), xb.mean(), np.nan, np.nan, np.nan,
                     NOT_COMPARABLE, "", np.nan, np.nan, np.nan, np.nan, np.nan, ""))
    return rows
