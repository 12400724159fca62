"""Rendering report pages from the package's templates."""

from __future__ import annotations

from pathlib import Path

import jinja2

from sim.runs.storage import write_text

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("sim.reports", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, path: Path, **context) -> None:
    write_text(path, _env.get_template(template).render(**context))
