"""Terminal display of a search: what will run, a progress bar with the best so far, the final table."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from edgeprune.bench.targets import TargetSpec, split_specs
from edgeprune.host.report.headline import headline, no_best_line
from edgeprune.host.report.load import load_run
from edgeprune.host.report.quality import INTERVAL_NOTE
from edgeprune.host.report.table import rich_table
from edgeprune.host.search.final import reference_samples
from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.predictor import run_line as predictor_line
from edgeprune.host.search.rejections import (
    limit_text,
    metric_of,
    rejection_summary,
    with_units,
)
from edgeprune.host.search.run_loop import SearchResult
from edgeprune.host.search.session import Outcome, SearchSession
from edgeprune.host.search.timing import run_account
from edgeprune.host.search.types import QUALITY
from edgeprune.host.tasks.intervals import IntervalError, bootstrap, paired_drop


def describe(options: SearchOptions, run_dir: Path, resumed: bool) -> list[str]:
    """The first lines of a search: everything that was chosen, defaults included."""
    what = options.task if options.model is None else f"{options.task}, model {options.model}"
    if options.data is not None:
        what += f", data {options.data}"
    energy = "cited per-cycle energy model" + (" + CodeCarbon (host)" if options.host_energy else "")
    limits = [f"max quality drop {limit_text(options.max_acc_drop, metric_of(options.task))}"]
    if options.flash_kb is not None:
        limits.append(f"flash ≤ {options.flash_kb:g} KiB")
    if options.ram_kb is not None:
        limits.append(f"RAM ≤ {options.ram_kb:g} KiB")
    device = options.device
    first = TargetSpec.parse(split_specs(device)[0])
    if first.is_qemu:
        device = f"{device} (QEMU Cortex-{first.core.upper()}, instruction counts under -icount)"
    return [
        f"edgeprune search {'(resumed) ' if resumed else ''}→ {run_dir}",
        f"  task: {what}   device: {device}",
        f"  strategy: {options.strategy}   budget: {options.budget} device evaluations   seed: {options.seed}",
        f"  energy: {energy}   limits: {', '.join(limits)}",
        "  fine-tuning: sized to each cut (auto), distilled, early-stopped on validation; every strategy"
        if options.finetune_steps == "auto"
        else f"  fine-tuning: {options.finetune_steps} steps per RL/uniform candidate "
        f"(≤ {options.max_finetune_steps} for tpe/cmaes/random)",
    ]


class ProgressDisplay:
    """A rich progress bar over device evaluations showing the current best and the front size.

    Parameters
    ----------
    console:
        A ``rich.console.Console``.
    """

    def __init__(self, console: Any) -> None:

        self.console = console
        # Without a terminal (CI, nohup, a pipe) a live bar shows nothing until the end: one line per
        # evaluation instead.
        self.plain = not console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=console,
            transient=False,
            disable=self.plain,
        )
        self.metric: str | None = None
        self.budget = 0
        self.t0 = time.monotonic()
        self.first_device: float | None = None
        self._last_prep = ""
        self.task_id: Any = None
        self.prep_id: Any = None
        self.higher = True
        self.best: tuple[float, float, str] | None = None
        self.best_samples: list[float] | None = None
        self.reference: list[float] | None = None
        self.points: list[tuple[float, ...]] = []

    def begin(self, options: SearchOptions, run_dir: Path, resumed: bool) -> None:
        """Print what will run, then show baseline loading/training progress."""
        for line in describe(options, run_dir, resumed=resumed):
            self.console.print(line)
        self.t0 = time.monotonic()
        self.progress.start()

    def task_progress(self, description: str, fraction: float) -> None:
        if self.plain and description != self._last_prep:
            self._last_prep = description
            self._line(f"baseline: {description}")
        if self.prep_id is None:
            self.prep_id = self.progress.add_task("baseline", total=1.0, status="")
        self.progress.update(self.prep_id, completed=min(max(fraction, 0.0), 1.0), status=description)

    def start(self, options: SearchOptions, run_dir: Path, session: SearchSession) -> None:
        self.higher = session.higher_is_better
        self.budget = options.budget
        if metric_of(options.task) != session.metric:  # describe() could not tell the unit yet
            self.console.print(f"  quality limit: max drop {limit_text(options.max_acc_drop, session.metric)}")
        self.metric = session.metric
        task = getattr(session.evaluator, "task", None)
        if task is not None:  # the FP32 model's validation windows: the live drop is paired on them
            self.reference = reference_samples(task, "val")
        if self.prep_id is not None:
            self.progress.update(self.prep_id, completed=1.0, status="baseline ready")
        for ev in session.store.evaluations("candidate"):
            self._track(ev.feasible, ev.reward, ev.result)
        self.task_id = self.progress.add_task(
            "measuring", total=options.budget, completed=session.used, status=self._status()
        )

    def _track(self, feasible: bool, reward: float | None, result: Any) -> None:
        if not feasible or reward is None:
            return
        q = result.value(QUALITY)
        if self.best is None or reward > self.best[0]:
            unit = result.figures[QUALITY].unit if QUALITY in result.figures else ""
            self.best = (reward, q, unit)
            self.best_samples = (getattr(result, "samples", None) or {}).get("val")
        costs = [result.value(k) for k in ("latency_count", "flash_bytes", "energy_uj")]
        pt = (-q if self.higher else q, *costs)
        if all(math.isfinite(v) for v in pt):
            self.points.append(pt)

    def _front_size(self) -> int:
        pts = list(dict.fromkeys(self.points))

        def dom(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
            return all(x <= y for x, y in zip(a, b, strict=True)) and a != b

        return sum(1 for p in pts if not any(dom(o, p) for o in pts))

    def _status(self) -> str:
        if self.best is None:
            return "no feasible candidate yet"
        r, q, unit = self.best
        return f"best reward {r:+.3f} ({self._quality_text(q, unit)})  front {self._front_size()}"

    def _quality_text(self, q: float, unit: str) -> str:
        """``accuracy 0.619 [0.550, 0.688], drop −0.53 [−3.17, +2.12] pp vs FP32`` when samples allow."""
        if not self.best_samples or unit not in ("accuracy", "rmse", "return"):
            return f"{unit} {q:.4g}"
        try:
            text = f"{unit} {bootstrap(self.best_samples, unit).text()}"
            if self.reference and len(self.reference) == len(self.best_samples):
                d = paired_drop(self.best_samples, self.reference, unit, self.higher)
                text += f", drop {d.value:+.2f} [{d.lo:+.2f}, {d.hi:+.2f}] {'pp' if unit == 'accuracy' else '%'} vs FP32"
        except IntervalError:
            return f"{unit} {q:.4g}"
        return text

    def _line(self, text: str) -> None:
        elapsed = int(time.monotonic() - self.t0)
        self.console.print(f"[{elapsed // 60}m{elapsed % 60:02d}s] {text}", markup=False, highlight=False)

    def update(self, outcome: Outcome, session: SearchSession) -> None:
        self._track(outcome.verdict.feasible, outcome.verdict.reward, outcome.result)
        if self.task_id is not None:
            self.progress.update(self.task_id, completed=session.used, status=self._status())
        if outcome.origin == "device" and self.first_device is None:
            self._estimate(session)
        if self.plain:
            v = outcome.verdict
            verdict = "feasible" if v.feasible else f"infeasible: {with_units(v.reason, self.metric)}"
            self._line(f"{session.used}/{self.budget} device evaluations  #{outcome.seq} ({outcome.origin}) "
                       f"reward {v.reward:+.3f} {verdict}  |  {self._status()}")

    def _estimate(self, session: SearchSession) -> None:
        """The run time of this model on this machine, from the first candidate measured here."""
        self.first_device = time.monotonic()
        row = session.store.evaluations("candidate")[-1]
        took = max(0.0, row.finished - row.started)
        left = max(0, session.budget - session.used)
        if left:
            total = left * took
            when = f"{total:.0f} s" if total < 90 else f"{math.ceil(total / 60)} min"
            self.console.print(f"  estimate: the first device evaluation took {took:.0f} s; the {left} left "
                               f"take about {when}", highlight=False)

    def stop(self) -> None:
        self.progress.stop()


def final_table(result: SearchResult, console: Any, limit: int = 15, wide: bool = False) -> None:
    """Print the front (and baseline) with every figure's source, the named best point, then the report path.

    :param wide: every column with its source in each cell (about 250 columns) instead of the compact table
    """
    run = load_run(result.run_dir)
    shown = [p.evaluation for p in run.front][:limit]
    if run.best is not None and run.best.digest not in {e.digest for e in shown}:
        shown.append(run.best)
    console.print(
        rich_table(
            f"Pareto front ({len(run.front)} points; {result.device_evaluations} device evaluations, "
            f"{result.evaluations} candidates recorded)",
            run,
            shown,
            wide=wide,
        )
    )
    console.print(INTERVAL_NOTE, markup=False, highlight=False)
    for line in rejection_summary(run):
        console.print(line, markup=False, highlight=False)
    for line in run_account(result.run_dir).lines():
        console.print(line, markup=False, highlight=False)
    predicted = predictor_line(run)
    if predicted is not None:
        console.print(predicted, markup=False, highlight=False)
    head = headline(run)
    if head is not None:
        for line in head.lines():
            console.print(line, markup=False, highlight=False)
    missing = no_best_line(run)
    if missing is not None:
        console.print(missing, markup=False, highlight=False)
    if result.report_html is not None:  # written when run_search was given write_report (the CLI)
        console.print(f"report: {result.report_html.resolve()}")
