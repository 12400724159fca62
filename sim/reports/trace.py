"""The page of one traced trial: `trace.html`, the trial as a timeline with the cause chain of every milestone.

One self-contained page (inline SVG, no script, no network): the trial's facts, the milestones it reached with the
root of each, the attacks per day by front over the trial's other events, each harm account a rule watches against
the rules' thresholds, the cause chain of every milestone, and every event that is not a plain attack. It is built
from a `TracedTrial` (`sim.engine.trace.trace_trial`) and the scenario it traced, and reads nothing else.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sim.engine.trace import TracedTrial
from sim.reports import trace_figures
from sim.reports.html import render
from sim.reports.labels import actor_label
from sim.reports.numbers import MISSING
from sim.runs.manifest import versions
from sim.scenario import Scenario

TRACE_FILE = "trace.html"
FRONT_KINDS = ("attack", "hit")  # the rows that are attacks of a militia on a front
SPAN_STARTS = {"restraint start": "restraint end", "pause start": "pause end"}


def write_trace_report(out: Path, traced: TracedTrial, scenario: Scenario, reproduce: str) -> Path:
    """Write `out / "trace.html"`, the page of `traced` (a trial of `scenario`); `reproduce` is the command that
    traces it again. Return the page's path."""
    out = Path(out)
    s = scenario.scenario
    events = traced.events
    rows = {int(r["event"]): r for r in events.to_dict("records")}
    names = _Names(scenario)
    reached = traced.reached()
    ladder = list(scenario.ladder)
    milestones = []
    for name in reached:
        row = rows[traced.chains[name][-1]]
        milestones.append({
            "name": name, "label": names.milestone(name), "day": _day(row["day"]), "date": row["date"],
            "rung": f"{ladder.index(name) + 1} of {len(ladder)}" if name in ladder else "tracked",
            "root": names.root(rows[traced.roots[name]]),
        })
    chains = [{"name": name, "label": names.milestone(name), "rows": [names.row(rows[e]) for e in traced.chains[name]]}
              for name in reached]
    listed = events[events["kind"] != "attack"]
    panels, skipped = _harm_panels(traced, scenario, names)
    horizon = float(s.horizon_days)
    render(
        "trace.html.j2", out / TRACE_FILE,
        title=f"escalation-sim trace: {s.name}, trial {traced.trial}",
        scenario=s, traced=traced, particle="none" if traced.particle < 0 else str(traced.particle),
        n_events=traced.outcome.n_events, n_traced=len(events), milestones=milestones, chains=chains,
        events=[names.row(r) for r in listed.to_dict("records")], n_plain=int((events["kind"] == "attack").sum()),
        timeline_svg=trace_figures.timeline(horizon, 7.0 if horizon > 90 else 1.0, _fronts(events, names),
                                            _strip(events, horizon, names),
                                            [(names.milestone(m), rows[traced.chains[m][-1]]["day"]) for m in reached]),
        harm_svg=trace_figures.harm_panels(horizon, panels) if panels else "", skipped=skipped,
        reproduce=reproduce, versions=versions(),
    )
    return out / TRACE_FILE


class _Names:
    """The scenario's words for what a trace names: actors, milestones, shocks, and each event as a table row."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario

    def actor(self, name: str) -> str:
        return actor_label(self.scenario, name) if name else ""

    def milestone(self, name: str) -> str:
        m = self.scenario.milestones.get(name)
        return (m.label or name) if m is not None else name

    def shock(self, name: str) -> str:
        shock = self.scenario.shocks.get(name)
        return (shock.label or name) if shock is not None else name

    def who(self, row: dict) -> str:
        """"actor → target" in words: a decision's target is its rule, a milestone's and a shock's their own."""
        kind, actor, target = row["kind"], row["actor"], row["target"]
        if kind == "milestone":
            return self.milestone(target)
        if kind == "shock":
            return self.shock(target)
        if kind == "decision":
            return f"{self.actor(actor)} → rule {target}"
        return " → ".join(w for w in (self.actor(actor), self.actor(target)) if w)

    def row(self, row: dict) -> dict:
        """An event as the page's tables show it: the trace's columns, the day rounded, a missing cause as a dash,
        and `who` and `outcome` in words."""
        cause = row["cause"]
        harmed = [f"{row['hits']} hit{'s' if row['hits'] != 1 else ''}"] if row["hits"] else []
        harmed += [f"{row[k]} {k}" for k in ("casualties", "deaths") if row[k]]
        return {**row, "day": _day(row["day"]), "cause": MISSING if pd.isna(cause) else int(cause),
                "who": self.who(row), "outcome": ", ".join(harmed)}

    def root(self, row: dict) -> str:
        """A root event (one with no cause) in words, with its id and day."""
        kind, when = row["kind"], f"(event {row['event']}, day {_day(row['day'])}, {row['date']})"
        if kind == "shock":
            return f"shock: {self.shock(row['target'])} {when}"
        if kind in FRONT_KINDS:
            return f"a spontaneous attack by {self.actor(row['actor'])} on {self.actor(row['target'])} {when}"
        if kind in ("restraint start", "pause start"):
            held = f"{self.actor(row['actor'])} on {self.actor(row['target'])}"
            return f"the {kind.split()[0]} of {held} in force at the start {when}"
        if kind == "history":
            return f"the history before the origin (the state it left) {when}"
        return f"{kind}: {self.who(row)} {when}"


