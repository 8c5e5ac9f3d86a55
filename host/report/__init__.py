"""Run reports: Pareto front files, plots, the best candidate's export and ``report.html``.

``generate_report(run_dirs)`` is what ``edgeprune report`` and the end of ``edgeprune search`` call.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edgeprune.host.report import plots
from edgeprune.host.report.best import export_best
from edgeprune.host.report.html import write_html
from edgeprune.host.report.load import load_run
from edgeprune.host.search.front import write_front

log = logging.getLogger(__name__)


def generate_report(run_dirs: list[Path], out_dir: Path | None = None) -> Path:
    """Regenerate each run's front files, plots, best export and ``report.html``.

    With several runs, also writes a comparison (all runs overlaid) to ``out_dir``
    (default: ``<parent of the first run>/comparison``). Returns the path of the report covering
    every run given (the run's own ``report.html`` when there is one run).
    """
    if not run_dirs:
        raise ValueError("give at least one run directory")
    runs = [load_run(Path(d)) for d in run_dirs]
    best_infos: dict[str, dict] = {}
    last = Path()
    for run in runs:
        write_front(run.run_dir, run.front, run.test_quality, run.quality,
                    run.best.digest if run.best is not None else None)
        info = export_best(run.run_dir, run.best, run.options)
        if info is not None:
            best_infos[str(run.run_dir)] = info
        pareto, areas = plots.plot_front_mapped([run], run.run_dir / "pareto.png")
        images = [
            pareto,
            plots.plot_strategies([run], run.run_dir / "strategies.png"),
            plots.plot_layers(run, run.run_dir / "layers.png"),
        ]
        last = write_html(run.run_dir / "report.html", f"edgeprune search — {run.label}", [run], images, best_infos,
                          {pareto: areas})
        log.info("report written to %s", last)
    if len(runs) == 1:
        return last
    out = Path(out_dir) if out_dir is not None else runs[0].run_dir.parent / "comparison"
    out.mkdir(parents=True, exist_ok=True)
    pareto, areas = plots.plot_front_mapped(runs, out / "pareto.png")
    images = [pareto, plots.plot_strategies(runs, out / "strategies.png")]
    return write_html(out / "report.html", f"edgeprune comparison of {len(runs)} runs", runs, images, best_infos,
                      {pareto: areas})
