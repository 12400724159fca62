"""Killing a job at a named step (`sim.runs.storage.crash_point`) and checking what it left.

A job is run in a forked child (the modules already imported: a kill costs the work up to its
step, not an interpreter's start) with ESCSIM_TEST_KILL_AT set to the step, where it kills itself
with SIGKILL as a crash or the out-of-memory killer would: no cleanup runs.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable
from pathlib import Path

from sim.runs.folders import FOLDER_FILES, folder_entries
from sim.runs.storage import KILL_AT


def _child(step: str, job: Callable[[], object]) -> None:
    os.environ[KILL_AT] = step
    job()
    os._exit(0)  # the step was never reached


def killed_at(step: str, job: Callable[[], object]) -> None:
    """Run `job` in a forked process that dies by SIGKILL at `step`; fail if it never got there."""
    process = multiprocessing.get_context("fork").Process(target=_child, args=(step, job))
    process.start()
    process.join(120)
    assert process.exitcode == -signal.SIGKILL, f"the job never reached the step {step!r} (exit {process.exitcode})"


def same_files(a: Path, b: Path, names: Iterable[str]) -> None:
    for name in names:
        assert (Path(a) / name).read_bytes() == (Path(b) / name).read_bytes(), name


def holds_exactly(out: Path, kind: str) -> None:
    """`out` holds exactly the documented files of a finished `kind` folder: no temporaries, no
    checkpoints, no lock file."""
    assert folder_entries(out) == set(FOLDER_FILES[kind]), sorted(folder_entries(out) ^ set(FOLDER_FILES[kind]))
