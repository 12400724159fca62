"""The three kinds of input file, told apart by their top-level tables, for `escsim validate`.

A sweep spec has a `[sweep]` table, a calibration targets file a `[fit]` table; anything else
is read as a scenario. Each is then checked whole by its own reader, with the scenario it names,
without running anything.
"""

from __future__ import annotations

from pathlib import Path

from sim.scenario.loading import read_toml


def input_kind(path: Path) -> str:
    """'scenario', 'sweep spec' or 'targets': what the file at `path` holds."""
    from sim.calibration.targets import TargetsFile
    from sim.scenario.schema import Scenario
    from sim.sweeps.spec import SweepFile

    data = read_toml(path, what="scenario, sweep spec or targets", roots=(Scenario, SweepFile, TargetsFile))
    if "scenario" not in data and "extends" not in data:
        if "sweep" in data:
            return "sweep spec"
        if "fit" in data:
            return "targets"
    return "scenario"


def sweep_line(path: Path, overrides=None) -> str:
    """Check a sweep spec (and its base scenario, with `overrides` set); one line saying what it would run."""
    from sim.sweeps.spec import design_size, load_sweep

    sweep = load_sweep(path, overrides=overrides)
    meta = sweep.spec.sweep
    return (f"{path}: valid sweep spec '{sweep.name}': {sweep.design} design over {len(sweep.parameters)} parameters of "
            f"scenario {sweep.scenario.scenario.name}, {design_size(sweep.spec):,} points × {meta.trials_per_point:,} trials")


def targets_line(path: Path) -> str:
    """Check a calibration targets file (its scenario and facts too); one line saying what it fits."""
    from sim.calibration.targets import load_targets

    targets = load_targets(path)
    spec = targets.spec
    return (f"{path}: valid targets '{targets.name}': {len(spec.parameters)} parameters fitted to {len(spec.counts)} "
            f"counts and {len(spec.events)} events of scenario {targets.scenario.scenario.name}"
            + (f"; the counts of {', '.join(spec.reporting)} are claims (a reporting model)" if spec.reporting else ""))
