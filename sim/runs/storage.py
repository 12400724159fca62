"""Writing results so that nothing is ever half-written.

Every file is written to a temporary name in its folder, flushed to disk, then renamed over
its final name (a rename within a folder is atomic). Chunk checkpoints are plain `.npz`
arrays read back with `allow_pickle=False`: nothing read from disk can execute code.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

TEMPORARY_SUFFIX = ".tmp"  # atomic_path's temporaries: `.<name>.<random>.tmp` beside `<name>`

# Tests only: the step (see `crash_point`) at which the process kills itself with SIGKILL, as a
# crash, the out-of-memory killer or a user would, to check every state a kill can leave.
KILL_AT = "ESCSIM_TEST_KILL_AT"
_steps_seen: dict[str, int] = {}


def crash_point(step: str) -> None:
    """A named step of writing a folder ("write trials.parquet": before that file is renamed in).
    With ESCSIM_TEST_KILL_AT=STEP (or STEP#N: its N-th time) the process dies here by SIGKILL."""
    wanted = os.environ.get(KILL_AT)
    if not wanted:
        return
    _steps_seen[step] = _steps_seen.get(step, 0) + 1
    name, _, nth = wanted.partition("#")
    if name == step and _steps_seen[step] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def is_temporary(name: str) -> bool:
    """A name `atomic_path` or `make_folder` gives its temporaries (left behind only by a killed process)."""
    return name.startswith(".") and name.endswith(TEMPORARY_SUFFIX)


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path`; on success it replaces `path`, else it vanishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; results are ordinary files
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        crash_point(f"write {path.name}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_folder(path: Path) -> Path:
    """A new temporary folder beside `path` with ordinary permissions (for staging outputs)."""
    folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent))
    os.chmod(folder, 0o777 & ~_umask())
    return folder


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, data) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_arrays(path: Path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def read_table(path: Path, columns=None):
    """A Parquet file (or some of its columns) as an Arrow table, read without Arrow's thread pools:
    their threads still alive when the interpreter exits abort it ("terminate called without an
    active exception", exit code 134), as `escsim validate` did now and then."""
    import pyarrow.parquet as pq

    # ParquetFile, not read_table: the dataset reader behind read_table starts an I/O thread even then.
    return pq.ParquetFile(path, pre_buffer=False).read(columns=columns, use_threads=False)


def read_frame(path: Path, columns=None):
    """`read_table` as a pandas DataFrame (converted without threads too)."""
    return read_table(path, columns).to_pandas(use_threads=False)
