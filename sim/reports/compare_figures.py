"""Figures of a comparison report, as inline SVG: one colour per scenario throughout.

Milestone probabilities as grouped bars, Kaplan–Meier curves and ECDFs as small multiples of step
lines, monthly fan charts overlaid, and the distribution of the highest rung of the ladder. Every
function takes already-reduced numbers (a few hundred points a line at most), so the SVG stays small
however many trials the runs have.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from sim.reports.figures import partial_months, plt, to_svg

WIDTH = 7.5
PALETTE = ["#2b6cb0", "#dd6b20", "#2f855a", "#805ad5", "#c53030", "#319795", "#975a16", "#b83280"]
STYLES = ["-", (0, (5, 2)), (0, (1.5, 1.5)), (0, (6, 2, 1.5, 2))]
LEGEND_INCHES = 0.35


def colour(k: int) -> str:
    return PALETTE[k % len(PALETTE)]


def style(k: int):
    """Line style of scenario k: solid, dashed, dotted, dash-dotted in turn, so that lines that coincide (scenarios
    that do not differ there) still show each colour."""
    return STYLES[k % len(STYLES)]


def _legend(fig, names: list[str], *, patches: bool = False) -> None:
    """The scenarios' colours above the panels; lays the figure out to leave room for them."""
    if patches:
        handles = [Patch(color=colour(k), alpha=0.8, label=n) for k, n in enumerate(names)]
    else:
        handles = [Line2D([], [], color=colour(k), linestyle=style(k), label=n) for k, n in enumerate(names)]
    rows = (len(names) + 3) // 4
    top = 1.0 - LEGEND_INCHES * rows / fig.get_figheight()
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1.0), ncols=min(len(names), 4), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0, 1, top))


def _grid(n: int, cols: int, height: float):
    cols = max(1, min(cols, n))
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH, height * rows), squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)[:n]


