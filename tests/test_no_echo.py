"""No message quotes the content of a file that failed to read as what it should be.

A user who points escsim at the wrong file (a password file as the facts of a targets file, a
`.env` file as a scenario) must not see its content in a message, on a terminal or in a CI log.
Each case writes a file whose text holds a unique secret string where a message could echo it
(the first line, a key, a table header, a value, a CSV header, a column name), runs one command
on it, and checks that it fails with exit code 2 and that no output holds the secret. Only
validation and the reading of folders run: no trials.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from sim.cli import main
from tests.conftest import ROOT

SECRET = "zq7secretxk"  # a valid scenario name too, so that a check of the name pattern alone does not hide it
FIT = ROOT / "calibration" / "fits" / "default"

# Text that fails to parse as TOML, with the secret where tomllib or the loader could quote it.
BAD_TOML = {
    "first-line": f"root:{SECRET}:19000:0:99999:7:::\n",
    "env-file": f"{SECRET.upper()}={SECRET}\n",
    "duplicate-key": f'{SECRET} = 1\n{SECRET} = 2\n',
    "duplicate-table": f"[{SECRET}]\nx = 1\n[{SECRET}]\n",
    "duplicate-inline-key": f"x = {{ {SECRET} = 1, {SECRET} = 2 }}\n",
    "table-header": f"[{SECRET}]\nx = \n",
    "dotted-header": f"[{SECRET}.{SECRET}]\nx = {SECRET}\n",
    "bare-value": f"x = {SECRET}\n",
    "unterminated-string": f'x = "{SECRET}\n',
    "invalid-character": f"x = 1 {SECRET}\n",
    "control-character": f'x = "{SECRET}\x01"\n',
    "redefined-namespace": f"[a]\n{SECRET}.b = 1\n[a.{SECRET}]\n",
    "mutated-inline-table": f"a = {{ {SECRET} = 1 }}\na.{SECRET}.c = 2\n",
    # Files that parse as TOML but hold none of the tables of a scenario, sweep spec or targets file.
    "toml-of-another-kind": f'{SECRET} = "{SECRET}"\n',
    "env-file-quoted": f'API_TOKEN = "{SECRET}"\n{SECRET.upper()} = "x"\n',
}
BAD_BYTES = {"not-utf8": SECRET.encode() + b"\xff\xfe" + SECRET.encode()}
# Text that is not a CSV seeds file.
BAD_CSV = {
    "csv-header": f"{SECRET},start,end\nR01,2024-01-01,\n",
    "password-file": f"root:{SECRET}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
    "csv-nul": f"id,{SECRET}\nR01,{SECRET}\x00\n",
    "csv-unclosed-quote": f'id,x\nR01,"{SECRET}\n',
}


def run(*args) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


def assert_refused_without_echo(*args) -> str:
    code, output = run(*args)
    assert "Traceback" not in output
    assert SECRET not in output and SECRET.upper() not in output, output
    assert code == 2, f"exit code {code}: {output}"
    assert output.startswith("error: "), output
    return output


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def write(name: str, content: str | bytes) -> Path:
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


ALL_BAD_FILES = {**BAD_TOML, **BAD_BYTES}


@pytest.mark.parametrize("case", ALL_BAD_FILES)
@pytest.mark.parametrize("command", ["validate", "run", "calibrate"])
def test_a_bad_input_file_is_not_quoted(case, command):
    path = write("input.toml", ALL_BAD_FILES[case])
    extra = ["--trials", "1", "--workers", "1", "--out", "out"] if command == "run" else []
    extra = ["--workers", "1", "--out", "fit"] if command == "calibrate" else extra
    assert_refused_without_echo(command, path, *extra)
    assert not Path("out").exists() and not Path("fit").exists()


@pytest.mark.parametrize("case", ALL_BAD_FILES)
def test_a_bad_file_named_by_a_valid_one_is_not_quoted(case):
    """Through extends, a sweep's base and a targets file's scenario."""
    write("secret.toml", ALL_BAD_FILES[case])
    write("child.toml", 'extends = "secret.toml"\n')
    assert_refused_without_echo("validate", "child.toml")
    sweep = (ROOT / "scenarios" / "sweeps" / "tornado_baseline.toml").read_text(encoding="utf-8")
    write("sweep.toml", _set_key(sweep, "base", "secret.toml"))
    assert_refused_without_echo("validate", "sweep.toml")
    targets = _targets(facts=str(ROOT / "seeds" / "facts.csv"))
    write("targets.toml", _set_key(targets, "scenario", "secret.toml"))
    assert_refused_without_echo("validate", "targets.toml")


@pytest.mark.parametrize("case", [*BAD_CSV, "not-utf8"])
@pytest.mark.parametrize("command", ["validate", "calibrate"])
def test_a_bad_facts_file_is_not_quoted(case, command):
    write("facts.csv", BAD_CSV.get(case) or BAD_BYTES[case])
    write("targets.toml", _targets(facts="facts.csv"))
    extra = ["--workers", "1", "--out", "fit"] if command == "calibrate" else []
    assert_refused_without_echo(command, "targets.toml", *extra)
    assert not Path("fit").exists()


def test_a_password_file_as_facts_is_not_quoted():
    """The issue's case: `facts = "/etc/shadow"` (here a file like it, readable by the test)."""
    secret_file = write("shadow", BAD_CSV["password-file"]).resolve()
    write("targets.toml", _targets(facts=str(secret_file)))
    message = assert_refused_without_echo("validate", "targets.toml")
    assert "line 1" in message and "id column" in message


