"""Where chunks of work run: in this process, in a pool of local worker processes, or on a
Dask distributed cluster.

All three are `concurrent.futures.Executor`s, so runs, sweeps and calibrations submit work the
same way whatever runs it. Results never depend on the executor: each trial seeds itself from
(seed, trial index), and results are reduced in a fixed order.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import re
import signal
import socket
import sys
from concurrent.futures import CancelledError, Executor, Future, ProcessPoolExecutor

from sim.errors import InputError, WorkError

CONNECT_TIMEOUT_S = 10
STOP_SECONDS = 10  # the longest a stopped worker is waited for
PR_SET_PDEATHSIG = 1  # prctl(2) option: a signal the kernel sends when the parent thread dies


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


class DaskExecutor(Executor):
    """Tasks on a Dask distributed cluster, as `concurrent.futures` futures.

    Every task is submitted with `pure=False`: Dask's default would key tasks by a hash of their
    arguments (hashing each chunk's scenario text) and merge identical submissions. `workers` is
    the cluster's thread count when connected, which sets how many tasks are kept in flight.
    """

    def __init__(self, address: str):
        host, port = scheduler_address(address)
        try:
            from distributed import Client
        except ImportError:
            raise InputError(
                f"error: --scheduler {address}: expected the Dask distributed extra to be installed, found it "
                "missing; install it with: pip install 'escalation-sim[distributed]'"
            ) from None
        # Probed first: Dask's client retries an address that refuses for its whole timeout, and
        # one that failed to start leaves a client whose clean-up prints a traceback at exit.
        try:
            with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S) as probe:
                other = None if address.startswith("tls://") else _not_dask(probe)
        except OSError as e:
            raise InputError(
                f"error: --scheduler {address}: expected a reachable Dask scheduler (tcp://HOST:PORT, started "
                f"with `dask scheduler`), found none there: {e.strerror or type(e).__name__}"
            ) from None
        if other:  # Dask's client would wait on it for ever
            raise InputError(f"error: --scheduler {address}: expected a Dask scheduler (started with `dask scheduler`), "
                             f"found {other} there")
        self._levels = _quiet_dask()
        try:
            self.client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            _restore_levels(self._levels)
            raise InputError(
                f"error: --scheduler {address}: expected a reachable Dask scheduler (tcp://HOST:PORT, started "
                f"with `dask scheduler`), found none there: {e}"
            ) from None
        self.executor = self.client.get_executor(pure=False)
        self.workers = max(1, sum(self.client.nthreads().values()))
        self.address = address

    def submit(self, fn, /, *args, **kwargs) -> Future:
        return self.executor.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self.client.status == "closed":
            return
        try:
            self.executor.shutdown(wait=wait and not cancel_futures)
            self.client.close(timeout=STOP_SECONDS)
        except (OSError, TimeoutError, CancelledError):  # the scheduler is gone: nothing left to close
            pass
        finally:
            _restore_levels(self._levels)


HANDSHAKE_S = 5  # a Dask scheduler sends its handshake as soon as it accepts a connection


def _not_dask(probe: socket.socket) -> str | None:
    """What answers on a plain-TCP address if it is not a Dask scheduler, or None if it is one. Dask's
    TCP comm sends a handshake on accepting a connection, its first 8 bytes the message's length (a
    little-endian uint64); a web server, say, sends nothing until asked, and another service sends
    other bytes."""
    probe.settimeout(HANDSHAKE_S)
    head = b""
    try:
        while len(head) < 8:
            part = probe.recv(8 - len(head))
            if not part:
                return "a service that closed the connection without a word"
            head += part
    except TimeoutError:
        return f"a service that sent nothing within {HANDSHAKE_S} s"
    if not 0 < int.from_bytes(head, "little") < 2**32:
        return "a service that speaks another protocol"
    return None


ADDRESS = re.compile(r"(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})")


def scheduler_address(address: str) -> tuple[str, int]:
    """The host and port of a `--scheduler` address (tcp://HOST:PORT, or HOST:PORT), or an InputError
    saying what is wrong with it, before anything tries to connect."""
    match = ADDRESS.fullmatch(address.strip())
    if match is None or match["scheme"] not in (None, "tcp", "tls") or not 1 <= int(match["port"]) <= 65535:
        what = ("a scheme other than tcp:// or tls://" if match is not None and match["scheme"] not in (None, "tcp", "tls")
                else "a port out of range" if match is not None else
                "no port" if re.fullmatch(r"(?:[a-z]+://)?[^:/]+", address.strip()) else "another form")
        raise InputError(f"error: --scheduler {address}: expected a Dask scheduler address tcp://HOST:PORT "
                         f"(e.g. tcp://127.0.0.1:8786, as `dask scheduler` prints it), found {what}")
    return match["host"].strip("[]"), int(match["port"])


def _quiet_dask() -> dict[str, int]:
    """Silence Dask's logging (a lost scheduler logs tracebacks while the client retries): the job
    reports what happened in one message. Returns the levels to restore."""
    names = [n for n in logging.Logger.manager.loggerDict if n == "distributed" or n.startswith("distributed.")]
    levels = {name: logging.getLogger(name).level for name in {"distributed", *names}}
    for name in levels:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    return levels


def _restore_levels(levels: dict[str, int]) -> None:
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def lost_cluster(error: BaseException) -> WorkError | None:
    """The resumable error a task's failure means when it is the Dask cluster that was lost (its
    scheduler stopped, or the connection to it broke), not the task: None for any other error."""
    if isinstance(error, CancelledError) or type(error).__name__ in ("CommClosedError", "FutureCancelledError"):
        return WorkError("the Dask cluster was lost (its scheduler stopped or could no longer be reached)")
    return None


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class LocalPool(Executor):
    """A pool of local worker processes that can be started afresh when a worker dies.

    A worker killed from outside (the out-of-memory killer, a user) breaks a
    `ProcessPoolExecutor` for good; the work loop then calls `restart()` and submits the lost
    tasks again, so a dead worker costs its chunks' time, not the job."""

    def __init__(self, workers: int):
        self.workers = workers
        self.restarts = 0
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # Where it exists, fork: workers start at once with the model already imported, and a
        # script or notebook that calls `sim.run` is not re-run in each worker. The pool forks
        # all its workers before it starts its own thread, and workers only simulate.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context(method),
                                   initializer=_worker_setup, initargs=(os.getpid(),))

    def submit(self, fn, /, *args, **kwargs) -> Future:
        return self._pool.submit(fn, *args, **kwargs)

    def restart(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._start()
        self.restarts += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """As `ProcessPoolExecutor.shutdown`; a job stopping early (`wait=False, cancel_futures=True`:
        interrupted, or failed) also stops the tasks in flight, so the command exits within seconds
        rather than after them (a sweep's task can run for minutes). Nothing they did is lost:
        finished tasks are checkpointed, and these are run again on resume."""
        if cancel_futures and not wait:
            processes = list((getattr(self._pool, "_processes", None) or {}).values())
            for process in processes:
                process.terminate()
            for process in processes:
                process.join(STOP_SECONDS)
            # A worker stopped while sending its result leaves half a message in the result pipe,
            # which the pool's manager thread would wait to finish for ever (and the command's exit
            # with it). With the workers gone, closing the pool's own end, which it never writes
            # to, makes that read end instead: the thread sees a broken pool and cleans up.
            results = getattr(self._pool, "_result_queue", None)
            if results is not None and not any(p.is_alive() for p in processes):
                results._writer.close()
        manager = getattr(self._pool, "_executor_manager_thread", None)
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)
        if cancel_futures and not wait and manager is not None:
            # The manager thread closes its wake-up pipe as it ends, and the interpreter's exit
            # hook writes to that pipe unless it is closed: the two racing (CPython 3.11) print a
            # traceback as the command exits. With the workers gone the thread ends at once: wait.
            manager.join(STOP_SECONDS)


