"""Windowed sequence data (``X [N, T, F]``, ``y [N]``) — or images (``X [N, H, W, C]``) — and the task
logic shared by every supervised task: evaluation, training arrays and calibration/agreement inputs.
Subclasses supply the baseline.
"""

from __future__ import annotations

import abc
import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edgeprune.host.tasks import metrics
from edgeprune.host.tasks.base import SPLITS, Predict, Quality, Task, TaskError

if TYPE_CHECKING:
    from torch import nn

EVAL_BATCH = 256


@dataclass
class SequenceData:
    """Windows and targets with their split.

    Parameters
    ----------
    X:
        Inputs ``[N, T, F]`` float32 (sequences), or ``[N, H, W, C]`` (NHWC images).
    y:
        Targets ``[N]``: int64 class ids (classifier) or float32 values (regressor; ``[N, K]`` allowed).
    splits:
        ``{"train", "val", "test"}`` → int64 row indices, pairwise disjoint, each non-empty.
    kind:
        ``"classifier"`` or ``"regressor"``.
    num_outputs:
        Number of classes, or of regression targets.
    class_names:
        Names of the class ids in order (classifier), else ``None``.
    data_hash:
        Content hash of the source data (enters the task's cache key).
    """

    X: np.ndarray
    y: np.ndarray
    splits: dict[str, np.ndarray]
    kind: str
    num_outputs: int
    class_names: list[str] | None
    data_hash: str

    def validate(self) -> None:
        """Raise ``TaskError`` on any shape, dtype, NaN or split inconsistency."""
        X, y = self.X, self.y
        if X.ndim not in (3, 4) or X.shape[0] == 0:
            raise TaskError(f"X must be [N, T, F] (or [N, H, W, C] images) with N > 0, got shape {X.shape}")
        if X.dtype != np.float32:
            raise TaskError(f"X must be float32, got {X.dtype}")
        if not np.all(np.isfinite(X)):
            raise TaskError(f"X holds {int(np.sum(~np.isfinite(X)))} NaN/inf values; clean or impute them first")
        if y.shape[0] != X.shape[0]:
            raise TaskError(f"y has {y.shape[0]} rows but X has {X.shape[0]}; they must match")
        if self.kind == "classifier":
            if y.ndim != 1 or y.dtype != np.int64:
                raise TaskError(f"classifier y must be int64 [N], got {y.dtype} {y.shape}")
            if y.min() < 0 or y.max() >= self.num_outputs:
                raise TaskError(f"class ids must lie in [0, {self.num_outputs}), got [{y.min()}, {y.max()}]")
        elif self.kind == "regressor":
            if y.ndim not in (1, 2) or not np.issubdtype(y.dtype, np.floating):
                raise TaskError(f"regressor y must be float [N] or [N, K], got {y.dtype} {y.shape}")
            if not np.all(np.isfinite(y)):
                raise TaskError("y holds NaN/inf values; clean or drop those rows first")
            width = 1 if y.ndim == 1 else y.shape[1]
            if width != self.num_outputs:
                raise TaskError(f"y has {width} targets per row but the model has {self.num_outputs} outputs")
        else:
            raise TaskError(f"kind must be 'classifier' or 'regressor', got {self.kind!r}")
        seen: set[int] = set()
        for split in SPLITS:
            idx = self.splits.get(split)
            if idx is None or idx.ndim != 1 or len(idx) == 0:
                raise TaskError(f"split {split!r} must be a non-empty 1-D index array")
            if idx.min() < 0 or idx.max() >= X.shape[0]:
                raise TaskError(f"split {split!r} indexes rows outside [0, {X.shape[0]})")
            as_set = set(idx.tolist())
            if as_set & seen:
                raise TaskError(f"split {split!r} overlaps another split; train/val/test must be disjoint")
            seen |= as_set

    @property
    def seq_len(self) -> int:
        return int(self.X.shape[1])

    @property
    def num_features(self) -> int:
        return int(self.X.shape[2])

    def part(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        idx = self.splits[split]
        return self.X[idx], self.y[idx]


def batched(predict: Predict, X: np.ndarray) -> np.ndarray:
    outs = [np.asarray(predict(X[i : i + EVAL_BATCH])) for i in range(0, len(X), EVAL_BATCH)]
    return np.concatenate(outs, axis=0)


class SequenceTask(Task):
    """A supervised task over windowed sequences or images; ``_make_baseline()`` gives the trained model (subclass)."""

    higher_is_better: bool

    def __init__(self, name: str, data: SequenceData, seed: int = 0) -> None:
        data.validate()
        self.name = name
        self.data = data
        self.seed = seed
        self.kind = data.kind
        self.metric = "accuracy" if data.kind == "classifier" else "rmse"
        self.higher_is_better = data.kind == "classifier"
        self._model: nn.Module | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.data.X.shape[1:])

    @property
    def num_outputs(self) -> int:
        return self.data.num_outputs

    @abc.abstractmethod
    def _make_baseline(self) -> nn.Module:
        """Load or train the baseline (sets ``cache_path``)."""

    def baseline(self) -> nn.Module:
        if self._model is None:
            self._model = self._make_baseline()
        # A copy, so a caller that prunes the model in place cannot corrupt later calls.
        return copy.deepcopy(self._model)

    def evaluate(self, predict: Predict, split: str = "test") -> Quality:
        self.guard_split(split)
        X, y = self.data.part(split)
        out = batched(predict, X)
        if out.shape[0] != len(X):
            raise TaskError(f"predict returned {out.shape[0]} rows for {len(X)} inputs")
        if self.kind == "classifier":
            if out.ndim != 2 or out.shape[1] != self.num_outputs:
                raise TaskError(f"predict must return [B, {self.num_outputs}] scores, got {out.shape}")
            pred = np.argmax(out, axis=1)
            majority = metrics.majority_class(self.data.part("train")[1], self.num_outputs)
            return Quality(
                value=metrics.accuracy(y, pred),
                std=None,
                metric="accuracy",
                details={
                    "macro_f1": metrics.macro_f1(y, pred, self.num_outputs),
                    "majority_accuracy": metrics.accuracy(y, np.full_like(y, majority)),
                    "majority_class": (self.data.class_names or [str(majority)] * (majority + 1))[majority],
                    "n": len(y),
                    "split": split,
                },
                samples=(np.asarray(y) == pred).astype(np.float64).tolist(),
            )
        train_mean = self.data.part("train")[1].mean(axis=0)
        return Quality(
            value=metrics.rmse(y, out),
            std=None,
            metric="rmse",
            details={
                "train_mean_rmse": metrics.rmse(y, np.broadcast_to(train_mean, y.shape)),
                "n": len(y),
                "split": split,
            },
            samples=metrics.squared_errors(y, out).tolist(),
        )

    def train_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return self.data.part("train")

    def _sample(self, split: str, n: int) -> np.ndarray:
        self.guard_split(split)
        if n <= 0:
            raise TaskError(f"n must be positive, got {n}")
        X = self.data.part(split)[0]
        order = np.random.default_rng(self.seed).permutation(len(X))
        # Cycle when n exceeds the split, so callers always get exactly n rows.
        return np.ascontiguousarray(X[np.resize(order, n)])

    def calibration_inputs(self, n: int) -> np.ndarray:
        return self._sample("train", n)

    def agreement_inputs(self, n: int, split: str = "test") -> np.ndarray:
        return self._sample(split, n)
