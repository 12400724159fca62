"""What one simulation of the replay says about the targets, and how far it is from them.

A simulation's monthly series are counted in time bins cut at every target period's ends and
every month's start, so any target period and any calendar month is a sum of bins. The
distance is interval-aware and variance-stabilised: each count x and each observed bound goes
through the Anscombe transform 2·√(x + 3/8), under which a Poisson count has standard
deviation about 1; a count inside its observed range scores 0, else its transformed distance to
the nearer bound. An event that did not happen as observed scores 1 (about one standard
deviation). The distance is the root mean square over the targets used.

Where the targets give a series a reporting model (`[reporting.<series>]`), its counts are
claims: each simulation's launches in each bin become claims (`sim.model.observation`) drawn
from the simulation's stream `REPORTING_STREAM`, and targets and months alike sum the claimed
bins, so one simulation's claims agree with themselves however they are summed.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np

from sim.model.observation import REPORTING_STREAM, claimed_bins, is_identity
from sim.model.streams import Streams
from sim.model.tally import month_edges
from sim.model.world import TrialOutcome
from sim.stats import EVENT_MISS, anscombe, count_miss  # noqa: F401 - anscombe and EVENT_MISS read from here too


@dataclass(frozen=True)
class CountSpec:
    name: str
    series: int  # index among the monthly series
    first_bin: int
    last_bin: int  # inclusive
    lo: float
    hi: float  # inf for a lower bound
    fit: bool  # used to fit the split, or only scored
    start_day: float
    end_day: float  # exclusive


@dataclass(frozen=True)
class EventSpec:
    name: str
    milestone: int  # index among the scenario's milestones
    by_day: float  # exclusive: the end of the observed date
    happened: bool
    fit: bool


@dataclass(frozen=True)
class Objective:
    edges: list[float]  # bin boundaries (day offsets) after day 0
    counts: list[CountSpec]
    events: list[EventSpec]
    month_labels: list[str]
    month_bins: list[tuple[int, int]]  # inclusive bin range of each calendar month
    predictive_series: list[int] = field(default_factory=list)
    widths: list[float] = field(default_factory=list)  # each bin's length in days
    reported_series: list[tuple[int, str]] = field(default_factory=list)  # (index, name) of series with a reporting model

    @classmethod
    def build(cls, targets) -> Objective:
        scenario = targets.scenario
        from sim.model.world import tally_layout

        _, monthly_series, _ = tally_layout(scenario)
        horizon = scenario.scenario.horizon_days
        labels, month_starts = month_edges(scenario.scenario.start_date, horizon)
        cuts = set(month_starts)
        for c in targets.spec.counts.values():
            cuts.update({targets.day(c.start), targets.day(c.end) + 1.0})
        edges = sorted(d for d in cuts if 0.0 < d < horizon)

        def bins_of(start: float, end: float) -> tuple[int, int]:
            return bisect_right(edges, start), bisect_right(edges, end - 1e-9)

        counts = []
        for name, c in targets.spec.counts.items():
            a, b = targets.day(c.start), targets.day(c.end) + 1.0
            first, last = bins_of(a, b)
            lo, hi = c.bounds()
            counts.append(CountSpec(name, monthly_series.index(c.series), first, last, lo, hi,
                                    targets.in_fit(c.end), a, b))
        milestones = list(scenario.milestones)
        events = [
            EventSpec(name, milestones.index(e.milestone), targets.day(e.date) + 1.0,
                      e.observation == "happened_by", targets.in_fit(e.date))
            for name, e in targets.spec.events.items()
        ]
        starts = [0.0, *month_starts]
        ends = [*month_starts, horizon]
        month_bins = [bins_of(a, b) for a, b in zip(starts, ends, strict=True)]
        # The monthly predictive of both fronts' attacks and of every other series a target counts
        # (the hits on Israel), which the fit report checks it holds.
        counted = {c.series for c in targets.spec.counts.values()}
        predictive = [monthly_series.index(s) for s in monthly_series if s.startswith("attacks_on_") or s in counted]
        bounds = [0.0, *edges, horizon]
        widths = [b - a for a, b in zip(bounds, bounds[1:], strict=False)]
        reported = [(monthly_series.index(s), s) for s in targets.spec.reporting]
        return cls(edges, counts, events, labels, month_bins, predictive, widths, reported)

    # --- one simulation ---------------------------------------------------------------------

    def reported(self, outcome: TrialOutcome, reporting: dict, seed: int, trial: int) -> list[list[int]]:
        """The simulation's bins as the targets see them: each series with a reporting model (in
        `reporting`, by name) as claims drawn from the stream `REPORTING_STREAM` of trial `trial`
        of `seed`, the rest as simulated."""
        monthly = outcome.monthly
        live = [(index, reporting[name]) for index, name in self.reported_series if not is_identity(reporting[name])]
        if not live:
            return monthly
        stream = Streams(seed, trial)(REPORTING_STREAM)
        out = list(monthly)
        for index, r in live:
            out[index] = claimed_bins(monthly[index], self.widths, r, stream)
        return out

    def count_values(self, monthly: list[list[int]]) -> np.ndarray:
        """Each count target's count in the bins `monthly` (an outcome's, or `reported` ones)."""
        return np.array([sum(monthly[c.series][c.first_bin:c.last_bin + 1]) for c in self.counts], dtype=float)

    def event_values(self, outcome: TrialOutcome) -> np.ndarray:
        """1.0 where the milestone happened before the event's date, else 0.0."""
        days = outcome.milestone_days
        return np.array([1.0 if (not math.isnan(days[e.milestone]) and days[e.milestone] < e.by_day) else 0.0
                         for e in self.events])

    def monthly_values(self, monthly: list[list[int]]) -> np.ndarray:
        """[predictive series, month] counts of the bins `monthly`."""
        return np.array([[sum(monthly[s][a:b + 1]) for a, b in self.month_bins] for s in self.predictive_series])

    def distance(self, counts: np.ndarray, events: np.ndarray, split: bool = False) -> float:
        """Root mean square of the per-target distances (only the fitting targets if `split`)."""
        terms = []
        for spec, x in zip(self.counts, counts, strict=True):
            if split and not spec.fit:
                continue
            terms.append(count_miss(x, spec.lo, spec.hi))
        for spec, happened in zip(self.events, events, strict=True):
            if split and not spec.fit:
                continue
            terms.append(0.0 if bool(happened) == spec.happened else EVENT_MISS)
        return math.sqrt(sum(t * t for t in terms) / len(terms)) if terms else 0.0
