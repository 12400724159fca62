"""Fuzzing the readers of the three kinds of input file: scenarios, sweep specs, calibration targets.

Hypothesis starts from the shipped files (parsed with tomllib) and changes them one to three
times: a key or table deleted at any depth, a value of another type, extreme or non-finite
numbers, unknown, unicode or duplicate-ish names, emptied tables, path-valued keys (`extends`,
`parameters.from_calibration`, `sweep.base`, `fit.scenario`, `fit.facts`) sent outside the
project or at special files; it also truncates and corrupts the raw text and builds `extends`
chains. Each case runs `escsim validate` in process, which checks a sweep spec or targets file
whole without simulating. Every case must end with exit code 0 and a file that really loads, or
exit code 2 and one message that starts with "error", names a file and says what was expected
and found: never a traceback, an internal error, a hang or a written file.

The example budget is fixed and the examples derandomized, so CI runs the same cases every
time, in well under a minute.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import os
import re
import shutil
import signal
import tomllib
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tomli_w
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.calibration.targets import load_targets
from sim.cli import main
from sim.model.world import Blueprint
from sim.scenario.loading import MAX_DEPTH, MAX_EXTENDS_DEPTH, MAX_FILE_BYTES, load_scenario, validate
from sim.sweeps.spec import MAX_POINTS, design_size, load_sweep, metric_names

ROOT = Path(__file__).resolve().parent.parent

# The inputs the fuzzed files start from, and what they refer to, copied into a temporary project.
COPIED = [
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "scenarios").glob("*.toml")),
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "scenarios" / "sweeps").glob("*.toml")),
    "tests/data/tiny.toml",
    "calibration/history.toml",
    "calibration/fits/default/fit.toml",
    "calibration/fits/default/posterior.parquet",
    "seeds/facts.csv",
]
SOURCES = {
    "scenario": [p for p in COPIED if p.startswith("scenarios/") and "/sweeps/" not in p] + ["tests/data/tiny.toml"],
    "sweep spec": [p for p in COPIED if "/sweeps/" in p],
    "targets": ["calibration/history.toml"],
}
DOCS = {path: tomllib.loads((ROOT / path).read_text(encoding="utf-8")) for paths in SOURCES.values() for path in paths}
PATH_KEYS = {
    "scenario": [("extends",), ("parameters", "from_calibration")],
    "sweep spec": [("sweep", "base")],
    "targets": [("fit", "scenario"), ("fit", "facts")],
}
LOADERS = {"scenario": load_scenario, "sweep spec": load_sweep, "targets": load_targets}

FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CODE_EXECUTION = re.compile(r"\beval\(|\bexec\(|pickle\.loads?\(|read_pickle\(|allow_pickle\s*=\s*True|"
                            r"yaml\.(?:unsafe_)?load\(|marshal\.loads?\(|\bshelve\b|dill\.")


# --- the temporary project -----------------------------------------------------------------------


def _special_files(folder: Path) -> dict[str, Path]:
    """Files a path-valued key may point at: devices, a FIFO, a directory, a symlink loop, a
    huge (sparse) file, binary and non-UTF-8 files, pathological TOML, broken fit folders."""
    folder.mkdir()
    made = {}

    def write(name: str, data: bytes | str) -> None:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        made[name] = path

    with open(folder / "big.toml", "wb") as f:
        f.truncate(50_000_000)
    made["big.toml"] = folder / "big.toml"
    os.mkfifo(folder / "fifo.toml")
    made["fifo.toml"] = folder / "fifo.toml"
    (folder / "dir.toml").mkdir()
    made["dir.toml"] = folder / "dir.toml"
    (folder / "loop.toml").symlink_to("loop.toml")
    made["loop.toml"] = folder / "loop.toml"
    (folder / "zero.toml").symlink_to("/dev/zero")
    made["zero.toml"] = folder / "zero.toml"
    write("binary.toml", bytes(range(256)) * 8)
    write("latin1.toml", "[scenario]\nname = 'caf\xe9'\n".encode("latin-1"))
    write("empty.toml", b"")
    write("deep_arrays.toml", "a = " + "[" * 100_000 + "]" * 100_000)
    write("deep_inline.toml", "a = " + "{ b = " * 200 + "1" + " }" * 200)
    write("long_key.toml", "a" + ".a" * 300_000 + " = 1\n")
    write("long_header.toml", "[" + ".".join(["t"] * 40) + "]\nx = 1\n")
    write("huge_int.toml", "x = " + "9" * 5000 + "\n")
    write("facts_no_id.csv", "name,value\na,1\n")
    write("facts_huge_field.csv", "id,quote\nX1,\"" + "a" * 1_000_000 + "\"\n")
    fit = (ROOT / "calibration/fits/default/fit.toml").read_text(encoding="utf-8")
    posterior = (ROOT / "calibration/fits/default/posterior.parquet").read_bytes()
    write("fit_garbage/fit.toml", fit)
    write("fit_garbage/posterior.parquet", b"PAR1" + bytes(range(256)) * 4)
    write("fit_no_paths/fit.toml", "[fit]\nname = 'x'\n[parameters]\nus_rate = 5\n")
    write("fit_no_paths/posterior.parquet", posterior)
    write("fit_bad_toml/fit.toml", "[fit\n")
    write("fit_bad_toml/posterior.parquet", posterior)
    write("fit_many_rows/fit.toml", fit)
    names = list(tomllib.loads(fit)["parameters"])
    rows = 200_001
    columns = {name: pa.array([1.0] * rows) for name in [*names, "weight"]}
    pq.write_table(pa.table(columns), folder / "fit_many_rows" / "posterior.parquet")
    write("fit_strings/fit.toml", fit)
    pq.write_table(pa.table({name: pa.array(["x"]) for name in [*names, "weight"]}), folder / "fit_strings" / "posterior.parquet")
    write("fit_zero/fit.toml", fit)
    (folder / "fit_zero" / "posterior.parquet").symlink_to("/dev/zero")
    os.makedirs(folder / "fit_fifo")
    os.mkfifo(folder / "fit_fifo" / "fit.toml")
    made.update({name: folder / name for name in ("fit_garbage", "fit_no_paths", "fit_bad_toml", "fit_many_rows",
                                                  "fit_strings", "fit_zero", "fit_fifo")})
    return made


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the shipped inputs (and special files) as the working directory, so messages name
    files as a user in the project would see them."""
    root = tmp_path_factory.mktemp("project")
    for rel in COPIED:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, root / rel)
    specials = _special_files(root / "special")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("ESCSIM_DEBUG", raising=False)
        yield {"root": root, "specials": specials}


