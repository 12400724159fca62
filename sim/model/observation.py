"""What a tracker reports of a series: claims drawn from the launches a trial made.

The model's series count launches; the targets count what someone reported. `Reporting` (the
schema's) turns the launches in a time bin into claims: each launch is claimed with probability
`claimed` (a binomial thinning), and spurious claims (inflated, double-counted or invented) are
added as a Poisson count of mean `spurious_per_launch` × launches + `spurious_per_day` × days.
So, given L launches in d days, claims have mean L·(claimed + spurious_per_launch) +
d·spurious_per_day and variance L·claimed·(1 − claimed) + L·spurious_per_launch +
d·spurious_per_day. With the defaults (claimed 1, no spurious claims) the claims are the
launches and nothing is drawn.

The draws come from one stream of the trial (`REPORTING_STREAM`), apart from every stream of the
world, so that reporting never moves what the world does.
"""

from __future__ import annotations

from collections.abc import Sequence

from sim.model.streams import Stream

REPORTING_STREAM = "reporting:claims"  # a name no actor, rule or shock can have (names have no colon)
FIELDS = ("claimed", "spurious_per_launch", "spurious_per_day")


def is_identity(reporting) -> bool:
    """Whether `reporting` reports every launch once and nothing else."""
    return reporting.claimed == 1.0 and reporting.spurious_per_launch == 0.0 and reporting.spurious_per_day == 0.0


def claims(launched: int, days: float, reporting, stream: Stream) -> int:
    """The claims of `launched` launches over `days` days, drawn from `stream`."""
    if is_identity(reporting):
        return launched
    kept = stream.binomial(launched, reporting.claimed)
    return kept + stream.poisson(reporting.spurious_per_launch * launched + reporting.spurious_per_day * days)


def claimed_bins(launched: Sequence[int], widths: Sequence[float], reporting, stream: Stream) -> list[int]:
    """Claims in each time bin (of the given widths in days), drawn bin by bin in order."""
    return [claims(n, d, reporting, stream) for n, d in zip(launched, widths, strict=True)]
