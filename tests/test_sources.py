"""Sources are cited by publisher, date and title, never by a path a user does not have: every
fact in seeds/facts.csv names a source of the table in seeds/README.md, and no shipped file
points outside the repository."""

from __future__ import annotations

import csv
import re

from tests.conftest import ROOT

SHIPPED = [*ROOT.glob("scenarios/**/*.toml"), *ROOT.glob("calibration/*.toml"), *ROOT.glob("docs/*.md"),
           *ROOT.glob("seeds/*"), ROOT / "README.md", ROOT / "CHANGELOG.md", *ROOT.glob("sim/**/*.py")]


def source_table() -> dict[str, list[str]]:
    text = (ROOT / "seeds" / "README.md").read_text(encoding="utf-8")
    text = text[text.index("## Sources"):text.index("## Columns")]
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| (.*) \|$", text, flags=re.M)
    return {key: [cell.strip() for cell in rest.split(" | ")] for key, rest in rows}


def test_every_fact_names_a_source_of_the_table_with_publisher_date_and_title():
    table = source_table()
    assert len(table) >= 3
    for key, (cited_as, publisher, date, title) in table.items():
        assert cited_as in ("[R]", "[G]", "[D]") and publisher and date and title, key
    with open(ROOT / "seeds" / "facts.csv", newline="", encoding="utf-8") as f:
        facts = list(csv.DictReader(f))
    assert facts
    unknown = {row["id"]: row["source"] for row in facts if row["source"] not in table}
    assert not unknown
    assert {row["source"] for row in facts} == set(table)  # and every source in the table is used


def test_no_shipped_file_cites_a_path_outside_the_repository():
    for path in SHIPPED:
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert "../shared" not in text and "/shared/" not in text, path