PATH_VALUES = [
    "/etc/passwd", "../../../../../../../../../../etc/passwd", "/dev/zero", "/dev/null", "/dev/urandom",
    "/proc/self/mem", "/proc/self/environ", "/proc/self/fd/0", "/", ".", "..", "", " ", "missing.toml",
    "nul\x00byte.toml", "x" * 5000, "~/x.toml", "file:///etc/passwd", "fuzzed.toml", "ünïcødé/ファイル.toml",
]


def path_values(specials: dict[str, Path]) -> st.SearchStrategy[str]:
    return st.sampled_from(PATH_VALUES + [str(p) for p in specials.values()])


# --- running the command and checking the outcome -----------------------------------------------


class Hang(BaseException):
    """An example that ran too long (BaseException, so neither the CLI nor CliRunner swallows it)."""


@contextmanager
def time_limit(seconds: int):
    def stop(signum, frame):
        raise Hang(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def files_under(root: Path) -> set[str]:
    return {os.path.join(folder, name) for folder, dirs, names in os.walk(root) for name in names + dirs}


def validate_file(root: Path, path: Path, kind: str | None, names: list[str]):
    """`escsim validate path` in process: exit 0 with a file that loads, or exit 2 with one clear
    message naming a file; nothing written either way. `kind` None: whatever kind it holds."""
    before = files_under(root)
    with time_limit(20):
        result = CliRunner().invoke(main, ["validate", str(path)])
    assert_clean(result, names)
    assert files_under(root) == before, "validate wrote files"
    if result.exit_code == 0:
        with time_limit(20):
            assert_really_valid(path, kind, result)
    return result


def assert_clean(result, names: list[str]) -> None:
    output = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in output and "internal error" not in output, output[-2000:]
    assert result.exit_code in (0, 2), f"exit code {result.exit_code}: {output[-2000:]}"
    if result.exit_code == 2:
        message = result.stderr.strip()
        assert result.stdout == "", result.stdout[:500]
        assert message.startswith("error"), message
        first = message.splitlines()[0]
        assert any(name and name in first for name in names), f"no file named in: {message}"
        assert re.search(r"\bexpected\b", message) and re.search(r"\bfound\b", message), message
        assert len(message) < 20_000, f"a message of {len(message):,} characters"


def assert_really_valid(path: Path, kind: str | None, result) -> None:
    """An exit code 0 means the file loads: a scenario's printed resolution validates again and
    a run could be set up from it (its months, series and metrics), a sweep spec's design is
    within the limit, targets load."""
    if kind in (None, "scenario") and not result.stdout.startswith(str(path)):
        validate(tomllib.loads(result.stdout))
        scenario = load_scenario(path)
        Blueprint(scenario)
        assert metric_names(scenario)
    elif kind in (None, "sweep spec") and "valid sweep spec" in result.stdout:
        assert design_size(load_sweep(path).spec) <= MAX_POINTS
    else:
        assert "valid targets" in result.stdout, result.stdout
        load_targets(path)


def names_of(project: dict, *extra: str) -> list[str]:
    """Strings of which one must appear on an error's first line: a file of the project, or one
    a key named."""
    root = project["root"]
    names = [p.name for p in root.rglob("*") if p.is_file() or p.is_symlink()] + ["fuzzed.toml"]
    names += [e.split("\x00")[0][:60] for e in extra] + [repr(e)[1:40] for e in extra]
    return [n for n in names if re.search(r"\w\w", n)]  # not ".", "/" or "": every message holds those


# --- mutating parsed files ------------------------------------------------------------------------


def locations(doc: dict) -> list[tuple]:
    """Every key path of a document (tables' keys and lists' indices), outermost first."""
    out, stack = [], [((), doc)]
    while stack:
        loc, node = stack.pop(0)
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            out.append((*loc, key))
            stack.append(((*loc, key), value))
    return out


def get(doc, loc: tuple):
    for key in loc:
        doc = doc[key]
    return doc


def put(doc: dict, loc: tuple, value) -> None:
    """Set the value at `loc`, making tables on the way (replacing what is not a table)."""
    node = doc
    for key in loc[:-1]:
        if isinstance(node, list):
            node = node[key]
            continue
        if not isinstance(node.get(key), (dict, list)):
            node[key] = {}
        node = node[key]
    node[loc[-1]] = value


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


EXTREME = st.sampled_from([
    0, -1, 1, 2, 3, 1000, 1001, 36_500, 36_501, 10**6, 10**6 + 1, 10**7, 10**8, 10**8 + 1, 10**9, 10**12, 2**31,
    2**53 + 1, 2**63 - 1, -(2**63), 2**63, 2**64, 10**100, -(10**100), 0.0, -0.0, 0.5, 1.0000001, 1e-300, 5e-324,
    -5e-324, 1e9, 1e9 + 1, 1e308, -1e308, 1.7976931348623157e308, math.nan, math.inf, -math.inf,
]) | st.integers() | st.floats()
SCALARS = (EXTREME | st.text(max_size=12) | st.booleans() | st.dates() | st.times()
           | st.datetimes(timezones=st.none() | st.just(dt.UTC)))
VALUES = SCALARS | st.lists(SCALARS, max_size=3) | st.dictionaries(st.text(max_size=6), SCALARS, max_size=3)
KNOWN_KEYS = ["trials", "samples", "trials_per_point", "levels", "horizon_days", "count", "within_days", "by_days",
              "second_order", "max_events_per_trial", "salvo", "extends", "from_calibration", "apply", "posterior",
              "fit_until", "value", "lo", "hi", "scale", "kind", "type", "dist", "path", "base", "design"]
KEYS = st.sampled_from(KNOWN_KEYS) | st.text(min_size=0, max_size=12)
NAMES = st.sampled_from(["x", "A", "Iri", "iri ", "ïri", "a" * 41, "", "1st", "_x", "with-dash", "名前"]) | st.text(max_size=8)
OPERATIONS = ["delete", "replace", "number", "add", "empty", "duplicate", "path"]


@st.composite
def mutated(draw, kind: str, specials: dict[str, Path]):
    """(source, document, inserted strings): a shipped file of `kind` changed one to three times."""
    source = draw(st.sampled_from(SOURCES[kind]))
    doc = copy.deepcopy(DOCS[source])
    inserted: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        locs = locations(doc)
        operation = draw(st.sampled_from(OPERATIONS))
        if operation == "delete" and locs:
            loc = draw(st.sampled_from(locs))
            del get(doc, loc[:-1])[loc[-1]]
        elif operation == "replace" and locs:
            put(doc, draw(st.sampled_from(locs)), draw(VALUES))
        elif operation == "number":
            numbers = [loc for loc in locs if is_number(get(doc, loc))]
            if numbers:
                put(doc, draw(st.sampled_from(numbers)), draw(EXTREME))
        elif operation == "add":
            tables = [()] + [loc for loc in locs if isinstance(get(doc, loc), dict)]
            get(doc, draw(st.sampled_from(tables)))[draw(KEYS)] = draw(VALUES)
        elif operation == "empty":
            containers = [loc for loc in locs if isinstance(get(doc, loc), (dict, list))]
            if containers:
                loc = draw(st.sampled_from(containers))
                put(doc, loc, type(get(doc, loc))())
        elif operation == "duplicate":
            entries = [loc for loc in locs if isinstance(get(doc, loc), dict) and isinstance(get(doc, loc[:-1]), dict)
                       and len(loc) >= 2]
            if entries:
                loc = draw(st.sampled_from(entries))
                name = draw(NAMES)
                inserted.append(name)
                get(doc, loc[:-1])[name] = copy.deepcopy(get(doc, loc))
        elif operation == "path":
            value = draw(path_values(specials))
            inserted.append(value)
            put(doc, draw(st.sampled_from(PATH_KEYS[kind])), value)
    return source, doc, inserted


def write_beside(root: Path, source: str, data: bytes) -> Path:
    """The fuzzed file, beside its source so that its relative paths resolve; named relative to
    the project, as a user would type it."""
    path = Path(source).parent / "fuzzed.toml"
    (root / path).write_bytes(data)
    return path


# --- the fuzzing tests ----------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "examples"), [("scenario", 400), ("sweep spec", 250), ("targets", 250)])
def test_mutated_files_are_valid_or_refused_clearly(project, kind, examples):
    @settings(FUZZ, max_examples=examples)
    @given(case=mutated(kind, project["specials"]))
    def check(case):
        source, doc, inserted = case
        path = write_beside(project["root"], source, tomli_w.dumps(doc).encode())
        validate_file(project["root"], path, kind if not _kind_changed(kind, doc) else None, names_of(project, *inserted))

    check()


def _kind_changed(kind: str, doc: dict) -> bool:
    """A mutation that removed the table telling a sweep spec or targets apart makes a scenario."""
    return kind != "scenario" and ({"sweep spec": "sweep", "targets": "fit"}[kind] not in doc
                                   or "scenario" in doc or "extends" in doc)


@pytest.mark.parametrize("kind", list(PATH_KEYS))
def test_path_keys_pointing_anywhere_are_refused_clearly(project, kind):
    specials = project["specials"]

    @settings(FUZZ, max_examples=60)
    @given(source=st.sampled_from(SOURCES[kind]), key=st.sampled_from(PATH_KEYS[kind]), value=path_values(specials))
    def check(source, key, value):
        doc = copy.deepcopy(DOCS[source])
        put(doc, key, value)
        path = write_beside(project["root"], source, tomli_w.dumps(doc).encode())
        validate_file(project["root"], path, kind, names_of(project, value))

    check()


@st.composite
def corrupted_text(draw):
    """(source, bytes): a shipped file truncated, or with a few bytes inserted or overwritten."""
    source = draw(st.sampled_from([p for paths in SOURCES.values() for p in paths]))
    raw = (ROOT / source).read_bytes()
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(raw)))
        how = draw(st.sampled_from(["truncate", "insert", "overwrite"]))
        if how == "truncate":
            raw = raw[:at]
        else:
            junk = draw(st.binary(min_size=1, max_size=6) | st.sampled_from([b"[", b"]", b"=", b'"', b"\n", b"\x00",
                                                                            b"\xff", b"'''", b"{", b"#", b"."]))
            raw = raw[:at] + junk + raw[at + (len(junk) if how == "overwrite" else 0):]
    return source, raw


