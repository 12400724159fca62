"""The report of a comparison folder (placeholder until the full report lands)."""

from __future__ import annotations

from pathlib import Path

from sim.runs.manifest import read_json
from sim.runs.storage import write_text


def write_compare_report(out: Path, *, manifest: dict) -> None:
    names = ", ".join(s["name"] for s in manifest["scenarios"])
    write_text(out / "report.html", f"<html><body><h1>{names}</h1></body></html>\n")


def rebuild_compare_report(out: Path) -> None:
    write_compare_report(out, manifest=read_json(out / "manifest.json"))
