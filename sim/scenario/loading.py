"""Reading scenario files: TOML, `extends` inheritance, validation, and clear messages.

`load_scenario(path)` returns a validated `Scenario` or raises `InputError` whose message names
the file that set the offending key, the key path, what was expected and what was found.
Nothing else in the package reads scenario files.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import hashlib
import json
import re
import stat
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from sim.errors import MAX_LISTED, InputError, problems_error
from sim.scenario.schema import MAX_PARTICLES, REPORTING_PREFIX, Scenario, check_references

MAX_EXTENDS_DEPTH = 16
MAX_EXTENDS_FILES = 64  # files in one scenario's extends graph
MAX_FILE_BYTES = 2_000_000
MAX_POSTERIOR_BYTES = 50_000_000  # a posterior of MAX_PARTICLES particles × 12 parameters is about 10 MB
MAX_DEPTH = 32  # tables and lists nested in one file (the shipped files nest at most 8 deep)

_UNION_TAGS = {"militia", "state", "patron", "strike", "attack", "surge", "restrain"}
_TABLE_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(#.*)?$")
_BARE_KEY = re.compile(r"[A-Za-z0-9_*\-]+")  # and `*`, which reference checks use for "any"
_TOML_AT = re.compile(r" \(at (?:line (\d+), column (\d+)|end of document)\)$")
# A dotted key of more than MAX_DEPTH parts. tomllib takes time quadratic in the number of parts
# (one 2 MB key would parse for hours), so such keys are refused before parsing. A match starts
# only where no key character or dot precedes it, which keeps the search linear.
_LONG_KEY = re.compile(r"""(?<![\w.\-])(?:(?:[\w-]++|"[^"\n]*+"|'[^'\n]*+')[ \t]*+\.[ \t]*+)""" + f"{{{MAX_DEPTH}}}")


class Resolved:
    """A scenario's merged TOML data and, for each key path, the file that set it last."""

    def __init__(self, data: dict, origin: dict[tuple, str], file: str):
        self.data = data
        self.origin = origin
        self.file = file

    def file_of(self, loc: tuple) -> str:
        for n in range(len(loc), -1, -1):
            if loc[:n] in self.origin:
                return self.origin[loc[:n]]
        return self.file


def load_scenario(path: str | Path, named_by: str | None = None,
                  overrides: Mapping[str, Any] | Sequence[str] | None = None) -> Scenario:
    """Read, resolve `extends`, validate and cross-check a scenario file. `named_by` says which key
    of which file named it (a sweep's `sweep.base`), for the message when it cannot be read.
    `overrides` sets values after the file is resolved, as a child scenario would: a mapping of key
    paths to values (`{"actors.iri.attacks.israel.rate_per_day": 1.2}`) or `--set` words
    (`"actors.iri.attacks.israel.rate_per_day=1.2"`, the value read as TOML)."""
    resolved = resolve(Path(path), named_by=named_by)
    if overrides:
        apply_overrides(resolved, overrides)
    return validate(resolved.data, resolved)


class _Layer:
    """One file of an `extends` graph: its own data (with `extends` removed) and its name in messages."""

    def __init__(self, real: Path, shown: str, data: dict):
        self.real, self.shown, self.data = real, shown, data


def resolve(path: Path, named_by: str | None = None) -> Resolved:
    """Read a TOML file and merge it over the files it `extends` (one file or a list of them).

    The files are merged in one order, each once: for `extends = ["a.toml", "b.toml"]`, the files
    `a.toml` extends, then `a.toml`, then those of `b.toml` not already in, then `b.toml`, then the
    file itself; each file contributes only what it writes, so two what-ifs of one baseline combine
    (the second does not put back the baseline's values the first changed). A later file wins
    where two set the same key. A file's `append` table adds items to the end of lists merged so
    far (a harm source, a rung of the ladder) without retyping them."""
    layers = _linearize(Path(path), (), named_by, {})
    merged: dict = {}
    origin: dict[tuple, str] = {}
    for layer in layers:
        data = copy.deepcopy(layer.data)
        appended = data.pop("append", None)
        merged = deep_merge(merged, data)
        origin.update({loc: layer.shown for loc in _leaf_paths(data)})
        if appended is not None:
            _append(merged, appended, layer.shown, origin)
    return Resolved(merged, origin, layers[-1].shown)


