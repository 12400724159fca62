"""Figures of a sweep report, as inline SVG: tornado, index bars, Morris scatter, grid heat map and
line, and small-multiples scatter of an output against each parameter."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from sim.reports.figures import BLUE, GREY, plt, to_svg

WIDTH = 7.0


def fmt(x: float) -> str:
    """Three significant digits, thousands in full, a real minus sign; NaN as a dash."""
    if x is None or not math.isfinite(x):
        return "—"
    text = f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"
    return text.replace("-", "−")


def _finite(*values: float) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def tornado(rows: list[dict], base: float, base_lo: float, base_hi: float, xlabel: str) -> str:
    """One bar per parameter (first row on top) from the output at the parameter's low end (grey) to
    its high end (blue), through the base estimate; whiskers are each end's 95% Monte Carlo interval."""
    n = len(rows)
    fig, ax = plt.subplots(figsize=(WIDTH, 0.42 * n + 1.3))
    if _finite(base_lo, base_hi):
        ax.axvspan(base_lo, base_hi, color=GREY, alpha=0.12, linewidth=0)
    if _finite(base):
        ax.axvline(base, color="black", linewidth=1)
    ends = [v for r in rows for v in (r["low_lo"], r["low_hi"], r["high_lo"], r["high_hi"], r["low"], r["high"])
            if _finite(v)] + [v for v in (base, base_lo, base_hi) if _finite(v)]
    span = (max(ends) - min(ends)) if ends else 1.0
    pad = 0.012 * (span or 1.0)
    for k, r in enumerate(rows):
        y = n - 1 - k
        centre = base if _finite(base) else (r["low"] + r["high"]) / 2
        tips = [(r["low"], r["low_lo"], r["low_hi"], r["low_value"], GREY, -1),
                 (r["high"], r["high_lo"], r["high_hi"], r["high_value"], BLUE, 1)]
        tips = [e for e in tips if _finite(e[0])]
        sides = [1 if v > centre else -1 if v < centre else default for v, *_, default in tips]
        split = len(tips) == 2 and sides[0] == sides[1]
        for (value, lo, hi, label, colour, _), side in zip(tips, sides, strict=True):
            yy, h = (y + 0.16 * (1 if colour == GREY else -1), 0.3) if split else (y, 0.6)
            ax.barh(yy, value - centre, left=centre, height=h, color=colour, alpha=0.85)
            if _finite(lo, hi):
                _interval_bar(ax, lo, hi, yy, horizontal=True)
            edge = (hi if side > 0 else lo) if _finite(lo, hi) else value
            ax.text(edge + side * pad, yy, label, va="center", ha="left" if side > 0 else "right",
                    fontsize=6.5 if split else 7, color="#4a5568")
    ax.set_yticks(range(n), [r["label"] for r in rows][::-1])
    if ends:
        ax.set_xlim(min(ends) - 0.14 * (span or 1.0), max(ends) + 0.14 * (span or 1.0))
    handles = [Patch(color=GREY, label="parameter at its low end"), Patch(color=BLUE, label="parameter at its high end"),
               Line2D([], [], color="black", linewidth=1, label=f"base scenario ({fmt(base)})")]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3, fontsize=7, frameon=False)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xlabel(xlabel)
    return to_svg(fig)


def index_bars(labels: list[str], series: list[tuple[str, list[float], list[float], list[float], str]],
               xlabel: str, xlim: tuple[float, float] | None = None) -> str:
    """Grouped horizontal bars, first label on top, one bar per series with its 95% interval; NaN bars
    are left out."""
    n, m = len(labels), len(series)
    fig, ax = plt.subplots(figsize=(WIDTH, (0.2 * m + 0.2) * n + 1.1))
    height = 0.8 / m
    for s, (_name, est, lo, hi, colour) in enumerate(series):
        for k in range(n):
            y = n - 1 - k + (m - 1 - 2 * s) * height / 2
            if not _finite(est[k]):
                continue
            ax.barh(y, est[k], height=height * 0.9, color=colour, alpha=0.85)
            if _finite(lo[k], hi[k]):
                _interval_bar(ax, lo[k], hi[k], y, horizontal=True)
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_yticks(range(n), labels[::-1])
    ax.set_ylim(-0.6, n - 0.4)
    if xlim:
        ax.set_xlim(*xlim)
    if m > 1:
        ax.legend(handles=[Patch(color=c, alpha=0.85, label=name) for name, *_, c in series], loc="lower center",
                  bbox_to_anchor=(0.5, 1.0), ncols=m, fontsize=7, frameon=False)
    ax.set_xlabel(xlabel)
    return to_svg(fig)


