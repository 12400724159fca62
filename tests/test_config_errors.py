"""Bad scenario input gets one clear message and exit code 2: no traceback, no output folder.

Every message names the file that set the offending key, the key path, what was expected and
what was found, on one line. Bad scenarios are the baseline with one targeted text edit, or a
small child file that `extends` the baseline and overrides one key. Only validation runs: for
`run`, `--trials 1 --workers 1` keeps the test short even if validation wrongly passed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli import main

BASELINE = (Path(__file__).parent.parent / "scenarios" / "baseline.toml").resolve()
# Copies live in tmp_path: point the baseline's fit folder at the repository's, absolutely.
BASE_TEXT = BASELINE.read_text(encoding="utf-8").replace(
    'from_calibration = "../calibration/fits/default"',
    f'from_calibration = "{(BASELINE.parent.parent / "calibration" / "fits" / "default").as_posix()}"',
)
# The line of the baseline that the syntax-error case breaks (1-based, as tomllib counts).
RATE_LINE = BASE_TEXT.splitlines().index("rate_per_day = 0.03") + 1


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """Work in tmp_path, so files are named as the user typed them and `runs/` lands there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ESCSIM_DEBUG", raising=False)


# --- building bad scenarios ------------------------------------------------------------------


def variant(old: str, new: str, name: str = "bad.toml", text: str = BASE_TEXT) -> Path:
    """A copy of `text` (the baseline) with `old`, which must occur exactly once, made `new`."""
    assert text.count(old) == 1, f"{old!r} must occur exactly once in the base scenario"
    path = Path(name)
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def child(body: str, name: str = "child.toml", parent: Path | str = BASELINE) -> Path:
    """A file that extends `parent` (absolute, or relative to the child) and adds `body`."""
    path = Path(name)
    path.write_text(f"extends = {json.dumps(str(parent))}\n{body}", encoding="utf-8")
    return path


def edit(old: str, new: str):
    return lambda: variant(old, new)


def override(body: str):
    return lambda: child(body)


def raw(text: str):
    def build() -> Path:
        path = Path("bad.toml")
        path.write_text(text, encoding="utf-8")
        return path

    return build


# --- running the CLI and checking its message ------------------------------------------------


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def run_args(path: Path, out: str = "out") -> list[str]:
    return ["run", str(path), "--trials", "1", "--workers", "1", "--out", out]


def assert_one_error(code: int, stdout: str, stderr: str, file: str, key: str, *fragments: str) -> str:
    """Exit code 2, nothing on stdout, and on stderr one line naming `file` and then `key`,
    saying what was expected and what was found; returns the message."""
    assert "Traceback" not in stdout + stderr
    assert code == 2, f"exit code {code}; stdout: {stdout[:500]!r}; stderr: {stderr!r}"
    assert stdout == ""
    message = stderr.strip()
    assert len(message.splitlines()) == 1, f"expected one problem on one line, got:\n{message}"
    assert message.startswith(f"error: {file}: {key}"), message
    assert re.search(r"\bexpected\b.+\bfound\b", message), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    return message


def assert_cli_error(result, file: str, key: str, *fragments: str) -> str:
    return assert_one_error(result.exit_code, result.stdout, result.stderr, file, key, *fragments)


# --- the cases ---------------------------------------------------------------------------------

# A militia that attacks Israel only, and a strike by Israel on it in Yemen.
HOUTHIS = ('[actors.houthis]\nkind = "militia"\n[actors.houthis.attacks.israel]\nrate_per_day = 0.1\n'
           'weapons = { drone = 1.0 }\n')
YEMEN_STRIKE = ('[shocks.yemen]\nrate_per_day = 0.01\n'
                'effects = [{ type = "strike", by = "israel", on = "houthis", at = "yemen" }]\n')
SHOCK_EFFECT = "[shocks.x]\nday = 10\neffects = [{}]\n"
SHOCK = "[shocks.late]\n{timing}\neffects = [{{ type = \"surge\", on = [\"iri\"], amplitude = 1.0, decay_days = 5 }}]\n"

