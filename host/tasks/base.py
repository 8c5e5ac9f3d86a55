"""The ``Task`` interface every other stage codes against: a trained float model, its data or
environment, and the one quality metric a compressed candidate is judged by.

Refinements of the interface in docs/design.md (names there are unchanged; these are additions):

* ``Task.evaluate(predict, split="test")``: ``split`` is ``"train" | "val" | "test"``. For a policy the
  split selects a disjoint block of evaluation-episode seeds (see ``edgeprune.host.tasks.policy``).
* ``Task.input_shape`` (one example, no batch axis: ``(T, F)`` for a GRU, ``(obs_dim,)`` for a policy)
  and ``Task.num_outputs``.
* ``Task.baseline_metrics()`` returns the metrics JSON stored beside the cached baseline
  (params, MACs, FLOPs, training time, quality on val/test, hyper-parameters).
* ``Task.cache_path`` is the baseline's cache directory (``None`` until the baseline exists).
* ``predict`` callables take a float32 batch shaped ``(B, *input_shape)`` and return ``(B, num_outputs)``
  (a regressor with one output may return ``(B,)``).
* ``Task.test_sealed`` / ``guard_split``: while a search selects candidates the test split is sealed, and
  any read of it raises ``TestSplitSealed``; the run unseals it only to score the final front.
* ``calibration_inputs(n)`` / ``agreement_inputs(n, split)`` return float32 arrays shaped ``(n, *input_shape)``;
  for a GRU these are whole windows ``[n, T, F]`` (export derives per-step inputs and states from them).
* Every failure caused by user input raises ``TaskError`` with a one-line message saying what was expected.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeprune.host.tasks.intervals import DEFAULT_LEVEL, DEFAULT_SEED, Interval, bootstrap

if TYPE_CHECKING:
    from torch import nn

Predict = Callable[[np.ndarray], np.ndarray]
Progress = Callable[[str, float], None]
"""``progress(description, fraction_done)``; fraction in [0, 1]."""

SPLITS = ("train", "val", "test")


class TaskError(ValueError):
    """A task cannot be built from the given name, files or environment; the message says what was expected."""


class TestSplitSealed(RuntimeError):
    """Code that selects candidates read the test split (a bug: selection uses validation data only)."""

    __test__ = False  # not a pytest class, despite the name


@dataclass
class Quality:
    """One quality figure of a model on a task.

    Parameters
    ----------
    value:
        The task's metric (accuracy in [0, 1], RMSE, or mean episode return).
    std:
        Spread of ``value`` where it is a mean over episodes; ``None`` for dataset metrics.
    metric:
        Name of the metric (``"accuracy"``, ``"rmse"``, ``"return"``).
    details:
        Secondary figures (macro-F1, majority-class accuracy, number of examples or episodes...).
    samples:
        What ``value`` is the mean of, one entry per window or episode in a fixed order: 1/0 correct
        (accuracy), squared error (RMSE: ``value`` is the root of their mean), return (policy). The
        bootstrap intervals resample them (``edgeprune.host.tasks.intervals``); ``None`` when unknown.
    """

    value: float
    std: float | None
    metric: str
    details: dict[str, Any] = field(default_factory=dict)
    samples: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Quality:
        samples = d.get("samples")
        return cls(float(d["value"]), None if d.get("std") is None else float(d["std"]), str(d["metric"]),
                   dict(d.get("details") or {}), None if samples is None else [float(x) for x in samples])

    def interval(self, level: float = DEFAULT_LEVEL, seed: int = DEFAULT_SEED) -> Interval | None:
        """The seeded bootstrap interval of ``value`` (``None`` without samples)."""
        if not self.samples:
            return None
        return bootstrap(self.samples, self.metric, level=level, seed=seed)


class Task(abc.ABC):
    """A model to compress, the data or environment it is judged on, and how it is judged.

    Subclasses set the class attributes below and implement the abstract methods; see the module
    docstring for the exact array shapes.

    Parameters
    ----------
    name:
        Registry name, e.g. ``"weather-gru"``, ``"cartpole-dqn"``, ``"dqn:Acrobot-v1"``, ``"byo-gru:<hash>"``.
    kind:
        ``"classifier"``, ``"regressor"`` or ``"policy"``.
    metric:
        ``"accuracy"``, ``"rmse"`` or ``"return"``.
    higher_is_better:
        Direction of ``metric``.
    """

    name: str
    kind: str
    metric: str
    higher_is_better: bool
    cache_path: Path | None = None
    #: While True, any read of the test split raises ``TestSplitSealed`` (a search seals it until it ends).
    test_sealed: bool = False

    def guard_split(self, split: str) -> None:
        """``check_split`` plus the seal: selection code must never look at the test split."""
        check_split(split)
        if split == "test" and self.test_sealed:
            raise TestSplitSealed(
                f"{getattr(self, 'name', 'task')}: the test split is sealed while a search selects candidates; "
                "use split='val'"
            )

    @property
    @abc.abstractmethod
    def input_shape(self) -> tuple[int, ...]: ...

    @property
    @abc.abstractmethod
    def num_outputs(self) -> int: ...

    @abc.abstractmethod
    def baseline(self) -> nn.Module:
        """The trained float model in canonical form (``StackedGRU`` or ``MLP``), eval mode."""

    @abc.abstractmethod
    def evaluate(self, predict: Predict, split: str = "test") -> Quality:
        """Quality of ``predict`` on ``split``."""

    @abc.abstractmethod
    def train_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Supervised ``X, y`` for fine-tuning (a policy: visited states and the teacher's Q-values)."""

    @abc.abstractmethod
    def calibration_inputs(self, n: int) -> np.ndarray:
        """``n`` model inputs drawn from training data (int8 calibration)."""

    @abc.abstractmethod
    def agreement_inputs(self, n: int, split: str = "test") -> np.ndarray:
        """``n`` model inputs from ``split`` (device-vs-oracle agreement; a search passes ``"val"``)."""

    @abc.abstractmethod
    def content_hash(self) -> str:
        """Hash of data (or environment), code version, seed and hyper-parameters."""

    def baseline_metrics(self) -> dict[str, Any]:
        """The metrics JSON written next to the cached baseline."""
        if self.cache_path is None:
            self.baseline()
        assert self.cache_path is not None
        return json.loads((self.cache_path / "metrics.json").read_text())  # type: ignore[no-any-return]

    def evaluate_model(self, model: nn.Module, split: str = "test") -> Quality:
        """Evaluate a torch model (any module mapping the task's input batch to outputs)."""
        return self.evaluate(torch_predict(model), split)


def torch_predict(model: nn.Module) -> Predict:
    """Wrap a torch module as a numpy ``predict`` callable (eval mode, no grad, float32)."""
    import torch

    model.eval()

    def predict(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = model(torch.as_tensor(np.asarray(batch, dtype=np.float32)))
        return out.detach().cpu().numpy()

    return predict


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise TaskError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