def _linearize(path: Path, chain: tuple[Path, ...], named_by: str | None, memo: dict[Path, list[_Layer]]) -> list[_Layer]:
    """The files to merge for `path`, in order, each once (see `resolve`)."""
    shown = _shown(path)
    real = _real(path)
    if real in chain:
        cycle = " -> ".join(_shown(p) for p in (*chain, real))
        # The offending key is the `extends` that closes the cycle, in the file that refers back.
        raise InputError(f"error: {_shown(chain[-1])}: extends: expected files without a cycle, found {cycle}")
    if len(chain) >= MAX_EXTENDS_DEPTH:
        raise InputError(f"error: {_shown(chain[-1])}: extends: expected at most {MAX_EXTENDS_DEPTH} levels of extends, "
                         f"found more ({_shown(chain[0])} -> ... -> {shown})")
    if real in memo:
        return memo[real]
    data = read_toml(path, named_by=named_by)
    _anchor_fit_path(data, path)
    parents = data.pop("extends", None)
    if isinstance(parents, str):
        parents = [(parents, "extends")]
    elif isinstance(parents, list) and parents and all(isinstance(p, str) for p in parents):
        parents = [(p, f"extends[{i}]") for i, p in enumerate(parents)]
    elif parents is not None:
        raise InputError(f"error: {shown}: extends: expected a file name or a non-empty list of file names (strings), "
                         f"found {_found(parents)}")
    if "append" in data and not isinstance(data["append"], dict):
        raise InputError(f"error: {shown}: append: expected a table of lists to append to, found {_found(data['append'])}")
    layers: list[_Layer] = []
    for name, key in parents or ():
        for layer in _linearize(path.parent / name, (*chain, real), f"{key} in {shown}", memo):
            if all(layer.real != have.real for have in layers):
                layers.append(layer)
    layers.append(_Layer(real, shown, data))
    if len(layers) > MAX_EXTENDS_FILES:
        raise InputError(f"error: {shown}: extends: expected at most {MAX_EXTENDS_FILES} files in all, found more")
    memo[real] = layers
    return layers


def _append(merged: dict, appended: dict, shown: str, origin: dict[tuple, str], _loc: tuple = ()) -> None:
    """Add each list of `appended` (a table shaped like the scenario) to the end of the list at the
    same key path in `merged`, which must already hold one."""
    for key, value in appended.items():
        loc = (*_loc, key)
        target = merged.get(key) if isinstance(merged, dict) else None
        if isinstance(value, dict):
            if not isinstance(target, dict):
                raise InputError(f"error: {shown}: {path_text(('append', *loc))}: expected a table inherited from the "
                                 f"files this one extends, found {'none' if target is None else _found(target)}")
            _append(target, value, shown, origin, loc)
        elif isinstance(value, list):
            if not isinstance(target, list):
                raise InputError(f"error: {shown}: {path_text(('append', *loc))}: expected a list inherited from the "
                                 f"files this one extends to append to, found {'none' if target is None else _found(target)}")
            start = len(target)
            target.extend(copy.deepcopy(value))
            origin[loc] = shown
            for i, item in enumerate(value, start):
                origin[(*loc, i)] = shown
                if isinstance(item, dict):
                    origin.update({sub: shown for sub in _leaf_paths(item, (*loc, i))})
        else:
            raise InputError(f"error: {shown}: {path_text(('append', *loc))}: expected a list of items to append, "
                             f"found {_found(value)}")


def parse_override(text: str) -> tuple[str, Any]:
    """(key path, value) of a `--set KEY.PATH=VALUE` word; the value is read as TOML (a number,
    true/false, a date, a "string", a [list] or an {inline table}); a bare word that is not TOML
    is taken as a string."""
    from sim.scenario.paths import PathError, parse

    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise InputError(f"error: --set {text}: expected KEY.PATH=VALUE (e.g. actors.iri.attacks.israel.rate_per_day=1.2), "
                         "found no '='" if not sep else f"error: --set {text}: expected a key path before '=', found none")
    try:
        parse(key)
    except PathError:
        raise InputError(f"error: --set {text}: expected a key path such as actors.iri.attacks.israel.rate_per_day "
                         f"before '=', found {key!r}") from None
    value = value.strip()
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError, ValueError):
        if not value or any(c in value for c in "[]{}\"\'\n"):
            raise InputError(f"error: --set {text}: expected a TOML value after '=' (a number, true or false, a date, "
                             "a quoted string, a [list] or an {inline table}), found one that does not parse") from None
        parsed = value
    return key, parsed


