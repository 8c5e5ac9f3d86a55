"""Picklable worker factories for the parallel-evaluation tests: the analytic stand-in evaluator in each
worker process, noting which process measured a config and able to kill its own worker on cue."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from .synthetic_evaluator import SyntheticEvaluator


class WorkerEvaluator(SyntheticEvaluator):
    """``SyntheticEvaluator`` that notes its pid in the result and dies on cue.

    A file ``die-once`` in ``control`` is claimed (renamed) by the first evaluation that sees it, whose worker
    then kills itself; ``poison`` is claimed the same way, and every worker that gets the claimed config
    kills itself too, so that one evaluation can never finish.
    """

    def __init__(self, delay_s: float, control: Path | None, slow_s: float = 0.0, slow_parity: int | None = None) -> None:
        super().__init__(delay_s=delay_s)
        self.control = control
        self.slow_s, self.slow_parity = slow_s, slow_parity

    def _claim(self, name: str, digest: str) -> bool:
        assert self.control is not None
        try:
            os.rename(self.control / name, self.control / f"{name}-{digest}")
        except FileNotFoundError:
            return False
        return True

    def evaluate(self, config):
        digest = config.digest()
        if self.control is not None:
            doomed = self._claim("die-once", digest) or self._claim("poison", digest)
            if doomed or (self.control / f"poison-{digest}").exists():
                time.sleep(self.delay_s / 2)  # mid-evaluation
                os.kill(os.getpid(), signal.SIGKILL)
        if self.slow_parity is not None and int(digest, 16) % 2 == self.slow_parity:
            time.sleep(self.slow_s)  # some configs take longer, as a larger model's fine-tuning does
        result = super().evaluate(config)
        result.timings["worker_pid"] = float(os.getpid())
        return result


@dataclass(frozen=True)
class SyntheticWorkers:
    """``factory(slot, device)`` for ``run_search(worker_factory=...)``.

    Parameters
    ----------
    delay_s:
        Seconds per evaluation.
    control:
        Directory of the ``die-once`` / ``poison`` cue files (``None``: never die).
    slow_s, slow_parity:
        Extra seconds for the configs whose digest (as a number) has this parity (``None``: none slower).
    """

    delay_s: float = 0.0
    control: str | None = None
    slow_s: float = 0.0
    slow_parity: int | None = None

    def __call__(self, slot: int, device: str) -> WorkerEvaluator:
        return WorkerEvaluator(self.delay_s, Path(self.control) if self.control else None, self.slow_s,
                               self.slow_parity)
