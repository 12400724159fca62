"""Sweep specs: which scenario parameters to vary, over what ranges, by which design, and
which `summary.csv` metrics to watch.

A spec is TOML, checked like a scenario (pydantic, `extra="forbid"`, one message per problem
naming file, key path, expected and found; exit code 2):

    [sweep]
    name = "tornado"
    base = "../baseline.toml"        # relative to the spec
    design = "oat"                   # oat | grid | lhs | sobol | morris
    samples = 2                      # see SAMPLES_MEANING
    trials_per_point = 1000
    seed = 20240604
    outputs = ["p_israel_strikes_in_iraq", "mean_attacks_on_israel"]

    [parameters.iri_israel_rate]
    path = "actors.iri.attacks.israel.rate_per_day"
    low = 0.01
    high = 0.1
    scale = "log"                    # where a rate spans decades

Everything that needs the base scenario is checked before any trial runs: each path leads to
a number, the scenario accepts each range's ends, each output is a metric the scenario's runs
report, and the design's size is what the method needs (a power of two for Sobol).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, model_validator

from sim.errors import MAX_LISTED, did_you_mean, problems_error
from sim.forecast import resolve_forecast
from sim.runs.layout import RunLayout
from sim.runs.summary import Summary
from sim.scenario import Scenario, load_scenario, to_plain
from sim.scenario.loading import describe_error, path_text, read_toml, require_some_table
from sim.scenario.paths import PathError, get, with_values
from sim.scenario.schema import MAX_TRIALS, Name, Strict, check_references

Design = Literal["oat", "grid", "lhs", "sobol", "morris"]
MAX_POINTS = 1_000_000
MAX_PARAMETERS = 40

SAMPLES_MEANING = {
    "oat": "values per parameter, low to high, each with the others at the base scenario's values",
    "grid": "values per parameter (a parameter's own `levels` overrides it); every combination is a point",
    "lhs": "points of a Latin hypercube",
    "sobol": "base samples N of Saltelli's scheme, a power of two (N·(2d+2) points with second-order indices, N·(d+2) without)",
    "morris": "trajectories (each of d+1 points)",
}


class SweepParameter(Strict):
    """One varied parameter: a key path into the base scenario and its range."""

    path: str = Field(
        description="Key path of the varied number in the base scenario (e.g. actors.iri.attacks.israel.rate_per_day).")
    low: float = Field(description="Low end of the range.")
    high: float = Field(description="High end of the range.")
    scale: Literal["linear", "log"] = Field("linear",
        description="Spacing of values: linear, or log (geometric, for a rate that spans decades; low > 0).")
    levels: Annotated[int, Field(ge=2, le=1000)] | None = Field(None,
        description="Values of this parameter in a grid design (overrides samples).")  # grid only
    why: str = Field("", description="Why the range is what it is (for the report).")

    @model_validator(mode="after")
    def _range(self) -> SweepParameter:
        if not self.low < self.high:
            raise ValueError(f"expected low < high, found low {self.low:g} and high {self.high:g}")
        if not math.isfinite(self.high - self.low):
            raise ValueError(f"expected a range whose width is a finite number, found low {self.low:g} and high {self.high:g}")
        if self.scale == "log" and self.low <= 0:
            raise ValueError(f"expected low > 0 on a log scale, found low {self.low:g}")
        return self

    def value(self, u: float) -> float:
        """The parameter's value at position u in [0, 1] of its range (geometric on a log scale)."""
        if self.scale == "log":
            return math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        return self.low + u * (self.high - self.low)


class SweepMeta(Strict):
    name: Name = Field(description="The sweep's name.")
    description: str = Field("", description="What the sweep asks.")
    base: str = Field(description="The base scenario file, relative to the spec.")
    design: Design = Field(
        description="Design: oat (one at a time), grid, lhs (Latin hypercube), sobol (Saltelli) or morris.")
    samples: Annotated[int, Field(ge=1, le=MAX_POINTS)] = Field(
        description="Design size: values per parameter (oat, grid), points (lhs), base samples N (sobol, a power of two), trajectories (morris).")
    trials_per_point: Annotated[int, Field(ge=1, le=10_000_000)] = Field(1000,
        description="Trials at each design point.")
    seed: Annotated[int, Field(ge=0, lt=2**63)] = Field(0, description="Master seed of the sweep.")
    outputs: list[str] = Field(min_length=1, max_length=50, description="summary.csv metrics to analyse.")
    second_order: bool = Field(True,
        description="Whether a Sobol design also estimates second-order indices (N·(2d+2) points instead of N·(d+2)).")  # sobol: also the pairwise indices S2
    levels: Annotated[int, Field(ge=2, le=100)] = Field(4, description="Grid levels of the Morris method.")  # morris: grid levels of each parameter


