"""Figures of a traced trial's page (`trace.html`), as inline SVG: its timeline and its harm accounts.

The timeline: attacks per day by front (binned), hits marked, over a strip of the trial's other events (shocks,
strikes, decisions acted on or held back, surges, restraints in force), with every milestone reached as a numbered
vertical line keyed under the figure. The harm accounts: one small panel per account a rule watches, its level against
each rule's threshold, the decisions marked. Every function takes the trial's numbers already picked out (days,
levels, labels), so no figure reads a trace itself.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from sim.reports.figures import BLUE, GREY, plt, to_svg

WIDTH = 7.5
FRONTS = [BLUE, "#dd6b20", "#2f855a", "#805ad5", "#319795", "#975a16"]
MILESTONE = "#c53030"
DECISION = "#dd6b20"
SPAN = "#a0aec0"
# How each kind of mark of the event strip is drawn: matplotlib marker keywords, and the words of its legend.
MARKS = {
    "shock": ({"marker": "D", "color": GREY, "markersize": 5}, "shock"),
    "strike": ({"marker": "|", "color": "black", "markersize": 11, "markeredgewidth": 1.6}, "strike"),
    "acts": ({"marker": "o", "color": DECISION, "markersize": 6}, "decision: acts"),
    "holds back": ({"marker": "o", "color": DECISION, "markerfacecolor": "white", "markersize": 6},
                   "decision: holds back"),
    "surge": ({"marker": "^", "color": "#805ad5", "markersize": 6}, "surge"),
}
STRIP_ROW_INCHES = 0.4
LABEL_CHARS = 90  # a label in the figures is cut to this many characters


@dataclass(frozen=True)
class StripRow:
    """A row of the timeline's event strip: its label, the days of its marks by kind (a key of `MARKS`), and the
    spans (start, end) in days it shades (a restraint or a pause in force)."""

    label: str
    marks: dict[str, list[float]] = field(default_factory=dict)
    spans: list[tuple[float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Front:
    """The attacks on one front: its label, the days of its attacks (hits included) and of its hits."""

    label: str
    attacks: list[float]
    hits: list[float]


@dataclass(frozen=True)
class HarmPanel:
    """One harm account: its title, the day and level after each deposit, its decay time constant in days (None: the
    line holds each level until the next deposit), the thresholds of the rules that watch it (rule, threshold) and
    the decisions of those rules (day, level the rule saw, acted)."""

    title: str
    days: list[float]
    levels: list[float]
    decay_days: float | None
    thresholds: list[tuple[str, float]]
    decisions: list[tuple[float, float, bool]]


def _short(label: str, n: int = LABEL_CHARS) -> str:
    return label if len(label) <= n else label[:n - 1].rstrip() + "…"


def timeline(horizon_days: float, bin_days: float, fronts: list[Front], rows: list[StripRow],
             milestones: list[tuple[str, float]]) -> str:
    """Attacks per day by front in equal bins of about `bin_days` (stacked bars), each hit a triangle along the top;
    under it the event strip `rows`; each milestone reached (label, day; numbered in this order) a red line through
    both, its number on top and its label in the key under the figure, with the legend."""
    handles: list = []
    n_legend = sum(1 + bool(f.hits) for f in fronts) + len(MARKS) + 2  # at most
    legend_inches = 0.16 * math.ceil(n_legend / 3) + 0.1
    key_inches = legend_inches + (0.13 * (len(milestones) + 1) if milestones else 0.0)
    strip = max(len(rows), 1) * STRIP_ROW_INCHES + 0.5
    fig = plt.figure(figsize=(WIDTH, 2.8 + strip + key_inches))
    grid = fig.add_gridspec(3, 1, height_ratios=[2.8, strip, key_inches])
    ax = fig.add_subplot(grid[0])
    ax_strip = fig.add_subplot(grid[1], sharex=ax)
    ax_key = fig.add_subplot(grid[2])
    ax_key.set_axis_off()

    n_bins = max(1, round(horizon_days / bin_days))
    edges = np.linspace(0.0, horizon_days, n_bins + 1)
    width = horizon_days / n_bins
    bottom = np.zeros(n_bins)
    for k, front in enumerate(fronts):
        colour = FRONTS[k % len(FRONTS)]
        counts, _ = np.histogram(front.attacks, bins=edges)
        rate = counts / width
        ax.bar(edges[:-1], rate, width=width, bottom=bottom, align="edge", color=colour, alpha=0.75, linewidth=0)
        bottom += rate
        handles.append(Patch(color=colour, alpha=0.75, label=f"attacks on {_short(front.label)}"))
        if front.hits:
            ax.plot(front.hits, [0.93] * len(front.hits), linestyle="none", marker="v", markersize=5, color=colour,
                    markeredgecolor="black", markeredgewidth=0.5, transform=ax.get_xaxis_transform(), clip_on=False)
            handles.append(Line2D([], [], linestyle="none", marker="v", color=colour, markeredgecolor="black",
                                  markeredgewidth=0.5, label=f"hit on {_short(front.label)}"))
    ax.set_ylim(0, max(float(bottom.max()), 0.1) * 1.3)
    ax.set_ylabel("attacks per day\n(" + ("daily counts" if width == 1 else f"bins of {width:.3g} days") + ")")
    ax.set_title("Attacks by front, and the trial's other events", loc="left", pad=26)
    ax.tick_params(labelbottom=False)

    present: dict[str, None] = {}
    for i, row in enumerate(rows):
        y = len(rows) - 1 - i
        for start, end in row.spans:
            ax_strip.broken_barh([(start, max(end - start, horizon_days / 400))], (y - 0.2, 0.4), color=SPAN,
                                 alpha=0.6, linewidth=0)
            present.setdefault("span")
        for kind, days in row.marks.items():
            if days:
                style, _ = MARKS[kind]
                ax_strip.plot(days, [y] * len(days), linestyle="none", **style)
                present.setdefault(kind)
        ax_strip.text(0.003, y + 0.5, _short(row.label), transform=blended_transform_factory(ax_strip.transAxes,
                      ax_strip.transData), fontsize=6.5, color="#4a5568", ha="left", va="center")
    ax_strip.set_yticks([])
    ax_strip.set_ylim(-0.5, max(len(rows), 1) - 0.05)
    ax_strip.spines["left"].set_visible(False)
    ax_strip.set_xlim(0, horizon_days)
    ax_strip.set_xlabel("days from the start")
    for kind in present:
        if kind == "span":
            handles.append(Patch(color=SPAN, alpha=0.6, label="restraint or pause in force"))
        else:
            style, words = MARKS[kind]
            handles.append(Line2D([], [], linestyle="none", label=words, **style))

    key = []
    numbers: dict[float, list[str]] = {}
    for n, (label, day) in enumerate(milestones, start=1):
        numbers.setdefault(day, []).append(str(n))
        key.append(f"{n}.  day {day:.1f}: {label}")
        for a in (ax, ax_strip):
            a.axvline(day, color=MILESTONE, linewidth=1, alpha=0.8, zorder=0)
    on_top = blended_transform_factory(ax.transData, ax.transAxes)
    previous, level = -math.inf, 0
    for day, ns in sorted(numbers.items()):
        level = (level + 1) % 3 if day - previous < horizon_days * 0.04 else 0  # close numbers stacked, not overlaid
        previous = day
        ax.text(day, 1.0 + 0.07 * level, ",".join(ns), transform=on_top, ha="center", va="bottom", fontsize=7,
                color=MILESTONE, fontweight="bold")
    if milestones:
        handles.append(Line2D([], [], color=MILESTONE, linewidth=1, label="milestone reached (numbered: see below)"))
    below = [ax_key.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, 1.0), ncols=3, fontsize=7,
                           frameon=False, borderaxespad=0.0)]
    if key:
        below.append(ax_key.text(0.0, 1.0 - legend_inches / key_inches, "Milestones reached\n" + "\n".join(key),
                                 transform=ax_key.transAxes, fontsize=7, va="top", ha="left", color=MILESTONE,
                                 linespacing=1.35))
    # The legend and the key are left out of the layout, which would narrow every panel to their width (the key axes
    # is sized for them), and taken back in for the saved figure's tight box.
    for artist in below:
        artist.set_in_layout(False)
    fig.tight_layout(h_pad=0.6)
    for artist in below:
        artist.set_in_layout(True)
    return to_svg(fig)


def _curve(panel: HarmPanel, horizon_days: float) -> tuple[np.ndarray, np.ndarray]:
    """The level over [0, horizon]: 0 until the first deposit, then each deposit's level decaying with
    `decay_days` until the next (or held, without decay)."""
    days = np.asarray(panel.days, dtype=float)
    levels = np.asarray(panel.levels, dtype=float)
    ends = np.append(days[1:], max(horizon_days, float(days[-1])))
    xs, ys = [np.array([0.0, days[0]])], [np.array([0.0, 0.0])]
    step = horizon_days / 300
    for t, end, level in zip(days, ends, levels, strict=True):
        if panel.decay_days is None:
            x = np.array([t, end])
            y = np.array([level, level])
        else:
            x = np.linspace(t, end, max(2, math.ceil((end - t) / step) + 1))
            y = level * np.exp((t - x) / panel.decay_days)
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def harm_panels(horizon_days: float, panels: list[HarmPanel]) -> str:
    """One panel per account, two to a row: the level (`_curve`), a dashed line at each rule's threshold labelled with
    the rules at it, each decision a circle at the level its rule saw (filled: acted; hollow: held back)."""
    cols = 2 if len(panels) > 1 else 1
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH, 2.3 * rows + 0.4), squeeze=False)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        x, y = _curve(panel, horizon_days)
        ax.plot(x, y, color=BLUE, linewidth=1)
        at: dict[float, list[str]] = {}
        for rule, threshold in panel.thresholds:
            at.setdefault(threshold, []).append(rule)
        right = blended_transform_factory(ax.transAxes, ax.transData)
        for threshold, rules in at.items():
            ax.axhline(threshold, color="black", linestyle="--", linewidth=0.8)
            ax.text(0.99, threshold, ", ".join(rules), transform=right, ha="right", va="bottom", fontsize=6.5,
                    clip_on=False, zorder=4, bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none",
                                                   "pad": 0.6})
        for acted in (True, False):
            chosen = [(d, v) for d, v, a in panel.decisions if a == acted]
            if chosen:
                style, _ = MARKS["acts" if acted else "holds back"]
                ax.plot([d for d, _ in chosen], [v for _, v in chosen], linestyle="none", zorder=3, **style)
        high = max([float(np.max(y))] + [t for _, t in panel.thresholds] + [v for _, v, _ in panel.decisions])
        ax.set_ylim(0, high * 1.18 if high > 0 else 1.0)
        ax.set_xlim(0, horizon_days)
        ax.set_title("\n".join(textwrap.wrap(panel.title, 52)), loc="left", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("days from the start", fontsize=7)
        ax.set_ylabel("harm", fontsize=7)
    handles = [Line2D([], [], color=BLUE, linewidth=1, label="level"),
               Line2D([], [], color="black", linestyle="--", linewidth=0.8, label="a rule's threshold"),
               Line2D([], [], linestyle="none", label=MARKS["acts"][1], **MARKS["acts"][0]),
               Line2D([], [], linestyle="none", label=MARKS["holds back"][1], **MARKS["holds back"][0])]
    top = 1.0 - 0.35 / fig.get_figheight()
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1.0), ncols=4, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, top))
    return to_svg(fig)
