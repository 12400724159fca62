"""Where chunks of trials run: in this process, or in a pool of local worker processes.

Both are `concurrent.futures.Executor`s, so the runner (and calibration and sweeps after it)
submits work the same way whatever runs it. Results never depend on the executor: each trial
seeds itself from (seed, trial index), and results are reduced in trial order.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Executor, Future, ProcessPoolExecutor


class InlineExecutor(Executor):
    """Runs each task at submission, in this process (one worker, no pickling, easy to debug)."""

    workers = 1

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(exc)
        return future


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def local_executor(workers: int | None) -> Executor:
    """`workers` processes (default: every available core); one worker runs inline."""
    workers = workers or available_cores()
    if workers <= 1:
        return InlineExecutor()
    # Where it exists, fork: workers start at once with the model already imported, and a
    # script or notebook that calls `sim.run` is not re-run in each worker. The pool forks all
    # its workers before it starts its own thread, and workers only simulate.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method))
    pool.workers = workers  # type: ignore[attr-defined]
    return pool


def executor_workers(executor: Executor) -> int:
    return getattr(executor, "workers", 1)
