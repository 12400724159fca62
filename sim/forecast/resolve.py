"""`resolve_forecast`: a forecast scenario's history and conditions, read from its targets file."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

from pydantic import ValidationError

from sim.calibration.targets import load_targets
from sim.errors import InputError
from sim.scenario import Scenario
from sim.scenario.loading import read_text, read_toml, to_plain
from sim.scenario.paths import PathError, get
from sim.scenario.schema import REPORTING_PREFIX, check_references


def resolve_forecast(scenario: Scenario, shown: str | None = None) -> Scenario:
    """`scenario` with `forecast.resolved` filled (unchanged if it is no forecast, or resolved
    already). `shown`: the scenario's file, for messages. Bad input is an `InputError` naming the
    scenario's `forecast` keys or the targets file."""
    forecast = scenario.forecast
    if forecast is None or _current(scenario):
        return scenario
    where = f"{shown or 'scenario ' + scenario.scenario.name}: forecast"
    observed = Path(forecast.observed)
    if "fit" not in read_toml(observed, what="targets"):  # a scenario or sweep spec named by mistake
        raise InputError(f"error: {where}.observed: expected a calibration targets file (with a [fit] table naming the "
                         f"history replay), found {observed} without one")
    targets = load_targets(observed)  # which refuses a forecast as the [fit] scenario
    history = targets.scenario
    origin = scenario.scenario.start_date
    start = history.scenario.start_date
    origin_day = float((origin - start).days)
    if not 0 < origin_day <= history.scenario.horizon_days:
        last = start + dt.timedelta(days=math.ceil(history.scenario.horizon_days))
        raise InputError(f"error: {where}: expected scenario.start_date (the origin) after the history's start "
                         f"{start} and by its end {last}, found {origin}")
    posterior = scenario.parameters.posterior
    paths = _history_paths(scenario, targets, where)
    tolerance = forecast.tolerance if forecast.tolerance is not None else _fit_tolerance(scenario, where)
    counts, events, left_out = [], [], []
    after = [name for name, c in targets.spec.counts.items() if c.end >= origin] + \
        [name for name, e in targets.spec.events.items() if e.date >= origin]
    for name, c in targets.spec.counts.items():
        if c.end >= origin:
            left_out.append(name)
            continue
        lo, hi = c.bounds()
        counts.append({"name": name, "series": c.series, "start_day": float((c.start - start).days),
                       "end_day": float((c.end - start).days) + 1.0, "lo": lo,
                       **({"hi": hi} if math.isfinite(hi) else {})})
    for name, e in targets.spec.events.items():
        happened = e.observation == "happened_by"
        if e.date >= origin and happened:  # it may have happened after the origin: no word on the history
            left_out.append(name)
            continue
        # Not happened by a date on or after the origin: not before the origin either.
        by_day = min(float((e.date - start).days) + 1.0, origin_day)
        events.append({"name": name, "milestone": e.milestone, "by_day": by_day, "happened": happened})
    _check_shared(scenario, history, where, targets.spec.fit.scenario)
    cut = _history_data(history, origin_day)
    paths = [[p for p in ps if _holds(cut, p)] for ps in paths]  # a shock after the origin is cut, with its parameter
    data = to_plain(scenario)
    replaced = list(forecast.resolved.replaced) if forecast.resolved is not None else []  # resolved before, at another origin
    data["forecast"].pop("resolved", None)
    fronts = {name: set(m.attacks) for name, m in history.militias().items()}
    for militia, actor in data["actors"].items():
        for target, channel in actor.get("attacks", {}).items():
            # The history's state replaces a restraint at the start on its fronts; a front it lacks starts as written.
            if target in fronts.get(militia, ()) and channel.pop("initial_restraint", None) is not None:
                replaced.append(f"actors.{militia}.attacks.{target}.initial_restraint")
    if posterior is not None and replaced:  # a fitted value set at a replaced key sets nothing now
        data["parameters"]["posterior"]["paths"] = [
            [p for p in ps if not any(p == r or p.startswith(r + ".") for r in replaced)] for ps in posterior.paths]
    data["forecast"]["resolved"] = {
        "targets": str(targets.path), "history": cut, "origin_day": origin_day,
        "paths": paths, "counts": counts, "events": events, "tolerance": tolerance, "left_out": left_out,
        "replaced": replaced, "fit_note": _fit_note(scenario, targets, left_out, after),
        # The counts of a series with a reporting model are claims: the history's are drawn from its launches.
        "reporting": {series: r.model_dump() for series, r in targets.spec.reporting.items()},
        "reporting_parameters": {name: targets.spec.parameters[name].path.removeprefix(REPORTING_PREFIX)
                                 for name in (posterior.parameters if posterior is not None else [])
                                 if targets.spec.parameters[name].path.startswith(REPORTING_PREFIX)},
    }
    try:
        resolved = Scenario.model_validate(data, strict=False)
    except ValidationError as e:  # the conditions are made from checked targets: a bug if they do not validate
        raise RuntimeError(f"the resolved forecast does not validate: {e}") from None
    return resolved


def _current(scenario: Scenario) -> bool:
    """Whether `scenario.forecast.resolved` was resolved for this origin and targets file (a run
    folder's scenario.toml carries it; `--set scenario.start_date` or `forecast.observed` on it
    must resolve it again)."""
    forecast = scenario.forecast
    resolved = forecast.resolved
    if resolved is None:
        return False
    start = resolved.history.get("scenario", {}).get("start_date")
    if isinstance(start, str):  # the scenario came through JSON (a task)
        try:
            start = dt.date.fromisoformat(start)
        except ValueError:
            return False
    if not isinstance(start, dt.date):
        return False
    return (resolved.targets == forecast.observed
            and float((scenario.scenario.start_date - start).days) == resolved.origin_day)


