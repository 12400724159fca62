"""Calibration targets: what the model is fitted to, read from a TOML file and checked.

A targets file names the scenario to fit, the parameters to fit with their priors (each by
key path into the scenario), the reported counts (a series over an inclusive period of dates:
exact, an interval, or a lower bound) and the events that did or did not happen by a date, each
citing the facts in `seeds/facts.csv` it rests on (or, for a count, its source in words). Counts
may also come from CSV files (`fit.counts_csv`, one count a line), so that new data need no hand
edits of fact ids. Bad targets get the same kind of message as bad scenarios: file, key path
(or line and column), expected, found; exit code 2.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, ValidationError, model_validator
from scipy import stats

from sim.errors import MAX_LISTED, InputError, did_you_mean, problems_error
from sim.model.world import tally_layout
from sim.scenario import Scenario, load_scenario, to_plain
from sim.scenario.loading import describe_error, path_text, read_text, read_toml, require_some_table
from sim.scenario.paths import PathError, get, with_values
from sim.model.observation import FIELDS as REPORTING_FIELDS
from sim.scenario.schema import REPORTING_PREFIX, Name, Reporting, Strict, check_references

MAX_COUNT = 10**9  # an observed count; also keeps every bound a finite float
# Each count's period adds time bins to every simulation of the fit: a few hundred bins at most.
MAX_TARGETS = 500
# The columns of a CSV file of counts (`fit.counts_csv`): a count target each line, `source` in words.
CSV_COUNT_COLUMNS = ("series", "start", "end", "observation", "value", "lo", "hi", "source")
CSV_EXPECTED = {"series": "a series name (lower-case letters, digits and _, up to 40)",
                "start": "a date (YYYY-MM-DD)", "end": "a date (YYYY-MM-DD)",
                "observation": "exact, interval or lower_bound",
                **{c: f"a whole number from 0 to {MAX_COUNT:,}, or nothing" for c in ("value", "lo", "hi")},
                "source": "at most 500 characters"}


class UniformPrior(Strict):
    dist: Literal["uniform"] = Field(description="Distribution: uniform.")
    low: float = Field(description="Lower bound.")
    high: float = Field(description="Upper bound.")

    def frozen(self):
        return stats.uniform(self.low, self.high - self.low)

    @model_validator(mode="after")
    def _ordered(self) -> UniformPrior:
        if not self.low < self.high:
            raise ValueError(f"expected low < high, found low {self.low:g} and high {self.high:g}")
        return self


class LogNormalPrior(Strict):
    dist: Literal["lognormal"] = Field(description="Distribution: lognormal.")
    median: Annotated[float, Field(gt=0)] = Field(description="Median (exp of the log's mean).")
    sigma: Annotated[float, Field(gt=0, le=10)] = Field(description="Standard deviation of the log.")

    def frozen(self):
        return stats.lognorm(s=self.sigma, scale=self.median)


class BetaPrior(Strict):
    dist: Literal["beta"] = Field(description="Distribution: beta.")
    a: Annotated[float, Field(gt=0)] = Field(description="Shape a (α).")
    b: Annotated[float, Field(gt=0)] = Field(description="Shape b (β).")

    def frozen(self):
        return stats.beta(self.a, self.b)


class GammaPrior(Strict):
    dist: Literal["gamma"] = Field(description="Distribution: gamma.")
    shape: Annotated[float, Field(gt=0)] = Field(description="Shape k.")
    scale: Annotated[float, Field(gt=0)] = Field(description="Scale θ (mean k·θ).")

    def frozen(self):
        return stats.gamma(self.shape, scale=self.scale)


Prior = Annotated[UniformPrior | LogNormalPrior | BetaPrior | GammaPrior, Field(discriminator="dist")]


# The range each reporting parameter's prior must stay in.
REPORTING_RANGE = {"claimed": (0.0, 1.0), "spurious_per_launch": (0.0, math.inf), "spurious_per_day": (0.0, math.inf)}


class FittedParameter(Strict):
    path: str = Field(description="Key path of the fitted number in the scenario, or reporting.<series>.<field> for "
                                  "a parameter of the targets' reporting model.")
    prior: Prior = Field(description="Prior distribution of the parameter.")
    why: str = Field("", description="Why this prior (for the report).")


class CountTarget(Strict):
    series: Name = Field(description="The count series (a summary series of the scenario, e.g. attacks_on_israel).")
    start: dt.date = Field(description="First day of the period (inclusive).")
    end: dt.date = Field(description="Last day of the period (inclusive).")
    observation: Literal["exact", "interval", "lower_bound"] = Field(
        description="What is known: exact (value), interval (lo, hi) or lower_bound (lo).")
    value: Annotated[int, Field(ge=0, le=MAX_COUNT)] | None = Field(None, description="The exact count.")
    lo: Annotated[int, Field(ge=0, le=MAX_COUNT)] | None = Field(None,
        description="Lowest count consistent with the sources.")
    hi: Annotated[int, Field(ge=0, le=MAX_COUNT)] | None = Field(None,
        description="Highest count consistent with the sources.")
    facts: list[str] = Field(default_factory=list,
        description="Ids of the facts in the seeds file the count rests on (this or source).")
    source: str = Field("", max_length=500,
        description="Where the count comes from, in words (publisher, date, title): for counts not in the seeds file.")
    why: str = Field("", description="How the count was read from the facts.")

    @model_validator(mode="after")
    def _bounds(self) -> CountTarget:
        if not self.facts and not self.source.strip():
            raise ValueError("expected the facts the count rests on (fact ids of the seeds file) or its source, "
                             "found neither")
        if self.end < self.start:
            raise ValueError(f"expected end on or after start ({self.start}), found {self.end}")
        given = ", ".join(f"{k} {v}" for k, v in (("value", self.value), ("lo", self.lo), ("hi", self.hi)) if v is not None)
        found = f", found {given or 'none of them'}"
        if self.observation == "exact":
            if self.value is None or self.lo is not None or self.hi is not None:
                raise ValueError("expected an exact count to give value (and neither lo nor hi)" + found)
        elif self.observation == "interval":
            if self.lo is None or self.hi is None or self.value is not None:
                raise ValueError("expected an interval to give lo and hi (and no value)" + found)
            if self.lo > self.hi:
                raise ValueError(f"expected lo ≤ hi, found lo {self.lo} above hi {self.hi}")
        elif self.lo is None or self.hi is not None or self.value is not None:
            raise ValueError("expected a lower bound to give lo only" + found)
        return self

    def bounds(self) -> tuple[float, float]:
        """The observed range (lo, hi); hi is infinite for a lower bound."""
        if self.observation == "exact":
            return float(self.value), float(self.value)
        return float(self.lo), float(self.hi) if self.hi is not None else math.inf


class EventTarget(Strict):
    milestone: Name = Field(description="The milestone of the scenario.")
    observation: Literal["happened_by", "not_happened_by"] = Field(
        description="Whether it happened_by or not_happened_by the date.")
    date: dt.date = Field(description="The date.")
    facts: list[str] = Field(min_length=1, description="Ids of the facts in the seeds file the event rests on.")
    why: str = Field("", description="How the event was read from the facts.")


class FitSpec(Strict):
    name: Name = Field(description="The fit's name (the fit folder's default name).")
    scenario: str = Field(description="The scenario file to fit, relative to the targets file.")
    facts: str = Field(description="The seeds CSV file (with an id column), relative to the targets file.")
    description: str = Field("", description="What the fit is for.")
    fit_until: dt.date | None = Field(None,
        description="Targets ending after this date are scored but not fitted (a time split); absent: all are fitted.")
    counts_csv: list[str] = Field(default_factory=list, max_length=20,
        description="CSV files of further counts, relative to the targets file, with the columns "
                    f"{', '.join(CSV_COUNT_COLUMNS)}: one count per line, named <series>_<start as YYYYMMDD>.")


ACLED_COLUMNS = ("event_date", "actor1", "actor2", "event_type", "sub_event_type", "country", "fatalities", "notes")


class EventsCount(Strict):
    """Counts aggregated from an events export in ACLED's column layout (`ACLED_COLUMNS`, other
    columns ignored): the events (or their fatalities) that match every filter given, by calendar
    month or over the whole period, each a count target of `series`."""

    file: str = Field(description="The events CSV file, relative to the targets file.")
    series: Name = Field(description="The count series the aggregate is a count of (e.g. attacks_on_israel).")
    actor1: list[str] = Field(min_length=1, description="Which actor is the militia: the actor1 values counted.")
    actor2: list[str] = Field(default_factory=list, description="Which target: the actor2 values counted (empty: any).")
    country: list[str] = Field(default_factory=list, description="The country values counted (empty: any).")
    event_type: list[str] = Field(default_factory=list, description="The event_type values counted (empty: any).")
    sub_event_type: list[str] = Field(default_factory=list, description="The sub_event_type values counted (empty: any).")
    count: Literal["events", "fatalities"] = Field("events", description="Count the events, or sum their fatalities.")
    start: dt.date = Field(description="First day counted (inclusive).")
    end: dt.date = Field(description="Last day counted (inclusive).")
    period: Literal["month", "whole"] = Field("month",
        description="One count per calendar month (cut at start and end), or one for the whole period.")
    spread: Annotated[float, Field(ge=0.0, le=1.0)] = Field(0.0,
        description="0: each count is exact; above 0, the interval count × (1 ± spread), rounded outwards.")
    source: str = Field(min_length=1, max_length=500, description="Where the export comes from (publisher, date, query).")

    @model_validator(mode="after")
    def _period(self) -> EventsCount:
        if self.end < self.start:
            raise ValueError(f"expected end on or after start ({self.start}), found {self.end}")
        return self


class TargetsFile(Strict):
    fit: FitSpec = Field(description="What is fitted, to what.")
    parameters: dict[Name, FittedParameter] = Field(min_length=1, max_length=12,
        description="Fitted parameters by name.")
    counts: dict[Name, CountTarget] = Field(default_factory=dict, max_length=MAX_TARGETS,
        description="Reported counts by name.")
    events: dict[Name, EventTarget] = Field(default_factory=dict, max_length=MAX_TARGETS,
        description="Events that did or did not happen, by name.")
    counts_from_events: dict[Name, EventsCount] = Field(default_factory=dict, max_length=20,
        description="Counts aggregated from events exports in ACLED's layout, by name (each month: <name>_<YYYYMM>).")
    reporting: dict[Name, Reporting] = Field(default_factory=dict, max_length=20,
        description="The reporting model of a counted series, by series name: its counts are claims drawn from the "
                    "simulated launches (absent: each count is the simulated count itself).")


@dataclass
class Targets:
    """A checked targets file with the scenario it fits, in the terms the fit works in."""

    path: Path
    spec: TargetsFile
    scenario: Scenario
    facts: dict[str, dict]

    @property
    def name(self) -> str:
        return self.spec.fit.name

    @property
    def parameter_names(self) -> list[str]:
        return list(self.spec.parameters)

    def day(self, date: dt.date) -> float:
        return float((date - self.scenario.scenario.start_date).days)

    def priors(self) -> list:
        return [p.prior.frozen() for p in self.spec.parameters.values()]

    @property
    def world_indices(self) -> list[int]:
        """Positions (in `parameter_names` order) of the parameters set in the scenario."""
        return [k for k, p in enumerate(self.spec.parameters.values()) if not p.path.startswith(REPORTING_PREFIX)]

    @property
    def world_paths(self) -> tuple[str, ...]:
        return tuple(p.path for p in self.spec.parameters.values() if not p.path.startswith(REPORTING_PREFIX))

    def reporting(self, theta) -> dict[str, Reporting]:
        """The reporting model of each series that has one, with the fitted values of `theta`."""
        return reporting_with(self.spec.reporting, dict(zip(self.spec.parameters, theta, strict=True)),
                              {name: p.path for name, p in self.spec.parameters.items()})

    def scenario_with(self, theta: np.ndarray) -> Scenario:
        """The scenario with the fitted parameters set to `theta` (in `parameter_names` order)."""
        values = {self.spec.parameters[n].path: float(theta[k])
                  for k, n in ((k, self.parameter_names[k]) for k in self.world_indices)}
        return Scenario.model_validate(with_values(to_plain(self.scenario), values))

    def in_fit(self, end: dt.date) -> bool:
        """Whether a target ending on `end` is used to fit (the time split), or only scored."""
        until = self.spec.fit.fit_until
        return until is None or end <= until


def reporting_with(reporting: dict[str, Reporting], values: dict[str, float], paths: dict[str, str]) -> dict[str, Reporting]:
    """`reporting` with each parameter whose path is reporting.<series>.<field> set to its value."""
    out = dict(reporting)
    for name, path in paths.items():
        if path.startswith(REPORTING_PREFIX) and name in values:
            series, field = path.removeprefix(REPORTING_PREFIX).split(".", 1)
            out[series] = out[series].model_copy(update={field: float(values[name])})
    return out


def load_targets(path: str | Path) -> Targets:
    """Read and check a targets file: schema, then everything that needs the scenario."""
    path = Path(path)
    shown = str(path)
    raw = read_toml(path, what="targets", roots=(TargetsFile,))
    require_some_table(raw, TargetsFile, shown, "targets")
    try:
        spec = TargetsFile.model_validate(raw)
    except ValidationError as e:
        errors = e.errors()
        lines = [f"{shown}: {path_text(_untag(loc))}: {msg}"
                 for loc, msg in (describe_error(err, raw, TargetsFile) for err in errors[:MAX_LISTED])]
        raise problems_error(shown, lines, "targets file", len(errors)) from None
    scenario = load_scenario(path.parent / spec.fit.scenario, named_by=f"fit.scenario in {shown}")
    if scenario.forecast is not None:
        raise InputError(f"error: {shown}: fit.scenario: expected a scenario that runs from its own start (a history "
                         f"replay), found {spec.fit.scenario}, a forecast whose state comes from another history: "
                         "set forecast.observed = \"\" in it")
    facts = _read_facts(path.parent / spec.fit.facts, shown)
    origins: dict[str, str] = {}  # a count from a CSV file -> "<file>: line N"
    for k, name in enumerate(spec.fit.counts_csv):
        spec = _with_csv_counts(spec, path.parent / name, f"fit.counts_csv[{k}] in {shown}", origins)
    for name, rule in spec.counts_from_events.items():
        spec = _with_event_counts(spec, name, rule, path.parent / rule.file, shown, origins)
    problems = _check(spec, scenario, facts)
    if problems:
        raise problems_error(shown, [_where(shown, p, origins) + f": {_named(m, origins)}" for p, m in problems],
                             "targets file")
    return Targets(path, spec, scenario, facts)


def _named(message: str, origins: dict[str, str]) -> str:
    """A message with each count it names that came from a CSV file named by where it came from."""
    return re.sub(r"counts\.([a-z][a-z0-9_]*)", lambda m: f"the count at {origins[m[1]]}" if m[1] in origins else m[0],
                  message)


def _where(shown: str, path: str, origins: dict[str, str]) -> str:
    """Where a problem is: the targets file's key path, or the line (and column) of a CSV count."""
    parts = path.split(".")
    if len(parts) >= 2 and parts[0] == "counts" and parts[1] in origins:
        return origins[parts[1]] + (f": column {parts[2]}" if len(parts) > 2 else "")
    return f"{shown}: {path}"


