"""Counts from CSV files (`fit.counts_csv`): a user adds counts without editing fact ids. A CSV
count is the TOML count it spells out, checked the same way, and a bad line gets one clear
message naming the file, line and column, exit code 2, nothing written."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from sim.calibration.fit import calibrate
from sim.calibration.targets import load_targets
from sim.cli import main
from tests.test_calibration import write_case

HEADER = "series,start,end,observation,value,lo,hi,source\n"


def with_csv(folder, lines: str, months: int = 2):
    """The synthetic case with its last months' counts moved from the TOML file to a CSV file."""
    case = write_case(folder)
    text = case.read_text(encoding="utf-8")
    kept = text.split("[counts.month")[: 1 + 4 - months]
    body = "[counts.month".join(kept).replace('fit_until = 2024-02-29\n', 'fit_until = 2024-02-29\ncounts_csv = ["new.csv"]\n')
    case.write_text(body, encoding="utf-8")
    (folder / "new.csv").write_text(HEADER + lines, encoding="utf-8")
    return case


GOOD = ("attacks_on_s,2024-03-01,2024-03-31,exact,40,,,\"A made-up tracker, 1 Apr 2024 (not data)\"\n"
        "attacks_on_s,2024-04-01,2024-04-30,interval,,35,45,\"A made-up tracker, 1 May 2024 (not data)\"\n")


def test_csv_counts_are_the_counts_they_spell_out(tmp_path):
    toml = load_targets(write_case(tmp_path / "toml"))
    csv = load_targets(with_csv(tmp_path / "csv", GOOD))
    assert list(csv.spec.counts)[:2] == ["month0", "month1"]
    added = {k: v for k, v in csv.spec.counts.items() if k not in ("month0", "month1")}
    assert list(added) == ["attacks_on_s_20240301", "attacks_on_s_20240401"]
    march = added["attacks_on_s_20240301"]
    assert (march.series, march.start, march.end, march.observation, march.value) == \
        (toml.spec.counts["month2"].series, toml.spec.counts["month2"].start, toml.spec.counts["month2"].end, "exact", 40)
    assert march.facts == [] and march.source.startswith("A made-up tracker")
    april = added["attacks_on_s_20240401"]
    assert april.bounds() == (35.0, 45.0)