class SweepFile(Strict):
    sweep: SweepMeta = Field(description="What to sweep and how.")
    parameters: dict[Name, SweepParameter] = Field(min_length=1, max_length=MAX_PARAMETERS,
        description="Varied parameters by name.")


@dataclass
class Sweep:
    """A checked sweep spec with its base scenario."""

    path: Path | None
    spec: SweepFile
    scenario: Scenario

    @property
    def name(self) -> str:
        return self.spec.sweep.name

    @property
    def design(self) -> str:
        return self.spec.sweep.design

    @property
    def parameters(self) -> dict[str, SweepParameter]:
        return self.spec.parameters

    @property
    def outputs(self) -> list[str]:
        return self.spec.sweep.outputs

    def with_options(self, samples: int | None = None, trials_per_point: int | None = None,
                     seed: int | None = None) -> Sweep:
        """The sweep with command-line overrides, checked again."""
        meta = self.spec.sweep.model_copy(update={k: v for k, v in {
            "samples": samples, "trials_per_point": trials_per_point, "seed": seed}.items() if v is not None})
        spec = self.spec.model_copy(update={"sweep": meta})
        shown = str(self.path) if self.path else "<sweep>"
        problems = _check_size(spec, option_names=True)
        if problems:
            raise problems_error(shown, [f"{p}: {m}" for p, m in problems], "sweep spec")
        return Sweep(self.path, spec, self.scenario)

    def with_scenario(self, scenario: Scenario) -> Sweep:
        """The sweep over another base scenario (the same one with values changed), checked again."""
        shown = str(self.path) if self.path else "<sweep>"
        problems = _check(self.spec, scenario)
        if problems:
            raise problems_error(shown, [f"{shown}: {p}: {m}" for p, m in problems], "sweep spec")
        return Sweep(self.path, self.spec, scenario)


def metric_names(scenario: Scenario) -> list[str]:
    """Every metric a run of `scenario` reports in `summary.csv`, in its order."""
    return list(Summary(RunLayout.of(scenario)).table()["metric"])


def design_size(spec: SweepFile) -> int:
    s, d = spec.sweep.samples, len(spec.parameters)
    match spec.sweep.design:
        case "oat":
            return 1 + d * s
        case "grid":
            return math.prod(p.levels or s for p in spec.parameters.values())
        case "lhs":
            return s
        case "sobol":
            return s * (2 * d + 2 if spec.sweep.second_order else d + 2)
        case "morris":
            return s * (d + 1)
    raise AssertionError(spec.sweep.design)


def load_sweep(path: str | Path, overrides=None) -> Sweep:
    """Read and check a sweep spec and its base scenario (see the module docstring); `overrides`
    set values of the base scenario as `load_scenario`'s do."""
    path = Path(path)
    shown = str(path)
    raw = read_toml(path, what="sweep spec", roots=(SweepFile,))
    require_some_table(raw, SweepFile, shown, "sweep spec")
    try:
        spec = SweepFile.model_validate(raw)
    except ValidationError as e:
        errors = e.errors()
        lines = [f"{shown}: {path_text(loc)}: {msg}" for loc, msg in (describe_error(err, raw, SweepFile) for err in errors[:MAX_LISTED])]
        raise problems_error(shown, lines, "sweep spec", len(errors)) from None
    base = path.parent / spec.sweep.base
    scenario = resolve_forecast(load_scenario(base, named_by=f"sweep.base in {shown}", overrides=overrides), str(base))
    problems = _check(spec, scenario)
    if problems:
        raise problems_error(shown, [f"{shown}: {p}: {m}" for p, m in problems], "sweep spec")
    return Sweep(path, spec, scenario)


