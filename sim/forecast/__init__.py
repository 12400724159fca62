"""Forecasts from an origin date, conditioned on the history observed before it.

A scenario with a `[forecast]` table forecasts from its start date (the origin). Its
`forecast.observed` names a calibration targets file: the file's `[fit] scenario` is the history
replay, and its counts and events before the origin are what each trial's history must agree
with. `resolve_forecast` reads them into `forecast.resolved` (the replay cut at the origin, the
conditions in the replay's days, the tolerance), which the engine runs (`sim.engine.history`);
every command that runs a scenario resolves it first, and the engine refuses a forecast that is
not resolved.
"""

from sim.forecast.resolve import resolve_forecast

__all__ = ["resolve_forecast"]
