"""Output folders of long jobs (runs, sweeps): new, unfinished (resumable) or finished.

A job writes its plan to `DIR/.chunks/plan.json` before any work, checkpoints under `.chunks/`,
and writes `manifest.json` last: the manifest marks a finished job. `--resume` completes an
unfinished job only when its plan matches (same scenario, seed, sizes), and returns a finished
one as it is.
"""

from __future__ import annotations

from pathlib import Path

from sim.errors import InputError
from sim.runs.manifest import read_json
from sim.runs.storage import write_json

CHUNKS = ".chunks"


def prepare_folder(out: Path, plan: dict, resume: bool, *, what: str, options: str) -> dict | None:
    """Check `out` can take this job (a `what`: "run", "sweep"); write its plan if it is new.

    Returns the finished job's manifest when `resume` finds it done, else None. `options` names
    what must match to resume (for the message)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"error: --out {out}: expected a folder, found a file")
    plan_file = out / CHUNKS / "plan.json"
    manifest_file = out / "manifest.json"
    if plan_file.exists():
        if not resume:
            raise InputError(f"error: --out {out}: holds an unfinished {what}; add --resume to complete it, "
                             "or choose another --out")
        _check_same(out, read_json(plan_file), plan, what, options)
        return None
    if manifest_file.exists():
        done = read_json(manifest_file)
        if resume:
            _check_same(out, done.get("plan", {}), plan, what, options)
            return done
        raise InputError(f"error: --out {out}: already holds a finished {what}; choose another --out")
    if out.exists() and any(out.iterdir()):
        raise InputError(f"error: --out {out}: expected a new or empty folder, found one with other files")
    write_json(plan_file, plan)
    return None


def _check_same(out: Path, saved: dict, plan: dict, what: str, options: str) -> None:
    different = [k for k in plan if saved.get(k) != plan[k]]
    if different:
        found = ", ".join(f"{k} {saved.get(k)} there but {plan[k]} here" for k in different)
        raise InputError(
            f"error: --resume {out}: that folder holds a {what} of another {options} ({found}); "
            f"resume it with the same {what.split()[0]} file and options, or choose another --out"
        )
