"""`escsim calibrate`: fit the history replay to the targets by ABC-SMC, check the fit, score a
time-split forecast, and write the fit folder.

Two fits run: the full fit on every target (its posterior is the one scenarios use), and the
split fit on the targets that end by `fit_until`, whose posterior forecasts the later targets
for the validation scores. Simulations go through the same executors as runs, in fixed
batches; every random number comes from the fit's seed, so a fit is reproducible.

Each batch's distances (and each posterior predictive draw) are checkpointed under
`DIR/.chunks/` as they finish. `resume=True` replays the fit from its seed, reading the
checkpointed batches instead of simulating them again, so an interrupted fit completes to the
same files; the fit's plan (targets, budget, seed) must match.

Folder (default `<targets folder>/fits/<name>/`): `posterior.parquet`, `generations.csv`,
`predictive_monthly.csv`, `predictive_targets.csv`, `scores.csv`, `fit.toml`, and the report
built from them (`report.html`, `report.md`, `parameters.csv`), which `escsim report` rebuilds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import sys
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scoringrules as sr
import tomli_w
from tqdm import tqdm

from sim.calibration.abc import Generation, IndependentPrior, abc_smc
from sim.calibration.objective import Objective
from sim.calibration.targets import Targets, load_targets
from sim.engine.variants import VariantTask, run_variants
from sim.errors import InputError, WorkError
from sim.runs.executors import executor_workers, make_executor
from sim.runs.folders import CHUNKS, finish_folder, locked, prepare_folder
from sim.runs.manifest import versions
from sim.runs.storage import atomic_path, read_frame, write_text
from sim.runs.tasks import Checkpoints, results_in_order
from sim.scenario import config_hash

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class Budget:
    particles: int
    generations: int
    min_acceptance: float
    max_simulations: int
    predictive_trials: int
    batch: int


BUDGETS = {
    # Under five minutes on two cores: a rough fit, to try targets and priors.
    "small": Budget(particles=200, generations=6, min_acceptance=0.02, max_simulations=15_000,
                    predictive_trials=500, batch=200),
    # The real fit: tolerances fall until acceptance drops under 1%.
    "full": Budget(particles=1000, generations=14, min_acceptance=0.01, max_simulations=400_000,
                   predictive_trials=4000, batch=500),
}


@dataclass
class FitResult:
    out: Path
    posterior: pd.DataFrame
    generations: pd.DataFrame
    predictive_monthly: pd.DataFrame
    predictive_targets: pd.DataFrame
    scores: pd.DataFrame


def calibrate(targets_path: str | Path, *, budget: str = "small", seed: int = 20240604, workers: int | None = None,
              scheduler: str | None = None, out: str | Path | None = None, replace: bool = False, resume: bool = False,
              progress: bool | None = None, command: list[str] | None = None) -> FitResult:
    """Fit, check and score (see module docstring); `out` defaults to `fits/<name>` beside the
    targets file, `replace` starts over a fit there, `resume` completes an interrupted one."""
    if budget not in BUDGETS:
        raise InputError(f"error: --budget: expected one of {', '.join(BUDGETS)}, found {budget!r}")
    if replace and resume:
        raise InputError("error: --replace and --resume: expected one of them, found both")
    targets = load_targets(targets_path)
    settings = BUDGETS[budget]
    out = Path(out) if out is not None else Path(targets_path).parent / "fits" / targets.name
    plan = {"targets_hash": targets_hash(targets), "budget": budget, "seed": seed}
    with locked(out, "fit"):
        if prepare_folder(out, plan, resume, what="fit", options="targets file, budget or seed", replace=replace,
                          finished=_finished_fit) is not None:
            return read_fit(out)
        objective = Objective.build(targets)
        started = dt.datetime.now(dt.UTC)
        clock = time.perf_counter()
        executor = make_executor(workers, scheduler)
        try:
            sim = Simulator(targets, objective, executor, settings.batch, out / CHUNKS)
            full = _fit(targets, sim, settings, _derived(seed, 1), split=False, label="fit", progress=progress)
            split = _fit(targets, sim, settings, _derived(seed, 2), split=True, label="split fit", progress=progress)
            predictive = sim.draw(full[-1], settings.predictive_trials, _derived(seed, 3), "predictive")
            forecast = sim.draw(split[-1], settings.predictive_trials, _derived(seed, 4), "forecast")
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
        result = _write(out, targets, objective, full, split, predictive, forecast, settings, budget, seed, plan,
                        started, time.perf_counter() - clock, executor_workers(executor), resume,
                        command or ["escsim", "calibrate", str(targets_path), "--budget", budget, "--seed", str(seed)])
    return result


def targets_hash(targets: Targets) -> str:
    """A stable hash of what a fit fits: the targets, the facts they cite and the resolved scenario."""
    text = json.dumps([targets.spec.model_dump(mode="json"), targets.facts, config_hash(targets.scenario)],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _finished_fit(out: Path) -> tuple[dict, dict] | None:
    from sim.reports.fit import read_fit_toml

    if not (out / "fit.toml").is_file():
        return None
    fit = read_fit_toml(out / "fit.toml")["fit"]
    return fit, {k: fit.get(k) for k in ("targets_hash", "budget", "seed")}


def read_fit(out: Path) -> FitResult:
    """A finished fit, read back from its folder."""
    return FitResult(out, read_frame(out / "posterior.parquet"), pd.read_csv(out / "generations.csv"),
                     pd.read_csv(out / "predictive_monthly.csv"), pd.read_csv(out / "predictive_targets.csv"),
                     pd.read_csv(out / "scores.csv"))


def _derived(seed: int, purpose: int) -> int:
    """A seed for one purpose of a fit, from SeedSequence(seed, spawn_key=(purpose,))."""
    return int(np.random.SeedSequence(seed, spawn_key=(purpose,)).generate_state(1, np.uint64)[0] >> 1)


class Simulator:
    """Runs variants of the replay through an executor and reads them through the objective;
    checkpoints each batch's results in `folder` (if any), and reads them back instead of
    simulating a batch that is already there."""

    def __init__(self, targets: Targets, objective: Objective, executor: Executor, batch: int,
                 folder: Path | None = None):
        self.targets = targets
        self.objective = objective
        self.executor = executor
        self.text = targets.scenario.model_dump_json(by_alias=True)
        self.paths = targets.world_paths
        self.world = targets.world_indices  # columns of θ set in the scenario; the rest are the reporting model's
        self.reports = bool(targets.spec.reporting)
        self.chunks = max(1, executor_workers(executor) * 4)
        self.batch = batch
        self.folder = folder

    def outcomes(self, thetas: np.ndarray, trials: np.ndarray, seed: int) -> list:
        """One trial per parameter vector, in order; a failed one comes back as its message."""
        size = max(1, math.ceil(len(thetas) / self.chunks))
        world = thetas[:, self.world]
        tasks = [VariantTask(self.text, self.paths, tuple(map(tuple, world[a:a + size].tolist())), seed,
                             tuple(int(t) for t in trials[a:a + size]), tuple(self.objective.edges))
                 for a in range(0, len(thetas), size)]
        outcomes = [outcome for chunk in results_in_order(self.executor, run_variants, tasks) for outcome in chunk]
        if len(outcomes) != len(thetas):
            raise WorkError(f"a batch of {len(thetas):,} simulations came back with {len(outcomes):,}; "
                            "nothing final was written")
        return outcomes

    def distances(self, seed: int, split: bool, label: str = "fit"):
        """The ABC `simulate` function of one fit; `label` names its checkpoints."""
        checkpoints = Checkpoints(self.folder, label, check=_batch_problem) if self.folder else None

        def simulate(thetas: np.ndarray, keys: np.ndarray) -> np.ndarray:
            key = int(keys[0])
            saved = _saved(checkpoints, key)
            if saved is not None:
                if saved["thetas"].shape != thetas.shape or not np.array_equal(saved["thetas"], thetas):
                    raise InputError(f"error: {checkpoints.path(key)}: expected the checkpoint of this fit's batch, "
                                     "found another's; start the fit again with --replace")
                return saved["distances"]
            out = np.empty(len(thetas))
            for k, outcome in enumerate(self.outcomes(thetas, keys, seed)):
                if isinstance(outcome, str):
                    out[k] = math.inf  # a variant the scenario refuses, or a runaway
                else:
                    monthly = self.reported(outcome, thetas[k], seed, int(keys[k]))
                    out[k] = self.objective.distance(self.objective.count_values(monthly),
                                                     self.objective.event_values(outcome), split)
            if checkpoints:
                checkpoints.save(key, {"thetas": thetas, "distances": out})
            return out
        return simulate

    def reported(self, outcome, theta: np.ndarray, seed: int, trial: int) -> list[list[int]]:
        """A simulation's bins as its targets count them (claims where a series has a reporting model)."""
        if not self.reports:
            return outcome.monthly
        return self.objective.reported(outcome, self.targets.reporting(theta), seed, trial)

    def draw(self, generation: Generation, trials: int, seed: int, label: str = "draw") -> dict[str, np.ndarray]:
        """Posterior predictive: each trial draws a particle by weight and runs once."""
        checkpoints = Checkpoints(self.folder, label, check=lambda key, arrays: _draws_problem(trials, arrays)) \
            if self.folder else None
        saved = _saved(checkpoints, 0)
        if saved is not None:
            return saved
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(0,))))
        picks = rng.choice(len(generation.weights), size=trials, p=generation.weights)
        thetas = generation.particles[picks]
        outcomes = self.outcomes(thetas, np.arange(trials), seed)
        ok = [(k, x) for k, x in enumerate(outcomes) if not isinstance(x, str)]
        o = self.objective
        reported = [self.reported(x, thetas[k], seed, k) for k, x in ok]
        draws = {  # counts and months as the targets count them (claims), and as launched
            "counts": np.array([o.count_values(m) for m in reported]).reshape(len(ok), len(o.counts)),
            "launched": np.array([o.count_values(x.monthly) for _, x in ok]).reshape(len(ok), len(o.counts)),
            "events": np.array([o.event_values(x) for _, x in ok]).reshape(len(ok), len(o.events)),
            "monthly": np.array([o.monthly_values(m) for m in reported]),
            "monthly_launched": np.array([o.monthly_values(x.monthly) for _, x in ok]),
            "failed": np.array(len(outcomes) - len(ok)),
        }
        if checkpoints:
            checkpoints.save(0, draws)
        return draws


