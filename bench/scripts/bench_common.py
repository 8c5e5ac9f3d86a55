"""What the benchmark scripts share: the commit they ran at, their BENCHMARKS.md sections, searches run
(or reused), and mean ± std over seeds.

A plain module beside the scripts (not part of ``edgeprune.bench``): it imports the host package, which
the bench layer must not (import-linter contract, pyproject.toml).
"""

from __future__ import annotations

import logging
import math
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edgeprune.host.compress.config import CompressionConfig
from edgeprune.host.report import generate_report
from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.run import run_search
from edgeprune.host.search.store import EvalCache, RunStore

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("bench_common")


def commit() -> str:
    """Short HEAD hash, ``+dirty`` when tracked files differ from it (``unknown`` outside git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def replace_section(path: Path, head: str, block: str) -> None:
    """Put ``block`` (starting with the line ``head``) in the markdown file at ``path``, replacing the
    section that starts with ``head`` up to the next ``## `` heading, or appending it."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = block.rstrip("\n") + "\n"
    start = text.find(head + "\n")
    if start >= 0:
        end = text.find("\n## ", start + len(head))
        text = text[:start] + block + ("\n" + text[end + 1:] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


class BaselineOnlyCache:
    """The global evaluation cache, for the uncompressed int8 baseline only: a run starts without
    re-measuring the baseline, every candidate costs a device evaluation of its own run, and benchmark
    candidates do not leak into the cache a later `make demo` reads."""

    def __init__(self) -> None:
        self.inner = EvalCache()

    def get(self, ident: Any, digest: str) -> Any:
        hit = self.inner.get(ident, digest)
        return hit if hit is not None and self._is_baseline(hit) else None

    def put(self, ident: Any, result: Any) -> None:
        if self._is_baseline(result):
            self.inner.put(ident, result)

    @staticmethod
    def _is_baseline(result: Any) -> bool:
        cfg = CompressionConfig.from_json(result.config_json)
        return bool(cfg.is_identity and cfg.quantize == "int8")

    def close(self) -> None:
        self.inner.close()


class RunNotFinished(RuntimeError):
    """``--reuse`` found no finished run where one was expected."""


def search_or_reuse(out: Path, reuse: bool, cache: Any = None, **opts: Any) -> tuple[Path, float]:
    """Run ``edgeprune search`` into ``out`` (replacing an older run there) and return it with its wall
    time; with ``reuse``, a finished run already in ``out`` is summarised instead (wall time from its store),
    and ``RunNotFinished`` is raised when there is none (nothing is searched or deleted).
    ``cache``: an evaluation cache to use instead of the global one (needs ``use_cache=True`` in ``opts``)."""
    if reuse:
        # --reuse summarises and never searches: an unfinished run is the caller's to report as not run.
        started = finished = None
        if (out / "evaluations.sqlite").exists():
            with RunStore(out) as store:
                started, finished = (store.get_meta("options") or {}).get("started"), store.get_meta("finished")
        if started is None or finished is None:
            raise RunNotFinished(f"{out} has no finished run to reuse")
        log.info("reusing the finished run %s (--reuse)", out)
        return out, float(finished) - float(started)
    if out.exists():
        shutil.rmtree(out)
    t0 = time.monotonic()
    result = run_search(SearchOptions(out=str(out), **opts), cache=cache, write_report=generate_report)
    return result.run_dir, time.monotonic() - t0


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and population std of the finite values (NaN, NaN when there are none)."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return math.nan, math.nan
    return statistics.mean(xs), statistics.pstdev(xs)


def pm(values: Iterable[float], fmt: str = "{:,.0f}") -> str:
    """``"mean ± std"`` of ``values`` in ``fmt`` (``-`` when none is known)."""
    m, s = mean_std(values)
    if math.isnan(m):
        return "-"
    return f"{fmt.format(m)} ± {fmt.format(s)}"
