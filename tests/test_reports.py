"""Report files of every folder kind: report.md, the CSV of each table, the command and versions in report.html,
and `escsim report DIR` rebuilding them byte for byte from the saved files."""

from __future__ import annotations

import json
import re
import shutil
import tomllib

import pandas as pd
import pytest
from click.testing import CliRunner
from markupsafe import escape

from sim.cli import main
from sim.reports import markdown as md
from tests.conftest import ROOT
from tests.test_calibration import write_case
from tests.test_sweeps import TINY_PARAMETERS, write_spec

TINY = ROOT / "tests" / "data" / "tiny.toml"
TABLE = re.compile(r"^\|.*\|\n\|(-{3}:?\|)+$", re.MULTILINE)

CSVS = {
    "run": {
        "milestones.csv": ["milestone", "label", "estimate", "lo", "hi", "by_30d", "median_day"],
        "counts.csv": ["series", "mean", "q05", "q25", "q50", "q75", "q95"],
        "pathways.csv": ["path", "rungs", "trials", "share", "lo", "hi"],
        "parameters.csv": ["parameter", "value", "source", "mean", "q05", "q50", "q95"],
    },
    "sweep": {
        "parameters.csv": ["name", "path", "low", "high", "scale", "why"],
        "sensitivity.csv": ["output", "parameter", "index", "estimate", "lo", "hi", "interval", "note"],
    },
    "fit": {
        "parameters.csv": ["parameter", "path", "prior", "prior_q05", "prior_median", "prior_q95", "mean", "q05",
                           "median", "q95"],
        "predictive_targets.csv": ["target", "kind", "series", "start", "end", "observation", "observed_lo",
                                   "observed_hi", "mean", "q05", "q50", "q95", "consistent_90", "p_observed", "source",
                                   "simulated_mean", "simulated_q05", "simulated_q50", "simulated_q95"],
        "generations.csv": ["fit", "generation", "epsilon", "particles", "simulations", "proposals", "acceptance", "ess"],
        "scores.csv": ["target", "forecaster", "observed", "forecast_mean", "q05", "q95", "crps", "interval_score_90",
                       "covered_90", "pit"],
    },
}


def _cli(args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, dict]:
    """A small folder of each kind, with the name, seed, command and versions its report should show."""
    base = tmp_path_factory.mktemp("reports")
    _cli(["run", str(TINY), "--trials", "100", "--seed", "4", "--workers", "1", "--out", str(base / "run")])
    spec = write_spec(base, "sobol", 8, {k: TINY_PARAMETERS[k] for k in ("rate", "p_hit")},
                      ["p_retaliation", "mean_hits_on_s"], trials_per_point=20)
    _cli(["sweep", str(spec), "--workers", "1", "--out", str(base / "sweep")])
    case = write_case(base / "case")
    _cli(["calibrate", str(case), "--budget", "small", "--seed", "3", "--workers", "1", "--out", str(base / "fit")])
    found = {}
    for kind in ("run", "sweep"):
        manifest = json.loads((base / kind / "manifest.json").read_text())
        found[kind] = {"out": base / kind, "name": manifest.get("scenario") if kind == "run" else manifest["sweep"],
                       "seed": manifest["seed"], "command": manifest["command"], "versions": manifest["versions"]}
    fit = tomllib.loads((base / "fit" / "fit.toml").read_text())
    found["fit"] = {"out": base / "fit", "name": fit["fit"]["name"], "seed": fit["fit"]["seed"],
                    "command": fit["fit"]["command"], "versions": fit["versions"]}
    return found


@pytest.mark.parametrize("kind", ["run", "sweep", "fit"])
def test_report_md_has_the_name_seed_command_and_tables(kind, folders):
    f = folders[kind]
    text = (f["out"] / "report.md").read_text(encoding="utf-8")
    assert text.startswith("# ") and f["name"] in text.splitlines()[0]
    assert f"- Seed: {f['seed']}" in text
    assert f"`{f['command']}`" in text and md.versions(f["versions"]) in text
    assert len(TABLE.findall(text)) >= 3, text