def _saved(checkpoints: Checkpoints | None, key: int) -> dict | None:
    """A checkpoint's arrays, or None if there is none (or it vanished: its work is done again)."""
    if checkpoints is None or not checkpoints.has(key):
        return None
    try:
        return checkpoints.load(key)
    except FileNotFoundError:
        return None


def _batch_problem(key: int, arrays: dict) -> str | None:
    if "thetas" not in arrays or "distances" not in arrays:
        return "an archive without the arrays 'thetas' and 'distances'"
    if arrays["thetas"].ndim != 2 or arrays["distances"].shape != (len(arrays["thetas"]),):
        return f"distances of shape {arrays['distances'].shape} for parameters of shape {arrays['thetas'].shape}"
    return None


DRAWN = ("counts", "launched", "events", "monthly", "monthly_launched")


def _draws_problem(trials: int, arrays: dict) -> str | None:
    missing = [k for k in (*DRAWN, "failed") if k not in arrays]
    if missing:
        return f"an archive without the array {missing[0]!r}"
    rows = {len(arrays[k]) for k in DRAWN}
    if arrays["failed"].shape != () or len(rows) != 1 or rows.pop() + int(arrays["failed"]) != trials:
        return f"draws that do not add up to this fit's {trials:,} trials"
    return None


def _fit(targets: Targets, sim: Simulator, settings: Budget, seed: int, *, split: bool, label: str,
         progress: bool | None) -> list[Generation]:
    bar = tqdm(total=settings.generations, desc=label, unit="gen", file=sys.stderr,
               disable=None if progress is None else not progress)

    def report(g: Generation) -> None:
        bar.set_postfix(eps=f"{g.epsilon:.3g}", acc=f"{g.acceptance:.2f}", ess=f"{g.ess:.0f}")
        bar.update(1)

    try:
        return abc_smc(IndependentPrior(targets.priors()), sim.distances(_derived(seed, 0), split, "split" if split else "full"),
                       particles=settings.particles, generations=settings.generations, seed=seed,
                       batch=settings.batch, min_acceptance=settings.min_acceptance,
                       max_simulations=settings.max_simulations, on_generation=report)
    finally:
        bar.close()


