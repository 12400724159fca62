"""Escalation milestones and the ladder.

A milestone is reached at the first time `count` matching incidents have fallen within
`within_days` (or at the first matching incident when count is 1). Its rung is its place in
the scenario's ladder (1 = lowest; 0 for a milestone tracked off the ladder); a trial's max rung
is the highest rung it reached, 0 if none.
"""

from __future__ import annotations

from collections import deque


class MilestoneTracker:
    __slots__ = ("name", "rung", "min_hits", "min_casualties", "min_deaths", "unconditional",
                 "count", "within_days", "times", "t")

    def __init__(self, name: str, rung: int, spec):
        self.name = name
        self.rung = rung
        self.min_hits = spec.when.min_hits
        self.min_casualties = spec.when.min_casualties
        self.min_deaths = spec.when.min_deaths
        self.unconditional = not (self.min_hits or self.min_casualties or self.min_deaths)
        self.count = spec.count
        self.within_days = spec.within_days
        self.times: deque[float] = deque()
        self.t: float | None = None

    def observe(self, now: float, hits: int, casualties: int, deaths: int) -> None:
        if hits < self.min_hits or casualties < self.min_casualties or deaths < self.min_deaths:
            return
        if self.count == 1:
            self.t = now
            return
        times = self.times
        times.append(now)
        if self.within_days is not None:
            while now - times[0] >= self.within_days:  # the window is (now − W, now], as for harm
                times.popleft()
        if len(times) >= self.count:
            self.t = now


def max_rung(trackers: list[MilestoneTracker]) -> int:
    return max((m.rung for m in trackers if m.t is not None), default=0)