def _holds(data: dict, path: str) -> bool:
    try:
        get(data, path)
    except PathError:
        return False
    return True


def _history_data(history: Scenario, origin_day: float) -> dict:
    """The replay cut at the origin: its shocks from the origin on are the forecast's to imagine."""
    data = to_plain(history)
    data.pop("parameters", None)
    data.pop("forecast", None)
    data["scenario"]["horizon_days"] = origin_day
    data["shocks"] = {name: shock for name, shock in data.get("shocks", {}).items()
                      if (day := history.shock_day(history.shocks[name])) is None or day < origin_day}
    cut = Scenario.model_validate(data, strict=False)
    problems = check_references(cut)
    if problems:
        path, message = problems[0]
        raise InputError(f"error: the history replay cut at the origin: {path}: {message}")
    return data


def _history_paths(scenario: Scenario, targets, where: str) -> list[list[str]]:
    """Where each of the forecast's fitted parameters goes in the history: the path it was fitted at."""
    posterior = scenario.parameters.posterior
    if posterior is None:
        return []
    fitted = targets.spec.parameters
    unknown = [name for name in posterior.parameters if name not in fitted]
    if unknown:
        raise InputError(f"error: {where}.observed: expected the targets the scenario's fit was fitted to "
                         f"(parameters {', '.join(posterior.parameters)}), found targets without {unknown[0]!r}")
    if posterior.folder:
        fit = read_toml(Path(posterior.folder) / "fit.toml", what="fit")
        given = fit.get("parameters", {}) if isinstance(fit.get("parameters"), dict) else {}
        moved = [name for name in posterior.parameters
                 if not isinstance(given.get(name), dict) or given[name].get("path") != fitted[name].path]
        if moved:
            raise InputError(f"error: {where}.observed: expected the targets that the fit in {posterior.folder} was "
                             f"fitted to, found {targets.path} fitting {moved[0]} at another key path: refit them "
                             "(escsim calibrate), or point parameters.from_calibration at their fit")
    # A parameter of the reporting model sets nothing in the history's world (the conditions read it).
    return [[] if fitted[name].path.startswith(REPORTING_PREFIX) else [fitted[name].path] for name in posterior.parameters]


def _fit_tolerance(scenario: Scenario, where: str) -> float:
    posterior = scenario.parameters.posterior
    if posterior is None or not posterior.folder:
        raise InputError(f"error: {where}.tolerance: expected a tolerance for a forecast that draws no fitted "
                         "parameters (there is no fit to take it from), found none")
    fit = read_toml(Path(posterior.folder) / "fit.toml", what="fit").get("fit", {})
    epsilon = fit.get("final_epsilon") if isinstance(fit, dict) else None
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0 < epsilon < math.inf:
        raise InputError(f"error: {where}.tolerance: expected a tolerance, or a fit whose fit.toml gives final_epsilon, "
                         f"found neither in {posterior.folder}")
    return float(epsilon)


def _fit_note(scenario: Scenario, targets, left_out: list[str], after: list[str]) -> str:
    """What the parameters' fit saw against the forecast: targets after the origin it used (its
    parameters then know the future), and conditioning targets it did not have."""
    posterior = scenario.parameters.posterior
    if posterior is None:
        return "the scenario draws no fitted parameters"
    fitted = _fit_targets(posterior.folder)
    seen_after = [name for name in after if fitted is None or name in fitted]
    note = f"the parameters' fit ({posterior.fit})"
    if seen_after:
        note += (f" used {len(seen_after)} target(s) observed on or after the origin ({', '.join(seen_after)}): "
                 "its parameters are not out of sample")
    else:
        note += " saw nothing observed on or after the origin"
    if fitted is not None:
        unseen = [name for name in (*targets.spec.counts, *targets.spec.events) if name not in fitted and name not in left_out]
        if unseen:
            note += f"; it was not fitted to {', '.join(unseen)}: only the state at the origin is conditioned on it"
    return note


def _fit_targets(folder: str) -> set[str] | None:
    """The targets a fit folder's fit had (its predictive_targets.csv), if it says."""
    if not folder:
        return None
    path = Path(folder) / "predictive_targets.csv"
    if not path.is_file():
        return None
    rows = read_text(path, "predictive targets").splitlines()
    return {line.split(",", 1)[0] for line in rows[1:] if line}


def _memory(account) -> str:
    return "decaying" if account.decay_days is not None else "windowed" if account.window_days is not None else "cumulative"


def _check_shared(scenario: Scenario, history: Scenario, where: str, shown: str) -> None:
    """The state the history leaves names militias, fronts, accounts and rules: the forecast needs each."""
    missing = []
    militias = scenario.militias()
    for name, m in history.militias().items():
        if name not in militias:
            missing.append(f"militia {name}")
            continue
        missing += [f"{name}'s attacks on {t}" for t in m.attacks if t not in militias[name].attacks]
    states = scenario.states()
    for name, st in history.states().items():
        if name not in states:
            missing.append(f"actor {name}")
            continue
        missing += [f"{name}'s harm account {a}" for a in st.harm if a not in states[name].harm]
        missing += [f"{name}'s harm account {a} as a {_memory(acc)} account (the forecast's is {_memory(states[name].harm[a])})"
                    for a, acc in st.harm.items() if a in states[name].harm and _memory(acc) != _memory(states[name].harm[a])]
        missing += [f"{name}'s rule {r}" for r in st.rules if r not in states[name].rules]
    if missing:
        raise InputError(f"error: {where}: expected the history replay's actors, fronts, harm accounts and rules, "
                         f"whose state at the origin the forecast starts from, found {shown} with "
                         f"{', '.join(missing[:5])}{' and more' if len(missing) > 5 else ''} that the forecast lacks")