def _interval_bar(ax, lo: float, hi: float, at: float, *, horizontal: bool, colour: str = "black") -> None:
    """A 95% interval drawn where it lies, even if it does not contain the estimate."""
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    if horizontal:
        ax.errorbar(mid, at, xerr=half, fmt="none", ecolor=colour, elinewidth=0.8, capsize=2.5)
    else:
        ax.errorbar(at, mid, yerr=half, fmt="none", ecolor=colour, elinewidth=0.8, capsize=2.5)


def morris_scatter(labels: list[str], mu_star: list[float], lo: list[float], hi: list[float], sigma: list[float],
                   xlabel: str) -> str:
    """σ against μ* per parameter, μ* with its 95% interval; the line σ = μ* separates mostly linear,
    additive effects (below) from non-linear or interacting ones (above)."""
    fig, ax = plt.subplots(figsize=(WIDTH, 3.8))
    keep = [k for k in range(len(labels)) if _finite(mu_star[k], sigma[k])]
    right = [hi[k] if _finite(hi[k]) else mu_star[k] for k in keep]
    left = [lo[k] if _finite(lo[k]) else mu_star[k] for k in keep]
    top_x = max(right + [0.0]) * 1.3 or 1.0
    top_y = max([sigma[k] for k in keep] + [0.0]) * 1.2 or 1.0
    reach = min(top_x, top_y)
    ax.plot([0, reach], [0, reach], color=GREY, linewidth=0.8, linestyle="--", alpha=0.6)
    ax.text(reach, reach, " σ = μ*", color=GREY, fontsize=7, ha="left", va="center")
    for k in keep:
        if _finite(lo[k], hi[k]):
            _interval_bar(ax, lo[k], hi[k], sigma[k], horizontal=True, colour=BLUE)
        ax.plot(mu_star[k], sigma[k], "o", color=BLUE, markersize=4)
    ax.set_xlim(0, top_x)
    ax.set_ylim(0, top_y)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("σ (spread of the elementary effects)")
    groups: list[list[int]] = []
    for k in keep:
        for g in groups:
            j = g[0]
            if abs(mu_star[k] - mu_star[j]) / top_x < 0.01 and abs(sigma[k] - sigma[j]) / top_y < 0.01:
                g.append(k)
                break
        else:
            groups.append([k])
    items = []
    for g in groups:
        i = [keep.index(k) for k in g]
        items.append((mu_star[g[0]], sigma[g[0]], max(right[j] for j in i), min(left[j] for j in i),
                      ", ".join(labels[k] for k in g)))
    obstacles = [(left[i], right[i], sigma[k]) for i, k in enumerate(keep)]
    _place_labels(fig, ax, items, obstacles)
    return to_svg(fig)


def _place_labels(fig, ax, items: list[tuple[float, float, float, float, str]],
                  obstacles: list[tuple[float, float, float]]) -> None:
    """Each label beside its point's interval, right or left, else the nearest free place above or
    below (with a thin leader line), so that no label overlaps another label or an interval."""
    renderer = fig.canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    taken = []
    for x_from, x_to, y in obstacles:
        (a, py), (b, _) = ax.transData.transform([(x_from, y), (x_to, y)])
        taken.append((a - 4, py - 4, b + 4, py + 4))
    inverse = ax.transData.inverted()
    for x, y, x_right, x_left, text in sorted(items, key=lambda i: (-i[1], i[0], i[4])):
        t = ax.text(x, y, text, fontsize=7, va="center")
        extent = t.get_window_extent(renderer)
        w, h = extent.width + 2, extent.height + 1
        right, py = ax.transData.transform((x_right, y))
        left = ax.transData.transform((x_left, y))[0]
        candidates = []
        for k in range(0, 16):
            for dy in ((0,) if k == 0 else (k * h, -k * h)):
                candidates += [(right + 4, py + dy, "left"), (left - 4, py + dy, "right")]
        chosen = candidates[0]
        for x0, y0, ha in candidates:
            rect = (x0, y0 - h / 2, x0 + w, y0 + h / 2) if ha == "left" else (x0 - w, y0 - h / 2, x0, y0 + h / 2)
            inside = box.x0 <= rect[0] and rect[2] <= box.x1 + 30 and box.y0 <= rect[1] and rect[3] <= box.y1
            if inside and not any(rect[0] < o[2] and o[0] < rect[2] and rect[1] < o[3] and o[1] < rect[3]
                                  for o in taken):
                chosen = (x0, y0, ha)
                taken.append(rect)
                break
        x0, y0, ha = chosen
        t.set_position(inverse.transform((x0, y0)))
        t.set_ha(ha)
        if abs(y0 - py) > h / 2:
            start = inverse.transform((x0, y0))
            end = inverse.transform((x0, py))
            ax.plot([start[0], end[0]], [start[1], end[1]], color=GREY, linewidth=0.5)