@pytest.mark.parametrize("part", ["fit.toml", "posterior.parquet", "posterior-columns"])
def test_a_bad_fit_folder_is_not_quoted(part):
    """A scenario's `from_calibration` folder, and `escsim report` on it."""
    fit = Path("fit")
    shutil.copytree(FIT, fit)
    if part == "fit.toml":
        write("fit/fit.toml", BAD_TOML["duplicate-key"])
    elif part == "posterior.parquet":
        write("fit/posterior.parquet", b"PAR1" + SECRET.encode() * 20 + b"PAR1")
    else:
        pq.write_table(pa.table({SECRET: [1.0, 2.0], "weight": [0.5, 0.5]}), fit / "posterior.parquet")
    write("scenario.toml", f'extends = "{(ROOT / "scenarios" / "baseline.toml").as_posix()}"\n'
                           '[parameters]\nfrom_calibration = "fit"\napply = {}\n')
    assert_refused_without_echo("validate", "scenario.toml")
    if part != "posterior-columns":  # a fit's report reads its own record, not the posterior's columns by name
        assert_refused_without_echo("report", fit)


@pytest.mark.parametrize("content", [
    f'{{"kind": "run", "{SECRET}": ',  # truncated
    f"{SECRET}\n",  # not JSON
    f'{{"kind": "run"}} {SECRET}',  # extra data
    "[" * 100_000 + SECRET,  # deeper than the parser goes
], ids=["truncated", "not-json", "extra-data", "deep"])
def test_a_bad_manifest_is_not_quoted(content):
    write("folder/manifest.json", content)
    assert_refused_without_echo("report", "folder")


def _set_key(text: str, key: str, value: str) -> str:
    """`text` with the first line `key = ...` set to `value` (a string)."""
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith(f"{key} = "))
    lines[i] = f"{key} = {json.dumps(value)}"
    return "\n".join(lines) + "\n"


def _targets(facts: str) -> str:
    """The shipped targets file, with its scenario named absolutely and `facts` set."""
    text = (ROOT / "calibration" / "history.toml").read_text(encoding="utf-8")
    text = _set_key(text, "scenario", str(ROOT / "scenarios" / "history_2023_2024.toml"))
    return _set_key(text, "facts", facts)