@pytest.mark.parametrize("kind", ["run", "sweep", "fit"])
def test_every_table_is_a_csv_with_the_documented_columns(kind, folders):
    out = folders[kind]["out"]
    for name, columns in CSVS[kind].items():
        table = pd.read_csv(out / name)
        assert list(table.columns) == columns, name
        assert len(table) > 0, name
    if kind == "run":
        summary = pd.read_csv(out / "summary.csv").set_index("metric")["estimate"]
        milestones = pd.read_csv(out / "milestones.csv")
        assert list(milestones.milestone) == ["first_hit", "retaliation"]
        assert (milestones.estimate.to_numpy() == [summary[f"p_{m}"] for m in milestones.milestone]).all()


@pytest.mark.parametrize("kind", ["run", "sweep", "fit"])
def test_report_html_shows_the_exact_command_and_versions(kind, folders):
    f = folders[kind]
    html = (f["out"] / "report.html").read_text(encoding="utf-8")
    assert f"<code>{escape(f['command'])}</code>" in html
    assert str(escape(md.versions(f["versions"]))) in html
    assert f["name"] in html and str(f["seed"]) in html


@pytest.mark.parametrize("kind", ["run", "sweep", "fit"])
def test_escsim_report_rebuilds_every_report_file_byte_for_byte(kind, folders):
    out = folders[kind]["out"]
    names = ["report.html", "report.md", *(n for n in CSVS[kind] if n == "parameters.csv" or kind == "run")]
    before = {n: (out / n).read_bytes() for n in names}
    for n in names:
        (out / n).unlink()
    output = _cli(["report", str(out)])
    assert "report.html" in output and "report.md" in output
    for n in names:
        assert (out / n).read_bytes() == before[n], n


def test_a_fit_whose_targets_file_is_gone_fails_naming_it(folders, tmp_path):
    fit = tmp_path / "fit"
    shutil.copytree(folders["fit"]["out"], fit)
    text = (fit / "fit.toml").read_text()
    (fit / "fit.toml").write_text(re.sub(r'(?m)^targets = ".*"$', 'targets = "gone/targets.toml"', text))
    result = CliRunner().invoke(main, ["report", str(fit)])
    assert result.exit_code == 2 and "gone/targets.toml" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_folder_of_no_kind_is_refused_in_one_line(tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "manifest.json" in result.output and "fit.toml" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_markdown_table_escapes_pipes_and_line_breaks():
    text = md.table(["Name", "Value"], [["a|b", "1\n2"], [md.code("x`y"), 3]])
    assert text.splitlines() == ["| Name | Value |", "|---|---:|", "| a\\|b | 1 2 |", "| ``x`y`` | 3 |"]
    assert md.code("`") == "`` ` ``"


def test_user_text_with_markup_is_drawn_and_written_as_text(tmp_path):
    label = "Israel strikes Iraq $x^$ <b>*bold*</b> [link](x)"
    scenario = tmp_path / "dollar.toml"
    scenario.write_text(f'extends = "{TINY}"\n\n[scenario]\nname = "dollar"\ndescription = "costs $5 & _more_"\n\n'
                        f'[milestones.first_hit]\nlabel = "{label}"\n')
    out = tmp_path / "run"
    _cli(["run", str(scenario), "--trials", "20", "--seed", "1", "--workers", "1", "--out", str(out)])
    assert all((out / name).is_file() for name in ("manifest.json", "report.html", "report.md"))
    text = (out / "report.md").read_text(encoding="utf-8")
    assert r"Israel strikes Iraq \$x^\$ \<b\>\*bold\*\</b\> \[link\](x)" in text
    assert r"costs \$5 \& \_more\_" in text
    html = (out / "report.html").read_text(encoding="utf-8")
    assert str(escape(label)) in html and "<b>*bold*</b>" not in html


def test_markdown_text_escapes_what_markdown_would_read_as_markup():
    assert md.text("a_b_c") == "a_b_c"  # inside a word an underscore is no emphasis
    assert md.text(r"\ ` * [ ] < > $ ~ & _x_") == r"\\ \` \* \[ \] \< \> \$ \~ \& \_x\_"
