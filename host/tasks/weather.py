"""``weather-gru`` / ``weather-lstm``: next-day weather class from the previous 30 days of Seattle
observations, with a stacked GRU (the study's model) or a stacked LSTM baseline on the same data,
split and training recipe.

Data: ``host/tasks/data/seattle-weather.csv``, shipped with edgeprune (1,461 daily rows, 2012-01-01 …
2015-12-31; the corrected copy from npm ``vega-datasets`` 2.x, BSD-3-Clause — see ``data/README.md``).
Its SHA-256 is checked at every load: any other file is refused.

* Inputs: days ``d-30 … d-1`` (``SEQ_LEN`` = 30), features ``FEATURES`` = precipitation, temp_max,
  temp_min, wind, each standardised with the mean/std of the **training days only**. The calendar
  (sin/cos of the day of the year, ``calendar=True``) is available but off: measured on the
  chronological split it did not help (2×256 GRU, seed 0: validation 0.608 with it, 0.614 without;
  test 0.630 both), so the task keeps the study's four inputs.
* Target: the ``weather`` label of day ``d`` as a class id in ``CLASSES`` order
  (0 drizzle, 1 rain, 2 sun, 3 snow, 4 fog).
* Split ``chronological`` (default): the days are cut into three contiguous blocks of 70 / 15 / 15 %
  (train / val / test). A window belongs to a block only if its 30 input days *and* its target day
  all lie inside that block, so no day is seen by two splits.
* Split ``shuffled`` (task name ``weather-gru:shuffled``): the published layer-wise GRU study's
  protocol — all 1,431 windows shuffled, 287 for test, 215 for validation, the rest for training.
  Overlapping windows share days across the splits, so its accuracies **leak** and are not comparable
  with the chronological figures; it exists to compare with the study's 65.85 %.

Reference predictors reported beside every accuracy: the majority class of the training split and
persistence ("tomorrow's weather = today's").
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeprune.host.tasks import metrics
from edgeprune.host.tasks.base import Predict, Progress, Quality, TaskError
from edgeprune.host.tasks.baselines import ensure_baseline
from edgeprune.host.tasks.cache import digest, source_fingerprint
from edgeprune.host.tasks.gru_train import GRUTrainConfig, train_gru
from edgeprune.host.tasks.sequence import SequenceData, SequenceTask

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

CLASSES = ("drizzle", "rain", "sun", "snow", "fog")
FEATURES = ("precipitation", "temp_max", "temp_min", "wind")
CALENDAR = ("doy_sin", "doy_cos")
SEQ_LEN = 30
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
SPLITS_KINDS = ("chronological", "shuffled")
#: The study's shuffled protocol: 287 of 1,431 windows for test (its accuracies are multiples of 1/287).
SHUFFLED_TEST, SHUFFLED_VAL, SHUFFLED_SEED = 287, 215, 0
CODE_VERSION = "weather-gru/2"
#: Code that shapes the baseline (enters its cache key with the data hash).
BASELINE_SOURCES = ("host/tasks/weather.py", "host/tasks/sequence.py", "host/tasks/gru_train.py", "host/models")
DATA_FILE = Path(__file__).resolve().parent / "data" / "seattle-weather.csv"
DATA_SHA256 = "0845078a290b48e3149ab8639966824110a251db4e06fc144c06ebb534af23be"


def csv_path() -> Path:
    """The shipped CSV (see ``data/README.md``)."""
    if not DATA_FILE.is_file():
        raise TaskError(f"seattle-weather.csv missing at {DATA_FILE}; reinstall edgeprune")
    return DATA_FILE


def verify_csv(path: Path) -> str:
    """SHA-256 of ``path``; ``TaskError`` unless it is the corrected vega-datasets file."""
    sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if sha != DATA_SHA256:
        raise TaskError(
            f"{path} has SHA-256 {sha[:12]}…, not the corrected seattle-weather.csv ({DATA_SHA256[:12]}…); "
            "restore the file shipped with edgeprune"
        )
    return sha


@dataclass
class WeatherDays:
    """The raw daily table: ``dates`` (ISO strings), ``features [D, 4]`` float64, ``labels [D]`` class ids."""

    dates: list[str]
    features: np.ndarray
    labels: np.ndarray

    def calendar(self) -> np.ndarray:
        """``[D, 2]``: sin/cos of the day of the year (a leap-year-proof angle over 365.25 days)."""
        doy = np.array([dt.date.fromisoformat(d).timetuple().tm_yday for d in self.dates], dtype=np.float64)
        angle = 2.0 * math.pi * (doy - 1.0) / 365.25
        return np.stack([np.sin(angle), np.cos(angle)], axis=1)


def load_days(path: Path | None = None, *, verify: bool = True) -> WeatherDays:
    """Read the CSV (verified against ``DATA_SHA256`` unless ``verify=False``, for tests of the reader)."""
    path = Path(path) if path is not None else csv_path()
    if verify:
        verify_csv(path)
    dates: list[str] = []
    feats: list[list[float]] = []
    labels: list[int] = []
    try:
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("weather") not in CLASSES:
                    raise TaskError(f"{path}: unexpected weather label {row.get('weather')!r} on {row.get('date')}")
                dates.append(row["date"].replace("/", "-"))
                feats.append([float(row[f]) for f in FEATURES])
                labels.append(CLASSES.index(row["weather"]))
    except (KeyError, ValueError) as exc:
        raise TaskError(f"{path}: not a seattle-weather table ({exc})") from exc
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
        Day range of each split (chronological split; for ``shuffled`` the training days' hull).
    mean, std:
        The scaler of the four weather features (fit on training days only).
    dates:
        ISO date of every day.
    split:
        ``"chronological"`` or ``"shuffled"``.
    """

    data: SequenceData
    target_day: np.ndarray
    blocks: dict[str, tuple[int, int]]
    mean: np.ndarray
    std: np.ndarray
    dates: list[str]
    split: str = "chronological"