def as_changes(overrides: Mapping[str, Any] | Sequence[str]) -> dict[str, Any]:
    """Overrides as a mapping of key path to value (`--set` words parsed)."""
    if isinstance(overrides, Mapping):
        return dict(overrides)
    return dict(parse_override(word) for word in overrides)


def apply_overrides(resolved: Resolved, overrides: Mapping[str, Any] | Sequence[str]) -> None:
    """Set each override's key path in the resolved data (creating tables as a child file would;
    a list item `[i]` must exist), and record it as the origin of that key for messages."""
    from sim.scenario.paths import parse

    if isinstance(overrides, Mapping):
        items = [(str(k), v, f"override {k}") for k, v in overrides.items()]
    else:
        items = [(*parse_override(word), f"--set {word}") for word in overrides]
    for key, value, shown in items:
        try:
            parts = parse(key)
        except ValueError:
            raise InputError(f"error: {shown}: expected a key path such as actors.iri.attacks.israel.rate_per_day, "
                             f"found {key!r}") from None
        node: Any = resolved.data
        for i, part in enumerate(parts[:-1]):
            nxt = parts[i + 1]
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    raise InputError(f"error: {shown}: {path_text(tuple(parts[:i + 1]))}: expected an existing list "
                                     "item to set, found none")
                node = node[part]
                continue
            if not isinstance(node, dict):
                raise InputError(f"error: {shown}: {path_text(tuple(parts[:i]))}: expected a table, found {_found(node)}")
            if part not in node:
                if isinstance(nxt, int):
                    raise InputError(f"error: {shown}: {path_text(tuple(parts[:i + 1]))}: expected an existing list "
                                     "to set an item of, found none")
                node[part] = {}
            node = node[part]
        last = parts[-1]
        if isinstance(last, int):
            if not isinstance(node, list) or last >= len(node):
                raise InputError(f"error: {shown}: {path_text(tuple(parts))}: expected an existing list item to set, "
                                 "found none")
        elif not isinstance(node, dict):
            raise InputError(f"error: {shown}: {path_text(tuple(parts[:-1]))}: expected a table, found {_found(node)}")
        node[last] = copy.deepcopy(value)
        loc = tuple(parts)
        if loc in (("parameters", "from_calibration"), ("forecast", "observed")) and isinstance(value, str) and value:
            node[last] = str(_real(Path(value)))  # relative to the working directory
        resolved.origin[loc] = shown
        if isinstance(value, dict):
            resolved.origin.update({sub: shown for sub in _leaf_paths(value, loc)})


