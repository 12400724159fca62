"""Output folders of long jobs (runs, sweeps, comparisons, fits): new, unfinished (resumable) or finished.

A job writes its plan to `DIR/.chunks/plan.json` before any work, checkpoints under `.chunks/`,
and writes its record last (`manifest.json` for runs, sweeps and comparisons, `fit.toml` for
fits). The plan marks an unfinished job, whatever else the folder holds: `--resume` completes
it from its checkpoints (writing its final files again) when the plan matches (same scenario,
seed, sizes). A finished job then removes `.chunks/`, its plan first, so that a kill during that
cleanup leaves a finished folder, whose leftover checkpoints the next command that opens it
removes. A folder that holds a record and no plan is finished: `--resume` returns it as it is.

Every state a kill can leave is accepted: temporaries of a killed process (`.<name>.<random>.tmp`,
see `sim.runs.storage.atomic_path`) are removed when a job opens its folder again, and a
`.chunks/` without a plan (a kill before the plan was in place) counts as a new folder. A job
holds a lock on its folder (`flock` on the folder itself: no lock file) while it works in it, so
a second command on the same folder is refused instead of doing the work twice.

A finished folder holds exactly the files of `FOLDER_FILES` for its kind.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sim.errors import InputError
from sim.runs.manifest import read_json
from sim.runs.storage import crash_point, is_temporary, write_json

try:
    import fcntl
except ImportError:  # Windows: folders are not locked
    fcntl = None  # type: ignore[assignment]

CHUNKS = ".chunks"
PLAN = "plan.json"
NAME_MAX = 255  # bytes in one file name, on every common file system

_REPORT = ("report.html", "report.md", "parameters.csv")
# The files a finished folder of each kind holds, and nothing else (a comparison's `runs/`
# holds a run folder per scenario it ran).
FOLDER_FILES: dict[str, tuple[str, ...]] = {
    "run": ("trials.parquet", "monthly.parquet", "summary.csv", "scenario.toml", "manifest.json",
            *_REPORT, "milestones.csv", "counts.csv", "pathways.csv", "roots.csv"),
    "sweep": ("points.parquet", "sensitivity.csv", "spec.toml", "scenario.toml", "manifest.json", *_REPORT),
    "compare": ("comparison.csv", "manifest.json", *_REPORT, "milestones.csv", "ladder.csv", "runs"),
    "fit": ("fit.toml", "posterior.parquet", "generations.csv", "predictive_monthly.csv", "predictive_targets.csv",
            "scores.csv", *_REPORT),
}


Finished = Callable[[Path], "tuple[dict, dict] | None"]


def finished_manifest(out: Path) -> tuple[dict, dict] | None:
    """A finished run's, sweep's or comparison's manifest and the plan it ran, if `out` holds one."""
    if not (out / "manifest.json").exists():
        return None
    manifest = read_json(out / "manifest.json")
    return manifest, manifest.get("plan", {})


def check_out(out: Path, option: str = "--out") -> None:
    """Refuse, before any work, an output folder that cannot be made or written: a name too long
    for the file system, a path through a file, a read-only or forbidden place."""
    out = Path(out)
    for part in out.parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            raise InputError(f"error: {option} {out}: expected names of at most {NAME_MAX} bytes in the path, "
                             f"found one of {size} bytes ({part[:24]}...)")
    probe = out
    while not probe.exists() and not probe.is_symlink() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        where = "is a file" if probe == out else f"goes through {probe}, which is a file"
        raise InputError(f"error: {option} {out}: expected a folder, found that the path {where}")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"error: {option} {out}: expected a folder escsim can write in, found "
                         f"{'that folder' if probe == out else probe} {_why_not_writable(probe)}")


def _why_not_writable(path: Path) -> str:
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "on a read-only file system"
    except OSError:
        pass
    return "not writable (permission denied)"


def folder_error(out: Path, e: OSError, option: str = "--out") -> InputError:
    """An OSError making or writing the folder, as the user's problem it is."""
    reasons = {errno.EROFS: "on a read-only file system", errno.EACCES: "not writable (permission denied)",
               errno.EPERM: "not writable (operation not permitted)", errno.ENOTDIR: "under a file, not a folder",
               errno.ENAMETOOLONG: "a name too long for the file system", errno.ENOSPC: "on a full disk",
               errno.EDQUOT: "over the disk quota"}
    reason = reasons.get(e.errno)
    found = f"it {reason}" if reason else f"{(e.strerror or type(e).__name__).lower()} when making or writing it"
    return InputError(f"error: {option} {out}: expected a folder escsim can write in, found {found} "
                      f"({e.filename or out})")


_held: set[int] = set()  # descriptors of the folders this process has locked


def _drop_inherited_locks() -> None:
    # A forked worker shares its parent's lock: drop its copy, so that the lock ends with the parent.
    for fd in list(_held):
        try:
            os.close(fd)
        except OSError:
            pass
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_inherited_locks)


