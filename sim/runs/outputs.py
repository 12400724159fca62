"""A run folder's files, written as chunks stream in (trial order) and finished atomically.

- `trials.parquet`: one row per trial: `trial`, `n_events`, `t_<milestone>` (day first
  reached, NaN if not), `max_rung`, and the trial's count of every series;
- `monthly.parquet`: one row per trial, month (`YYYY-MM`) and monthly series: `count`;
- `summary.csv`: `metric, estimate, lo, hi` (see `sim.runs.summary`);
- `scenario.toml`: the resolved scenario, which reproduces the run by itself;
- a forecast's `trials.parquet` also has `history_attempts`, `parameter_redraws` and
  `history_t_<milestone>` (`sim.runs.layout.trials_schema`);
- `roots.csv`: where each milestone's cause chain begins, over every trial that reached it
  (`roots_table`; each trial's roots are `trials.parquet`'s `root_<milestone>` columns).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.errors import WorkError
from sim.reports.run import write_run_report
from sim.runs.layout import RunLayout, monthly_schema, trials_schema
from sim.runs.storage import atomic_path, write_text
from sim.runs.summary import Summary
from sim.scenario import Scenario
from sim.scenario.loading import resolved_toml
from sim.stats import wilson

PARQUET_OPTIONS = {"compression": "zstd", "use_dictionary": True, "write_statistics": True}
# Trials per row group: few row groups (small footers, quick reads) and bounded buffers.
ROW_GROUP_TRIALS = 65_536
MONTHLY_ROW_GROUP_TRIALS = 8_192  # each trial has a row per month and series


class _Batches:
    """Collects chunk tables and writes them as one row group once `limit` trials are in. Row
    groups end on chunk boundaries, which depend on the trial count only, never on the workers,
    so the files are the same whoever ran the chunks."""

    def __init__(self, writer: pq.ParquetWriter, limit: int):
        self.writer, self.limit = writer, limit
        self.tables: list[pa.Table] = []
        self.trials = 0

    def add(self, table: pa.Table, trials: int) -> None:
        self.tables.append(table)
        self.trials += trials
        if self.trials >= self.limit:
            self.flush()

    def flush(self) -> None:
        if self.tables:
            table = pa.concat_tables(self.tables).combine_chunks()
            self.writer.write_table(table, row_group_size=table.num_rows)
            self.tables, self.trials = [], 0


class RunWriter:
    """Streams chunk arrays into the Parquet files and the summary; `finish` renames them in."""

    def __init__(self, out: Path, scenario: Scenario, layout: RunLayout, trials: int | None = None):
        self.out = out
        self.trials = trials  # the plan's: `finish` refuses files with another number of trials
        self.scenario = scenario
        self.layout = layout
        self.summary = Summary(layout)
        self._trials_tmp = atomic_path(out / "trials.parquet")
        self._monthly_tmp = atomic_path(out / "monthly.parquet")
        self._trials_path = self._trials_tmp.__enter__()
        self._monthly_path = self._monthly_tmp.__enter__()
        self._trials = pq.ParquetWriter(self._trials_path, trials_schema(layout), **PARQUET_OPTIONS)
        self._monthly = pq.ParquetWriter(self._monthly_path, monthly_schema(), **PARQUET_OPTIONS)
        self._trials_batches = _Batches(self._trials, ROW_GROUP_TRIALS)
        self._monthly_batches = _Batches(self._monthly, MONTHLY_ROW_GROUP_TRIALS)
        self._months = pa.array(layout.months, pa.string())
        self._series = pa.array(layout.monthly_series, pa.string())
        self._roots = pa.array(layout.roots, pa.string())
        self.root_counts = np.zeros((len(layout.milestones), len(layout.roots)), dtype=np.int64)
        self._next_trial = 0
        self._closed = False

    def add(self, arrays: dict[str, np.ndarray]) -> None:
        n = len(arrays["max_rung"])
        trial = np.arange(self._next_trial, self._next_trial + n, dtype=np.int64)
        self._next_trial += n
        lay = self.layout
        columns = [trial, arrays["n_events"]]
        if lay.particles:
            columns.append(arrays["particle"])
        columns += [arrays["milestone_days"][:, j] for j in range(len(lay.milestones))]
        columns += [arrays["max_rung"].astype(np.int16)]
        columns += [arrays["totals"][:, k] for k in range(len(lay.series))]
        roots = arrays["roots"]
        for j in range(len(lay.milestones)):
            codes = roots[:, j]
            reached = codes >= 0
            columns.append(pa.DictionaryArray.from_arrays(pa.array(codes, pa.int16(), mask=~reached), self._roots))
            self.root_counts[j] += np.bincount(codes[reached], minlength=len(lay.roots))
        if lay.forecast:
            columns += [arrays["history_attempts"], arrays["redraws"]]
            columns += [arrays["history_days"][:, j] for j in range(len(lay.milestones))]
            self.summary.add_history(arrays["history_attempts"], arrays["redraws"], arrays["history_days"])
        self._trials_batches.add(pa.Table.from_arrays(columns, schema=self._trials.schema), n)
        monthly = arrays["monthly"]  # [trial, series, month]
        n_series, n_months = monthly.shape[1], monthly.shape[2]
        # Rows ordered by trial, then month, then series.
        counts = monthly.transpose(0, 2, 1).reshape(-1).astype(np.int64)
        self._monthly_batches.add(pa.Table.from_arrays([
            pa.array(np.repeat(trial, n_months * n_series)),
            pa.DictionaryArray.from_arrays(pa.array(np.tile(np.repeat(np.arange(n_months, dtype=np.int16), n_series), n)), self._months),
            pa.DictionaryArray.from_arrays(pa.array(np.tile(np.arange(n_series, dtype=np.int16), n * n_months)), self._series),
            pa.array(counts),
        ], schema=self._monthly.schema), n)
        self.summary.add(arrays["milestone_days"], arrays["max_rung"], arrays["totals"], monthly, arrays["n_events"],
                         arrays["particle"] if lay.particles else None)

    def finish(self):
        """Close the Parquet files into place and write `summary.csv` and `scenario.toml`."""
        self._trials_batches.flush()
        self._monthly_batches.flush()
        self._trials.close()
        self._monthly.close()
        self._check_rows()
        self._closed = True
        self._trials_tmp.__exit__(None, None, None)
        self._monthly_tmp.__exit__(None, None, None)
        table = self.summary.table()
        write_text(self.out / "summary.csv", table.to_csv(index=False, float_format="%.6g"))
        write_text(self.out / "scenario.toml", scenario_toml(self.scenario))
        roots = roots_table(self.layout, self.root_counts, self._next_trial)
        write_text(self.out / "roots.csv", roots.to_csv(index=False, float_format="%.6g"))
        return table

    def _check_rows(self) -> None:
        """The files hold every trial of the plan, no more, no less (read back from their footers)."""
        if self.trials is None:
            return
        per_trial = len(self.layout.months) * len(self.layout.monthly_series)
        for path, name, rows in ((self._trials_path, "trials.parquet", self.trials),
                                 (self._monthly_path, "monthly.parquet", self.trials * per_trial)):
            written = pq.ParquetFile(path).metadata.num_rows
            if written != rows or self._next_trial != self.trials:
                raise WorkError(f"{name} would hold {written:,} rows where the plan's {self.trials:,} trials make "
                                f"{rows:,} (chunks went missing while it was written); nothing final was written")

    def abort(self) -> None:
        """Drop the half-written Parquet files (the chunk checkpoints stay for --resume)."""
        if self._closed:
            return
        self._closed = True
        for writer in (self._trials, self._monthly):
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - already broken: nothing more to save
                pass
        for tmp in (self._trials_tmp, self._monthly_tmp):
            tmp.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def write_report(self, manifest: dict) -> None:
        write_run_report(self.out, self.scenario, self.summary, manifest)


ROOT_COLUMNS = ["milestone", "root", "trials", "share", "lo", "hi", "reached", "traced"]


def roots_table(layout: RunLayout, counts: np.ndarray, traced: int) -> pd.DataFrame:
    """`roots.csv`: for each milestone (ladder order, then tracked), each root its cause chain began at
    in some trial, most common first: `trials`, `share` of the trials that `reached` the milestone
    (95% Wilson interval), out of `traced` trials (every trial of the run). `counts[milestone, root]`:
    trials, in `layout.milestones` and `layout.roots` order."""
    rows = []
    for m in layout.ordered:
        row = counts[layout.milestones.index(m)]
        reached = int(row.sum())
        found = sorted(((int(c), root) for root, c in zip(layout.roots, row, strict=True) if c), key=lambda cr: (-cr[0], cr[1]))
        for count, root in found:
            rows.append((m, root, count, *wilson(count, reached), reached, traced))
    return pd.DataFrame(rows, columns=ROOT_COLUMNS)


def scenario_toml(scenario: Scenario) -> str:
    """The resolved scenario as the run folder's `scenario.toml` (see `resolved_toml`)."""
    return resolved_toml(scenario)