def _worker_setup(command: int) -> None:
    """In a worker, SIGTERM kills, as the pool expects, and the worker dies with the command.

    A forked worker inherits the command's handler, which turns SIGTERM into an exception: a busy
    worker would report it as its task's error and live on, and a pool broken by another worker's
    death, which terminates the rest, would then wait for it for ever. And a command killed
    outright (SIGKILL, the OOM killer) cannot stop its pool: idle workers would wait on their task
    queue for ever, since each holds its siblings' end of it open. On Linux the kernel kills them
    when the thread that started them dies (`PR_SET_PDEATHSIG`; pools are started from the
    command's main thread)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            return
        if os.getppid() != command:  # the command died before the request took effect
            os._exit(1)


def local_executor(workers: int | None) -> Executor:
    """`workers` processes (default: every available core); one worker runs inline."""
    workers = workers or available_cores()
    if workers <= 1:
        return InlineExecutor()
    return LocalPool(workers)


def make_executor(workers: int | None = None, scheduler: str | None = None) -> Executor:
    """The executor a command asked for: a Dask cluster at `scheduler`, else local processes."""
    if scheduler is not None:
        if workers is not None:
            raise InputError("error: --workers and --scheduler: expected one of them, found both "
                             "(a Dask cluster's size is set by its workers)")
        return DaskExecutor(scheduler)
    if workers is not None and workers < 1:
        raise InputError(f"error: --workers: expected at least 1, found {workers}")
    return local_executor(workers)


def executor_workers(executor: Executor) -> int:
    return getattr(executor, "workers", 1)


def executor_name(executor: Executor) -> str:
    """How the manifest records where the work ran."""
    if isinstance(executor, DaskExecutor):
        return f"dask {executor.address}"
    return "inline" if isinstance(executor, InlineExecutor) else "local processes"