def milestone_bars(labels: list[str], names: list[str], estimate: list[list[float]], lo: list[list[float]],
                   hi: list[list[float]], title: str) -> str:
    """Horizontal bars grouped by milestone (first on top), one bar per scenario (first on top within a group),
    with 95% interval whiskers; `estimate[s][m]` is NaN where scenario s has no milestone m."""
    n_m, n_s = len(labels), len(names)
    height = 0.8 / n_s
    fig, ax = plt.subplots(figsize=(WIDTH, (0.22 * n_s + 0.18) * n_m + 1.0))
    for s in range(n_s):
        for m in range(n_m):
            e, a, b = estimate[s][m], lo[s][m], hi[s][m]
            if not math.isfinite(e):
                continue
            y = (n_m - 1 - m) + 0.4 - height * (s + 0.5)
            ax.barh(y, e, height=height * 0.9, color=colour(s), alpha=0.8)
            if math.isfinite(a) and math.isfinite(b):
                ax.errorbar(e, y, xerr=[[e - a], [b - e]], fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
            ax.text((b if math.isfinite(b) else e) + 0.012, y, f"{e:.1%}", va="center", fontsize=6.5)
    ax.set_yticks(range(n_m), labels[::-1])
    ax.set_ylim(-0.6, n_m - 0.4)
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("probability by the horizon (whiskers: 95% Wilson interval)")
    ax.set_title(title, loc="left")
    _legend(fig, names, patches=True)
    return to_svg(fig)


def step_panels(panels: list[tuple[str, list[tuple[np.ndarray, np.ndarray]]]], names: list[str], xlabel: str,
                ylabel: str, *, xlim: tuple[float, float] | None = None, fit_y: bool = False, cols: int = 2) -> str:
    """Small multiples: one panel per (title, lines), one step line (x, y; y holds after each x) per scenario.
    The y axis runs from 0 to 1, or with `fit_y` to a little above the highest line (so rare events show)."""
    fig, axes = _grid(len(panels), cols, 2.3)
    for ax, (title, lines) in zip(axes, panels, strict=True):
        ends = [v for x, _ in lines for v in (x[:1], x[-1:]) if len(x)]
        for k, (x, y) in enumerate(lines):
            if len(x):
                ax.step(x, y, where="post", color=colour(k), linestyle=style(k), linewidth=1.2)
        if xlim is None and ends and float(np.min(ends)) == float(np.max(ends)):  # one value in every scenario
            ax.set_xlim(float(ends[0][0]) - 1, float(ends[0][0]) + 1)
        ax.set_title(title, loc="left", fontsize=8)
        top = max((float(np.max(y)) for _, y in lines if len(y)), default=1.0)
        ax.set_ylim(0, min(1.02, max(0.05, 1.15 * top)) if fit_y else 1.02)
        if xlim is not None:
            ax.set_xlim(*xlim)
        ax.tick_params(labelsize=7)
        ax.set_xlabel(xlabel, fontsize=7)
        ax.set_ylabel(ylabel, fontsize=7)
    _legend(fig, names)
    return to_svg(fig)


def histogram_panels(panels: list[tuple[str, list[np.ndarray]]], names: list[str], xlabel: str, *, cols: int = 2,
                     max_bins: int = 40) -> str:
    """Small multiples: one panel per (title, samples), the share of trials per count bin of each scenario as a
    step outline on bins common to all scenarios (whole numbers when the range is small)."""
    fig, axes = _grid(len(panels), cols, 2.3)
    for ax, (title, samples) in zip(axes, panels, strict=True):
        finite = [v[np.isfinite(v)] for v in samples]
        values = np.concatenate([v for v in finite if v.size]) if any(v.size for v in finite) else np.zeros(1)
        low, high = float(values.min()), float(values.max())
        if high - low + 1 <= max_bins:
            bins = np.arange(low - 0.5, high + 1.5)
        else:
            bins = np.linspace(low, high, max_bins + 1)
        for k, v in enumerate(finite):
            if v.size:
                ax.hist(v, bins=bins, weights=np.full(v.size, 1.0 / v.size), histtype="step", color=colour(k),
                        linestyle=style(k), linewidth=1.2)
        ax.set_title(title, loc="left", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel(xlabel, fontsize=7)
        ax.set_ylabel("share of trials", fontsize=7)
    _legend(fig, names)
    return to_svg(fig)


def fan_overlay(months: list[str], panels: list[tuple[str, list[dict[str, list[float]] | None]]],
                names: list[str], note: str = "") -> str:
    """One panel per series: each scenario's median line and 5–95% band across trials, in its colour. Months marked *
    are partial (the caller scaled them to a whole month): they are shaded, with `note` under the figure."""
    fig, axes = plt.subplots(len(panels), 1, figsize=(WIDTH, 2.5 * len(panels)), squeeze=False)
    x = list(range(len(months)))
    for ax, (title, bands) in zip(axes[:, 0], panels, strict=True):
        for k, q in enumerate(bands):
            if q is None:
                continue
            ax.fill_between(x, q["q05"], q["q95"], color=colour(k), alpha=0.15, linewidth=0, step=None)
            ax.plot(x, q["q50"], color=colour(k), linestyle=style(k), linewidth=1.4)
        ax.set_title(title, loc="left")
        ax.set_ylabel("per month")
        ax.set_xticks(x, months, rotation=45, ha="right", fontsize=7)
        ax.set_ylim(bottom=0)
    _legend(fig, names)
    partial_months(fig, axes[-1, 0], months, note)
    return to_svg(fig)


def rung_groups(labels: list[str], names: list[str], shares: list[list[float]]) -> str:
    """Grouped bars: the share of trials whose highest rung is each of `labels`, one bar per scenario."""
    n_s = len(names)
    width = 0.8 / n_s
    fig, ax = plt.subplots(figsize=(WIDTH, 3.0))
    x = np.arange(len(labels))
    top = 0.0
    for s, row in enumerate(shares):
        xs = x - 0.4 + width * (s + 0.5)
        ax.bar(xs, row, width=width * 0.92, color=colour(s), alpha=0.85)
        top = max(top, *row)
        if n_s <= 2:
            for xi, v in zip(xs, row, strict=True):
                ax.text(xi, v + 0.01, f"{v:.0%}", ha="center", fontsize=6.5)
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("share of trials")
    ax.set_ylim(0, min(1.0, top + 0.1) if top < 0.9 else 1.08)
    ax.set_title("Highest rung of the escalation ladder reached", loc="left")
    _legend(fig, names, patches=True)
    return to_svg(fig)
