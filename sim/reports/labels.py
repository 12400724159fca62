"""Readable names of a run's series, from the scenario's own words: "Attacks on Israel", with the actor's label as
the scenario writes it (capitals and all), or its name where it has no label."""

from __future__ import annotations

import calendar
import datetime as dt
import math

from sim.model.tally import month_edges
from sim.scenario import Scenario

KINDS = {"attacks_on_": "Attacks on", "hits_on_": "Hits on", "casualties_on_": "Casualties on",
         "deaths_on_": "Deaths on", "attacks_by_": "Attacks by", "strikes_by_": "Strikes by"}


def actor_label(scenario: Scenario, name: str) -> str:
    actor = scenario.actors.get(name)
    return (getattr(actor, "label", "") or name) if actor is not None else name


def series_label(series: str, scenarios: Scenario | list[Scenario]) -> str:
    """"Attacks on Israel" for `attacks_on_israel`: the first of `scenarios` that has the actor names it."""
    scenarios = scenarios if isinstance(scenarios, list) else [scenarios]
    for prefix, words in KINDS.items():
        if series.startswith(prefix):
            name = series.removeprefix(prefix)
            label = next((actor_label(s, name) for s in scenarios if name in s.actors), name)
            return f"{words} {label}"
    return series.replace("_", " ")


def month_coverage(start: dt.date, horizon_days: float) -> dict[str, tuple[float, int]]:
    """Each month a run touches (YYYY-MM) → (days of it inside [start, start + horizon), days in the month). The
    first and last months are usually partial: their counts cover only those days."""
    months, edges = month_edges(start, horizon_days)
    bounds = [0.0, *edges, float(horizon_days)]
    found = {}
    for k, month in enumerate(months):
        year, m = int(month[:4]), int(month[5:])
        length = calendar.monthrange(year, m)[1]
        found[month] = (min(bounds[k + 1], horizon_days) - bounds[k], length)
    return found


def month_scale(start: dt.date, horizon_days: float, months: list[str]) -> list[float]:
    """The factor that turns each month's count into a whole month's worth: days in the month / days the run covers
    of it (1 for a whole month, NaN for a month the run does not touch). Fan charts draw partial months so, marked,
    instead of as a drop that no trial had."""
    coverage = month_coverage(start, horizon_days)
    return [length / covered if covered > 0 else math.nan
            for covered, length in (coverage.get(m, (0.0, 1)) for m in months)]


PARTIAL_NOTE = "* partial month: its count scaled to the whole month (days in the month / days the run covers)"


def marked_months(months: list[str], scales: list[list[float]] | list[float]) -> list[str]:
    """Month tick labels with * on each month that some scale (one list, or one per scenario) stretches."""
    rows = scales if scales and isinstance(scales[0], list) else [scales]
    return [f"{m}*" if any(math.isfinite(r[k]) and r[k] != 1.0 for r in rows) else m for k, m in enumerate(months)]