def _read_csv(path: Path, what: str, expected: str, named_by: str) -> tuple[list[dict], list[str]]:
    """A CSV file's rows (dicts by header) and header, read like every input file."""
    text = read_text(path, what, named_by=named_by)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        return list(reader), list(reader.fieldnames or [])
    except csv.Error:  # its message may quote the file: say where, not what
        raise InputError(f"error: {path}: line {reader.line_num}: expected {expected}, found a line that is not CSV "
                         "(a NUL character, an unclosed quote or an overlong field)") from None


def _event_date(text: str) -> dt.date | None:
    """An ACLED event date: ISO (2024-01-15) or as older exports write it (15 January 2024)."""
    for form in ("%Y-%m-%d", "%d %B %Y"):
        try:
            return dt.datetime.strptime(text.strip(), form).date()
        except ValueError:
            continue
    return None


def _with_event_counts(spec: TargetsFile, name: str, rule: EventsCount, path: Path, targets: str,
                       origins: dict[str, str]) -> TargetsFile:
    """`spec` with the counts one `counts_from_events` rule of the targets file `targets` aggregates
    from its export. Each month (or the whole period) with no matching event counts 0."""
    named_by = f"counts_from_events.{name}.file in {targets}"
    shown = str(path)
    rows, header = _read_csv(path, "events CSV", "a CSV events export", named_by)
    missing = [c for c in ACLED_COLUMNS if c not in header]
    if missing:
        raise InputError(f"error: {shown}: line 1: expected the columns of an ACLED export "
                         f"({', '.join(ACLED_COLUMNS)}), found no column {', '.join(missing)}")
    filters = {c: set(getattr(rule, c)) for c in ("actor1", "actor2", "country", "event_type", "sub_event_type")}
    for column in filters:  # a value no row has would count nothing, silently: a typo
        present = {row[column].strip() for row in rows if row.get(column) is not None}
        for k, value in enumerate(getattr(rule, column)):
            if value not in present:
                raise InputError(f"error: {targets}: counts_from_events.{name}.{column}[{k}]: "
                                 f"expected a value of the {column} column of {shown}, found {value!r} in none of its "
                                 f"{len(rows):,} rows (names must match the export exactly)")
    total: dict[tuple[int, int] | None, int] = {}
    matched = 0
    for k, row in enumerate(rows):
        line = k + 2
        if None in row or any(v is None for v in row.values()):
            raise InputError(f"error: {shown}: line {line}: expected {len(header)} fields, found "
                             f"{'more' if None in row else 'fewer'}")
        if any(allowed and row[c].strip() not in allowed for c, allowed in filters.items()):
            continue
        day = _event_date(row["event_date"])
        if day is None:
            raise InputError(f"error: {shown}: line {line}: column event_date: expected a date (YYYY-MM-DD or "
                             "15 January 2024), found a value that is not")
        if not rule.start <= day <= rule.end:
            continue
        amount = 1
        if rule.count == "fatalities":
            try:
                amount = int(row["fatalities"].strip())
            except ValueError:
                amount = -1
            if amount < 0:
                raise InputError(f"error: {shown}: line {line}: column fatalities: expected a whole number of 0 or "
                                 "more, found a value that is not")
        key = (day.year, day.month) if rule.period == "month" else None
        total[key] = total.get(key, 0) + amount
        matched += 1
    if not matched:
        raise InputError(f"error: {shown}: counts_from_events.{name}: expected events matching its filters between "
                         f"{rule.start} and {rule.end}, found none in {len(rows):,} rows (check the actor names and "
                         "dates: they must match the export exactly)")
    counts = dict(spec.counts)
    periods = _months(rule.start, rule.end) if rule.period == "month" else [(None, rule.start, rule.end)]
    for key, first, last in periods:
        value = total.get(key, 0)
        label = f"{name}_{first:%Y%m}" if rule.period == "month" else name
        if rule.spread:
            lo, hi = math.floor(value * (1 - rule.spread)), math.ceil(value * (1 + rule.spread))
            target = CountTarget(series=rule.series, start=first, end=last, observation="interval", lo=lo, hi=hi,
                                 source=rule.source, why=f"aggregated from {path.name} by counts_from_events.{name}")
        else:
            target = CountTarget(series=rule.series, start=first, end=last, observation="exact", value=value,
                                 source=rule.source, why=f"aggregated from {path.name} by counts_from_events.{name}")
        if label in counts:
            raise InputError(f"error: {shown}: counts_from_events.{name}: expected count names of its own, found "
                             f"{label} already a count")
        counts[label] = target
        origins[label] = f"{shown}: counts_from_events.{name}, {first} - {last}"
    return spec.model_copy(update={"counts": counts})