def test_a_fit_uses_the_csv_counts_and_is_named_by_its_targets_file(tmp_path):
    case = with_csv(tmp_path / "case", GOOD)
    result = calibrate(case, budget="small", seed=5, workers=1, progress=False)
    assert result.out == case.parent / "fits" / "synthetic"
    import pandas as pd

    targets = pd.read_csv(result.out / "predictive_targets.csv")
    assert {"attacks_on_s_20240301", "attacks_on_s_20240401"} <= set(targets.target)
    # Each target says where it comes from: a CSV count its source, a TOML one its facts.
    sources = dict(zip(targets.target, targets.source, strict=True))
    assert sources["attacks_on_s_20240301"].startswith("A made-up tracker")
    assert all(isinstance(v, str) and v for v in sources.values())
    assert "A made-up tracker" in (result.out / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(("lines", "expected"), [
    ("attacks_on_s,2024-03-01,2024-03-31,exact,forty,,,src\n", ("line 2", "column value", "expected a whole number from 0 to 1,000,000,000")),
    ("attacks_on_s,2024-03-01,2024-3-31x,exact,4,,,src\n", ("line 2", "column end", "expected a date (YYYY-MM-DD), found a value that is not")),
    ("attacks_on_s,2024-03-01,2024-03-31,exact,4,,,\n", ("line 2", "expected the facts the count rests on", "or its source")),
    ("attacks_on_s,2024-03-01,2024-03-31,interval,,9,3,src\n", ("line 2", "expected lo ≤ hi")),
    ("attacks_on_x,2024-03-01,2024-03-31,exact,4,,,src\n", ("line 2: column series", "expected a series")),
    ("attacks_on_s,2024-02-15,2024-03-31,exact,4,,,src\n", ("line 2", "expected periods of attacks_on_s that do not overlap")),
    ("attacks_on_s,2024-03-01,2024-03-31,exact,4,,,src\nattacks_on_s,2024-03-01,2024-03-10,exact,1,,,src\n",
     ("line 3", "expected one count of attacks_on_s starting on 2024-03-01", "line 2")),
    ("attacks_on_s,2024-03-01,2024-03-31,exact,4,,src\n", ("line 2", "expected 8 fields, found fewer")),
])
def test_bad_csv_counts_get_one_clear_message(tmp_path, lines, expected):
    case = with_csv(tmp_path / "case", lines)
    out = tmp_path / "fit"
    result = CliRunner().invoke(main, ["calibrate", str(case), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not out.exists()
    assert "new.csv" in result.output or "counts." in result.output
    for piece in expected:
        assert piece in result.output, result.output


def test_a_csv_file_without_the_columns_is_refused(tmp_path):
    case = with_csv(tmp_path / "case", "")
    (tmp_path / "case" / "new.csv").write_text("series,begin,end,value\nattacks_on_s,2024-03-01,2024-03-31,4\n")
    result = CliRunner().invoke(main, ["validate", str(case)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "line 1: expected the columns series, start, end, observation, value, lo, hi, source" in result.output
    assert "no column start, observation, lo, hi, source" in result.output


ACLED = ("event_date,actor1,actor2,event_type,sub_event_type,country,fatalities,notes,iso\n"
         "2024-03-02,M,S forces,Explosions/Remote violence,Air/drone strike,Sland,0,made up,1\n"
         "2024-03-20,M,S forces,Explosions/Remote violence,Air/drone strike,Sland,2,made up,1\n"
         "5 April 2024,M,S forces,Explosions/Remote violence,Air/drone strike,Sland,1,made up,1\n"
         "2024-04-09,M,Civilians,Explosions/Remote violence,Air/drone strike,Sland,0,not the target,1\n"
         "2024-04-10,N,S forces,Explosions/Remote violence,Air/drone strike,Sland,0,not the militia,1\n"
         "2024-05-01,M,S forces,Explosions/Remote violence,Air/drone strike,Sland,0,after the end,1\n")


def with_events(folder, rule: str, export: str = ACLED):
    case = write_case(folder)
    text = case.read_text(encoding="utf-8")
    kept = "[counts.month".join(text.split("[counts.month")[:3])  # January and February stay in the TOML
    case.write_text(kept + rule, encoding="utf-8")
    (folder / "acled.csv").write_text(export, encoding="utf-8")
    return case


RULE = ('\n[counts_from_events.acled]\nfile = "acled.csv"\nseries = "attacks_on_s"\nactor1 = ["M"]\n'
        'actor2 = ["S forces"]\nstart = 2024-03-01\nend = 2024-04-30\nsource = "A made-up export (not data)"\n')


def test_an_acled_export_is_aggregated_by_month_with_the_rules_the_file_states():
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp())
    targets = load_targets(with_events(folder / "a", RULE))
    march, april = targets.spec.counts["acled_202403"], targets.spec.counts["acled_202404"]
    assert (march.start.isoformat(), march.end.isoformat(), march.value) == ("2024-03-01", "2024-03-31", 2)
    assert (april.start.isoformat(), april.end.isoformat(), april.value) == ("2024-04-01", "2024-04-30", 1)
    assert march.source == "A made-up export (not data)" and march.facts == []
    deaths = load_targets(with_events(folder / "b", RULE.replace('series = "attacks_on_s"', 'series = "deaths_on_s"')
                                      + 'count = "fatalities"\nspread = 0.5\n'))
    march = deaths.spec.counts["acled_202403"]
    assert (march.observation, march.lo, march.hi) == ("interval", 1, 3)  # 2 fatalities ± 50%
    whole = load_targets(with_events(folder / "c", RULE + 'period = "whole"\n'))
    assert whole.spec.counts["acled"].value == 3


@pytest.mark.parametrize(("rule", "export", "expected"), [
    (RULE.replace('actor1 = ["M"]', 'actor1 = ["Q"]'), ACLED,
     ("counts_from_events.acled.actor1[0]", "expected a value of the actor1 column", "found 'Q' in none of its 6 rows")),
    (RULE.replace('actor2 = ["S forces"]', 'actor2 = ["S forces", "Civillians"]'), ACLED,
     ("counts_from_events.acled.actor2[1]", "found 'Civillians' in none of its 6 rows")),
    (RULE.replace("2024-04-30", "2024-03-19").replace("2024-03-01", "2024-03-03"), ACLED,
     ("expected events matching its filters between 2024-03-03", "found none in 6 rows")),
    (RULE, ACLED.replace("event_date,", "date,"), ("line 1", "found no column event_date")),
    (RULE, ACLED.replace("2024-03-20", "20/03/2024"), ("line 3: column event_date", "expected a date")),
    (RULE + 'count = "fatalities"\n', ACLED.replace(",2,made", ",two,made"), ("line 3: column fatalities",)),
    (RULE.replace("2024-04-30", "2024-01-31"), ACLED, ("expected end on or after start",)),
    (RULE.replace("2024-03-01", "2024-02-01"), ACLED, ("counts_from_events.acled, 2024-02-01 - 2024-02-29",
                                                        "expected periods of attacks_on_s that do not overlap")),
])
def test_bad_event_rules_and_exports_get_one_clear_message(tmp_path, rule, export, expected):
    case = with_events(tmp_path / "case", rule, export)
    result = CliRunner().invoke(main, ["validate", str(case)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "made up" not in result.output
    for piece in expected:
        assert piece in result.output, result.output