CASES = [
    # 1. unknown keys, with the close match suggested (and no second "missing" problem)
    pytest.param(edit("rate_per_day = 0.03", "rate_per_dy = 0.03"), "bad.toml",
                 "actors.iri.attacks.israel.rate_per_dy: ",
                 ("unknown key 'rate_per_dy'", "did you mean 'rate_per_day'?"), id="unknown-key"),
    pytest.param(edit('{ type = "restrain", militias = ["iri"], front = "us", factor = 0.03',
                      '{ type = "restrain", milita = ["iri"], front = "us", factor = 0.03'), "bad.toml",
                 "actors.iran.rules.restrain_us_front.response[0].milita: ",
                 ("unknown key 'milita'", "did you mean 'militias'?"), id="unknown-key-in-effect"),
    pytest.param(edit("[summary]", "[sumary]"), "bad.toml", "sumary: ",
                 ("unknown key 'sumary'", "did you mean 'summary'?"), id="unknown-table"),
    # 2. wrong types: never coerced
    pytest.param(edit("rate_per_day = 0.03", 'rate_per_day = "1.0"'), "bad.toml",
                 "actors.iri.attacks.israel.rate_per_day: ", ("expected a number", "found '1.0'"), id="string-for-number"),
    pytest.param(edit("rate_per_day = 0.03", "rate_per_day = true"), "bad.toml",
                 "actors.iri.attacks.israel.rate_per_day: ", ("expected a number", "found true"), id="bool-for-number"),
    pytest.param(edit("trials = 2000", "trials = 2000.0"), "bad.toml",
                 "run.trials: ", ("expected a whole number", "found 2000.0"), id="float-for-int"),
    pytest.param(edit("start_date = 2024-06-04", 'start_date = "2024-06-04"'), "bad.toml",
                 "scenario.start_date: ", ("expected a date", "found '2024-06-04'"), id="string-for-date"),
    pytest.param(edit('kind = "patron"', 'kind = "patrn"'), "bad.toml",
                 "actors.iran: ", ("'militia', 'state', 'patron'", "found 'patrn'"), id="unknown-kind"),
    # 3. negative rates
    pytest.param(edit("rate_per_day = 0.03", "rate_per_day = -0.5"), "bad.toml",
                 "actors.iri.attacks.israel.rate_per_day: ", ("≥ 0", "found -0.5"), id="negative-rate"),
    pytest.param(override("[actors.iri.attacks.us]\nrate_per_day = -1\n"), "child.toml",
                 "actors.iri.attacks.us.rate_per_day: ", ("≥ 0", "found -1"), id="negative-rate-in-child"),
    # 4. probabilities outside [0, 1]
    pytest.param(edit("probability = 0.7", "probability = 1.5"), "bad.toml",
                 "actors.israel.rules.strike_iran.probability: ", ("≤ 1", "found 1.5"), id="rule-probability-above-1"),
    pytest.param(edit("p_hit = 0.3 ", "p_hit = -0.1 "), "bad.toml",
                 "weapons.rocket.p_hit: ", ("≥ 0", "found -0.1"), id="p-hit-negative"),
    pytest.param(override("[actors.israel.rules.strike_iran.ally_restraint]\nus = 1.01\n"), "child.toml",
                 "actors.israel.rules.strike_iran.ally_restraint.us: ", ("≤ 1", "found 1.01"), id="ally-restraint-above-1"),
    # 5. milestones and the ladder disagree
    pytest.param(edit('  "regional_war",\n]', '  "regional_war",\n  "nuclear_war",\n]'), "bad.toml",
                 "ladder[10]: ", ("expected a milestone", "found 'nuclear_war'"), id="ladder-rung-not-a-milestone"),
    pytest.param(edit('  "regional_war",\n]', '  "regional_war",\n  "first_us_deaths",\n]'), "bad.toml",
                 "ladder[10]: ", ("once", "found 'first_us_deaths' again"), id="ladder-rung-twice"),
    # 6. names that refer to no actor (or to one of the wrong kind)
    pytest.param(edit('sources = [{ by = ["iri"], on = ["us"]', 'sources = [{ by = ["hamas"], on = ["us"]'), "bad.toml",
                 "actors.us.harm.from_militias.sources[0].by[0]: ", ("expected an actor", "found 'hamas'"),
                 id="harm-source-by-unknown-actor"),
    pytest.param(edit("ally_restraint = { us = 0.3 }", "ally_restraint = { hamas = 0.3 }"), "bad.toml",
                 "actors.israel.rules.strike_iran.ally_restraint.hamas: ", ("expected another state", "found 'hamas'"),
                 id="ally-restraint-unknown-actor"),
    pytest.param(edit("ally_restraint = { us = 0.3 }", "ally_restraint = { iri = 0.3 }"), "bad.toml",
                 "actors.israel.rules.strike_iran.ally_restraint.iri: ", ("expected another state", "found 'iri'"),
                 id="ally-restraint-by-a-militia"),
    pytest.param(edit('{ type = "strike", on = "iran", at = "iran", casualties_mean = 5.0, death_share',
                      '{ type = "strike", on = "hamas", at = "iran", casualties_mean = 5.0, death_share'),
                 "bad.toml", "actors.israel.rules.strike_iran.response[0].on: ", ("expected an actor", "found 'hamas'"),
                 id="strike-on-unknown-actor"),
    pytest.param(edit('{ type = "strike", by = "israel", on = "hezbollah"', '{ type = "strike", by = "mossad", on = "hezbollah"'),
                 "bad.toml", "shocks.axis_leader_killed.effects[0].by: ", ("expected a state or patron", "found 'mossad'"),
                 id="shock-strike-by-unknown-actor"),
    pytest.param(override("[actors.iri.attacks.hezbollah]\nrate_per_day = 0.1\nweapons = { drone = 1.0 }\n"), "child.toml",
                 "actors.iri.attacks.hezbollah: ", ("expected a state or patron as target", "found 'hezbollah'"),
                 id="attack-target-not-a-state"),
    pytest.param(edit('proxies = ["iri"]', 'proxies = ["iri", "houthis"]'), "bad.toml",
                 "actors.iran.proxies[1]: ", ("expected a militia", "found 'houthis'"), id="proxy-unknown"),
    pytest.param(edit("weapons = { drone = 0.6, rocket = 0.4 }", "weapons = { drone = 0.6, mortar = 0.4 }"), "bad.toml",
                 "actors.iri.attacks.us.weapons.mortar: ", ("expected a weapon", "found 'mortar'"), id="unknown-weapon"),
    # 7. extends that is not a file name (cycles and missing files have their own tests)
    pytest.param(raw("extends = 5\n"), "bad.toml",
                 "extends: ", ("expected a file name", "found 5"), id="extends-not-a-string"),
    # 8. TOML syntax: the table it falls in stands for the key path, with line and column
    pytest.param(edit("rate_per_day = 0.03", "rate_per_day 0.03"), "bad.toml",
                 f"actors.iri.attacks.israel (line {RATE_LINE}, column 14): ", ("expected valid TOML", "found a syntax error"),
                 id="toml-syntax"),
    pytest.param(edit("[scenario]\n", "[scenario]\nname = \"twice\"\n"), "bad.toml",
                 "scenario (line ", ("expected valid TOML", "Cannot overwrite a value"), id="toml-duplicate-key"),
    # 9. non-finite numbers, weapon mixes, runaway excitation, shocks outside the horizon
    *[
        pytest.param(edit("rate_per_day = 0.03", f"rate_per_day = {v}"), "bad.toml",
                     "actors.iri.attacks.israel.rate_per_day: ", ("expected a finite number", f"found {v.lstrip('+')}"),
                     id=f"rate-{v}")
        for v in ("nan", "inf", "-inf", "+inf")
    ],
    pytest.param(edit("p_hit = 0.3 ", "p_hit = nan "), "bad.toml",
                 "weapons.rocket.p_hit: ", ("expected a finite number", "found nan"), id="p-hit-nan"),
    pytest.param(edit("weapons = { drone = 0.6, rocket = 0.4 }", "weapons = { drone = 0.6, rocket = 0.3 }"), "bad.toml",
                 "actors.iri.attacks.us.weapons: ", ("summing to 1", "found 0.9 (drone 0.6, rocket 0.3)"),
                 id="weapon-shares-below-1"),
    # A child's weapon mix replaces the parent's whole (no blend with the parent's rocket share).
    pytest.param(override("[actors.iri.attacks.us]\nweapons = { drone = 0.9 }\n"), "child.toml",
                 "actors.iri.attacks.us.weapons: ", ("summing to 1", "found 0.9 (drone 0.9)"),
                 id="weapon-mix-replaced-not-merged"),
    pytest.param(edit("from = { iri = 0.4 }", "from = { iri = 1.2 }"), "bad.toml",
                 "actors.iri.excitation.from: ", ("branching ratio", "below 1", "found 1.2"), id="branching-ratio-self"),
    pytest.param(edit("from = { iri = 0.4 }", "from = { iri = 1.0 }"), "bad.toml",
                 "actors.iri.excitation.from: ", ("branching ratio", "found 1"), id="branching-ratio-exactly-1"),
    pytest.param(override("[actors.iri.excitation]\nfrom = { iri = 0.4, hezbollah = 0.9 }\n"
                          "[actors.hezbollah.excitation]\nmemory_days = 10\nfrom = { iri = 0.9 }\n"
                          "[actors.hezbollah.attacks.israel]\nrate_per_day = 0.1\nweapons = { drone = 1.0 }\n"), "child.toml",
                 "actors.*.excitation.from: ", ("branching ratio", "found 1.12", "excitation of iri, hezbollah"),
                 id="branching-ratio-matrix"),
    pytest.param(edit("rate_per_day = 0.0055", "date = 2026-01-01"), "bad.toml",
                 "shocks.israel_kills_iranian_commanders.date: ", ("within the horizon", "found day 576"),
                 id="shock-date-after-horizon"),
    pytest.param(edit("rate_per_day = 0.0055", "date = 2024-01-01"), "bad.toml",
                 "shocks.israel_kills_iranian_commanders.date: ", ("within the horizon", "found day -155"),
                 id="shock-date-before-start"),
    pytest.param(override(SHOCK.format(timing="day = 400")), "child.toml",
                 "shocks.late.day: ", ("within the horizon", "found day 400"), id="shock-day-after-horizon"),
    pytest.param(override(SHOCK.format(timing="day = 10\nrate_per_day = 0.1")), "child.toml",
                 "shocks.late: ", ("exactly one of date, day or rate_per_day", "found day, rate_per_day"),
                 id="shock-two-timings"),
    pytest.param(override("[actors.iran.harm.own_losses]\nwindow_days = 30\n"), "child.toml",
                 "actors.iran.harm.own_losses: ", ("decay_days or window_days", "found both"), id="harm-two-memories"),
    # 10. names nothing in the scenario can produce: a filter that never matches, an effect that does nothing
    pytest.param(override(HOUTHIS + YEMEN_STRIKE + '[milestones.x]\nwhen = { by = ["israel"], at = ["yeman"], kind = "strike" }\n'),
                 "child.toml", "milestones.x.when.at[0]: ",
                 ("expected a location where some attack or strike lands", "found 'yeman'", "did you mean 'yemen'?"),
                 id="filter-location-misspelt"),
    pytest.param(override('[milestones.x]\nwhen = { by = ["isreal"], kind = "strike" }\n'), "child.toml",
                 "milestones.x.when.by[0]: ", ("expected an actor", "found 'isreal'", "did you mean 'israel'?"),
                 id="filter-actor-misspelt"),
    pytest.param(override(HOUTHIS + '[milestones.x]\nwhen = { by = ["houthi"], on = ["israel"] }\n'), "child.toml",
                 "milestones.x.when.by[0]: ", ("expected an actor", "found 'houthi'", "did you mean 'houthis'?"),
                 id="filter-militia-misspelt"),
    pytest.param(override(HOUTHIS + '[actors.israel.harm.from_iraq]\nsources = [{ by = ["iri", "houthi"], per_incident = 1.0 }]\n'),
                 "child.toml", "actors.israel.harm.from_iraq.sources[0].by[1]: ", ("found 'houthi'", "did you mean 'houthis'?"),
                 id="harm-source-misspelt"),
    pytest.param(override('[milestones.x]\nwhen = { by = ["hezbollah"] }\n'), "child.toml",
                 "milestones.x.when.by[0]: ", ("expected an actor that acts", "found 'hezbollah', which never does"),
                 id="filter-by-an-actor-that-never-acts"),
    pytest.param(override('[milestones.x]\nwhen = { on = ["hezbollah"], kind = "attack" }\n'), "child.toml",
                 "milestones.x.when: ", ("expected a filter that some incident of the scenario matches",
                                         "found on hezbollah; kind attack, which none matches"),
                 id="filter-combination-never-matches"),
    pytest.param(override('[milestones.x]\nwhen = { by = ["us"], kind = "attack" }\n'), "child.toml",
                 "milestones.x.when: ", ("strike by us on iri at iraq", "found by us; kind attack, which none matches"),
                 id="filter-state-never-attacks"),
    pytest.param(override(SHOCK_EFFECT.format('{ type = "restrain", militias = ["hezbollah"], front = "israel", '
                                              'factor = 0.5, duration_days = 10 }')), "child.toml",
                 "shocks.x.effects[0].militias[0]: ",
                 ("expected a militia with an attack channel on front israel", "found 'hezbollah', which has no attack channels"),
                 id="restrain-militia-without-channels"),
    pytest.param(override(HOUTHIS + SHOCK_EFFECT.format('{ type = "restrain", militias = ["houthis"], front = "us", '
                                                        'factor = 0.5, duration_days = 10 }')), "child.toml",
                 "shocks.x.effects[0].militias[0]: ", ("on front us", "found 'houthis', which attacks only israel"),
                 id="restrain-front-not-attacked"),
    pytest.param(override(SHOCK_EFFECT.format('{ type = "restrain", militias = ["iri"], front = "isreal", '
                                              'factor = 0.5, duration_days = 10 }')), "child.toml",
                 "shocks.x.effects[0].front: ", ("expected a front", "found 'isreal'", "did you mean 'israel'?"),
                 id="restrain-front-misspelt"),
    pytest.param(override(SHOCK_EFFECT.format('{ type = "surge", on = ["hezbollah"], amplitude = 1.0, decay_days = 5 }')),
                 "child.toml", "shocks.x.effects[0].on[0]: ",
                 ("expected a militia with attack channels", "found 'hezbollah', which has none"), id="surge-militia-without-channels"),
    pytest.param(override(SHOCK_EFFECT.format('{ type = "strike", by = "israel", on = "hezbollah", at = "lebanon", '
                                              'capacity_loss = 0.3 }')), "child.toml",
                 "shocks.x.effects[0].capacity_loss: ", ("militia without attack channels", "found 0.3"),
                 id="capacity-loss-on-militia-without-channels"),
    pytest.param(override("[actors.iri.excitation]\nfrom = { iri = 0.4, hezbollah = 0.1 }\n"), "child.toml",
                 "actors.iri.excitation.from.hezbollah: ", ("expected a militia that attacks a target iri attacks",
                                                            "found 'hezbollah', which attacks nothing"),
                 id="excitation-from-militia-that-never-attacks"),
    pytest.param(override(HOUTHIS + "[actors.houthis.redirect]\nshare = 0.5\nramp_days = 10\n"), "child.toml",
                 "actors.houthis.redirect: ", ("at least two fronts", "found houthis with 1"), id="redirect-with-one-front"),
    # 11. what a shock's pressure or a casualty spread needs
    pytest.param(override('[shocks.lull]\nday = 10\npressure = { actor = "iran", harm = "war_risk", per_unit = 0.01 }\n'
                          'effects = [{ type = "surge", on = ["iri"], amplitude = 1.0, decay_days = 5 }]\n'), "child.toml",
                 "shocks.lull: ", ("expected pressure only on a random shock", "found day"), id="pressure-on-scheduled-shock"),
    pytest.param(override('[shocks.lull]\nrate_per_day = 0.01\npressure = { actor = "iran", harm = "war_rsk", per_unit = 0.01 }\n'
                          'effects = [{ type = "surge", on = ["iri"], amplitude = 1.0, decay_days = 5 }]\n'), "child.toml",
                 "shocks.lull.pressure.harm: ", ("expected a harm account of iran", "did you mean 'war_risk'?"),
                 id="pressure-account-misspelt"),
    pytest.param(override('[shocks.lull]\nrate_per_day = 0.01\npressure = { actor = "iri", harm = "war_risk", per_unit = 0.01 }\n'
                          'effects = [{ type = "surge", on = ["iri"], amplitude = 1.0, decay_days = 5 }]\n'), "child.toml",
                 "shocks.lull.pressure.actor: ", ("expected a state or patron with harm accounts", "found 'iri'"),
                 id="pressure-on-a-militia"),
    pytest.param(override('[weapons.rocket]\ncasualties_per_hit = 0.0\ncasualties_dispersion = 0.5\n'), "child.toml",
                 "weapons.rocket: ", ("casualties_dispersion only with casualties_per_hit above 0", "found casualties_per_hit 0"),
                 id="dispersion-without-casualties"),
    pytest.param(override(SHOCK_EFFECT.format('{ type = "strike", by = "iran", on = "israel", at = "israel", '
                                              'salvo = { ballistic_missile = 5 }, casualties_dispersion = 0.5 }')),
                 "child.toml", "shocks.x.effects[0]: ", ("only on a strike without a salvo", "found a salvo"),
                 id="strike-dispersion-with-salvo"),
    pytest.param(edit("weapons = { drone = 0.6, rocket = 0.4 }", "weapons = { drone = 0.6, rockt = 0.4 }"), "bad.toml",
                 "actors.iri.attacks.us.weapons.rockt: ", ("expected a weapon", "did you mean 'rocket'?"), id="weapon-misspelt"),
    pytest.param(edit('  "regional_war",\n]', '  "regional_wr",\n]'), "bad.toml",
                 "ladder[9]: ", ("expected a milestone", "did you mean 'regional_war'?"), id="ladder-rung-misspelt"),
]


