"""``weather-gru``: next-day weather class from the previous 30 days of Seattle observations.

Data: ``seattle-weather`` shipped inside PyPI ``vega_datasets`` (1,461 daily rows, 2012-01-01 …
2015-12-31; read from the installed package, never downloaded).

* Inputs: days ``d-30 … d-1`` (``SEQ_LEN`` = 30), features ``FEATURES`` = precipitation, temp_max,
  temp_min, wind, each standardised with the mean/std of the **training days only**.
* Target: the ``weather`` label of day ``d`` as a class id in ``CLASSES`` order
  (0 drizzle, 1 rain, 2 sun, 3 snow, 4 fog).
* Split: the days are cut chronologically into three contiguous blocks of 70 / 15 / 15 % (train /
  val / test). A window belongs to a block only if its 30 input days *and* its target day all lie
  inside that block, so no day is seen by two splits (the first 30 days of each block serve only as
  inputs).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgeprune.host.tasks.base import Progress, TaskError
from edgeprune.host.tasks.baselines import ensure_baseline
from edgeprune.host.tasks.cache import file_sha256
from edgeprune.host.tasks.gru_train import GRUTrainConfig, train_gru
from edgeprune.host.tasks.sequence import SequenceData, SequenceTask

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

CLASSES = ("drizzle", "rain", "sun", "snow", "fog")
FEATURES = ("precipitation", "temp_max", "temp_min", "wind")
SEQ_LEN = 30
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
CODE_VERSION = "weather-gru/1"


def csv_path() -> Path:
    try:
        from vega_datasets import local_data
    except ImportError as exc:
        raise TaskError("weather-gru needs the vega_datasets package: pip install vega_datasets") from exc
    path = Path(local_data.seattle_weather.filepath)
    if not path.is_file():
        raise TaskError(f"seattle-weather.csv missing at {path}; reinstall vega_datasets")
    return path


@dataclass
class WeatherDays:
    """The raw daily table: ``dates`` (ISO strings), ``features [D, 4]`` float64, ``labels [D]`` class ids."""

    dates: list[str]
    features: np.ndarray
    labels: np.ndarray


def load_days(path: Path | None = None) -> WeatherDays:
    path = path or csv_path()
    dates: list[str] = []
    feats: list[list[float]] = []
    labels: list[int] = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["weather"] not in CLASSES:
                raise TaskError(f"unexpected weather label {row['weather']!r} on {row['date']}")
            dates.append(row["date"])
            feats.append([float(row[f]) for f in FEATURES])
            labels.append(CLASSES.index(row["weather"]))
    if dates != sorted(dates):
        raise TaskError(f"{path} is not in date order")
    return WeatherDays(dates, np.asarray(feats, dtype=np.float64), np.asarray(labels, dtype=np.int64))


def day_blocks(n_days: int, fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> dict[str, tuple[int, int]]:
    """Contiguous ``[start, end)`` day ranges per split."""
    a = int(round(n_days * fractions[0]))
    b = int(round(n_days * (fractions[0] + fractions[1])))
    return {"train": (0, a), "val": (a, b), "test": (b, n_days)}


@dataclass
class WeatherWindows:
    """Windowed data plus what is needed to audit it.

    Parameters
    ----------
    data:
        The ``SequenceData`` the task trains and evaluates on.
    target_day:
        Day index (row of the CSV) of each window's target; the inputs are ``target_day-30 … target_day-1``.
    blocks:
        Day range of each split.
    mean, std:
        The scaler (fit on training days only).
    dates:
        ISO date of every day.
    """

    data: SequenceData
    target_day: np.ndarray
    blocks: dict[str, tuple[int, int]]
    mean: np.ndarray
    std: np.ndarray
    dates: list[str]


def build_windows(days: WeatherDays, data_hash: str, seq_len: int = SEQ_LEN) -> WeatherWindows:
    blocks = day_blocks(len(days.dates))
    t0, t1 = blocks["train"]
    mean = days.features[t0:t1].mean(axis=0)
    std = days.features[t0:t1].std(axis=0)
    scaled = ((days.features - mean) / std).astype(np.float32)
    xs: list[np.ndarray] = []
    ys: list[int] = []
    targets: list[int] = []
    splits: dict[str, list[int]] = {s: [] for s in blocks}
    for split, (start, end) in blocks.items():
        for target in range(start + seq_len, end):
            splits[split].append(len(xs))
            xs.append(scaled[target - seq_len : target])
            ys.append(days.labels[target])
            targets.append(target)
    data = SequenceData(
        X=np.stack(xs),
        y=np.asarray(ys, dtype=np.int64),
        splits={s: np.asarray(v, dtype=np.int64) for s, v in splits.items()},
        kind="classifier",
        num_outputs=len(CLASSES),
        class_names=list(CLASSES),
        data_hash=data_hash,
    )
    return WeatherWindows(data, np.asarray(targets, dtype=np.int64), blocks, mean, std, days.dates)


class WeatherGRUTask(SequenceTask):
    """Seattle next-day weather classification with a stacked GRU (see the module docstring).

    Parameters
    ----------
    train_config:
        Hyper-parameters of the baseline (default: 2 × 256 GRU, the reference baseline).
    cache_root:
        Cache root (default ``edgeprune.host.paths.cache_dir()``).
    progress:
        Optional ``progress(description, fraction)`` callback while training.
    """

    def __init__(
        self,
        train_config: GRUTrainConfig | None = None,
        cache_root: Path | None = None,
        progress: Progress | None = None,
    ) -> None:
        path = csv_path()
        self.windows = build_windows(load_days(path), file_sha256(path))
        self.train_config = train_config or GRUTrainConfig()
        super().__init__("weather-gru", self.windows.data, seed=self.train_config.seed)
        self.cache_root = cache_root
        self.progress = progress

    def _key_inputs(self) -> dict[str, object]:
        return {
            "task": self.name,
            "code": CODE_VERSION,
            "data": self.data.data_hash,
            "features": FEATURES,
            "classes": CLASSES,
            "seq_len": SEQ_LEN,
            "split": SPLIT_FRACTIONS,
            "train": self.train_config.to_dict(),
        }

    def content_hash(self) -> str:
        from edgeprune.host.tasks.cache import digest

        return digest(self._key_inputs())

    def _make_baseline(self) -> nn.Module:
        def train() -> tuple[nn.Module, dict[str, object], dict[str, bytes]]:
            model, info = train_gru(self.data, self.train_config, self.progress)
            return model, info, {}

        return ensure_baseline(self, self._key_inputs(), train, self.cache_root)