# --- tables ----------------------------------------------------------------------------------


def posterior_table(targets: Targets, g: Generation) -> pd.DataFrame:
    table = pd.DataFrame(g.particles, columns=targets.parameter_names)
    table["weight"] = g.weights
    table["distance"] = g.distances
    return table


def generations_table(history: list[Generation], fit: str) -> pd.DataFrame:
    return pd.DataFrame([
        {"fit": fit, "generation": g.index, "epsilon": g.epsilon, "particles": len(g.weights),
         "simulations": g.simulations, "proposals": g.proposals, "acceptance": g.acceptance, "ess": g.ess}
        for g in history
    ])


def weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    order = np.argsort(x)
    cumulative = np.cumsum(w[order])
    return float(x[order][min(np.searchsorted(cumulative, q * cumulative[-1]), len(x) - 1)])


def parameter_summary(targets: Targets, g: Generation) -> list[dict]:
    rows = []
    for k, (name, p) in enumerate(targets.spec.parameters.items()):
        prior = p.prior.frozen()
        x = g.particles[:, k]
        rows.append({
            "parameter": name, "path": p.path, "prior": _prior_text(p.prior),
            "prior_q05": float(prior.ppf(0.05)), "prior_median": float(prior.median()), "prior_q95": float(prior.ppf(0.95)),
            "mean": float(g.weights @ x), "q05": weighted_quantile(x, g.weights, 0.05),
            "median": weighted_quantile(x, g.weights, 0.5), "q95": weighted_quantile(x, g.weights, 0.95),
            "why": p.why,
        })
    return rows