@settings(FUZZ, max_examples=250)
@given(case=corrupted_text())
def test_corrupted_text_is_valid_or_refused_with_its_place(project, case):
    source, raw = case
    path = write_beside(project["root"], source, raw)
    result = validate_file(project["root"], path, None, names_of(project))
    if "expected valid TOML" in result.stderr:
        assert re.search(r"\(line \d+, column \d+\)|^error: \S+: line \d+, column \d+|end of file", result.stderr), result.stderr


@settings(FUZZ, max_examples=30)
@given(length=st.integers(1, 30), cycle=st.none() | st.integers(0, 29), data=st.data())
def test_extends_chains_end_in_a_scenario_a_cycle_or_the_depth_limit(project, length, cycle, data):
    """Files f0 ... f<length-1>, each extending the one before (f0 is a whole scenario); with a
    cycle, f<cycle> extends the last instead."""
    folder = project["root"] / "chains" / f"{length}-{cycle}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cycle = None if cycle is None or cycle >= length else cycle
    for i in range(length):
        parent = f"f{length - 1}.toml" if i == cycle else f"f{i - 1}.toml" if i else None
        text = (ROOT / "tests/data/tiny.toml").read_text() if parent is None else f'extends = "{parent}"\n'
        (folder / f"f{i}.toml").write_text(text + (f'[scenario]\nname = "f{i}"\n' if i else ""), encoding="utf-8")
    result = validate_file(project["root"], folder / f"f{length - 1}.toml", "scenario", names_of(project))
    if cycle is not None:
        assert result.exit_code == 2 and ("without a cycle" in result.stderr or "levels of extends" in result.stderr)
    elif length > MAX_EXTENDS_DEPTH:
        assert result.exit_code == 2 and f"expected at most {MAX_EXTENDS_DEPTH} levels of extends" in result.stderr
    else:
        assert result.exit_code == 0, result.output