@pytest.mark.parametrize(("build", "file", "key", "fragments"), CASES)
def test_validate_reports_one_clear_error(build, file, key, fragments):
    path = build()
    assert_cli_error(invoke("validate", path), file, key, *fragments)


@pytest.mark.parametrize(("build", "file", "key", "fragments"), CASES)
def test_run_reports_the_error_and_creates_no_output_folder(build, file, key, fragments):
    path = build()
    assert_cli_error(invoke(*run_args(path)), file, key, *fragments)
    assert not Path("out").exists()
    assert not Path("runs").exists()


def test_run_without_out_creates_no_default_folder():
    path = variant("rate_per_day = 0.03", "rate_per_day = -0.5")
    result = invoke("run", path, "--trials", "1", "--workers", "1")
    assert_cli_error(result, "bad.toml", "actors.iri.attacks.israel.rate_per_day: ", "found -0.5")
    assert list(Path.cwd().iterdir()) == [Path.cwd() / "bad.toml"]


def test_the_unedited_files_are_valid():
    """The controls: the copy and a child that overrides nothing wrong validate, so each case
    above fails because of its one edit."""
    yemen = HOUTHIS + YEMEN_STRIKE + '[milestones.x]\nwhen = { by = ["israel"], at = ["yemen"], kind = "strike" }\n'
    for path in (variant("rate_per_day = 0.03", "rate_per_day = 0.03"), child('[scenario]\nname = "child"\n'),
                 child(yemen, name="yemen.toml")):
        result = invoke("validate", path)
        assert result.exit_code == 0, result.output
        assert "error" not in result.stderr


