"""`manifest.json`: what produced a run folder, so it can be trusted and reproduced."""

from __future__ import annotations

import datetime as dt
import json
import platform
import shlex
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from sim.errors import InputError
from sim.scenario import Scenario, config_hash

PACKAGES = ("escalation-sim", "simpy", "numpy", "scipy", "pandas", "pyarrow", "pydantic")


def versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES + extra:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def api_command(source: str | None, trials: int, seed: int, overrides=None) -> list[str]:
    return ["escsim", "run", source or "<scenario object>", "--trials", str(trials), "--seed", str(seed),
            *(word for setting in override_words(overrides) for word in ("--set", setting))]


def override_words(overrides) -> list[str]:
    """Overrides as `--set` words (a mapping's values written as TOML), for manifests and commands."""
    if not overrides:
        return []
    if isinstance(overrides, Mapping):
        import tomli_w

        return [f"{k}={tomli_w.dumps({'v': v}).removeprefix('v = ').strip()}" for k, v in overrides.items()]
    return list(overrides)


def run_manifest(scenario: Scenario, plan: dict, *, workers: int, executor: str, started: dt.datetime,
                 elapsed: float, command: list[str], out: Path, overrides=None) -> dict:
    return {
        "kind": "run",
        "scenario": scenario.scenario.name,
        "description": scenario.scenario.description,
        "config_hash": config_hash(scenario),
        "seed": plan["seed"],
        "trials": plan["trials"],
        "set": override_words(overrides),
        "plan": plan,
        "workers": workers,
        "executor": executor,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "elapsed_seconds": round(elapsed, 3),
        "command": shlex.join(command),
        "reproduce": shlex.join([
            "escsim", "run", str(out / "scenario.toml"), "--trials", str(plan["trials"]),
            "--seed", str(plan["seed"]), "--out", "NEW_FOLDER",
        ]),
        "versions": versions(),
    }


def read_json(path: Path) -> dict:
    """A record escsim wrote (manifest, plan), read through the bounded input reader."""
    from sim.scenario.loading import read_text

    try:
        data = json.loads(read_text(Path(path), "JSON"))
    except json.JSONDecodeError as e:  # its message is tomllib-like: what and where, not the text
        raise InputError(f"error: {path}: line {e.lineno}, column {e.colno}: expected a JSON file written by escsim, "
                         f"found invalid JSON ({e.msg})") from None
    except RecursionError:
        raise InputError(f"error: {path}: expected a JSON record written by escsim, found values nested too deep "
                         "to read") from None
    except ValueError:
        raise InputError(f"error: {path}: expected a JSON file written by escsim, found one it cannot read "
                         "(a number too long)") from None
    if not isinstance(data, dict):
        raise InputError(f"error: {path}: expected a JSON object, found {type(data).__name__}")
    return data