def _months(start: dt.date, end: dt.date) -> list[tuple[tuple[int, int], dt.date, dt.date]]:
    """The calendar months from `start` to `end`, each cut at them: ((year, month), first, last)."""
    months, first = [], start
    while first <= end:
        following = (first.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        last = min(end, following - dt.timedelta(days=1))
        months.append(((first.year, first.month), first, last))
        first = following
    return months


def _with_csv_counts(spec: TargetsFile, path: Path, named_by: str, origins: dict[str, str]) -> TargetsFile:
    """`spec` with the counts of one CSV file added (`CSV_COUNT_COLUMNS`), each named
    <series>_<start as YYYYMMDD> (line<N>_<start> if that is too long)."""
    shown = str(path)
    rows, header = _read_csv(path, "CSV counts", "a CSV file of counts", named_by)
    missing = [c for c in CSV_COUNT_COLUMNS if c not in header]
    extra = [c for c in header if c not in CSV_COUNT_COLUMNS]
    if missing or extra:
        found = (f"no column {', '.join(missing)}" if missing else "") + ("; " if missing and extra else "") + \
            (f"{len(extra)} other column(s)" if extra else "")
        raise InputError(f"error: {shown}: line 1: expected the columns {', '.join(CSV_COUNT_COLUMNS)}, found {found}")
    counts = dict(spec.counts)
    problems = []
    for k, row in enumerate(rows):
        line = k + 2
        if None in row or any(v is None for v in row.values()):
            problems.append(f"{shown}: line {line}: expected {len(CSV_COUNT_COLUMNS)} fields, found "
                            f"{'more' if None in row else 'fewer'}")
            continue
        data = {c: row[c].strip() for c in CSV_COUNT_COLUMNS if row[c].strip() != ""}
        try:
            count = CountTarget.model_validate(data, strict=False)  # the text of a CSV cell read as its field's type
        except ValidationError as e:
            err = e.errors()[0]
            column = next((str(x) for x in err["loc"] if isinstance(x, str)), "")
            message = err["msg"].removeprefix("Value error, ")
            if column in CSV_EXPECTED:  # say what was expected, not what the cell holds (it is the file's)
                message = f"expected {CSV_EXPECTED[column]}, found a value that is not"
            problems.append(f"{shown}: line {line}: " + (f"column {column}: " if column else "") + message)
            continue
        name = f"{count.series}_{count.start:%Y%m%d}"
        if len(name) > 40:
            name = f"line{line}_{count.start:%Y%m%d}"
        if name in counts:
            problems.append(f"{shown}: line {line}: expected one count of {count.series} starting on {count.start}, found "
                            f"another ({origins.get(name, f'counts.{name} of the targets file')})")
            continue
        counts[name] = count
        origins[name] = f"{shown}: line {line}"
    if problems:
        raise problems_error(shown, problems, "CSV file of counts")
    if len(counts) > MAX_TARGETS:
        raise InputError(f"error: {shown}: expected at most {MAX_TARGETS} counts in all, found {len(counts):,}")
    return spec.model_copy(update={"counts": counts})


def _check(spec: TargetsFile, scenario: Scenario, facts: dict) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    series, _, _ = tally_layout(scenario)
    start = scenario.scenario.start_date
    end = start + dt.timedelta(days=scenario.scenario.horizon_days)
    plain = to_plain(scenario)
    counted = {c.series for c in spec.counts.values()}
    for s, _ in spec.reporting.items():
        if s not in series:
            problems.append((f"reporting.{s}", f"expected a series of {scenario.scenario.name} ({', '.join(series)}), "
                             f"found '{s}'{did_you_mean(s, series)}"))
        elif s not in counted:
            problems.append((f"reporting.{s}", f"expected a series that a count target counts ({', '.join(sorted(counted)) or 'none'}), "
                             f"found '{s}', which no count uses: its reporting model would change nothing"))
    for name, p in spec.parameters.items():
        if p.path.startswith(REPORTING_PREFIX):
            problems += _reporting_parameter(name, p, spec.reporting)
            continue
        try:
            current = get(plain, p.path)
        except PathError as e:
            problems.append((f"parameters.{name}.path", f"expected a key path into {scenario.scenario.name}: {e}"))
            continue
        if isinstance(current, bool) or not isinstance(current, (int, float)):
            problems.append((f"parameters.{name}.path", f"expected a path to a number, found {type(current).__name__}"))
            continue
        try:
            median = float(p.prior.frozen().median())
        except (ArithmeticError, ValueError):
            median = math.nan
        if not math.isfinite(median):
            problems.append((f"parameters.{name}.prior", f"expected a prior with a finite median, found {median:g}"))
            continue
        try:
            trial = Scenario.model_validate(with_values(plain, {p.path: median}))
            bad = check_references(trial)
        except ValidationError as e:
            bad = [("", e.errors()[0]["msg"])]
        if bad:
            problems.append((f"parameters.{name}.prior",
                             f"expected a prior whose values the scenario accepts, found its median {median:g} refused: {bad[0][1]}"))
    by_series: dict[str, list[tuple[dt.date, dt.date, str]]] = {}
    for name, c in spec.counts.items():
        path = f"counts.{name}"
        if c.series not in series:
            problems.append((f"{path}.series", f"expected a series of {scenario.scenario.name} ({', '.join(series)}), found '{c.series}'{did_you_mean(c.series, series)}"))
        if c.start < start or c.end >= end:
            problems.append((path, f"expected a period within {start} - {end - dt.timedelta(days=1)}, found {c.start} - {c.end}"))
        by_series.setdefault(c.series, []).append((c.start, c.end, name))
        problems += _unknown_facts(path, c.facts, facts)
    for s, periods in by_series.items():
        periods.sort()
        for (a0, a1, an), (b0, b1, bn) in zip(periods, periods[1:], strict=False):
            if b0 <= a1:
                problems.append((f"counts.{bn}", f"expected periods of {s} that do not overlap, found {b0} - {b1} overlapping counts.{an} ({a0} - {a1})"))
    milestones = list(scenario.milestones)
    for name, e in spec.events.items():
        path = f"events.{name}"
        if e.milestone not in milestones:
            problems.append((f"{path}.milestone", f"expected a milestone of {scenario.scenario.name} ({', '.join(milestones)}), found '{e.milestone}'{did_you_mean(e.milestone, milestones)}"))
        if not start <= e.date < end:
            problems.append((f"{path}.date", f"expected a date within {start} - {end - dt.timedelta(days=1)}, found {e.date}"))
        problems += _unknown_facts(path, e.facts, facts)
    if not spec.counts and not spec.events:
        problems.append(("counts", "expected at least one count or event to fit, found none"))
    return problems


def _reporting_parameter(name: str, p: FittedParameter, reporting: dict[str, Reporting]) -> list[tuple[str, str]]:
    """Problems of a fitted parameter of the reporting model (path reporting.<series>.<field>)."""
    where = f"parameters.{name}.path"
    parts = p.path.removeprefix(REPORTING_PREFIX).split(".")
    if len(parts) != 2 or parts[0] not in reporting:
        given = ", ".join(reporting) or "none"
        return [(where, f"expected reporting.<series>.<field> for a series with a [reporting.<series>] table ({given}), "
                        f"found {p.path}")]
    field = parts[1]
    if field not in REPORTING_FIELDS:
        return [(where, f"expected a field of the reporting model ({', '.join(REPORTING_FIELDS)}), found "
                        f"'{field}'{did_you_mean(field, REPORTING_FIELDS)}")]
    low, high = REPORTING_RANGE[field]
    try:
        a, b = (float(x) for x in p.prior.frozen().support())
    except (ArithmeticError, ValueError):
        a, b = math.nan, math.nan
    if not (low <= a and b <= high):
        return [(f"parameters.{name}.prior", f"expected a prior on {low:g} - {high:g} (the range of {field}), found one "
                                             f"on {a:g} - {b:g}")]
    return []


def _untag(loc: tuple) -> tuple:
    """Drop the distribution tag pydantic puts after `prior` in a key path."""
    dists = {"uniform", "lognormal", "beta", "gamma"}
    return tuple(x for i, x in enumerate(loc) if not (i and loc[i - 1] == "prior" and x in dists))


def _unknown_facts(path: str, ids: list[str], facts: dict) -> list[tuple[str, str]]:
    return [(f"{path}.facts[{i}]", f"expected a fact id of the seeds file, found {f!r}") for i, f in enumerate(ids) if f not in facts]


def _read_facts(path: Path, shown: str) -> dict[str, dict]:
    """The seeds file's facts by id (a CSV with an `id` column), read like every input file."""
    text = read_text(path, "seeds", named_by=f"fit.facts in {shown}")
    where = f"(named by fit.facts in {shown})"
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error:  # its message may quote the file: say where, not what
        raise InputError(f"error: {path}: line {reader.line_num}: expected a CSV seeds file {where}, found a line "
                         "that is not CSV (a NUL character, an unclosed quote or an overlong field)") from None
    if rows and "id" not in rows[0]:
        raise InputError(f"error: {path}: line 1: expected a CSV seeds file {where} whose header names an id column, "
                         f"found a first line of {len(rows[0])} column(s) without one")
    return {row["id"]: row for row in rows}