# --- examples: special files, limits, non-finite numbers, no code execution ------------------------


def invoke(path, *named: str) -> tuple[int, str]:
    """`escsim validate path`: its exit code and message, checked clean; the message must name
    `path` or one of `named`."""
    with time_limit(20):
        result = CliRunner().invoke(main, ["validate", str(path)])
    assert_clean(result, [str(path), *named])
    return result.exit_code, result.stderr.strip()


def test_a_chain_of_30_extends_stops_at_the_limit(project, tmp_path):
    (tmp_path / "f0.toml").write_text((ROOT / "tests/data/tiny.toml").read_text(), encoding="utf-8")
    for i in range(1, 30):
        (tmp_path / f"f{i}.toml").write_text(f'extends = "f{i - 1}.toml"\n', encoding="utf-8")
    code, message = invoke(tmp_path / "f29.toml", "f14.toml")
    assert code == 2
    assert f"extends: expected at most {MAX_EXTENDS_DEPTH} levels of extends, found more" in message
    assert "f29.toml -> ... -> " in message and message.endswith("f13.toml)")


@pytest.mark.parametrize(("target", "found"), [
    ("/dev/zero", "found a character device"),
    ("special/fifo.toml", "found a FIFO"),
    ("special/dir.toml", "found a directory"),
    ("special/big.toml", f"of at most {MAX_FILE_BYTES:,} bytes, found a larger file"),
    ("special/loop.toml", "found Too many levels of symbolic links"),
    ("special/zero.toml", "found a character device"),
    ("special/binary.toml", "expected UTF-8 text (named by extends in child.toml), found an invalid byte"),
    ("special/latin1.toml", "found an invalid byte at offset 22"),
    ("special/deep_arrays.toml", f"nested at most {MAX_DEPTH} deep"),
    ("special/deep_inline.toml", f"nested at most {MAX_DEPTH} deep"),
    ("special/long_key.toml", f"line 1, column 1: expected dotted keys of at most {MAX_DEPTH} parts"),
    ("special/long_header.toml", f"expected dotted keys of at most {MAX_DEPTH} parts"),
    ("special/huge_int.toml", "expected valid TOML (named by extends in child.toml), found an integer of more digits"),
    ("nul\x00.toml", "found a NUL character in it"),
    ("x" * 5000, "found File name too long"),
])
def test_extends_to_special_files_is_refused_quickly(project, target, found):
    path = project["root"] / "child.toml"
    target = str(project["root"] / target) if target.startswith("special/") else target
    path.write_text(f"extends = {tomli_w.dumps({'x': target})[4:]}", encoding="utf-8")
    code, message = invoke("child.toml", target.split("\x00")[0][:50], "special/")
    assert code == 2 and found in message and "(named by extends in child.toml)" in message, message


