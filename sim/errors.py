"""Errors the user can fix, kept apart from bugs.

An `InputError` is bad input (a scenario, an option, an output folder): the CLI prints its
message and exits with code 2, without a traceback. Anything else escaping is a bug (exit 1).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

MAX_LISTED = 20  # problems one message lists; a file with thousands gets the first ones and a count


class InputError(Exception):
    """Bad input: one paragraph that names the file, the key path, what was expected and found."""

    def __init__(self, message: str, *, file: str | None = None, problems: list[str] | None = None):
        self.file = file
        self.problems = problems or []
        super().__init__(message)


def problems_error(shown: str, lines: list[str], what: str, total: int | None = None) -> InputError:
    """One message for a file's problems: the line itself when there is one, else a list under
    "<file> is not a valid <what>" of the first MAX_LISTED. `total`: how many problems there are
    when `lines` describes only the first ones (describing thousands would take seconds)."""
    total = max(total or 0, len(lines))
    if total == 1:
        return InputError("error: " + lines[0], file=shown, problems=lines)
    listed = lines[:MAX_LISTED] + ([f"... and {total - min(len(lines), MAX_LISTED):,} more"] if total > MAX_LISTED else [])
    return InputError(f"error: {shown} is not a valid {what} ({total:,} problems):\n"
                      + "\n".join("  " + line for line in listed), file=shown, problems=lines)


def did_you_mean(found: object, choices: Iterable[object]) -> str:
    """" (did you mean 'x'?)" for the choice closest to a name that is not one of them, or ""
    when none is close: the suffix every "found an unknown name" message ends with."""
    if not isinstance(found, str):
        return ""
    near = difflib.get_close_matches(found, [str(c) for c in choices], n=1)
    return f" (did you mean '{near[0]}'?)" if near and near[0] != found else ""


class WorkError(RuntimeError):
    """Work that failed while running (a trial that raised, workers that died): exit code 1, with
    a message. `resumable`: running the same job again with --resume can complete it."""

    resumable = True


class TrialError(WorkError):
    """A trial raised: carries the trial index so the run can name it."""

    resumable = False  # its scenario needs fixing, and a fixed scenario is another job

    def __init__(self, trial: int, error: str):
        self.trial = trial
        self.error = error
        super().__init__(f"trial {trial} failed: {error}")


class PointError(WorkError):
    """A sweep's design point failed (its scenario refused the values, or a trial raised)."""

    resumable = False

    def __init__(self, point: int, error: str):
        self.point = point
        self.error = error
        super().__init__(f"design point {point} failed: {error}")