def _prior_text(prior) -> str:
    fields = {k: v for k, v in prior.model_dump().items() if k != "dist"}
    return f"{prior.dist}(" + ", ".join(f"{k}={v:g}" for k, v in fields.items()) + ")"


def predictive_monthly(targets: Targets, objective: Objective, draws: dict) -> pd.DataFrame:
    """Every month of the replay and every front: quantiles of the posterior predictive, and the
    observed range where a target covers exactly that month."""
    from sim.model.world import tally_layout

    _, monthly_series, _ = tally_layout(targets.scenario)
    observed = {}
    for c, spec in zip(targets.spec.counts.values(), objective.counts, strict=True):
        month = c.start.strftime("%Y-%m")
        whole_month = c.start.day == 1 and (c.end + dt.timedelta(days=1)).day == 1 and c.start.strftime("%Y-%m") == c.end.strftime("%Y-%m")
        if whole_month:
            observed[(month, c.series)] = (spec.lo, spec.hi)
    rows = []
    reported = {name for _, name in objective.reported_series}
    for s_index, s in enumerate(objective.predictive_series):
        series = monthly_series[s]
        # A series with a reporting model has its reported (claimed) months, which the targets count,
        # and its simulated ones (launches); the others' simulated months are what is reported.
        for measure, key in (("reported", "monthly"), *((("simulated", "monthly_launched"),) if series in reported else ())):
            for m, month in enumerate(objective.month_labels):
                x = draws[key][:, s_index, m]
                lo, hi = observed.get((month, series), (math.nan, math.nan)) if measure == "reported" else (math.nan, math.nan)
                rows.append({"month": month, "series": series, "mean": float(x.mean()),
                             **{f"q{round(q * 100):02d}": float(np.quantile(x, q)) for q in QUANTILES},
                             "observed_lo": lo, "observed_hi": hi, "measure": measure})
    return pd.DataFrame(rows)


