"""How the console and the reports print a number: one format, so that a value reads the same everywhere.

Three significant digits (0.044, 1.27, 516), thousands in full with separators (12,345), a real minus sign, and a
dash for a missing value. A small mean stays visibly non-zero (`strikes_by_us 0.044`, not 0.0), and a count's
quantile, a whole number, prints as one.
"""

from __future__ import annotations

import math

MISSING = "—"


def number(x: float | None) -> str:
    """x to three significant digits (thousands in full); NaN or None as a dash."""
    if x is None or not math.isfinite(x):
        return MISSING
    text = f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"
    return "0" if text == "-0" else text.replace("-", "−")


def signed(x: float | None, decimals: int | None = None) -> str:
    """A difference: `number` with a + before a positive value; with `decimals`, that many decimals (a
    difference of probabilities: three, as the probabilities are printed)."""
    if decimals is None or x is None or not math.isfinite(x):
        return ("+" if x is not None and math.isfinite(x) and x > 0 else "") + number(x)
    text = f"{x:+.{decimals}f}"
    return text[1:] if float(text) == 0 else text.replace("-", "−")


def interval(lo: float | None, hi: float | None, decimals: int | None = None) -> str:
    """[lo, hi] of a difference, or a dash when either end is missing."""
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return MISSING
    return f"[{signed(lo, decimals)}, {signed(hi, decimals)}]"


def estimate(metric: str, x: float | None) -> str:
    """A metric's estimate as printed: a probability (`p_...`) to three decimals, anything else by `number`."""
    return probability(x) if metric.startswith("p_") else number(x)


def decimals(metric: str) -> int | None:
    """The decimals a metric's differences are printed with: three for a probability, else significant digits."""
    return 3 if metric.startswith("p_") else None


def probability(p: float | None) -> str:
    """A probability to three decimals, as tables align them; one below 0.001 that is not zero to three significant
    digits, so it does not read as 0.000."""
    if p is None or not math.isfinite(p):
        return MISSING
    return number(p) if 0 < p < 0.0005 else f"{p:.3f}"