# --- files in an extends chain: the message names the file that set the key -----------------

PARENT_CASES = [
    # (edit of the parent, a harmless override in the child that touches the same table, key)
    pytest.param(("rate_per_day = 0.03", "rate_per_day = -0.5"),
                 "[actors.iri.attacks.israel]\nweapons = { drone = 0.75, cruise_missile = 0.2, rocket = 0.05 }\n",
                 "actors.iri.attacks.israel.rate_per_day: ", id="field-range"),
    pytest.param(("rate_per_day = 0.03", "rate_per_dy = 0.03"),
                 "[actors.iri.attacks.israel]\nrate_per_day = 0.03\nlocation = \"israel\"\n",
                 "actors.iri.attacks.israel.rate_per_dy: ", id="unknown-key"),
    pytest.param(("weapons = { drone = 0.6, rocket = 0.4 }", "weapons = { drone = 0.6, rocket = 0.3 }"),
                 "[actors.iri.attacks.us]\nrate_per_day = 0.8\n",
                 "actors.iri.attacks.us.weapons: ", id="weapon-shares"),
    pytest.param(('sources = [{ by = ["iri"], on = ["us"]', 'sources = [{ by = ["hamas"], on = ["us"]'),
                 "[actors.us.harm.from_militias]\ndecay_days = 20\n",
                 "actors.us.harm.from_militias.sources[0].by[0]: ", id="reference"),
    pytest.param(("from = { iri = 0.4 }", "from = { iri = 1.2 }"),
                 "[actors.iri.excitation]\nmemory_days = 10\n",
                 "actors.iri.excitation.from: ", id="branching-ratio"),
    pytest.param(("rate_per_day = 0.0055", "date = 2026-01-01"),
                 "[shocks.israel_kills_iranian_commanders]\nlabel = \"renamed\"\n",
                 "shocks.israel_kills_iranian_commanders.date: ", id="shock-date"),
]