def predictive_targets(targets: Targets, objective: Objective, draws: dict) -> pd.DataFrame:
    """Each target against the posterior predictive of the full fit: is it within the 90%
    predictive interval (an interval or bound: do they overlap), and how likely is it; with the
    predictive of the simulated count (before reporting) beside it."""
    rows = []
    for k, (c, spec) in enumerate(zip(targets.spec.counts.values(), objective.counts, strict=True)):
        x = draws["counts"][:, k]
        q05, q95 = np.quantile(x, 0.05), np.quantile(x, 0.95)
        rows.append({
            "target": spec.name, "kind": "count", "series": c.series, "start": c.start, "end": c.end,
            "observation": c.observation, "observed_lo": spec.lo, "observed_hi": spec.hi,
            "mean": float(x.mean()), "q05": float(q05), "q50": float(np.quantile(x, 0.5)), "q95": float(q95),
            "consistent_90": bool(q05 <= spec.hi and spec.lo <= q95),
            "p_observed": float(np.mean((x >= spec.lo) & (x <= spec.hi))),
            "source": target_source(c),
            **_simulated(draws["launched"][:, k]),
        })
    for k, (e, spec) in enumerate(zip(targets.spec.events.values(), objective.events, strict=True)):
        happened = draws["events"][:, k]
        p = float(np.mean(happened == (1.0 if spec.happened else 0.0)))
        rows.append({
            "target": spec.name, "kind": "event", "series": e.milestone, "start": None, "end": e.date,
            "observation": e.observation, "observed_lo": math.nan, "observed_hi": math.nan,
            "mean": float(happened.mean()), "q05": math.nan, "q50": math.nan, "q95": math.nan,
            "consistent_90": bool(p >= 0.05), "p_observed": p, "source": target_source(e),
            **dict.fromkeys(SIMULATED_COLUMNS, math.nan),
        })
    return pd.DataFrame(rows)


SIMULATED_COLUMNS = ("simulated_mean", "simulated_q05", "simulated_q50", "simulated_q95")


def _simulated(x: np.ndarray) -> dict:
    """A count target's predictive before reporting: the model's own count (launches, hits)."""
    return dict(zip(SIMULATED_COLUMNS, (float(x.mean()), *(float(np.quantile(x, q)) for q in (0.05, 0.5, 0.95))),
                    strict=True))


def target_source(target) -> str:
    """Where a target comes from, for the fit's tables: its source in words (a count from a CSV file
    or an events export) or the ids of the facts it cites."""
    source = getattr(target, "source", "").strip()
    return source or ("facts " + ", ".join(target.facts) if target.facts else "")


def validation_scores(targets: Targets, objective: Objective, forecast: dict) -> pd.DataFrame:
    """The split fit's forecast of each held-out count, scored against two naive forecasts:
    persistence (Poisson at the rate of the series' last fitted period) and Poisson at the
    series' mean rate over the fitted periods. An interval observation is scored at its
    midpoint; a lower bound only by coverage and PIT at the bound."""
    rows = []
    specs = list(zip(targets.spec.counts.values(), objective.counts, strict=True))
    for k, (_, spec) in enumerate(specs):
        if spec.fit:
            continue
        fitted = [s for _, s in specs if s.fit and s.series == spec.series and math.isfinite(s.hi)]
        days = spec.end_day - spec.start_day
        obs = spec.lo if not math.isfinite(spec.hi) else 0.5 * (spec.lo + spec.hi)
        forecasts = {"model": forecast["counts"][:, k]}
        if fitted:
            last = max(fitted, key=lambda s: s.end_day)
            mid = 0.5 * (last.lo + last.hi)
            forecasts["persistence"] = mid / (last.end_day - last.start_day) * days
            total = sum(0.5 * (s.lo + s.hi) for s in fitted)
            forecasts["poisson_mean"] = total / sum(s.end_day - s.start_day for s in fitted) * days
        for name, fc in forecasts.items():
            rows.append(_score_row(spec, name, fc, obs))
    return pd.DataFrame(rows)


