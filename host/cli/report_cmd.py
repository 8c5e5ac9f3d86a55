"""``edgeprune report``."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from edgeprune.host.cli.friendly_errors import friendly_errors
from edgeprune.host.report import generate_report


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Where the comparison of several runs goes (default: <parent of first run>/comparison).")
@friendly_errors
def command(run_dirs: tuple[str, ...], out: str | None) -> None:
    """Regenerate front.json/csv, plots, the best export and report.html of search runs.

    Several runs are also overlaid in one comparison report.

    \b
    Examples:
      edgeprune report runs/weather-gru-ppo-20250101-120000
      edgeprune report runs/a runs/b runs/c --out runs/compare
    """
    path = generate_report([Path(d) for d in run_dirs], Path(out) if out else None)
    Console().print(f"report: {path.resolve()}")