def _check(spec: SweepFile, scenario: Scenario) -> list[tuple[str, str]]:
    problems = _check_size(spec)
    plain = to_plain(scenario)
    name = scenario.scenario.name
    for key, p in spec.parameters.items():
        where = f"parameters.{key}"
        try:
            current = get(plain, p.path)
        except PathError as e:
            problems.append((f"{where}.path", f"expected a key path into scenario {name}: {e}"))
            continue
        if isinstance(current, bool) or not isinstance(current, (int, float)):
            problems.append((f"{where}.path", f"expected a path to a number, found {type(current).__name__}"))
            continue
        if p.levels is not None and spec.sweep.design != "grid":
            problems.append((f"{where}.levels", f"expected levels only in a grid design, found it in a {spec.sweep.design} design"))
        for end, value in (("low", p.low), ("high", p.high)):
            refused = _refusal(plain, {p.path: value})
            if refused:
                problems.append((f"{where}.{end}", f"expected a value scenario {name} accepts at {p.path}, found {value:g} refused: {refused}"))
    paths = [p.path for p in spec.parameters.values()]
    for i, path in enumerate(paths):
        if path in paths[:i]:
            problems.append((f"parameters.{list(spec.parameters)[i]}.path", f"expected each path once, found {path} twice"))
    known = metric_names(scenario)
    for i, output in enumerate(spec.sweep.outputs):
        if output not in known:
            problems.append((f"sweep.outputs[{i}]", f"expected a summary.csv metric of scenario {name} "
                             f"(such as {', '.join(known[:4])}; `escsim run` lists them all), found {output!r}{did_you_mean(output, known)}"))
    return problems


def _check_size(spec: SweepFile, option_names: bool = False) -> list[tuple[str, str]]:
    meta, d = spec.sweep, len(spec.parameters)
    samples = "--samples" if option_names else "sweep.samples"
    problems = []
    if meta.design == "sobol" and (meta.samples < 2 or meta.samples & (meta.samples - 1)):
        below = 1 << (meta.samples.bit_length() - 1)
        problems.append((samples, f"expected a power of two for a Sobol design (Saltelli's scheme keeps its "
                         f"balance only then), found {meta.samples}; use {max(2, below)} or {max(2, below) * 2}"))
    if meta.design in ("oat", "grid") and meta.samples < 2:
        problems.append((samples, f"expected at least 2 values per parameter for a {meta.design} design, found {meta.samples}"))
    if meta.design == "lhs" and meta.samples < d + 3:
        problems.append((samples, f"expected at least {d + 3} points (parameters + 3) for partial rank correlations, found {meta.samples}"))
    if meta.design == "morris":
        if meta.samples < 2:
            problems.append((samples, f"expected at least 2 trajectories for a Morris design, found {meta.samples}"))
        if meta.levels % 2:
            problems.append(("sweep.levels", f"expected an even number of levels for a Morris design, found {meta.levels}"))
    if meta.design == "sobol" and d < 2:
        problems.append(("parameters", f"expected at least 2 parameters for Sobol indices, found {d}"))
    if not problems:
        points = design_size(spec)
        if points > MAX_POINTS:
            problems.append((samples, f"expected a design of at most {MAX_POINTS:,} points, found {points:,}"))
        elif points * meta.trials_per_point > MAX_TRIALS:
            trials = "--trials-per-point" if option_names else "sweep.trials_per_point"
            problems.append((trials, f"expected at most {MAX_TRIALS:,} trials in all, found {points:,} points × "
                             f"{meta.trials_per_point:,} = {points * meta.trials_per_point:,}"))
    return problems


def _refusal(plain: dict, values: dict[str, float]) -> str | None:
    """Why the scenario refuses these values, or None."""
    try:
        bad = check_references(Scenario.model_validate(with_values(plain, values)))
    except ValidationError as e:
        err = e.errors()[0]
        return f"{path_text(tuple(err['loc']))}: {err['msg'].removeprefix('Value error, ')}"
    return f"{bad[0][0]}: {bad[0][1]}" if bad else None