def _score_row(spec, forecaster: str, fc, obs: float) -> dict:
    lower_bound = not math.isfinite(spec.hi)
    if isinstance(fc, np.ndarray):
        x = fc.astype(float)
        lo, hi = np.quantile(x, 0.05), np.quantile(x, 0.95)
        crps = float(sr.crps_ensemble(obs, x)) if not lower_bound else math.nan
        below, equal = float(np.mean(x < obs)), float(np.mean(x == obs))
        mean = float(x.mean())
    else:
        from scipy import stats

        dist = stats.poisson(max(fc, 1e-9))
        lo, hi = dist.ppf(0.05), dist.ppf(0.95)
        crps = float(sr.crps_poisson(obs, max(fc, 1e-9))) if not lower_bound else math.nan
        below, equal = float(dist.cdf(obs - 1)), float(dist.pmf(obs))
        mean = float(fc)
    covered = (hi >= spec.lo) if lower_bound else bool(lo <= spec.hi and spec.lo <= hi)
    return {
        "target": spec.name, "forecaster": forecaster, "observed": obs, "forecast_mean": mean,
        "q05": float(lo), "q95": float(hi),
        "crps": crps,
        "interval_score_90": float(sr.interval_score(obs, lo, hi, 0.1)) if not lower_bound else math.nan,
        "covered_90": bool(covered),
        "pit": below + 0.5 * equal,  # mid-PIT of a discrete forecast
    }


# --- writing ---------------------------------------------------------------------------------


def _write(out: Path, targets: Targets, objective: Objective, full, split, predictive, forecast,
           settings: Budget, budget: str, seed: int, plan: dict, started, elapsed: float, workers: int,
           resumed: bool, command: list[str]) -> FitResult:
    from sim.reports.fit import write_fit_report

    posterior = posterior_table(targets, full[-1])
    generations = pd.concat([generations_table(full, "full"), generations_table(split, "split")], ignore_index=True)
    monthly = predictive_monthly(targets, objective, predictive)
    checks = predictive_targets(targets, objective, predictive)
    scores = validation_scores(targets, objective, forecast)
    summary = parameter_summary(targets, full[-1])
    fit_toml = {
        "fit": {
            "name": targets.name, "targets": str(targets.path),
            "scenario": os.path.normpath(targets.path.parent / targets.spec.fit.scenario),
            "budget": budget, "seed": seed, "targets_hash": plan["targets_hash"], "particles": settings.particles,
            "generations": len(full), "simulations": int(generations[generations.fit == "full"].simulations.sum()),
            "final_epsilon": float(full[-1].epsilon), "fit_until": targets.spec.fit.fit_until or "",
            "started_at": started.isoformat(timespec="seconds"), "elapsed_seconds": round(elapsed, 1),
            # On --resume, started_at and elapsed_seconds are those of the session that finished it.
            "resumed": bool(resumed), "workers": workers, "command": " ".join(command),
        },
        "parameters": {row["parameter"]: {"path": row["path"], "prior": row["prior"], "mean": row["mean"],
                                          "median": row["median"], "q05": row["q05"], "q95": row["q95"]}
                       for row in summary},
        "versions": versions(),
    }
    if len(posterior) != settings.particles:
        raise WorkError(f"the posterior would hold {len(posterior):,} particles where the budget asks for "
                        f"{settings.particles:,}; nothing final was written")
    # Each file atomically; fit.toml, which marks a finished fit, after the tables, and the
    # checkpoints (whose plan marks an unfinished one until it is removed) removed last.
    with atomic_path(out / "posterior.parquet") as tmp:
        posterior.to_parquet(tmp, index=False)
    write_text(out / "generations.csv", generations.to_csv(index=False, float_format="%.6g"))
    write_text(out / "predictive_monthly.csv", monthly.to_csv(index=False, float_format="%.6g"))
    write_text(out / "predictive_targets.csv", checks.to_csv(index=False, float_format="%.6g"))
    write_text(out / "scores.csv", scores.to_csv(index=False, float_format="%.6g"))
    write_text(out / "fit.toml", "# A calibrated fit: escsim calibrate wrote it; scenarios use it by\n"
               "# parameters.from_calibration.\n" + tomli_w.dumps(_plain(fit_toml)))
    write_fit_report(out, targets)
    finish_folder(out)
    return FitResult(out, posterior, generations, monthly, checks, scores)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return value