@pytest.mark.parametrize(("key", "value", "found"), [
    (("sweep", "base"), "/dev/zero", "(named by sweep.base in scenarios/sweeps/fuzzed.toml), found a character device"),
    (("sweep", "base"), "special/fifo.toml", "(named by sweep.base in scenarios/sweeps/fuzzed.toml), found a FIFO"),
    (("fit", "scenario"), "special/big.toml", "(named by fit.scenario in calibration/fuzzed.toml) of at most"),
    (("fit", "facts"), "/dev/zero", "(named by fit.facts in calibration/fuzzed.toml), found a character device"),
    (("fit", "facts"), "special/fifo.toml", "found a FIFO"),
    (("fit", "facts"), "special/binary.toml", "expected UTF-8 text"),
    (("fit", "facts"), "special/facts_no_id.csv", "whose header names an id column, found a first line of 2 column(s)"),
    (("fit", "facts"), "special/facts_huge_field.csv", "expected a CSV seeds file"),
    (("parameters", "from_calibration"), "special/fit_zero", "posterior.parquet: expected a posterior file, found a character device"),
    (("parameters", "from_calibration"), "special/fit_fifo", "fit.toml: expected a fit file, found a FIFO"),
    (("parameters", "from_calibration"), "special/fit_garbage", "expected a Parquet table"),
    (("parameters", "from_calibration"), "special/fit_no_paths", "parameters: expected a table of the fitted parameters"),
    (("parameters", "from_calibration"), "special/fit_bad_toml", "expected valid TOML"),
    (("parameters", "from_calibration"), "special/fit_many_rows", "expected at most 100,000 particles, found 200,001"),
    (("parameters", "from_calibration"), "special/fit_strings", "expected posterior.parquet to hold numbers"),
])
def test_other_path_keys_to_special_files_are_refused_quickly(project, key, value, found):
    kind = next(k for k, keys in PATH_KEYS.items() if key in keys)
    source = SOURCES[kind][0] if kind != "scenario" else "scenarios/baseline.toml"
    doc = copy.deepcopy(DOCS[source])
    put(doc, key, str(project["root"] / value) if value.startswith("special/") else value)
    path = write_beside(project["root"], source, tomli_w.dumps(doc).encode())
    code, message = invoke(path, "special/", value)
    assert code == 2 and found in message, message