def _window_rows(days: WeatherDays, split: str, seq_len: int) -> tuple[dict[str, list[int]], dict[str, tuple[int, int]]]:
    """Target days per split."""
    n = len(days.dates)
    if split == "chronological":
        blocks = day_blocks(n)
        return {s: list(range(b + seq_len, e)) for s, (b, e) in blocks.items()}, blocks
    targets = np.arange(seq_len, n)
    order = np.random.default_rng(SHUFFLED_SEED).permutation(len(targets))
    test = sorted(targets[order[:SHUFFLED_TEST]].tolist())
    val = sorted(targets[order[SHUFFLED_TEST : SHUFFLED_TEST + SHUFFLED_VAL]].tolist())
    train = sorted(targets[order[SHUFFLED_TEST + SHUFFLED_VAL :]].tolist())
    return {"train": train, "val": val, "test": test}, {"train": (0, n), "val": (0, n), "test": (0, n)}


def build_windows(
    days: WeatherDays, data_hash: str, seq_len: int = SEQ_LEN, *, calendar: bool = False, split: str = "chronological"
) -> WeatherWindows:
    if split not in SPLITS_KINDS:
        raise TaskError(f"unknown weather split {split!r}; expected one of {', '.join(SPLITS_KINDS)}")
    rows, blocks = _window_rows(days, split, seq_len)
    if split == "chronological":
        t0, t1 = blocks["train"]
        fit_days = np.arange(t0, t1)
    else:
        fit_days = np.unique(np.concatenate([np.arange(t - seq_len, t) for t in rows["train"]]))
    mean = days.features[fit_days].mean(axis=0)
    std = days.features[fit_days].std(axis=0)
    scaled = (days.features - mean) / std
    if calendar:
        scaled = np.concatenate([scaled, days.calendar()], axis=1)
    scaled = scaled.astype(np.float32)
    xs: list[np.ndarray] = []
    ys: list[int] = []
    targets: list[int] = []
    splits: dict[str, list[int]] = {s: [] for s in rows}
    for name, target_days in rows.items():
        for target in target_days:
            splits[name].append(len(xs))
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
    return WeatherWindows(data, np.asarray(targets, dtype=np.int64), blocks, mean, std, days.dates, split)


