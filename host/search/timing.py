"""Where a search's wall time went: per stage, in total and per candidate (issue 28, item 6).

Each candidate's ``EvalResult.timings`` holds the seconds of its own stages (measured where they run: in the
search's process or in a worker); the search's process adds what no candidate owns — the baseline, the time
strategies spend proposing, the store's bookkeeping and the end of the run (test scoring, report) — as run
metadata (``TIME_META``, one entry per process that worked on the run, so a resumed run adds up).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeprune.host.search.store import RunStore

#: Run metadata key: a list of per-process segments (``Clock.segment``).
TIME_META = "time_accounting"

#: The stages a candidate's time is reported in, in pipeline order.
STAGES: tuple[str, ...] = ("proposal", "compress", "fine-tune", "export", "tflm", "device", "bookkeeping")

#: ``EvalResult.timings`` key → stage. Keys not listed (counts such as ``device-faults-recovered``) are not time.
KEY_STAGE: dict[str, str] = {
    "proposal": "proposal",
    "compress": "compress",
    "finetune": "fine-tune",
    "rung-export": "export",
    "rung-tflm": "tflm",
    "export": "export",
    "export-reused": "export",
    "tflm": "tflm",
    "quality": "tflm",
    "device": "device",
    "deploy-build": "device",  # the deploy library's flash/RAM: part of measuring the candidate
    "bookkeeping": "bookkeeping",
    # Runs before the split stored compress and fine-tune as one figure.
    "compress+finetune": "compress+fine-tune",
}


def stage_seconds(timings: dict[str, float]) -> dict[str, float]:
    """One candidate's ``timings`` summed per stage (``KEY_STAGE``); ``model-load`` is inside ``device``."""
    out: dict[str, float] = {}
    for key, value in (timings or {}).items():
        stage = KEY_STAGE.get(key)
        if stage is not None:
            out[stage] = out.get(stage, 0.0) + float(value)
    return out


@contextmanager
def _timed(add: Callable[[str, float], None], key: str) -> Iterator[None]:
    """Call ``add(key, seconds)`` with the block's wall time, even when it raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        add(key, time.perf_counter() - started)


class Stopwatch:
    """Adds elapsed seconds to named entries of a ``timings`` dict.

    Parameters
    ----------
    timings:
        The dict to add to (an ``EvalResult.timings``).
    """

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings

    def __call__(self, key: str) -> Any:
        """Time the block under ``key`` (added to what the key already holds)."""
        return _timed(self.add, key)

    def add(self, key: str, seconds: float) -> None:
        """Add ``seconds`` to ``key``, rounded to the millisecond."""
        self.timings[key] = round(self.timings.get(key, 0.0) + float(seconds), 3)


@dataclass
class Clock:
    """The search process's own time: what it spends outside any candidate's stages.

    ``proposal``: inside the strategy between handing one result back and the next proposal arriving;
    ``bookkeeping``: recording results (store, cache) and answering known configs; ``baseline``: measuring the
    baseline; ``final``: test scoring of the front and the report. ``wall`` closes the segment.
    """

    started: float = field(default_factory=time.time)
    totals: dict[str, float] = field(default_factory=dict)
    _idle_since: float | None = None

    def add(self, stage: str, seconds: float) -> None:
        """Add ``seconds`` to the process stage ``stage``."""
        self.totals[stage] = self.totals.get(stage, 0.0) + max(0.0, float(seconds))

    def returned(self) -> None:
        """A result went back to the strategy: from now until its next proposal is proposal time."""
        self._idle_since = time.perf_counter()

    def proposed(self) -> float:
        """A proposal arrived: the seconds the strategy took for it (0 for the first), added to ``proposal``."""
        if self._idle_since is None:
            return 0.0
        spent = time.perf_counter() - self._idle_since
        self._idle_since = None
        self.add("proposal", spent)
        return round(spent, 3)

    def timed(self, stage: str) -> Any:
        """Time the block as process stage ``stage``."""
        return _timed(self.add, stage)

    def segment(self, workers: int) -> dict[str, Any]:
        """This process's entry for ``TIME_META``."""
        return {"started": self.started, "wall": time.time() - self.started, "workers": int(workers),
                "stages": {k: round(v, 3) for k, v in self.totals.items()}}


