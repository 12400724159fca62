"""Output folders of long jobs (runs, sweeps, fits): new, unfinished (resumable) or finished.

A job writes its plan to `DIR/.chunks/plan.json` before any work, checkpoints under `.chunks/`,
and writes its record last (`manifest.json` for runs and sweeps, `fit.toml` for fits): the
record marks a finished job. `--resume` completes an unfinished job only when its plan matches
(same scenario, seed, sizes), and returns a finished one as it is.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from sim.errors import InputError
from sim.runs.manifest import read_json
from sim.runs.storage import write_json

CHUNKS = ".chunks"


Finished = Callable[[Path], "tuple[dict, dict] | None"]


def finished_manifest(out: Path) -> tuple[dict, dict] | None:
    """A finished run's or sweep's manifest and the plan it ran, if `out` holds one."""
    if not (out / "manifest.json").exists():
        return None
    manifest = read_json(out / "manifest.json")
    return manifest, manifest.get("plan", {})


def prepare_folder(out: Path, plan: dict, resume: bool, *, what: str, options: str, replace: bool | None = None,
                   finished: Finished = finished_manifest) -> dict | None:
    """Check `out` can take this job (a `what`: "run", "sweep", "fit"); write its plan if it is new.

    Returns the finished job's record when `resume` finds it done, else None. `options` names
    what must match to resume (for the message). `replace` (None: the command has no such
    option) lets a new job start over an unfinished or finished one of the same kind; the old
    files go only when the new job writes its own."""
    if out.exists() and not out.is_dir():
        raise InputError(f"error: --out {out}: expected a folder, found a file")
    plan_file = out / CHUNKS / "plan.json"
    done = finished(out)
    if plan_file.exists():
        if resume:
            _check_same(out, read_json(plan_file), plan, what, options)
            return None
        if not replace:
            raise InputError(f"error: --out {out}: holds an unfinished {what}; add --resume to complete it"
                             f"{', or --replace to start again' if replace is not None else ''}, or choose another --out")
        shutil.rmtree(out / CHUNKS)
    elif done is not None:
        record, saved = done
        if resume:
            _check_same(out, saved, plan, what, options)
            return record
        if not replace:
            raise InputError(f"error: --out {out}: already holds a finished {what}; "
                             f"{'add --replace to overwrite it, or ' if replace is not None else ''}choose another --out")
    elif out.exists() and any(out.iterdir()):
        raise InputError(f"error: --out {out}: expected a new or empty folder, found one with other files")
    write_json(plan_file, plan)
    return None


def _check_same(out: Path, saved: dict, plan: dict, what: str, options: str) -> None:
    different = [k for k in plan if saved.get(k) != plan[k]]
    if different:
        found = ", ".join(f"{k} {saved[k]} there but {plan[k]} here" if saved.get(k) is not None
                          else f"{k} not recorded there, made by an older version" for k in different)
        raise InputError(
            f"error: --resume {out}: that folder holds a {what} of another {options} ({found}); "
            f"resume it with the files and options that started it, or choose another --out"
        )