def parse_name(name: str) -> str:
    """``weather-gru`` → ``chronological``; ``weather-gru:<split>`` → that split (same for ``weather-lstm``)."""
    parse_cell(name)
    split = name.partition(":")[2] or "chronological"
    if split not in SPLITS_KINDS:
        raise TaskError(f"unknown weather split {split!r}; use {name.partition(':')[0]} or "
                        f"{name.partition(':')[0]}:shuffled")
    return split


def parse_cell(name: str) -> str:
    """``weather-gru[:split]`` → ``gru``; ``weather-lstm[:split]`` → ``lstm``."""
    base = name.partition(":")[0]
    if base not in ("weather-gru", "weather-lstm"):
        raise TaskError(f"not a weather task: {name!r}")
    return base.removeprefix("weather-")


class WeatherGRUTask(SequenceTask):
    """Seattle next-day weather classification with a stacked GRU or LSTM (see the module docstring).

    Parameters
    ----------
    train_config:
        Hyper-parameters of the baseline (default: 2 × 256 GRU, the reference baseline).
    cache_root:
        Cache root (default ``edgeprune.bench.paths.cache_dir()``).
    progress:
        Optional ``progress(description, fraction)`` callback while training.
    split:
        ``"chronological"`` (default) or ``"shuffled"`` (the study's leaking protocol).
    calendar:
        Add day-of-year sin/cos to the four weather features (default off; see the module docstring).
    cell:
        ``"gru"`` (task ``weather-gru``, default) or ``"lstm"`` (``weather-lstm``): the baseline's
        recurrent cell, trained with the same ``train_config``.
    """

    def __init__(
        self,
        train_config: GRUTrainConfig | None = None,
        cache_root: Path | None = None,
        progress: Progress | None = None,
        split: str = "chronological",
        calendar: bool = False,
        cell: str = "gru",
    ) -> None:
        if cell not in ("gru", "lstm"):
            raise TaskError(f"weather task cell must be gru or lstm, got {cell!r}")
        self.cell = cell
        path = csv_path()
        self.days = load_days(path)
        self.calendar = calendar
        self.windows = build_windows(self.days, DATA_SHA256, calendar=calendar, split=split)
        self.train_config = train_config or GRUTrainConfig()
        name = f"weather-{cell}" if split == "chronological" else f"weather-{cell}:{split}"
        super().__init__(name, self.windows.data, seed=self.train_config.seed)
        self.cache_root = cache_root
        self.progress = progress

    @property
    def split_kind(self) -> str:
        return self.windows.split

    def _key_inputs(self) -> dict[str, object]:
        return {
            "task": self.name,
            "code": CODE_VERSION,
            "source": source_fingerprint(BASELINE_SOURCES),
            "data": self.data.data_hash,
            "features": FEATURES + (CALENDAR if self.calendar else ()),
            "classes": CLASSES,
            "seq_len": SEQ_LEN,
            "split": self.windows.split,
            "fractions": SPLIT_FRACTIONS,
            "train": self.train_config.to_dict(),
        }

    def content_hash(self) -> str:
        return digest(self._key_inputs())

    def persistence_accuracy(self, split: str) -> float:
        """Accuracy of "tomorrow's weather = today's" on ``split``'s windows."""
        self.guard_split(split)
        idx = self.data.splits[split]
        target = self.windows.target_day[idx]
        return metrics.accuracy(self.days.labels[target], self.days.labels[target - 1])

    def evaluate(self, predict: Predict, split: str = "test") -> Quality:
        q = super().evaluate(predict, split)
        q.details["persistence_accuracy"] = self.persistence_accuracy(split)
        q.details["split_kind"] = self.windows.split
        return q

    def _make_baseline(self) -> nn.Module:
        def train() -> tuple[nn.Module, dict[str, Any], dict[str, bytes]]:
            model, info = train_gru(self.data, self.train_config, self.progress, cell=self.cell)
            return model, info, {}

        return ensure_baseline(self, self._key_inputs(), train, self.cache_root)
