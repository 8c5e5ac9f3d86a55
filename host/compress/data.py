"""Training arrays for importance scores and fine-tuning, and the task loss on them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from edgeprune.host.compress.compress_errors import DataError

KINDS = ("classifier", "regressor", "policy")


@dataclass(frozen=True)
class TrainData:
    """Supervised arrays as tensors.

    Parameters
    ----------
    x:
        Model inputs ``[N, T, F]`` (GRU) or ``[N, F]`` (MLP), float32.
    y:
        Class indices ``[N]`` (classifier, int64), targets (regressor) or teacher Q-values (policy).
    kind:
        ``"classifier"``, ``"regressor"`` or ``"policy"`` (the task's ``kind``).
    """

    x: torch.Tensor
    y: torch.Tensor
    kind: str

    @classmethod
    def from_arrays(cls, x: Any, y: Any, kind: str | None = None) -> TrainData:
        xa, ya = np.asarray(x), np.asarray(y)
        if xa.ndim not in (2, 3, 4) or len(xa) == 0:
            raise DataError(f"X must be [N, F], [N, T, F] or [N, H, W, C] with N > 0, got shape {xa.shape}")
        if len(ya) != len(xa):
            raise DataError(f"X has {len(xa)} samples but y has {len(ya)}")
        if kind is None:
            kind = "classifier" if np.issubdtype(ya.dtype, np.integer) else "regressor"
        if kind not in KINDS:
            raise DataError(f"kind must be one of {KINDS}, got {kind!r}")
        if not np.isfinite(xa).all():
            raise DataError("X contains NaN or inf; clean the training arrays first")
        xt = torch.as_tensor(xa, dtype=torch.float32)
        if kind == "classifier":
            if not np.issubdtype(ya.dtype, np.integer) and not np.all(np.equal(np.mod(ya, 1), 0)):
                raise DataError("classifier labels must be integer class indices")
            yt = torch.as_tensor(ya.astype(np.int64)).reshape(-1)
        else:
            if not np.isfinite(ya).all():
                raise DataError("y contains NaN or inf; clean the training arrays first")
            yt = torch.as_tensor(ya, dtype=torch.float32)
        return cls(xt, yt, kind)

    @classmethod
    def from_source(cls, source: Any) -> TrainData:
        """Accept a ``TrainData``, a task (``train_arrays()`` and ``kind``) or an ``(X, y)`` pair."""
        if isinstance(source, TrainData):
            return source
        if callable(getattr(source, "train_arrays", None)):
            x, y = source.train_arrays()
            return cls.from_arrays(x, y, getattr(source, "kind", None))
        if isinstance(source, tuple | list) and len(source) in (2, 3):
            return cls.from_arrays(*source)
        raise DataError(f"training data must be a task, (X, y) or (X, y, kind); got {type(source).__name__}")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def sample(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` samples (all if fewer) chosen by ``seed``: the same call returns the same rows."""
        if n >= len(self):
            return self.x, self.y
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self), generator=gen)[:n]
        return self.x[idx], self.y[idx]


def supervised_loss(out: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """Cross-entropy for classifiers, MSE otherwise (targets reshaped to the output's shape)."""
    if kind == "classifier":
        return F.cross_entropy(out, y)
    return F.mse_loss(out, y.reshape(out.shape))


def distill_loss(out: torch.Tensor, teacher_out: torch.Tensor, kind: str, temperature: float) -> torch.Tensor:
    """KL(teacher ‖ student) on temperature-softened logits (× T², classifiers); MSE otherwise."""
    if kind == "classifier":
        t = temperature
        return F.kl_div(F.log_softmax(out / t, dim=-1), F.log_softmax(teacher_out / t, dim=-1),
                        reduction="batchmean", log_target=True) * t * t
    return F.mse_loss(out, teacher_out)
