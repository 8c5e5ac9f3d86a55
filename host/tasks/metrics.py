"""Dataset metrics, written out so their definitions are visible (no scikit-learn dependency)."""

from __future__ import annotations

import numpy as np


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else float("nan")


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes present in ``y_true`` or ``y_pred``.

    Classes absent from both are left out rather than counted as F1 = 0 (or 1), so a split that
    happens to contain no snow days is not penalised for it.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    scores = []
    for c in range(num_classes):
        tp = int(np.sum((y_true == c) & (y_pred == c)))
        fp = int(np.sum((y_true != c) & (y_pred == c)))
        fn = int(np.sum((y_true == c) & (y_pred != c)))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else float("nan")


def squared_errors(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Mean squared error of each row: ``rmse`` is the root of their mean (every row has as many outputs)."""
    diff = np.asarray(y_pred, dtype=np.float64).reshape(len(y_true), -1) - np.asarray(
        y_true, dtype=np.float64
    ).reshape(len(y_true), -1)
    return np.asarray(np.mean(diff**2, axis=1))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean(squared_errors(y_true, y_pred))))


def majority_class(y: np.ndarray, num_classes: int) -> int:
    return int(np.argmax(np.bincount(np.asarray(y, dtype=np.int64), minlength=num_classes)))
