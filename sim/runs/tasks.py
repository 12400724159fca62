"""Run a planned list of tasks through an executor, checkpointed, and consume them in order.

Runs (chunks of trials) and sweeps (groups of design points) share `complete_in_order`. Each
task has a key that fixes its place in the order; its result is turned into plain arrays,
checkpointed atomically under the job's `.chunks/` folder, and handed on in key order as soon
as its turn comes, so writing overlaps computing and only out-of-order results wait in memory.
On resume the tasks already checkpointed are read back instead of being run again.
Calibration, whose batches depend on the ones before, uses `results_in_order` batch by batch.

Both survive a local worker that dies: the pool is started afresh and the lost tasks run
again. A Dask cluster reschedules a lost worker's tasks itself; when it gives up on a task
(it killed too many workers), the job stops with a clear error and can be resumed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import InputError, WorkError
from sim.runs.executors import executor_workers, lost_cluster
from sim.runs.storage import read_arrays, write_arrays

Arrays = dict[str, np.ndarray]
Failure = tuple[int, str]
MAX_RESTARTS = 3  # worker pools started afresh after a worker died, per job


class Checkpoints:
    """One `.npz` file per finished task, named by its key. `check(key, arrays)`, if given, says
    what is wrong with a checkpoint read back (None: nothing), so that a file of another job or
    another version is refused rather than written into the results."""

    def __init__(self, folder: Path, prefix: str = "chunk", check: Callable[[int, Arrays], str | None] | None = None):
        self.folder, self.prefix, self.check = Path(folder), prefix, check

    def path(self, key: int) -> Path:
        return self.folder / f"{self.prefix}-{key:012d}.npz"

    def has(self, key: int) -> bool:
        return self.path(key).exists()

    def save(self, key: int, arrays: Arrays) -> None:
        write_arrays(self.path(key), **arrays)

    def load(self, key: int) -> Arrays:
        """The checkpoint's arrays; FileNotFoundError if it is gone (the caller runs its task
        again); an InputError naming the file if it is damaged or not this job's."""
        path = self.path(key)
        try:
            arrays = read_arrays(path)
        except FileNotFoundError:
            raise
        except Exception:  # noqa: BLE001 - whatever a damaged archive raises: not read
            problem = "a truncated or damaged file"
        else:
            problem = self.check(key, arrays) if self.check is not None else None
        if problem:
            raise InputError(
                f"error: {path}: expected a checkpoint this job wrote (a .npz archive of its arrays), found "
                f"{problem}; delete that file and run the same command again with --resume (the work it held "
                "is done again), or start the job again in a new folder")
        return arrays


def complete_in_order(
    executor: Executor,
    fn: Callable[[Any], Any],
    tasks: list[tuple[int, Any]],
    checkpoints: Checkpoints,
    *,
    to_arrays: Callable[[Any], tuple[Arrays | None, list[Failure]]],
    consume: Callable[[int, Arrays], None],
    done: Callable[[int], None] = lambda key: None,
) -> list[Failure]:
    """Run every task not yet checkpointed (at most two per worker in flight) and consume all
    results in key order. If a local worker dies, the pool is started afresh (up to
    MAX_RESTARTS times) and the tasks in flight run again. `to_arrays` turns a result into
    arrays, or None and its failures; after a failure nothing more is consumed or submitted,
    the tasks in flight finish (and are checkpointed), and the failures are returned sorted.
    `done(key)` is called as each task finishes (progress)."""
    order = [key for key, _ in tasks]
    todo = deque(k for k, _ in tasks if not checkpoints.has(k))
    coming = set(todo)  # keys whose results are still to arrive (queued, in flight or to retry)
    ready: dict[int, Arrays] = {}
    failures: list[Failure] = []
    consumed = 0

    def consume_in_order() -> None:
        nonlocal consumed
        while consumed < len(order) and not failures:
            key = order[consumed]
            if key in ready:
                arrays = ready.pop(key)
            elif key in coming:
                return
            else:
                try:
                    arrays = checkpoints.load(key)
                except FileNotFoundError:  # its checkpoint vanished since it was made: run it again
                    todo.appendleft(key)
                    coming.add(key)
                    return
            consume(key, arrays)
            consumed += 1

    pending: dict[Any, int] = {}
    by_key = dict(tasks)
    retry: list[int] = []
    restarts = 0
    in_flight = 2 * executor_workers(executor)

    def recover(lost: list[int]) -> None:
        # Run again every task that was in flight; results do not depend on who runs them.
        nonlocal restarts, retry
        restarts = _restart(executor, restarts)
        retry = sorted(set(lost) | set(pending.values()) | set(retry))
        pending.clear()

    consume_in_order()
    while True:
        while len(pending) < in_flight and not failures:
            if retry:
                key = retry.pop(0)
            else:
                if not todo:
                    break
                key = todo.popleft()
            try:
                pending[executor.submit(fn, by_key[key])] = key
            except BrokenProcessPool:  # the pool broke between two submissions
                recover([key])
        if not pending:
            break
        finished, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in finished:
            key = pending.pop(future)
            try:
                result = _result(future)
            except BrokenProcessPool:
                recover([key])
                break
            arrays, failed = to_arrays(result)
            if failed:
                failures.extend(failed)
                continue
            checkpoints.save(key, arrays)
            coming.discard(key)
            if not failures:
                ready[key] = arrays
            done(key)
        consume_in_order()
    if not failures and consumed < len(order):  # never expected: a result neither run nor checkpointed
        raise WorkError(f"{len(order) - consumed} of {len(order)} tasks were neither completed nor checkpointed; "
                        "nothing final was written")
    return sorted(failures)


def results_in_order(executor: Executor, fn: Callable[[Any], Any], tasks: list[Any]) -> list[Any]:
    """`[fn(t) for t in tasks]`, run through `executor`; if a local worker dies, the pool is
    started afresh (up to MAX_RESTARTS times) and the unfinished tasks run again."""
    results: dict[int, Any] = {}
    restarts = 0
    while len(results) < len(tasks):
        futures: dict[Future, int] = {}
        try:
            for i, task in enumerate(tasks):
                if i not in results:
                    futures[executor.submit(fn, task)] = i
            for future, i in futures.items():
                results[i] = _result(future)
        except BrokenProcessPool:
            for future in futures:
                future.cancel()
            restarts = _restart(executor, restarts)
    return [results[i] for i in range(len(tasks))]


def _restart(executor: Executor, restarts: int) -> int:
    """A worker died (killed, out of memory): start the pool afresh; the count of restarts so far."""
    if not hasattr(executor, "restart") or restarts >= MAX_RESTARTS:
        raise WorkError(f"worker processes died {restarts + 1} times in this job (killed, or out of memory?); "
                        "the pool was not started again")
    executor.restart()
    return restarts + 1


def _result(future: Future) -> Any:
    """The task's result; a task a Dask cluster gave up on (its workers kept dying), or lost with the
    cluster (its scheduler stopped), is a resumable WorkError."""
    try:
        return future.result()
    except Exception as e:
        if type(e).__name__ == "KilledWorker":
            raise WorkError(f"the Dask cluster lost the workers running a task too many times ({e})") from None
        lost = lost_cluster(e)
        if lost is not None:
            raise lost from None
        raise
