"""Figures for reports, returned as inline SVG text (no files, no network).

SVG output is made deterministic (fixed hash salt, no date), so a rebuilt report is the same.
"""

from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Every figure of every report is made here (the other figure modules import `plt` from this one), so these
# settings hold for all: `text.parse_math` off draws a label with `$` in it as the user wrote it, never as maths.
matplotlib.rcParams.update({
    "text.parse_math": False,
    "svg.hashsalt": "escalation-sim",
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
})

BLUE = "#2b6cb0"
GREY = "#718096"


def to_svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    return text[text.index("<svg"):]


def probability_bars(labels: list[str], estimate: list[float], lo: list[float], hi: list[float],
                     title: str) -> str:
    """Horizontal bars of probabilities with 95% interval whiskers, first label on top."""
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(labels) + 1.0))
    y = list(range(len(labels)))[::-1]
    err = [[e - lo_ for e, lo_ in zip(estimate, lo, strict=True)], [hi_ - e for e, hi_ in zip(estimate, hi, strict=True)]]
    ax.barh(y, estimate, color=BLUE, alpha=0.8, xerr=err, capsize=3, ecolor="black")
    for yi, e, h in zip(y, estimate, hi, strict=True):
        ax.text(h + 0.015, yi, f"{e:.1%}", va="center", fontsize=8)
    ax.set_yticks(y, labels)
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("probability by the horizon (bars: 95% Wilson interval)")
    ax.set_title(title, loc="left")
    return to_svg(fig)


def partial_months(fig, ax_bottom, months: list[str], note: str) -> None:
    """Shade the months marked * (partial, scaled to a whole month) in every panel and say so under the figure."""
    marked = [k for k, m in enumerate(months) if m.endswith("*")]
    if not marked:
        return
    for ax in fig.axes:
        for k in marked:
            ax.axvspan(k - 0.5, k + 0.5, color=GREY, alpha=0.12, linewidth=0)
    ax_bottom.annotate(note, xy=(0, 0), xycoords="axes fraction", xytext=(0, -52), textcoords="offset points",
                       fontsize=7, color=GREY, va="top")


def fan_chart(months: list[str], panels: list[tuple[str, dict[str, list[float]]]], note: str = "") -> str:
    """One panel per series: 5-95% and 25-75% bands across trials, median line, mean dashed. Months marked *
    are partial (the caller scaled them to a whole month): they are shaded, with `note` under the figure."""
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.5, 2.4 * len(panels)), squeeze=False)
    x = list(range(len(months)))
    for ax, (title, q) in zip(axes[:, 0], panels, strict=True):
        ax.fill_between(x, q["q05"], q["q95"], color=BLUE, alpha=0.15, label="5-95%")
        ax.fill_between(x, q["q25"], q["q75"], color=BLUE, alpha=0.3, label="25-75%")
        ax.plot(x, q["q50"], color=BLUE, label="median")
        ax.plot(x, q["mean"], color="black", linestyle="--", linewidth=1, label="mean")
        ax.set_title(title, loc="left")
        ax.set_ylabel("per month")
        ax.set_xticks(x, months, rotation=45, ha="right", fontsize=7)
        ax.set_ylim(bottom=0)
    axes[0, 0].legend(loc="upper right", fontsize=7, ncols=4)
    fig.tight_layout()
    partial_months(fig, axes[-1, 0], months, note)
    return to_svg(fig)


def rung_bars(labels: list[str], shares: list[float]) -> str:
    """Distribution of the highest escalation rung reached per trial."""
    fig, ax = plt.subplots(figsize=(7.5, 2.8))
    x = list(range(len(labels)))
    ax.bar(x, shares, color=GREY)
    for xi, s in zip(x, shares, strict=True):
        ax.text(xi, s + 0.01, f"{s:.0%}", ha="center", fontsize=7)
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("share of trials")
    ax.set_ylim(0, min(1.0, max(shares + [0.0]) + 0.12))
    ax.set_title("Highest rung of the escalation ladder reached", loc="left")
    return to_svg(fig)