@pytest.mark.parametrize(("parent_edit", "child_body", "key"), PARENT_CASES)
def test_error_set_in_parent_names_the_parent(parent_edit, child_body, key):
    variant(*parent_edit, name="parent.toml")
    path = child('[scenario]\nname = "child"\n' + child_body, parent="parent.toml")
    assert_cli_error(invoke("validate", path), "parent.toml", key)
    assert_cli_error(invoke(*run_args(path)), "parent.toml", key)
    assert not Path("out").exists()


def test_error_set_in_grandparent_names_the_grandparent():
    variant("probability = 0.7", "probability = 1.5", name="grandparent.toml")
    child("[actors.israel.rules.strike_iran]\ndelay_days = 10\n", name="parent.toml", parent="grandparent.toml")
    path = child("[actors.israel.rules.strike_iran]\ncooldown_days = 30\n", parent="parent.toml")
    assert_cli_error(invoke("validate", path), "grandparent.toml", "actors.israel.rules.strike_iran.probability: ",
                     "found 1.5")


def test_child_overriding_the_bad_key_is_named_and_fixing_it_validates():
    variant("rate_per_day = 0.03", "rate_per_day = -0.5", name="parent.toml")
    path = child("[actors.iri.attacks.israel]\nrate_per_day = -2.0\n", parent="parent.toml")
    assert_cli_error(invoke("validate", path), "child.toml", "actors.iri.attacks.israel.rate_per_day: ", "found -2.0")
    path = child("[actors.iri.attacks.israel]\nrate_per_day = 0.03\n", parent="parent.toml")
    assert invoke("validate", path).exit_code == 0


