"""The shape of a run's outputs: the columns and months a scenario's trials produce, and the
Parquet schemas of `trials.parquet` and `monthly.parquet`."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from sim.model.tally import month_edges
from sim.model.trace import root_vocabulary
from sim.model.world import tally_layout
from sim.scenario.schema import Scenario


@dataclass(frozen=True)
class RunLayout:
    milestones: list[str]
    labels: dict[str, str]
    ladder: list[str]
    series: list[str]
    monthly_series: list[str]
    months: list[str]
    horizon_days: float
    by_days: list[float]
    particles: bool = False  # trials draw their parameters from a posterior
    month_ends: tuple[float, ...] = ()  # day offset where each month ends (the last: the horizon)
    roots: tuple[str, ...] = ()  # every root a milestone's cause chain can begin at (`root_vocabulary`)
    forecast: bool = False  # trials start at the origin from a history (`sim.engine.history`)

    @property
    def ordered(self) -> list[str]:
        """Every milestone, the ladder's rungs first (lowest first), then those tracked off it."""
        return [*self.ladder, *(m for m in self.milestones if m not in self.ladder)]

    @classmethod
    def of(cls, scenario: Scenario) -> RunLayout:
        series, monthly, months = tally_layout(scenario)
        horizon = scenario.scenario.horizon_days
        _, edges = month_edges(scenario.scenario.start_date, horizon)
        return cls(
            milestones=list(scenario.milestones),
            labels={k: (m.label or k) for k, m in scenario.milestones.items()},
            ladder=list(scenario.ladder),
            series=series,
            monthly_series=monthly,
            months=months,
            horizon_days=horizon,
            by_days=sorted({d for d in scenario.summary.by_days if d < horizon}),
            particles=scenario.parameters.posterior is not None,
            month_ends=(*edges, horizon),
            roots=tuple(root_vocabulary(scenario)),
            forecast=scenario.forecast is not None,
        )


def trials_schema(layout: RunLayout) -> pa.Schema:
    fields = [pa.field("trial", pa.int64()), pa.field("n_events", pa.int64())]
    if layout.particles:
        fields.append(pa.field("particle", pa.int32()))  # row of the fit's posterior.parquet
    fields += [pa.field(f"t_{m}", pa.float64()) for m in layout.milestones]
    fields += [pa.field("max_rung", pa.int16())]
    fields += [pa.field(s, pa.int64()) for s in layout.series]
    # Where each milestone's cause chain begins (null: not reached), as `roots.csv` names it.
    fields += [pa.field(f"root_{m}", pa.dictionary(pa.int16(), pa.string())) for m in layout.milestones]
    if layout.forecast:
        # Histories run until one agreed with the record, parameter redraws, and the day before the
        # origin (negative) at which that history reached each milestone (NaN: it did not).
        fields += [pa.field("history_attempts", pa.int32()), pa.field("parameter_redraws", pa.int16())]
        fields += [pa.field(f"history_t_{m}", pa.float64()) for m in layout.milestones]
    return pa.schema(fields)


def monthly_schema() -> pa.Schema:
    return pa.schema([
        pa.field("trial", pa.int64()),
        pa.field("month", pa.dictionary(pa.int16(), pa.string())),
        pa.field("series", pa.dictionary(pa.int16(), pa.string())),
        pa.field("count", pa.int64()),  # as the totals: forced attacks can bring a million hits each
    ])
