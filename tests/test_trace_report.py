"""The page of one traced trial (`trace.html`): in a real browser, as the other reports are (`tests.test_browser`),
and as text: every milestone's chain is there, user text is escaped, the page needs nothing from the network.

The traced trial is trial 17 of the baseline, which reaches regional war.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from sim.engine.trace import TracedTrial, trace_trial
from sim.reports.trace import write_trace_report
from sim.scenario import Scenario, load_scenario
from tests.test_browser import INSTALL, assert_drawn, browser, open_page  # noqa: F401 (browser: a fixture)

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scenarios" / "baseline.toml"
TINY = ROOT / "tests" / "data" / "tiny.toml"
SEED, TRIAL = 20240604, 17
REPRODUCE = f"escsim trace {BASELINE.relative_to(ROOT)} --seed {SEED} --trial {TRIAL} --out DIR"
TITLE = f"escalation-sim trace: baseline, trial {TRIAL}"
SCRIPT = "<script>alert('trace')</script>"


@pytest.fixture(scope="module")
def baseline() -> Scenario:
    return load_scenario(BASELINE)


@pytest.fixture(scope="module")
def traced(baseline) -> TracedTrial:
    return trace_trial(baseline, SEED, TRIAL)


@pytest.fixture(scope="module")
def page(traced, baseline, tmp_path_factory) -> Path:
    return write_trace_report(tmp_path_factory.mktemp("trace"), traced, baseline, REPRODUCE)


def test_trace_page_opens_in_a_browser_offline_without_errors_and_shows_its_plots(browser, page):  # noqa: F811
    if browser is None:
        pytest.fail(INSTALL)
    assert page.name == "trace.html" and page.is_file()
    seen = open_page(browser, page)
    assert seen["problems"] == [], "trace page: " + "; ".join(seen["problems"])
    facts = seen["facts"]
    assert facts["scripts"] == 0, f"trace page: expected no <script>, found {facts['scripts']}"
    assert facts["title"] == TITLE, facts["title"]
    assert len(facts["svgs"]) == 2, f"trace page: expected the timeline and the harm accounts, found {facts['svgs']}"
    assert all(w > 100 and h > 50 for w, h in facts["svgs"]), f"trace page: a figure is drawn empty: {facts['svgs']}"

    assert_drawn(seen["png"], "trace page")


def test_trace_page_holds_the_chain_of_every_milestone_reached(traced, baseline, page):
    html = page.read_text(encoding="utf-8")
    assert f"<title>{TITLE}</title>" in html
    reached = traced.reached()
    assert "regional_war" in reached
    for name in reached:
        section = re.search(rf'<section id="chain-{name}">(.*?)</section>', html, flags=re.S)
        assert section is not None, f"no cause chain section for {name}"
        rows = re.findall(r"<tr><td>(\d+)</td>", section[1])
        assert [int(r) for r in rows] == traced.chains[name], f"{name}: the chain's rows are not its events, root first"
        assert f'href="#chain-{name}"' in html, f"the milestones table does not link {name} to its chain"
    war = re.search(r'<section id="chain-regional_war">(.*?)</section>', html, flags=re.S)[1]
    assert baseline.milestones["regional_war"].label in war
    for text in (f"<td>{SEED}</td>", f"<td>{traced.particle}</td>", "2024-06-04", "365 days",
                 f"{traced.outcome.n_events:,}", "How to read this page", REPRODUCE):
        assert text in html, f"the page does not say {text!r}"
    rungs = re.findall(r"<td style=\"white-space: nowrap\">(\d+ of \d+|tracked)</td>", html)
    rung = baseline.ladder.index("regional_war") + 1
    assert rungs[reached.index("regional_war")] == f"{rung} of {len(baseline.ladder)}"
    plain = int((traced.events["kind"] == "attack").sum())
    listed = re.search(r"Events other than plain attacks</h2>(.*?)</table>", html, flags=re.S)[1]
    assert len(re.findall(r"<tr><td>\d+</td>", listed)) == len(traced.events) - plain
    assert f"{plain:,} plain attacks" in html and "events.csv" in html


def test_trace_page_needs_nothing_from_the_network(page):
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"<(script|link|img|iframe)\b", html, flags=re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html, flags=re.I)
    assert "@import" not in html and "url(http" not in html


def test_trace_page_escapes_event_text(traced, baseline, tmp_path):
    events = traced.events.copy()
    decision = traced.chains["regional_war"][2]  # the decision in the chain: in a chain table and in the events table
    assert events.loc[events["event"] == decision, "kind"].item() == "decision"
    events.loc[events["event"] == decision, "detail"] = SCRIPT
    page = write_trace_report(tmp_path, dataclasses.replace(traced, events=events), baseline, f"escsim {SCRIPT}")
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html
    chains = sum(decision in chain for chain in traced.chains.values())
    assert chains >= 1
    # each chain table that holds it, the events table, and the reproduce line
    assert html.count("&lt;script&gt;alert(&#39;trace&#39;)&lt;/script&gt;") == chains + 2


def test_trace_page_of_a_scenario_without_posterior_or_milestones(tmp_path):
    tiny = load_scenario(TINY)
    traced = trace_trial(tiny, 1, 0)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    html = write_trace_report(tmp_path / "a", traced, tiny, "escsim trace tiny").read_text(encoding="utf-8")
    assert "<tr><td>Posterior particle</td><td>none</td></tr>" in html
    assert all(f'<section id="chain-{m}">' in html for m in traced.reached())
    quiet = tiny.with_changes({"weapons.drone.p_hit": 0.0, "actors.s.rules.retaliate.threshold": 1e6})
    traced = trace_trial(quiet, 1, 0)
    assert traced.reached() == []
    html = write_trace_report(tmp_path / "b", traced, quiet, "escsim trace quiet").read_text(encoding="utf-8")
    assert "This trial reached no milestone within the horizon." in html
    assert "<section" not in html
    assert html.count("<svg") == 2  # a rule's account got deposits: the harm panel is drawn, with no decision