def test_syntax_error_in_parent_names_the_parent():
    variant("rate_per_day = 0.03", "rate_per_day = = 0.03", name="parent.toml")
    path = child('[scenario]\nname = "child"\n', parent="parent.toml")
    assert_cli_error(invoke("validate", path), "parent.toml", f"actors.iri.attacks.israel (line {RATE_LINE}, ",
                     "expected valid TOML")


# --- extends: cycles and missing files -------------------------------------------------------


def test_extends_cycle():
    Path("a.toml").write_text('extends = "b.toml"\n')
    Path("b.toml").write_text('extends = "a.toml"\n')
    # The key that closes the cycle is b.toml's extends.
    assert_cli_error(invoke("validate", "a.toml"), "b.toml", "extends: ", "without a cycle",
                     "found a.toml -> b.toml -> a.toml")
    assert_cli_error(invoke(*run_args(Path("a.toml"))), "b.toml", "extends: ", "a.toml -> b.toml -> a.toml")
    assert not Path("out").exists()


def test_extends_itself():
    Path("a.toml").write_text('extends = "a.toml"\n[scenario]\nname = "a"\n')
    assert_cli_error(invoke("validate", "a.toml"), "a.toml", "extends: ", "found a.toml -> a.toml")


def test_extends_cycle_through_a_valid_scenario():
    """A cycle is found before anything is validated, even when the files are sound otherwise."""
    variant("[scenario]\n", 'extends = "b.toml"\n[scenario]\n', name="a.toml")
    child("", name="b.toml", parent="a.toml")
    assert_cli_error(invoke("validate", "b.toml"), "a.toml", "extends: ", "found b.toml -> a.toml -> b.toml")