def read_bytes(path: Path, what: str, named_by: str | None = None, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of an input file (every file the package reads goes through here). Only a regular
    file of at most `limit` bytes is read: a device such as /dev/zero, a FIFO or a huge file would
    exhaust memory or block for ever."""
    shown = _shown(path)
    where = f" (named by {named_by})" if named_by else ""
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise InputError(f"error: {shown}: expected a {what} file{where}, found a directory")
        if not stat.S_ISREG(mode):
            raise InputError(f"error: {shown}: expected a {what} file{where}, found {_file_kind(mode)}")
        with path.open("rb") as f:
            raw = f.read(limit + 1)
    except FileNotFoundError:
        raise InputError(f"error: {shown}: expected a {what} file{where}, found no such file") from None
    except OSError as e:
        raise InputError(f"error: {shown}: expected a readable {what} file{where}, found {e.strerror or e}") from None
    except ValueError:  # a NUL character in the name
        raise InputError(f"error: {shown}: expected a {what} file name{where}, found a NUL character in it") from None
    if len(raw) > limit:
        raise InputError(f"error: {shown}: expected a {what} file{where} of at most {limit:,} bytes, found a larger file")
    return raw


def read_text(path: Path, what: str, named_by: str | None = None, limit: int = MAX_FILE_BYTES) -> str:
    """An input file as UTF-8 text (see `read_bytes`)."""
    raw = read_bytes(path, what, named_by, limit)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        where = f" (named by {named_by})" if named_by else ""
        raise InputError(f"error: {_shown(path)}: expected UTF-8 text{where}, found an invalid byte at offset {e.start}") from None


def read_toml(path: Path, named_by: str | None = None, what: str = "scenario",
              roots: tuple[type[BaseModel], ...] | None = None) -> dict:
    """Parse one TOML file (a scenario, or another `what` of the models `roots`), turning every
    failure into an `InputError`. A syntax error is told by its line and column and the table it
    falls in, never by the text of the file: the table is named only when it is one the schema of
    `roots` has (a file that is not TOML, such as a password file, is never quoted)."""
    shown = _shown(path)
    named = f" (named by {named_by})" if named_by else ""
    text = read_text(path, what, named_by)
    long_key = _LONG_KEY.search(text)
    if long_key:
        line = text.count("\n", 0, long_key.start()) + 1
        column = long_key.start() - (text.rfind("\n", 0, long_key.start()) + 1) + 1
        raise InputError(f"error: {shown}: line {line}, column {column}: expected dotted keys of at most {MAX_DEPTH} "
                         f"parts{named}, found a longer one")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        where, message = _syntax_location(text, str(e), roots if roots is not None else
                                          (Scenario,) if what == "scenario" else ())
        raise InputError(f"error: {shown}: {where}: expected valid TOML{named}, found a syntax error: {message}") from None
    except RecursionError:
        raise InputError(f"error: {shown}: expected arrays and inline tables nested at most {MAX_DEPTH} deep{named}, "
                         "found far deeper nesting") from None
    except ValueError as e:  # tomllib's own conversions, such as an integer of thousands of digits
        held = "an integer of more digits than it can hold" if "digits" in str(e) else "a value it cannot hold"
        raise InputError(f"error: {shown}: expected valid TOML{named}, found {held}") from None
    too_deep = _too_deep(data)
    if too_deep:
        raise InputError(f"error: {shown}: {path_text(too_deep)}: expected tables and lists nested at most {MAX_DEPTH} "
                         f"deep{named}, found deeper nesting")
    return data


def _too_deep(data: dict) -> tuple | None:
    """The key path of a value nested deeper than MAX_DEPTH, if any (walked without recursion)."""
    stack: list[tuple[tuple, Any]] = [((), data)]
    while stack:
        loc, node = stack.pop()
        if len(loc) > MAX_DEPTH:
            return loc
        if isinstance(node, dict):
            stack.extend(((*loc, k), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend(((*loc, i), v) for i, v in enumerate(node))
    return None


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def deep_merge(base: dict, override: dict, _path: tuple = ()) -> dict:
    """Tables merge key by key (so a child overrides one rule by name); other values replace.

    A channel's weapon mix is replaced whole: it is one distribution that must sum to 1, and a
    child that names a new mix means that mix, not a blend with its parent's weapons."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        path = (*_path, key)
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not _is_weapon_mix(path):
            out[key] = deep_merge(out[key], value, path)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _is_weapon_mix(path: tuple) -> bool:
    return len(path) == 5 and path[0] == "actors" and path[2] == "attacks" and path[4] == "weapons"


def validate(data: dict, resolved: Resolved | None = None, file: str = "<scenario>") -> Scenario:
    """Validate merged data as a `Scenario`, then its cross-references."""
    resolved = resolved or Resolved(data, {}, file)
    require_some_table(data, Scenario, resolved.file, "scenario")
    data = attach_fit(data, resolved)
    forecast = data.get("forecast")
    if isinstance(forecast, dict) and forecast.get("observed") == "":  # a child switching off its parent's forecast
        data = {k: v for k, v in data.items() if k != "forecast"}
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as e:
        errors = e.errors()
        # A misspelt key also leaves the key it was meant to be missing: report the typo only.
        missing = {err["loc"][:-1] for err in errors if err["type"] == "missing"}
        typos = {(*err["loc"][:-1], _suggestion(err["loc"])) for err in errors
                 if err["type"] == "extra_forbidden" and err["loc"][:-1] in missing}
        kept = [err for err in errors if not (err["type"] == "missing" and err["loc"] in typos)]
        raise _error(resolved, [describe_error(err, data) for err in kept[:MAX_LISTED]], len(kept)) from None
    problems = check_references(scenario)
    if problems:
        raise _error(resolved, [(_parse_path(p), m) for p, m in problems]) from None
    return scenario


def require_some_table(data: dict, root: type[BaseModel], shown: str, what: str) -> None:
    """A file that holds none of `root`'s top-level tables is not a `what` at all (a password or
    .env file that happens to parse as TOML): say so without listing its keys, which would quote it."""
    known = [f.alias or n for n, f in root.model_fields.items()]
    if data and not any(key in data for key in known):
        raise InputError(f"error: {shown}: expected a {what} file, with the tables {', '.join(known)}, "
                         f"found a TOML file with none of them ({len(data)} other top-level key(s))")


def with_changes(scenario: Scenario, changes: Mapping[str, Any]) -> Scenario:
    """`scenario` with `changes` (key path → value) applied and validated (see `Scenario.with_changes`)."""
    resolved = Resolved(to_plain(scenario), {}, f"scenario {scenario.scenario.name}")
    apply_overrides(resolved, changes)
    return validate(resolved.data, resolved)


def _anchor_fit_path(data: dict, path: Path) -> None:
    """A fit folder is named relative to the file that names it: make it absolute here."""
    parameters = data.get("parameters")
    if isinstance(parameters, dict) and isinstance(parameters.get("from_calibration"), str) and parameters["from_calibration"]:
        parameters["from_calibration"] = str(_real(path.parent / parameters["from_calibration"]))
    forecast = data.get("forecast")
    if isinstance(forecast, dict) and isinstance(forecast.get("observed"), str) and forecast["observed"]:
        forecast["observed"] = str(_real(path.parent / forecast["observed"]))


def attach_fit(data: dict, resolved: Resolved) -> dict:
    """Replace `parameters.from_calibration` by the fit's posterior draws (`parameters.posterior`),
    so that a resolved scenario carries them and needs no other file."""
    parameters = data.get("parameters")
    if not isinstance(parameters, dict) or not isinstance(parameters.get("from_calibration"), str):
        return data
    if parameters["from_calibration"] == "":  # a child switching off its parent's fit
        out = copy.deepcopy(data)
        out.pop("parameters")
        return out
    loc = ("parameters", "from_calibration")
    folder = Path(parameters["from_calibration"])
    where = f"{resolved.file_of(loc)}: parameters.from_calibration"
    try:
        fit = read_toml(folder / "fit.toml", what="fit")
        table = _read_posterior(folder / "posterior.parquet")
        fitted = _fitted_parameters(folder / "fit.toml", fit)
    except InputError as e:
        raise InputError(f"error: {where}: expected a fit folder written by escsim calibrate (fit.toml, "
                         f"posterior.parquet), found {folder}: {str(e).removeprefix('error: ')}") from None
    apply = parameters.get("apply", {}) if isinstance(parameters.get("apply"), dict) else {}
    unknown = [name for name in apply if name not in fitted]
    if unknown:
        raise InputError(f"error: {resolved.file_of(('parameters', 'apply'))}: {path_text(('parameters', 'apply', unknown[0]))}: "
                         f"expected a parameter of the fit ({', '.join(fitted)}), found {unknown[0]!r}")
    for name, paths in apply.items():
        if not isinstance(paths, list) or not all(isinstance(path, str) for path in paths):
            loc = ("parameters", "apply", name)
            raise InputError(f"error: {resolved.file_of(loc)}: {path_text(loc)}: expected a list of key paths, found {_found(paths)}")
    names = list(fitted)
    missing = [n for n in names if n not in table]
    if missing or "weight" not in table:
        lacking = ", ".join([*missing, *(["weight"] if "weight" not in table else [])])
        raise InputError(f"error: {where}: expected posterior.parquet to hold {', '.join(names)} and weight, "
                         f"found no column {lacking}")
    try:
        weights = [float(w) for w in table["weight"]]
        values = [[float(v) for v in row] for row in zip(*(table[n] for n in names), strict=True)]
    except (TypeError, ValueError):
        raise InputError(f"error: {where}: expected posterior.parquet to hold numbers in {', '.join(names)} and weight, "
                         "found other values") from None
    command = fit["fit"].get("command", "") if isinstance(fit.get("fit"), dict) else ""
    digest = fit_hash(fitted, weights, values)
    expected = parameters.get("fit_hash")
    if expected is not None and expected != digest:
        loc = ("parameters", "fit_hash")
        raise InputError(f"error: {resolved.file_of(loc)}: parameters.fit_hash: expected the fit in {folder} to be the one "
                         f"this scenario was run with ({expected}), found another ({digest}): the fit has been made again "
                         "since; remove fit_hash to use the fit as it is now")
    out = copy.deepcopy(data)
    out["parameters"] = {
        "posterior": {
            "fit": f"{folder.name}: {command}".strip(": "),
            "folder": str(folder),
            "hash": digest,
            "parameters": names,
            # A parameter of the targets' reporting model sets nothing in the world (unless applied).
            "paths": [apply[n] if n in apply else [] if fitted[n].startswith(REPORTING_PREFIX) else [fitted[n]]
                      for n in names],
            "weights": weights,
            "values": values,
        }
    }
    return out


def fit_hash(fitted: dict[str, str], weights: list[float], values: list[list[float]]) -> str:
    """A hash of what a fit gives the trials that draw from it: its parameters, the key paths they
    were fitted at, and the particles' weights and values (so a fit made again is told apart)."""
    text = json.dumps({"parameters": fitted, "weights": weights, "values": values}, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_posterior(path: Path) -> dict[str, list]:
    """A fit's posterior.parquet as columns; at most MAX_PARTICLES rows, so that a small file that
    decompresses to billions of rows is refused before it is read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    raw = read_bytes(path, "posterior", limit=MAX_POSTERIOR_BYTES)
    try:
        # No reading threads: a few thousand rows are read at once in one, and a thread of Arrow's
        # pool still alive when the interpreter exits aborts the process (exit code 134) after the
        # command has done its work (validate, reading this for every scenario, hit it 2 runs in 30).
        parquet = pq.ParquetFile(pa.BufferReader(raw), pre_buffer=False)
        rows = parquet.metadata.num_rows
        if rows > MAX_PARTICLES:
            raise InputError(f"error: {_shown(path)}: expected at most {MAX_PARTICLES:,} particles, found {rows:,}")
        return parquet.read(use_threads=False).to_pydict()
    except (pa.ArrowException, OSError, ValueError) as e:
        raise InputError(f"error: {_shown(path)}: expected a Parquet table, found {e}") from None


def _fitted_parameters(path: Path, fit: dict) -> dict[str, str]:
    """Each fitted parameter of a fit.toml and the key path it was fitted at."""
    fitted = fit.get("parameters")
    if not isinstance(fitted, dict) or not all(isinstance(p, dict) and isinstance(p.get("path"), str) for p in fitted.values()):
        raise InputError(f"error: {_shown(path)}: parameters: expected a table of the fitted parameters, each with its "
                         f"path, found {_found(fitted) if fitted is not None else 'none'}")
    return {name: p["path"] for name, p in fitted.items()}


def to_plain(scenario: Scenario) -> dict:
    """The scenario as TOML-ready data: aliases used, defaults filled, no None values."""
    return _drop_none(scenario.model_dump(mode="python", by_alias=True))


def config_hash(scenario: Scenario) -> str:
    """A stable hash of the resolved scenario, for manifests and resume checks (where a fit's
    folder lies is left out: the fit's own hash is in)."""
    data = to_plain(scenario)
    posterior = data.get("parameters", {}).get("posterior")
    if posterior is not None:
        posterior.pop("folder", None)
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def resolved_toml(scenario: Scenario) -> str:
    """The scenario as resolved (after `extends`, `append` and `--set`), as TOML that reproduces it:
    a calibrated fit is named by its folder and pinned by its hash (`fit_hash`) instead of carrying
    its particles, and the key paths the trials draw from it are listed at the top."""
    import tomli_w

    data = to_plain(scenario)
    header = "# Resolved scenario (after extends), as run. `escsim run` on this file reproduces the run.\n"
    posterior = scenario.parameters.posterior
    if posterior is not None and posterior.folder:
        data["parameters"] = {"from_calibration": posterior.folder, "fit_hash": posterior.hash,
                              "apply": dict(zip(posterior.parameters, posterior.paths, strict=True))}
        header += (f"# Each trial draws the values at these key paths from the posterior of the fit in\n"
                   f"# parameters.from_calibration ({len(posterior.weights):,} particles); the values written at them "
                   "below are not used:\n" + "".join(f"#   {path}\n" for paths in posterior.paths for path in paths))
        idle = [name for name, paths in zip(posterior.parameters, posterior.paths, strict=True) if not paths]
        if idle:
            header += (f"# The fit's {', '.join(idle)} set nothing here (applied to no key path: parameters of its "
                       "targets' reporting model, or set at a key this scenario replaces).\n")
    return header + tomli_w.dumps(data)


# --- messages --------------------------------------------------------------------------------


def _error(resolved: Resolved, problems: list[tuple[tuple, str]], total: int | None = None) -> InputError:
    lines = [f"{resolved.file_of(loc)}: {path_text(loc)}: {message}" for loc, message in problems]
    return problems_error(resolved.file, lines, "scenario", total)


def describe_error(err: dict, data: dict, root: type[BaseModel] = Scenario) -> tuple[tuple, str]:
    """(key path, message) of one pydantic error of `data` validated as `root`."""
    raw_loc = tuple(err["loc"])
    loc = _strip_tags(raw_loc)
    if loc and loc[-1] == "[key]":  # pydantic's marker for a table's key (a name) that is refused
        loc = loc[:-1]
    kind, found = err["type"], err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        allowed = _allowed_keys(raw_loc[:-1], root)
        near = _suggestion(raw_loc, root)
        hint = f" (did you mean '{near}'?)" if near else ""
        return loc, f"expected one of the known keys ({', '.join(allowed)}), found unknown key {loc[-1]!r}{hint}"
    if kind == "missing":
        return loc, "expected this key, found it missing"
    expected = {
        "float_type": "a number",
        "int_type": "a whole number",
        "string_type": "a string",
        "bool_type": "true or false",
        "date_type": "a date (YYYY-MM-DD, unquoted)",
        "dict_type": "a table",
        "model_type": "a table",
        "model_attributes_type": "a table",
        "list_type": "a list",
        "finite_number": "a finite number",
        "string_pattern_mismatch": "a name of lowercase letters, digits and _ starting with a letter",
        "greater_than": f"a number > {ctx.get('gt')}",
        "greater_than_equal": f"a number ≥ {ctx.get('ge')}",
        "less_than": f"a number < {ctx.get('lt')}",
        "less_than_equal": f"a number ≤ {ctx.get('le')}",
        "too_short": f"at least {ctx.get('min_length')} item(s)",
        "too_long": f"at most {ctx.get('max_length')} item(s)",
        "string_too_long": f"at most {ctx.get('max_length')} characters",
        "literal_error": f"one of {ctx.get('expected')}",
        "union_tag_invalid": f"{ctx.get('discriminator', 'a tag')} to be one of {ctx.get('expected_tags')}",
        "union_tag_not_found": f"a key {ctx.get('discriminator')} saying which kind this is",
    }.get(kind)
    if kind == "union_tag_invalid":
        found = ctx.get("tag")
    if kind == "union_tag_not_found":
        return loc, f"expected {expected}, found none"
    if expected is None:
        message = err["msg"].removeprefix("Value error, ")
        return loc, f"expected a valid value ({message}), found {_found(found)}" if kind != "value_error" else message
    if kind in ("float_type", "int_type") and isinstance(found, float) and found != found:
        expected = "a finite number"
    return loc, f"expected {expected}, found {_found(found)}"


def _suggestion(raw_loc: tuple, root: type[BaseModel] = Scenario) -> str | None:
    """The known key closest to an unknown one, if any is close."""
    near = difflib.get_close_matches(str(raw_loc[-1]), _allowed_keys(tuple(raw_loc[:-1]), root), n=1)
    return near[0] if near else None


def _syntax_location(text: str, message: str, roots: tuple[type[BaseModel], ...] = ()) -> tuple[str, str]:
    """Where a TOML syntax error is: the table it falls in (the last header before its line, a
    best guess, named only when it is a table of `roots`' schema) and the line and column; and
    tomllib's message without its position and without any text of the file it quotes."""
    at = _TOML_AT.search(message)
    lines = text.splitlines()
    line = int(at.group(1)) if at and at.group(1) else len(lines) + 1
    table = next((h.group(1) for h in map(_TABLE_HEADER.match, reversed(lines[: line - 1])) if h), None)
    if table is not None and not any(_schema_has(_header_parts(table), root) for root in roots):
        table = None
    position = f"line {at.group(1)}, column {at.group(2)}" if at and at.group(1) else "end of file"
    where = f"{table} ({position})" if table else position
    return where, _toml_reason(_TOML_AT.sub("", message))


# tomllib's messages that quote the file (a key, a character), said without the quote.
_TOML_QUOTING = (
    ("Cannot declare", "a table or key declared twice"),
    ("Cannot mutate immutable namespace", "a key added to an inline table or array that is already closed"),
    ("Cannot redefine namespace", "a table defined again"),
    ("Duplicate inline table key", "a key given twice in an inline table"),
    ("Found invalid character", "a character that cannot stand there"),
    ("Illegal character", "a control character, which TOML does not allow there"),
)
_TOML_DELIMITER = re.compile(r"""'[^A-Za-z0-9\s]{1,3}'""")  # 'Expected ']]' at the end...': tomllib's own delimiters


def _toml_reason(message: str) -> str:
    """tomllib's message with no text of the file in it: the known quoting messages reworded,
    any other message kept only when, its delimiters aside, it holds words alone."""
    for start, said in _TOML_QUOTING:
        if message.startswith(start):
            return said
    bare = _TOML_DELIMITER.sub("", message)
    return message if re.fullmatch(r"[A-Za-z ,/\-]+", bare) else "a syntax error"


def _header_parts(table: str) -> list[str]:
    return [part.strip().strip("\"'") for part in table.split(".")]


_NAME_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def _schema_has(parts: list[str], root: type[BaseModel]) -> bool:
    """Whether `parts` is a table path of `root`'s schema: known keys, and names (of the scenario's
    own pattern) where the schema has a table of named things."""
    kinds: list[Any] = [root]
    for part in parts:
        following: list[Any] = []
        for tp in kinds:
            tp = _unwrap(tp)
            for member in tp if isinstance(tp, list) else [tp]:
                member = _unwrap(member)
                if isinstance(member, type) and issubclass(member, BaseModel):
                    following += [f.annotation for n, f in member.model_fields.items() if part in (n, f.alias)]
                elif typing.get_origin(member) is dict and _NAME_KEY.fullmatch(part):
                    following.append(typing.get_args(member)[1])
        if not following:
            return False
        kinds = following
    return True


def _found(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if len(value) < 60 else repr(value[:57] + "...")
    if isinstance(value, float):
        return repr(value)  # 2000.0, not 2000: a float where a whole number belongs must look like one
    if isinstance(value, (int, dt.date)):
        return str(value)
    if isinstance(value, dt.time):
        return f"the time of day {value.isoformat()}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return type(value).__name__


def _strip_tags(loc: tuple) -> tuple:
    out = []
    for i, part in enumerate(loc):
        prev = loc[i - 1] if i else None
        prev2 = loc[i - 2] if i > 1 else None
        after_actor = prev2 == "actors" and isinstance(prev, str)
        after_index = isinstance(prev, int) and prev2 in ("response", "effects")
        if part in _UNION_TAGS and (after_actor or after_index):
            continue
        out.append(part)
    return tuple(out)


def path_text(loc: tuple) -> str:
    """`actors.iri.attacks[0]`; a key that is not a bare TOML key is quoted (`harm.'iri '`), so an
    empty, spaced or control-character key is visible and cannot garble the terminal."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            key = str(part)
            text += ("." if text else "") + (key if _BARE_KEY.fullmatch(key) else repr(key))
    return text or "(top level)"


def _parse_path(text: str) -> tuple:
    parts: list = []
    for piece in text.split("."):
        name, *indices = piece.split("[")
        parts.append(name)
        parts.extend(int(i.rstrip("]")) for i in indices if i.rstrip("]").isdigit())
    return tuple(parts)


def _allowed_keys(loc: tuple, root: type[BaseModel] = Scenario) -> list[str]:
    """Key names valid at a location of the raw pydantic loc (with union tags)."""
    tp: Any = root
    for part in loc:
        tp = _step(tp, part)
        if tp is None:
            return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [f.alias or n for n, f in tp.model_fields.items()]
    return []


def _step(tp: Any, part: Any) -> Any:
    tp = _unwrap(tp)
    if isinstance(tp, list):
        return next((m for m in tp if _tag_of(m) == part), None)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for n, f in tp.model_fields.items():
            if part in (n, f.alias):
                return f.annotation
        return None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is dict:
        return args[1]
    if origin is list:
        return args[0]
    return None


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) == 1:
                tp = members[0]
            else:
                return members
        else:
            return tp


def _tag_of(model: Any) -> Any:
    for key in ("kind", "type"):
        field = getattr(model, "model_fields", {}).get(key)
        if field is not None:
            return typing.get_args(field.annotation)[0] if typing.get_args(field.annotation) else None
    return None


def _leaf_paths(data: dict, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    for key, value in data.items():
        path = (*prefix, key)
        if isinstance(value, dict):
            out.extend(_leaf_paths(value, path))
        elif isinstance(value, list):
            out.append(path)
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    out.extend(_leaf_paths(item, (*path, i)))
        else:
            out.append(path)
    return out


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _real(path: Path) -> Path:
    """The path with symlinks resolved, or as given when it cannot be (a symlink loop, a NUL)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        return path.absolute()


def _shown(path: Path) -> str:
    """The path as a message names it: relative to the working directory when inside it, quoted
    when it holds characters that do not print."""
    try:
        text = str(_real(path).relative_to(Path.cwd().resolve()))
    except (OSError, ValueError):
        text = str(path)
    return text if text.isprintable() else repr(text)