NON_FINITE = [math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("value", NON_FINITE, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize(("source", "key"), [
    # one numeric key of every kind of field: probabilities, rates, days, day offsets, thresholds, counts
    ("tests/data/tiny.toml", ("weapons", "drone", "p_hit")),
    ("tests/data/tiny.toml", ("actors", "m", "attacks", "s", "rate_per_day")),
    ("tests/data/tiny.toml", ("scenario", "horizon_days")),
    ("tests/data/tiny.toml", ("actors", "s", "harm", "attacks", "decay_days")),
    ("tests/data/tiny.toml", ("actors", "s", "rules", "retaliate", "threshold")),
    ("tests/data/tiny.toml", ("actors", "s", "rules", "retaliate", "cooldown_days")),
    ("tests/data/tiny.toml", ("run", "trials")),
    ("tests/data/tiny.toml", ("run", "seed")),
    ("tests/data/tiny.toml", ("summary", "by_days")),
    ("tests/data/tiny.toml", ("milestones", "first_hit", "count")),
    ("scenarios/sweeps/tornado_baseline.toml", ("sweep", "samples")),
    ("scenarios/sweeps/tornado_baseline.toml", ("sweep", "trials_per_point")),
    ("scenarios/sweeps/tornado_baseline.toml", ("parameters", "israel_base_rate", "low")),
    ("scenarios/sweeps/tornado_baseline.toml", ("parameters", "drone_p_hit", "high")),
    ("scenarios/sweeps/grid_restraint_thresholds.toml", ("parameters", "israel_iraq_threshold", "levels")),
    ("calibration/history.toml", ("parameters", "us_rate", "prior", "median")),
    ("calibration/history.toml", ("parameters", "redirect_share", "prior", "a")),
    ("calibration/history.toml", ("counts", "israel_feb", "value")),
    ("calibration/history.toml", ("counts", "israel_may", "hi")),
])
def test_non_finite_numbers_are_refused_in_every_kind_of_field(project, source, key, value):
    doc = copy.deepcopy(DOCS[source])
    put(doc, key, [value] if key[-1] == "by_days" else value)
    path = write_beside(project["root"], source, tomli_w.dumps(doc).encode())
    code, message = invoke(path)
    assert code == 2, message
    assert ".".join(key) in message and "expected" in message and repr(value) in message, message


@pytest.mark.parametrize(("source", "key", "value", "fragment"), [
    # values that are well formed but would exhaust memory or time, each refused by a limit
    ("tests/data/tiny.toml", ("run", "trials"), 10**8 + 1, "run.trials: expected a number ≤ 100000000"),
    ("tests/data/tiny.toml", ("scenario", "horizon_days"), 36_501, "scenario.horizon_days: expected a number ≤ 36500"),
    ("tests/data/tiny.toml", ("milestones", "first_hit", "count"), 10_001, "milestones.first_hit.count: expected a number ≤ 10000"),
    ("tests/data/tiny.toml", ("scenario", "start_date"), dt.date(9999, 11, 15), "scenario: expected the horizon to end by 9999-12-01"),
    ("scenarios/sweeps/grid_restraint_thresholds.toml", ("sweep", "samples"), 10**6, "sweep.samples: expected a design of at most 1,000,000 points"),
    ("scenarios/sweeps/grid_restraint_thresholds.toml", ("parameters", "israel_iraq_threshold", "levels"), 1001,
     "parameters.israel_iraq_threshold.levels: expected a number ≤ 1000"),
    ("scenarios/sweeps/sobol_strike_in_iraq.toml", ("sweep", "samples"), 2**19, "sweep.samples: expected a design of at most"),
    ("scenarios/sweeps/sobol_strike_in_iraq.toml", ("sweep", "trials_per_point"), 10**6, "sweep.trials_per_point: expected at most 100,000,000 trials"),
    ("scenarios/sweeps/tornado_baseline.toml", ("parameters", "israel_base_rate", "low"), -1e308,
     "parameters.israel_base_rate"),
    ("calibration/history.toml", ("counts", "israel_feb", "value"), 10**12, "counts.israel_feb.value: expected a number ≤"),
    ("calibration/history.toml", ("parameters", "us_rate", "prior", "median"), 1e308, "parameters.us_rate.prior"),
    ("tests/data/tiny.toml", ("run", "max_events_per_trial"), 10**7 + 1, "run.max_events_per_trial: expected a number ≤ 10000000"),
    ("tests/data/tiny.toml", ("actors", "s", "rules", "retaliate", "response"),
     [{"type": "strike", "on": "m", "at": "m_home", "salvo": {"drone": 10**6 + 1}}],
     "actors.s.rules.retaliate.response[0].salvo.drone: expected a number ≤ 1000000"),
    ("tests/data/tiny.toml", ("actors",), {"m": DOCS["tests/data/tiny.toml"]["actors"]["m"], "s": DOCS["tests/data/tiny.toml"]["actors"]["s"],
                                           **{f"s{i}": {"kind": "state"} for i in range(30)}},
     "scenario.horizon_days: expected at most 20,000 monthly counts per trial"),
    ("calibration/history.toml", ("parameters", "redirect_share", "prior"), {"dist": "beta", "a": 5e-324, "b": 5e-324},
     "parameters.redirect_share.prior: expected a prior with a finite median, found nan"),
    ("calibration/history.toml", ("counts",), {f"c{i}": DOCS["calibration/history.toml"]["counts"]["israel_feb"] for i in range(501)},
     "counts: expected at most 500 item(s)"),
    ("scenarios/sweeps/tornado_baseline.toml", ("parameters", "israel_base_rate"),
     {"path": "actors.iri.attacks.israel.rate_per_day", "low": -1e308, "high": 1e308},
     "parameters.israel_base_rate: expected a range whose width is a finite number"),
])
def test_limits_refuse_values_that_would_exhaust_memory_or_time(project, source, key, value, fragment):
    doc = copy.deepcopy(DOCS[source])
    put(doc, key, value)
    if key == ("actors",):
        doc["scenario"]["horizon_days"] = 36_500
    path = write_beside(project["root"], source, tomli_w.dumps(doc).encode())
    code, message = invoke(path)
    assert code == 2 and fragment in message, message


def test_thousands_of_problems_make_one_short_message(project):
    doc = copy.deepcopy(DOCS["tests/data/tiny.toml"])
    doc["weapons"]["drone"].update({f"k{i}": i for i in range(5000)})
    path = write_beside(project["root"], "tests/data/tiny.toml", tomli_w.dumps(doc).encode())
    code, message = invoke(path)
    lines = message.splitlines()
    assert code == 2 and lines[0] == f"error: {path} is not a valid scenario (5,000 problems):", lines[0]
    assert len(lines) == 22 and lines[-1] == "  ... and 4,980 more", lines[-3:]


def test_odd_keys_are_quoted_in_key_paths(project):
    """An empty, spaced or control-character key is shown quoted, never raw on the terminal."""
    doc = copy.deepcopy(DOCS["tests/data/tiny.toml"])
    doc["actors"]["s"]["harm"]["bad key\x1b[2J"] = doc["actors"]["s"]["harm"].pop("attacks")
    doc["weapons"]["drone"][""] = 1
    path = write_beside(project["root"], "tests/data/tiny.toml", tomli_w.dumps(doc).encode())
    code, message = invoke(path)
    assert code == 2 and "\x1b" not in message, message
    assert f"{path}: actors.s.harm.'bad key\\x1b[2J': expected a name of lowercase letters" in message, message
    assert f"{path}: weapons.drone.'': expected one of the known keys" in message, message


def test_validate_recognises_and_checks_sweep_specs_and_targets(project):
    for source, line in (("scenarios/sweeps/tornado_baseline.toml", "valid sweep spec 'tornado_baseline': oat design "
                                                                     "over 15 parameters of scenario baseline, 31 points"),
                         ("calibration/history.toml", "valid targets 'default': 8 parameters fitted to")):
        result = CliRunner().invoke(main, ["validate", source])
        assert result.exit_code == 0 and result.stdout.startswith(f"{source}: {line}"), result.output


def test_no_input_can_execute_code():
    """Nothing in the package evaluates text or unpickles data read from disk."""
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for path in sorted((ROOT / "sim").rglob("*.py"))
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if CODE_EXECUTION.search(line)]
    assert not found, "\n".join(found)
    assert CODE_EXECUTION.search("data = pickle.load(f)") and CODE_EXECUTION.search("np.load(p, allow_pickle=True)")