def _day(day: float) -> str:
    return f"{day:.1f}"


def _fronts(events: pd.DataFrame, names: _Names) -> list[trace_figures.Front]:
    """The attacks of each front (a militia's target), in the order of their first attack."""
    attacks = events[events["kind"].isin(FRONT_KINDS)]
    return [trace_figures.Front(names.actor(front), group["day"].tolist(),
                                group.loc[group["kind"] == "hit", "day"].tolist())
            for front, group in attacks.groupby("target", sort=False)]


def _strip(events: pd.DataFrame, horizon: float, names: _Names) -> list[trace_figures.StripRow]:
    """The timeline's event strip: one row per shock, per striker, per deciding state, per surging militia, and per
    front a restraint or a pause holds (its spans), in the order they first happen."""
    found: dict[tuple[str, str], trace_figures.StripRow] = {}

    def row(key: tuple[str, ...], label: str) -> trace_figures.StripRow:
        return found.setdefault(key, trace_figures.StripRow(label))

    def mark(key: tuple[str, str], label: str, kind: str, day: float) -> None:
        row(key, label).marks.setdefault(kind, []).append(day)

    open_spans: dict[tuple[str, str], float] = {}
    for r in events.to_dict("records"):
        kind, day, actor = r["kind"], float(r["day"]), r["actor"]
        if kind == "shock":
            mark(("shock", r["target"]), f"shock: {names.shock(r['target'])}", "shock", day)
        elif kind == "strike":
            mark(("strike", actor), f"strikes by {names.actor(actor)}", "strike", day)
        elif kind == "decision":
            mark(("decision", actor), f"decisions of {names.actor(actor)}", "acts" if _decision(r)[1] else "holds back",
                 day)
        elif kind == "surge":
            mark(("surge", actor), f"surges of {names.actor(actor)}", "surge", day)
        elif kind in SPAN_STARTS:
            key = (actor, r["target"])
            row(("span", *key), f"restraint on {names.actor(r['target'])} ({names.actor(actor)})")
            open_spans[key] = day
        elif kind in SPAN_STARTS.values():
            key = (r["actor"], r["target"])
            if key in open_spans:
                found[("span", *key)].spans.append((open_spans.pop(key), day))
    for key, start in open_spans.items():
        found[("span", *key)].spans.append((start, horizon))
    return list(found.values())


def _decision(row: dict) -> tuple[float | None, bool]:
    """The level a decision's rule saw (None if the events do not say) and whether it acted."""
    level, acted = row.get("level"), row.get("acted")
    return (None if level is None or pd.isna(level) else float(level)), \
        bool(acted) if acted is not None and not pd.isna(acted) else False


def _drawn(scenario: Scenario) -> set[str]:
    posterior = scenario.parameters.posterior
    return {p for paths in posterior.paths for p in paths} if posterior is not None else set()


def _harm_panels(traced: TracedTrial, scenario: Scenario,
                 names: _Names) -> tuple[list[trace_figures.HarmPanel], list[str]]:
    """A panel per harm account some rule watches and the trial deposited in, in the scenario's order; and the
    accounts a rule watches that got no deposit (named in words). An account decays between deposits with its
    `decay_days`, unless the trials draw that from a posterior (the line then holds each deposit's level)."""
    levels, events = traced.levels, traced.events
    decisions = events[events["kind"] == "decision"].to_dict("records")
    drawn = _drawn(scenario)
    panels, skipped = [], []
    for owner, state in scenario.states().items():
        for account, spec in state.harm.items():
            rules = {n: r for n, r in state.rules.items() if r.harm == account}
            if not rules:
                continue
            title = f"{names.actor(owner)}: {account}"
            mine = levels[(levels["owner"] == owner) & (levels["account"] == account)]
            if mine.empty:
                skipped.append(title)
                continue
            path = f"actors.{owner}.harm.{account}"
            known = not any(p == path or p.startswith((f"{path}.", f"{path}[")) for p in drawn)
            seen = []
            # The thresholds this trial's rules had (a posterior may draw them), as its decisions say;
            # the scenario's for a rule that never decided.
            thresholds = {n: float(r.threshold) for n, r in rules.items()}
            for r in decisions:
                if r["actor"] == owner and r["target"] in rules:
                    level, acted = _decision(r)
                    if r.get("threshold") is not None and not pd.isna(r["threshold"]):
                        thresholds[r["target"]] = float(r["threshold"])
                    seen.append((float(r["day"]), thresholds[r["target"]] if level is None else level, acted))
            panels.append(trace_figures.HarmPanel(
                title, mine["day"].astype(float).tolist(), mine["level"].astype(float).tolist(),
                spec.decay_days if known else None, list(thresholds.items()), seen))
    return panels, skipped