def heat_map(row_values: list[float], col_values: list[float], z: np.ndarray, row_label: str, col_label: str,
             value_label: str) -> str:
    """The output over two parameters' values: one cell per pair (rows bottom to top), annotated."""
    ny, nx = z.shape
    fig, ax = plt.subplots(figsize=(WIDTH, min(0.42 * ny + 1.6, 7.0)))
    finite = z[np.isfinite(z)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 0.5 * (abs(vmin) or 1.0), vmax + 0.5 * (abs(vmax) or 1.0)
    mesh = ax.pcolormesh(np.arange(nx + 1) - 0.5, np.arange(ny + 1) - 0.5, np.ma.masked_invalid(z), cmap="Blues",
                         vmin=vmin, vmax=vmax, edgecolors="white", linewidth=0.5)
    size = 8 if nx <= 8 else 7 if nx <= 12 else None
    if size:
        for i in range(ny):
            for j in range(nx):
                v = z[i, j]
                dark = math.isfinite(v) and (v - vmin) / (vmax - vmin) > 0.6
                ax.text(j, i, fmt(v), ha="center", va="center", fontsize=size, color="white" if dark else "black")
    ax.set_xticks(range(nx), [f"{v:g}" for v in col_values], fontsize=7, rotation=0 if nx <= 10 else 45)
    ax.set_yticks(range(ny), [f"{v:g}" for v in row_values], fontsize=7)
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    bar = fig.colorbar(mesh, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label(value_label, fontsize=7)
    bar.ax.tick_params(labelsize=7)
    return to_svg(fig)


def grid_line(values: list[float], est: list[float], lo: list[float], hi: list[float], xlabel: str, ylabel: str,
              log: bool) -> str:
    """The output at each value of a single grid parameter, with each point's 95% Monte Carlo interval."""
    fig, ax = plt.subplots(figsize=(WIDTH, 2.8))
    x, e = np.asarray(values, float), np.asarray(est, float)
    err = np.vstack([np.clip(e - np.asarray(lo, float), 0, None), np.clip(np.asarray(hi, float) - e, 0, None)])
    ax.errorbar(x, e, yerr=err, fmt="o-", color=BLUE, ecolor=BLUE, elinewidth=0.8, capsize=3, markersize=4)
    if log:
        ax.set_xscale("log")
    if len(x) <= 12:
        ax.set_xticks(x, [f"{v:g}" for v in x], fontsize=7)
        ax.minorticks_off()
    elif log:
        _log_ticks(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return to_svg(fig)


def scatter_panels(panels: list[tuple[str, list[float], list[float], list[float], list[float], bool]],
                   ylabel: str, of: int | None = None) -> str:
    """One small panel per parameter: the output at each design point against that parameter's value,
    with the points' 95% Monte Carlo intervals (faint). `of`: the design's number of points, when the
    panels show only a sample of them (said in the title)."""
    cols = 3
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH, 1.9 * rows + 0.3), squeeze=False, sharey=True)
    for ax, (name, x, y, lo, hi, log) in zip(axes.flat, panels, strict=False):
        x, y = np.asarray(x, float), np.asarray(y, float)
        err = np.vstack([np.clip(y - np.asarray(lo, float), 0, None), np.clip(np.asarray(hi, float) - y, 0, None)])
        ax.errorbar(x, y, yerr=err, fmt="o", color=BLUE, ecolor=BLUE, elinewidth=0.5, alpha=0.7, markersize=2.5,
                    capsize=0)
        if log:
            ax.set_xscale("log")
            _log_ticks(ax)
        ax.set_title(name + (" (log scale)" if log else ""), loc="left", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    shown = len(panels[0][1]) if panels else 0
    where = (f"at {shown:,} of the {of:,} points (a random sample, fixed seed)" if of is not None and of > shown
             else "at each point")
    fig.suptitle(f"{ylabel} {where}, against each parameter", x=0.01, ha="left", fontsize=8)
    fig.tight_layout()
    return to_svg(fig)


def _log_ticks(ax) -> None:
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
