"""Action spaces: how a strategy's raw proposal becomes a ``CompressionConfig``.

One ``ConfigSpace`` per run wraps the config's constructors (``from_continuous``, ``from_discrete``,
``from_retain_rate``, the optimiser vector) with the run's fixed choices (fine-tuning steps, seed),
so every strategy maps proposals to configs the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

N_DISCRETE_ACTIONS = 16
CONTINUOUS_DIM = 4


class ConfigSpace:
    """Maps strategy proposals onto ``CompressionConfig`` for one model.

    Parameters
    ----------
    names:
        Layer names (``gru0, gru1, head`` / ``fc0, fc1, fc2``), a model or a task.
    finetune_steps:
        Fine-tuning steps given to configs built from RL actions and retain rates.
    max_finetune_steps:
        Upper bound of the ``finetune_steps`` coordinate of the optimiser vector (TPE, CMA-ES, random).
    distill:
        Whether configs built from RL actions and retain rates distil from the baseline.
    seed:
        The configs' ``seed`` (pruning ties, fine-tuning batches).
    """

    def __init__(
        self,
        names: Any,
        finetune_steps: int = 0,
        max_finetune_steps: int = 100,
        distill: bool = False,
        seed: int = 0,
    ) -> None:
        from edgeprune.host.compress.config import CompressionConfig, layer_names_of, vector_knobs

        self.cls = CompressionConfig
        self.names: tuple[str, ...] = layer_names_of(names)
        self.finetune_steps = int(finetune_steps)
        self.max_finetune_steps = int(max_finetune_steps)
        self.distill = bool(distill)
        self.seed = int(seed)
        self.knobs = vector_knobs(self.names, self.max_finetune_steps)

    def _globals(self) -> dict[str, Any]:
        return {"finetune_steps": self.finetune_steps, "distill": self.distill, "seed": self.seed}

    def identity(self) -> Any:
        """The uncompressed model (int8 like every candidate): the baseline all ratios refer to."""
        return self.cls.identity(self.names, seed=self.seed)

    def continuous(self, action: Sequence[float]) -> Any:
        return self.cls.from_continuous(list(action), self.names, **self._globals())

    def discrete(self, action: int) -> Any:
        return self.cls.from_discrete(int(action), self.names, **self._globals())

    def retain(self, rate: float) -> Any:
        return self.cls.from_retain_rate(float(rate), self.names, **self._globals())

    def vector_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.array([k.low for k in self.knobs], dtype=np.float64)
        hi = np.array([k.high for k in self.knobs], dtype=np.float64)
        return lo, hi

    def vector_names(self) -> list[str]:
        return [k.name for k in self.knobs]

    def vector(self, vec: Sequence[float]) -> Any:
        from edgeprune.host.compress.config import from_vector

        return from_vector(list(vec), self.names, self.max_finetune_steps, seed=self.seed)