@dataclass
class TimeAccount:
    """A run's time by stage.

    Parameters
    ----------
    wall:
        Seconds from the start of each process to its end, summed over resumes (``None``: not recorded).
    workers:
        Most evaluations at once.
    stages:
        Stage → seconds summed over candidates (worker seconds when several workers ran at once) plus the
        search process's own proposal and bookkeeping time.
    per_candidate:
        ``(seq, origin, stage → seconds)`` of every candidate evaluated in this run (not answered from the store).
    process:
        The search process's stages that belong to no candidate (baseline, final).
    """

    wall: float | None
    workers: int
    stages: dict[str, float]
    per_candidate: list[tuple[int, str, dict[str, float]]]
    process: dict[str, float]

    @property
    def candidates(self) -> int:
        return len(self.per_candidate)

    def mean(self, stage: str) -> float:
        """Mean seconds of ``stage`` per candidate evaluated (0 with none)."""
        return self.stages.get(stage, 0.0) / self.candidates if self.candidates else 0.0

    def ordered_stages(self) -> list[str]:
        """``STAGES`` first, then any other stage present (an older run's combined figure)."""
        return list(STAGES) + sorted(s for s in self.stages if s not in STAGES)

    def lines(self) -> list[str]:
        """The run summary's lines."""
        if not self.per_candidate and self.wall is None:
            return []
        head = "time:"
        if self.wall is not None:
            head += f" wall {self.wall:.0f} s"
            if self.workers > 1:
                head += f" with {self.workers} workers (stage seconds below are summed over workers)"
        extra = ", ".join(f"{k} {v:.0f} s" for k, v in sorted(self.process.items()) if v >= 0.5)
        if extra:
            head += f"; outside candidates: {extra}"
        parts = [f"{s} {self.stages.get(s, 0.0):.0f} s ({self.mean(s):.1f})" for s in self.ordered_stages()]
        return [head, f"  per stage over {self.candidates} candidates, total (mean per candidate): " + ", ".join(parts)]


def account(rows: Sequence[Any], segments: Sequence[dict[str, Any]] | None) -> TimeAccount:
    """The ``TimeAccount`` of a run from its stored rows and its ``TIME_META`` segments."""
    stages: dict[str, float] = {}
    per: list[tuple[int, str, dict[str, float]]] = []
    for row in rows:
        if getattr(row, "kind", "candidate") != "candidate" or row.origin in ("run", "cache"):
            continue
        secs = stage_seconds(row.result.timings)
        per.append((int(row.seq), str(row.origin), secs))
        for k, v in secs.items():
            stages[k] = stages.get(k, 0.0) + v
    process: dict[str, float] = {}
    wall: float | None = None
    workers = 1
    for seg in segments or []:
        wall = (wall or 0.0) + float(seg.get("wall", 0.0))
        workers = max(workers, int(seg.get("workers", 1)))
        for k, v in (seg.get("stages") or {}).items():
            if k in ("proposal", "bookkeeping"):
                # Per-candidate proposal times are in the rows; the process total also holds proposals that
                # were answered from the store, so it replaces the rows' sum.
                continue
            process[k] = process.get(k, 0.0) + float(v)
    seg_totals = {k: sum(float((s.get("stages") or {}).get(k, 0.0)) for s in segments or []) for k in
                  ("proposal", "bookkeeping")}
    for k, v in seg_totals.items():
        if segments:
            stages[k] = v
    return TimeAccount(wall, workers, stages, per, process)


def run_account(run_dir: Any) -> TimeAccount:
    """The ``TimeAccount`` of the run in ``run_dir`` (read from its store)."""
    with RunStore(Path(run_dir)) as store:
        return account(store.evaluations(), store.get_meta(TIME_META))