@contextmanager
def locked(out: Path, what: str, option: str = "--out") -> Iterator[Path]:
    """Check `out` (`check_out`), make it, and hold a lock on it for the job's time; a folder that
    another process holds is refused. A folder made here and left empty by a refusal is removed."""
    out = Path(out)
    check_out(out, option)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise folder_error(out, e, option) from None
    crash_point("folder created")
    try:
        fd: int | None = os.open(out, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:  # a system that cannot open folders (Windows): work unlocked
        fd = None
    ok = False
    try:
        if fcntl is not None and fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InputError(f"error: {option} {out}: expected a folder no other escsim command is working in, "
                                 f"found one still running there (a {what}); wait for it to end, or stop it and "
                                 "run it again with --resume") from None
            except OSError:
                pass  # a file system without locks (some network ones): work unlocked
            _held.add(fd)
        yield out
        ok = True
    finally:
        if fd is not None:
            _held.discard(fd)
            os.close(fd)
        if not ok and created:
            try:
                out.rmdir()  # only if empty
            except OSError:
                pass


def prepare_folder(out: Path, plan: dict, resume: bool, *, what: str, options: str, replace: bool | None = None,
                   finished: Finished = finished_manifest) -> dict | None:
    """Check `out` can take this job (a `what`: "run", "sweep", "comparison", "fit"); write its plan
    if it is new. Call it under `locked(out)`.

    Returns the finished job's record when `resume` finds it done, else None. `options` names
    what must match to resume (for the message). `replace` (None: the command has no such
    option) lets a new job start over an unfinished or finished one of the same kind; the old
    files go only when the new job writes its own."""
    if out.exists() and not out.is_dir():
        raise InputError(f"error: --out {out}: expected a folder, found a file")
    plan_file = out / CHUNKS / PLAN
    has_plan = plan_file.is_file()
    done = None if has_plan else finished(out)
    if not has_plan and done is None and out.exists() and not _only_leftovers(out):
        raise InputError(f"error: --out {out}: expected a new or empty folder, found one with other files")
    remove_temporaries(out)
    if has_plan:
        if resume:
            _check_same(out, read_json(plan_file), plan, what, options)
            return None
        if not replace:
            raise InputError(f"error: --out {out}: holds an unfinished {what}; add --resume to complete it"
                             f"{', or --replace to start again' if replace is not None else ''}, or choose another --out")
        finish_folder(out)
    elif done is not None:
        finish_folder(out)  # checkpoints left by a kill during a finished job's cleanup
        record, saved = done
        if resume:
            _check_same(out, saved, plan, what, options)
            return record
        if not replace:
            raise InputError(f"error: --out {out}: already holds a finished {what}; "
                             f"{'add --replace to overwrite it, or ' if replace is not None else ''}choose another --out")
    else:
        finish_folder(out)  # a `.chunks/` a kill left before the plan was in place
    try:
        write_json(plan_file, plan)
    except OSError as e:
        raise folder_error(out, e) from None
    return None


def _only_leftovers(out: Path) -> bool:
    """`out` holds nothing but what a killed job leaves before its plan: temporaries, `.chunks/`."""
    for entry in out.iterdir():
        if is_temporary(entry.name):
            continue
        if entry.name == CHUNKS and entry.is_dir() and all(is_temporary(e.name) for e in entry.iterdir()):
            continue
        return False
    return True


def remove_temporaries(out: Path) -> None:
    """Remove the temporaries of a killed process from `out` and its `.chunks/` (under the lock,
    no live process is writing them)."""
    for folder in (out, out / CHUNKS):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if is_temporary(entry.name):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)


def finish_folder(out: Path) -> None:
    """Remove `.chunks/`, its plan first: from then on the folder is finished, even if a kill stops
    the removal of the rest (which the next command that opens the folder completes)."""
    chunks = out / CHUNKS
    if not chunks.exists():
        return
    crash_point("cleanup")
    (chunks / PLAN).unlink(missing_ok=True)
    crash_point("cleanup: plan removed")
    for entry in sorted(chunks.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        crash_point("cleanup: checkpoint removed")
    chunks.rmdir()


def folder_entries(out: Path) -> set[str]:
    """The names directly in `out` (for checking a finished folder against FOLDER_FILES)."""
    return {entry.name for entry in Path(out).iterdir()}


def _check_same(out: Path, saved: dict, plan: dict, what: str, options: str) -> None:
    different = [k for k in plan if saved.get(k) != plan[k]]
    if different:
        found = ", ".join(f"{k} {saved[k]} there but {plan[k]} here" if saved.get(k) is not None
                          else f"{k} not recorded there, made by an older version" for k in different)
        raise InputError(
            f"error: --resume {out}: that folder holds a {what} of another {options} ({found}); "
            f"resume it with the files and options that started it, or choose another --out"
        )