def test_extends_missing_file():
    child('[scenario]\nname = "child"\n', parent="missing.toml")
    for result in (invoke("validate", "child.toml"), invoke(*run_args(Path("child.toml")))):
        assert result.exit_code == 2
        assert "Traceback" not in result.output
        message = result.stderr.strip()
        assert len(message.splitlines()) == 1
        # The missing file, the key that names it and the file that holds that key.
        assert message.startswith("error: missing.toml: "), message
        assert "named by extends in child.toml" in message
        assert re.search(r"\bexpected\b.+\bfound no such file\b", message), message
    assert not Path("out").exists()


def test_extends_missing_file_in_parent_names_the_parent():
    child('[scenario]\nname = "parent"\n', name="parent.toml", parent="gone/missing.toml")
    child('[scenario]\nname = "child"\n', parent="parent.toml")
    message = invoke("validate", "child.toml").stderr.strip()
    assert message.startswith(f"error: {Path('gone', 'missing.toml')}: "), message
    assert "named by extends in parent.toml" in message


# --- several problems: still one message, one paragraph --------------------------------------


def test_several_problems_make_one_paragraph():
    text = BASE_TEXT.replace("rate_per_day = 0.03", "rate_per_day = -0.5").replace("p_hit = 0.3 ", "p_hit = 1.3 ")
    path = variant("probability = 0.7", "probability = 1.5", text=text)
    result = invoke("validate", path)
    assert result.exit_code == 2
    assert result.stdout == ""
    message = result.stderr.strip()
    assert "Traceback" not in result.output
    assert "\n\n" not in message
    lines = message.splitlines()
    assert lines[0] == "error: bad.toml is not a valid scenario (3 problems):"
    assert sorted(line.split(": ")[1] for line in lines[1:]) == [
        "actors.iri.attacks.israel.rate_per_day",
        "actors.israel.rules.strike_iran.probability",
        "weapons.rocket.p_hit",
    ]
    assert all(line.startswith("  bad.toml: ") and "expected" in line and "found" in line for line in lines[1:])


# --- the real command, in its own process ----------------------------------------------------


def escsim(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ESCSIM_DEBUG"}
    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def test_python_m_sim_validate_unknown_key():
    variant("rate_per_day = 0.03", "rate_per_dy = 0.03")
    done = escsim("validate", "bad.toml")
    assert_one_error(done.returncode, done.stdout, done.stderr, "bad.toml", "actors.iri.attacks.israel.rate_per_dy: ",
                     "did you mean 'rate_per_day'?")


def test_python_m_sim_run_in_parent_file_creates_no_output_folder():
    variant("p_hit = 0.3 ", "p_hit = -0.1 ", name="parent.toml")
    child('[scenario]\nname = "child"\n[weapons.rocket]\ndeath_share = 0.3\n', parent="parent.toml")
    done = escsim(*run_args(Path("child.toml")))
    assert_one_error(done.returncode, done.stdout, done.stderr, "parent.toml", "weapons.rocket.p_hit: ", "found -0.1")
    assert not Path("out").exists()
    assert not Path("runs").exists()
