"""Scenario files: schema, loading, validation."""

from sim.scenario.loading import config_hash, load_scenario, to_plain
from sim.scenario.schema import Scenario

__all__ = ["Scenario", "config_hash", "load_scenario", "to_plain"]