def risk_curves(days, curves: list[tuple[str, object, object, object]], marks: list[tuple[float, str]],
                title: str) -> str:
    """P(reached by day t) for each milestone, with its 95% band, and the scheduled shocks as dashed
    vertical lines labelled at the top."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    colours = plt.get_cmap("tab10")
    for k, (label, p, lo, hi) in enumerate(curves):
        colour = colours(k % 10)
        ax.step(days, p, where="post", color=colour, linewidth=1.4, label=label)
        ax.fill_between(days, lo, hi, step="post", color=colour, alpha=0.15, linewidth=0)
    for day, label in marks:
        ax.axvline(day, color=GREY, linestyle="--", linewidth=0.8)
        ax.annotate(label, xy=(day, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -2),
                    textcoords="offset points", rotation=90, va="top", fontsize=7, color=GREY)
    ax.set_xlim(float(days[0]), float(days[-1]))
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("day of the horizon")
    ax.set_ylabel("P(reached by that day)")
    ax.set_title(title, loc="left")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return to_svg(fig)


def transition_matrix(sources: list[str], targets: list[str], shares) -> str:
    """The flow from rung to rung: cell (from, to) is the share of trials in which `to` was the
    next rung reached after `from` ("start": the first rung; "end": no further rung)."""
    import numpy as np

    shares = np.asarray(shares, dtype=float)
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(sources) + 2.4))
    ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=max(float(shares.max()), 1e-9), aspect="auto")
    for i in range(shares.shape[0]):
        for j in range(shares.shape[1]):
            if shares[i, j] >= 0.005:
                ax.text(j, i, f"{shares[i, j]:.0%}", ha="center", va="center", fontsize=7,
                        color="white" if shares[i, j] > 0.6 * shares.max() else "black")
    ax.set_xticks(range(len(targets)), targets, rotation=35, ha="right", fontsize=7)
    ax.set_yticks(range(len(sources)), sources, fontsize=7)
    ax.set_xlabel("next rung reached")
    ax.set_ylabel("rung reached")
    ax.set_title("From rung to rung: share of trials taking each step", loc="left")
    return to_svg(fig)


def prior_posterior(panels: list[tuple[str, object, list[float], list[float]]]) -> str:
    """One panel per parameter: the posterior sample (weighted histogram) over the prior density."""
    import numpy as np

    cols = 3
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(7.5, 2.2 * rows), squeeze=False)
    for ax, (name, prior, values, weights) in zip(axes.flat, panels, strict=False):
        values, weights = np.asarray(values), np.asarray(weights)
        lo = min(float(prior.ppf(0.005)), float(values.min()))
        hi = max(float(prior.ppf(0.995)), float(values.max()))
        grid = np.linspace(lo, hi, 200)
        ax.hist(values, bins=30, range=(lo, hi), weights=weights, density=True, color=BLUE, alpha=0.6, label="posterior")
        ax.plot(grid, prior.pdf(grid), color="black", linewidth=1, label="prior")
        ax.set_title(name, loc="left", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return to_svg(fig)


def tolerance_path(generations: list[tuple[str, list[int], list[float], list[float]]]) -> str:
    """ε and acceptance rate per generation, for each fit."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.5, 2.6))
    for label, index, epsilon, acceptance in generations:
        ax1.plot(index[1:], epsilon[1:], marker="o", label=label)
        ax2.plot(index, acceptance, marker="o", label=label)
    ax1.set_title("tolerance ε", loc="left")
    ax1.set_xlabel("generation")
    ax2.set_title("acceptance rate", loc="left")
    ax2.set_xlabel("generation")
    ax2.set_yscale("log")
    ax1.legend(fontsize=7)
    fig.tight_layout()
    return to_svg(fig)


def observed_fan(months: list[str], panels: list[tuple[str, dict[str, list[float]], list[tuple[int, float, float]]]]) -> str:
    """Monthly posterior-predictive bands with the observed ranges (bars) where a target covers a month."""
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.5, 2.6 * len(panels)), squeeze=False)
    x = list(range(len(months)))
    for ax, (title, q, observed) in zip(axes[:, 0], panels, strict=True):
        ax.fill_between(x, q["q05"], q["q95"], color=BLUE, alpha=0.15, label="5-95%")
        ax.fill_between(x, q["q25"], q["q75"], color=BLUE, alpha=0.3, label="25-75%")
        ax.plot(x, q["q50"], color=BLUE, label="median")
        for i, lo, hi in observed:
            if lo == hi:
                ax.plot([i], [lo], marker="o", color="#c53030", markersize=5)
            else:
                top = hi if hi < 1e9 else lo * 1.5
                ax.plot([i, i], [lo, top], color="#c53030", linewidth=3, solid_capstyle="butt")
        ax.plot([], [], color="#c53030", linewidth=3, label="observed")
        ax.set_title(title, loc="left")
        ax.set_ylabel("per month")
        ax.set_xticks(x, months, rotation=45, ha="right", fontsize=7)
        ax.set_ylim(bottom=0)
    axes[0, 0].legend(loc="upper left", fontsize=7, ncols=4)
    fig.tight_layout()
    return to_svg(fig)
