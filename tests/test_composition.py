"""Composing scenarios: `extends` with a list of files, `append` to inherited lists, milestones
tracked off the ladder, `--set KEY.PATH=VALUE` on the command line and in the API, changing a
scenario object in code; and the resolved scenario that names its fit instead of carrying it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import sim
from sim.cli import main
from sim.scenario import config_hash, load_scenario
from tests.conftest import SCENARIOS

BASELINE = SCENARIOS / "baseline.toml"


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- extends with a list of files ---------------------------------------------------------------


def test_extends_a_list_combines_two_what_ifs_of_one_baseline(tmp_path):
    """Each file contributes what it writes: the second what-if does not put back the baseline's
    weapon mix that the first changed (both extend baseline.toml)."""
    combo = write(tmp_path / "combo.toml", f'extends = ["{SCENARIOS / "cruise_missiles.toml"}", '
                                           f'"{SCENARIOS / "us_leaves_iraq.toml"}"]\n[scenario]\nname = "combo"\n')
    s = load_scenario(combo)
    cruise, leaves = load_scenario(SCENARIOS / "cruise_missiles.toml"), load_scenario(SCENARIOS / "us_leaves_iraq.toml")
    assert s.actors["iri"].attacks["israel"].weapons == cruise.actors["iri"].attacks["israel"].weapons
    assert s.shocks["us_withdrawal_complete"] == leaves.shocks["us_withdrawal_complete"]
    assert s.actors["israel"].rules["strike_in_iraq"] == leaves.actors["israel"].rules["strike_in_iraq"]
    assert s.actors["us"].rules["strike_in_iraq"].probability == 0.0
    assert s.scenario.name == "combo"


def test_extends_a_list_later_files_win_and_messages_name_the_file_that_set_a_key(tmp_path):
    write(tmp_path / "a.toml", f'extends = "{BASELINE}"\n[actors.israel.rules.strike_in_iraq]\nthreshold = 50.0\n')
    write(tmp_path / "b.toml", f'extends = "{BASELINE}"\n[actors.israel.rules.strike_in_iraq]\nthreshold = 70.0\n')
    child = write(tmp_path / "child.toml", 'extends = ["a.toml", "b.toml"]\n')
    assert load_scenario(child).actors["israel"].rules["strike_in_iraq"].threshold == 70.0
    write(tmp_path / "b.toml", f'extends = "{BASELINE}"\n[actors.israel.rules.strike_in_iraq]\nthreshold = -1.0\n')
    result = invoke("validate", child)
    assert result.exit_code == 2
    assert "b.toml: actors.israel.rules.strike_in_iraq.threshold: expected a number > 0" in result.stderr


@pytest.mark.parametrize(("extends", "found"), [("[]", "found a list of 0"), ("[1]", "found a list of 1"),
                                                 ("{ a = 1 }", "found a table")])
def test_extends_must_be_a_file_name_or_a_list_of_them(tmp_path, extends, found):
    result = invoke("validate", write(tmp_path / "bad.toml", f"extends = {extends}\n"))
    assert result.exit_code == 2
    assert "bad.toml: extends: expected a file name or a non-empty list of file names" in result.stderr
    assert found in result.stderr


def test_a_missing_file_in_an_extends_list_is_named_with_its_index(tmp_path):
    result = invoke("validate", write(tmp_path / "bad.toml", f'extends = ["{BASELINE}", "nowhere.toml"]\n'))
    assert result.exit_code == 2
    assert "nowhere.toml: expected a scenario file (named by extends[1] in " in result.stderr
    assert "bad.toml), found no such file" in result.stderr


# --- append, and milestones tracked off the ladder ---------------------------------------------------


def test_append_adds_a_rung_and_a_harm_source_without_retyping_them(tmp_path):
    child = write(tmp_path / "child.toml", f'''extends = "{BASELINE}"
[milestones.two_strikes_in_syria]
label = "Israel strikes Iraqi militias in Syria twice"
when = {{ by = ["israel"], on = ["iri"], at = ["syria"], kind = "strike" }}
count = 2
[append]
ladder = ["two_strikes_in_syria"]
[append.actors.israel.harm.from_iraq]
sources = [{{ by = ["iri"], on = ["israel"], per_hit = 1.0 }}]
''')
    s, base = load_scenario(child), load_scenario(BASELINE)
    assert s.ladder == [*base.ladder, "two_strikes_in_syria"]
    sources = s.actors["israel"].harm["from_iraq"].sources
    assert sources[:-1] == base.actors["israel"].harm["from_iraq"].sources and sources[-1].per_hit == 1.0


@pytest.mark.parametrize(("table", "message"), [
    ("[append.actors.israel.harm.nowhere]\nsources = []\n",
     "append.actors.israel.harm.nowhere: expected a table inherited from the files this one extends, found none"),
    ("[append]\nnowhere = [1]\n", "append.nowhere: expected a list inherited from the files this one extends"),
    ("[append]\nladder = 3\n", "append.ladder: expected a list of items to append, found 3"),
])
def test_append_to_what_is_not_inherited_is_an_error(tmp_path, table, message):
    result = invoke("validate", write(tmp_path / "child.toml", f'extends = "{BASELINE}"\n{table}'))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert f"child.toml: {message}" in result.stderr


def test_a_milestone_off_the_ladder_is_tracked_without_moving_the_rungs(tmp_path):
    tracked = write(tmp_path / "tracked.toml", f'''extends = "{BASELINE}"
[milestones.two_strikes_in_syria]
label = "Israel strikes Iraqi militias in Syria twice"
when = {{ by = ["israel"], on = ["iri"], at = ["syria"], kind = "strike" }}
count = 2
''')
    args = ["--trials", "120", "--seed", "5", "--workers", "1"]
    base = sim.run(BASELINE, trials=120, seed=5, workers=1, out=tmp_path / "base", progress=False)
    result = invoke("run", tracked, *args, "--out", tmp_path / "tracked")
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.startswith("two_strikes_in_syria "))
    assert line.endswith("(tracked, no rung)")  # said plainly in the console, and only for it
    # the baseline's own tracked milestones (us_iran_exchange) are marked too, and nothing else
    already = sum(m not in load_scenario(BASELINE).ladder for m in load_scenario(BASELINE).milestones)
    assert sum("(tracked, no rung)" in x for x in result.stdout.splitlines()) == already + 1
    report = (tmp_path / "tracked" / "report.md").read_text(encoding="utf-8")
    assert "| Israel strikes Iraqi militias in Syria twice (tracked, no rung) |" in report
    assert report.count("(tracked, no rung)") == already + 1
    summary = pd.read_csv(tmp_path / "tracked" / "summary.csv").set_index("metric")
    once = summary.loc["p_israel_strikes_militia_in_syria", "estimate"]
    twice = summary.loc["p_two_strikes_in_syria", "estimate"]
    assert 0 < twice <= once
    a, b = base.trials, pd.read_parquet(tmp_path / "tracked" / "trials.parquet")
    assert (a["max_rung"] == b["max_rung"]).all()  # off the ladder: no rung of its own
    assert (b["t_two_strikes_in_syria"].isna() | (b["t_two_strikes_in_syria"] >= b["t_israel_strikes_militia_in_syria"])).all()


# --- --set and changing scenarios in code -----------------------------------------------------------


def test_set_on_run_changes_the_scenario_and_is_recorded(tmp_path):
    out = tmp_path / "run"
    result = invoke("run", BASELINE, "--trials", "60", "--workers", "1", "--out", out,
                    "--set", "actors.israel.rules.strike_in_iraq.threshold=45", "--set", "scenario.name=lower_threshold")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["set"] == ["actors.israel.rules.strike_in_iraq.threshold=45", "scenario.name=lower_threshold"]
    assert "--set actors.israel.rules.strike_in_iraq.threshold=45" in manifest["command"]
    saved = load_scenario(out / "scenario.toml")
    assert saved.actors["israel"].rules["strike_in_iraq"].threshold == 45
    assert saved.scenario.name == "lower_threshold" and manifest["scenario"] == "lower_threshold"
    # The same change in the API gives the same scenario.
    assert config_hash(saved) == config_hash(load_scenario(
        BASELINE, overrides={"actors.israel.rules.strike_in_iraq.threshold": 45, "scenario.name": "lower_threshold"}))


@pytest.mark.parametrize(("word", "message"), [
    ("actors.israel.rules.strike_in_iraq.threshold=-3",
     "--set actors.israel.rules.strike_in_iraq.threshold=-3: actors.israel.rules.strike_in_iraq.threshold: "
     "expected a number > 0"),
    ("actors.iri.attacks.israel.rate_per_dy=1", "found unknown key 'rate_per_dy' (did you mean 'rate_per_day'?)"),
    ("actors.iri.attacks.israel.rate_per_day", "expected KEY.PATH=VALUE"),
    ("=3", "expected a key path before '='"),
    ("Actors.x=1", "expected a key path such as"),
    ("ladder[20]=\"x\"", "ladder[20]: expected an existing list item to set, found none"),
    ("actors.iri.attacks.israel.weapons={drone=1.0, x=[}", "expected a TOML value after '='"),
])
def test_a_bad_set_is_one_message_naming_it(tmp_path, word, message):
    for command in ("validate", "run"):
        result = invoke(command, BASELINE, "--set", word, *(["--out", tmp_path / "never"] if command == "run" else []))
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output and result.stdout == ""
        assert message in result.stderr
    assert not (tmp_path / "never").exists()


def test_set_values_are_read_as_toml_and_bare_words_as_strings(tmp_path):
    s = load_scenario(BASELINE, overrides=["scenario.description=a plain sentence", "summary.by_days=[7, 14]",
                                          'actors.iri.attacks.israel.weapons={ drone = 1.0 }'])
    assert s.scenario.description == "a plain sentence"
    assert s.summary.by_days == [7.0, 14.0]
    assert s.actors["iri"].attacks["israel"].weapons == {"drone": 1.0}


def test_set_on_a_sweep_sets_its_base_scenario(tmp_path):
    from tests.test_sweeps import TINY_PARAMETERS, write_spec

    spec = write_spec(tmp_path, "oat", 2, {"rate": TINY_PARAMETERS["rate"]}, ["p_retaliation"], trials_per_point=20)
    out = tmp_path / "sweep"
    result = invoke("sweep", spec, "--workers", "1", "--out", out, "--set", "actors.s.rules.retaliate.threshold=33")
    assert result.exit_code == 0, result.output
    assert load_scenario(out / "scenario.toml").actors["s"].rules["retaliate"].threshold == 33
    assert json.loads((out / "manifest.json").read_text())["set"] == ["actors.s.rules.retaliate.threshold=33"]
    checked = invoke("validate", spec, "--set", "actors.s.rules.retaliate.threshold=-1")
    assert checked.exit_code == 2 and "threshold: expected a number > 0" in checked.stderr


def test_set_on_compare_can_change_one_scenario_only(tmp_path):
    out = tmp_path / "cmp"
    result = invoke("compare", BASELINE, BASELINE, "--trials", "60", "--workers", "1", "--out", out,
                    "--set", "2:actors.israel.rules.strike_in_iraq.threshold=45", "--set", "2:scenario.name=lower")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert [a["name"] for a in manifest["scenarios"]] == ["baseline", "lower"]
    assert manifest["scenarios"][0]["set"] == []
    assert load_scenario(out / "runs" / "lower" / "scenario.toml").actors["israel"].rules["strike_in_iraq"].threshold == 45
    bad = invoke("compare", BASELINE, BASELINE, "--out", tmp_path / "bad", "--set", "3:scenario.name=x")
    assert bad.exit_code == 2 and "expected a scenario number from 1 to 2 before ':', found 3" in bad.stderr


def test_with_changes_gives_a_new_validated_scenario():
    base = load_scenario(BASELINE)
    lower = base.with_changes({"actors.israel.rules.strike_in_iraq.threshold": 60.0})
    assert lower.actors["israel"].rules["strike_in_iraq"].threshold == 60.0
    assert base.actors["israel"].rules["strike_in_iraq"].threshold == 80.0  # unchanged
    assert lower.parameters.posterior == base.parameters.posterior
    with pytest.raises(sim.InputError, match="strike_in_iraq.probability: expected a number ≤ 1"):
        base.with_changes({"actors.israel.rules.strike_in_iraq.probability": 1.5})
    with pytest.raises(Exception):  # noqa: B017 - frozen: pydantic's ValidationError
        base.scenario.name = "x"


def test_the_api_is_listed_by_dir():
    assert {"load_scenario", "run", "sweep", "compare", "calibrate", "Scenario", "InputError"} <= set(dir(sim))


# --- the resolved scenario names its fit -----------------------------------------------------------


def test_validate_prints_the_scenario_with_its_fit_named_not_its_particles():
    result = invoke("validate", BASELINE)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) < 1000  # the 1,000 particles stay in the fit
    assert "values = " not in result.stdout and "weights" not in result.stdout
    assert any(line.startswith("from_calibration = ") and line.endswith('calibration/fits/default"') for line in lines)
    assert any(line.startswith('fit_hash = "sha256:') for line in lines)
    assert "#   actors.iri.attacks.us.rate_per_day" in result.stdout  # said to be drawn, not used as written


def test_a_run_folders_scenario_reproduces_the_run_and_pins_its_fit(tmp_path):
    first = sim.run(BASELINE, trials=150, seed=3, workers=1, out=tmp_path / "first", progress=False)
    text = (first.out / "scenario.toml").read_text()
    assert len(text) < 40_000  # it was 220 kB with the particles
    again = invoke("run", first.out / "scenario.toml", "--trials", "150", "--seed", "3", "--workers", "1",
                   "--out", tmp_path / "again")
    assert again.exit_code == 0, again.output
    for name in ("trials.parquet", "monthly.parquet", "summary.csv"):
        assert (tmp_path / "again" / name).read_bytes() == (first.out / name).read_bytes(), name
    changed = write(tmp_path / "changed.toml", text.replace('fit_hash = "sha256:', 'fit_hash = "sha256:0', 1))
    result = invoke("validate", changed)
    assert result.exit_code == 2
    assert "parameters.fit_hash: expected the fit in" in result.stderr and "made again since" in result.stderr
