"""Design points of a sweep: where in parameter space the scenario is run.

Every design is first drawn in the unit cube (one column per parameter, 0 = low, 1 = high) and
then mapped to values, linearly or geometrically (log scale). Sobol and Morris designs come from
SALib (Saltelli's scheme over a scrambled Sobol' sequence from scipy.stats.qmc; Morris
trajectories), Latin hypercubes from scipy.stats.qmc; one-at-a-time and grid designs are laid
out here. Random designs are seeded from the sweep's seed, so a sweep is reproducible.

The design knows nothing of scenarios: it sees parameters with ranges, so the same code draws
the designs of the tests' analytic functions (Ishigami) and of the model.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.stats import qmc

from sim.sweeps.spec import SweepParameter

# A separate stream of the sweep's seed for the design (trials use spawn keys (i,)).
DESIGN_STREAM = 2**31 - 1


@dataclass(frozen=True)
class DesignPoints:
    """The points of a design: `unit` in [0, 1]^d and `values` in the parameters' units.

    `base` marks points where the parameters keep the base scenario's values (the centre of a
    one-at-a-time design); there `values` holds NaN and nothing is overridden.
    """

    kind: str
    names: tuple[str, ...]
    unit: np.ndarray
    values: np.ndarray
    base: np.ndarray

    @property
    def size(self) -> int:
        return len(self.unit)

    def problem(self) -> dict:
        """The SALib problem of the unit cube."""
        return {"num_vars": len(self.names), "names": list(self.names), "bounds": [[0.0, 1.0]] * len(self.names)}


def design_seed(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(DESIGN_STREAM,)))


def build_design(kind: str, parameters: Mapping[str, SweepParameter], samples: int, seed: int, *,
                 second_order: bool = True, levels: int = 4) -> DesignPoints:
    names = tuple(parameters)
    d = len(names)
    problem = {"num_vars": d, "names": list(names), "bounds": [[0.0, 1.0]] * d}
    base = None
    match kind:
        case "oat":
            steps = np.linspace(0.0, 1.0, samples)
            rows = [np.full(d, np.nan)]
            for j in range(d):
                for u in steps:
                    row = np.full(d, np.nan)
                    row[j] = u
                    rows.append(row)
            unit = np.array(rows)
            base = np.zeros(len(unit), dtype=bool)
            base[0] = True
        case "grid":
            axes = [np.linspace(0.0, 1.0, p.levels or samples) for p in parameters.values()]
            unit = np.array(list(itertools.product(*axes)), dtype=float)
        case "lhs":
            unit = qmc.LatinHypercube(d=d, rng=design_seed(seed)).random(samples)
        case "sobol":
            from SALib.sample import sobol

            unit = sobol.sample(problem, samples, calc_second_order=second_order, scramble=True, seed=design_seed(seed))
        case "morris":
            from SALib.sample import morris

            unit = morris.sample(problem, samples, num_levels=levels, seed=design_seed(seed))
        case _:
            raise ValueError(f"unknown design {kind!r}")
    unit = np.asarray(unit, dtype=float)
    if base is None:
        base = np.zeros(len(unit), dtype=bool)
    values = np.full_like(unit, np.nan)
    for j, p in enumerate(parameters.values()):
        column = unit[:, j]
        ok = ~np.isnan(column)
        values[ok, j] = [p.value(u) for u in column[ok]]
    return DesignPoints(kind, names, unit, values, base)
