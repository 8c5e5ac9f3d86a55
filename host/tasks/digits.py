"""``digits-cnn``: 8 × 8 handwritten digits with a small convolutional classifier, fully offline.

Data: ``host/tasks/data/digits.csv.gz``, shipped with edgeprune (1,797 images, the UCI optical digits test
set as scikit-learn ships it; see ``data/README.md``). Its SHA-256 is checked at every load.

* Inputs: one NHWC image ``[8, 8, 1]``, pixel counts 0 … 16 divided by 16 (so [0, 1]; the export keeps
  this scale: a conv's zero padding rules out folding a standardisation into the first layer).
* Target: the digit 0 … 9.
* Split: stratified per digit, 70 / 15 / 15 % (train / val / test) after a fixed shuffle (seed 0), so every
  split holds every digit in the same proportion. Searches select on val; test is scored once afterwards.
* Baseline: ``ConvNet`` 3×3 conv 16 → max-pool → 3×3 conv 32 → global average pool → 10 (``CNNTrainConfig``),
  trained with Adam and early stopping on validation accuracy. Channel pruning is its structured knob.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeprune.host.tasks.base import Progress, TaskError
from edgeprune.host.tasks.baselines import ensure_baseline
from edgeprune.host.tasks.cache import digest, source_fingerprint
from edgeprune.host.tasks.gru_train import torch_threads
from edgeprune.host.tasks.sequence import SequenceData, SequenceTask

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

DATA_FILE = Path(__file__).resolve().parent / "data" / "digits.csv.gz"
DATA_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
SIDE, CLASSES = 8, 10
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
SPLIT_SEED = 0
CODE_VERSION = "digits-cnn/1"
BASELINE_SOURCES = ("host/tasks/digits.py", "host/tasks/sequence.py", "host/models/cnn.py")


@dataclass(frozen=True)
class CNNTrainConfig:
    """Hyper-parameters of the digits baseline (all enter the cache key).

    Parameters
    ----------
    channels:
        Filters of each 3×3 conv layer.
    pool_after:
        Whether a 2×2 max pool follows each conv layer.
    lr, weight_decay, batch_size:
        AdamW learning rate, decoupled weight decay and mini-batch size.
    max_epochs, patience:
        Epoch budget; stop after ``patience`` epochs without a better validation accuracy.
    seed, threads:
        Initialisation/shuffling seed and torch intra-op threads (restored afterwards).
    """

    channels: tuple[int, ...] = (16, 32)
    pool_after: tuple[bool, ...] = (True, False)
    lr: float = 3e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    max_epochs: int = 60
    patience: int = 10
    seed: int = 0
    threads: int = 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify_data(path: Path) -> None:
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    if got != DATA_SHA256:
        raise TaskError(f"{path} has SHA-256 {got}, expected {DATA_SHA256}; restore it from the edgeprune package")


def load_digits(path: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(X [1797, 8, 8, 1] float32 in [0, 1], y [1797] int64)`` from the shipped file (SHA-256 checked)."""
    path = Path(path) if path is not None else DATA_FILE
    if not path.is_file():
        raise TaskError(f"digits data missing at {path}; reinstall edgeprune")
    verify_data(path)
    with gzip.open(path, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != SIDE * SIDE + 1:
        raise TaskError(f"{path}: expected {SIDE * SIDE} pixels and a label per row, got shape {table.shape}")
    X = (table[:, :-1].astype(np.float32) / 16.0).reshape(-1, SIDE, SIDE, 1)
    return X, table[:, -1].astype(np.int64)


def stratified_splits(y: np.ndarray, seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """Per class, a seeded shuffle cut 70 / 15 / 15 % into train / val / test (sorted row indices)."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        n_train = int(round(SPLIT_FRACTIONS[0] * len(rows)))
        n_val = int(round(SPLIT_FRACTIONS[1] * len(rows)))
        parts["train"].append(rows[:n_train])
        parts["val"].append(rows[n_train : n_train + n_val])
        parts["test"].append(rows[n_train + n_val :])
    return {k: np.sort(np.concatenate(v)).astype(np.int64) for k, v in parts.items()}


def train_cnn(data: SequenceData, cfg: CNNTrainConfig, progress: Progress | None = None) -> tuple[Any, dict[str, Any]]:
    """Train a ``ConvNet`` on the train split, keep the epoch with the best validation accuracy."""
    import torch
    from torch import nn

    from edgeprune.host.models import ConvNet
    t0 = time.monotonic()
    with torch_threads(cfg.threads):
        torch.manual_seed(cfg.seed)
        h, w, c = data.X.shape[1:]
        model = ConvNet((h, w), c, list(cfg.channels), data.num_outputs, list(cfg.pool_after))
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        Xtr, ytr = (torch.as_tensor(a) for a in data.part("train"))
        Xva, yva = (torch.as_tensor(a) for a in data.part("val"))
        gen = torch.Generator().manual_seed(cfg.seed)
        loss_fn = nn.CrossEntropyLoss()
        best: tuple[float, float] | None = None
        best_state: dict[str, Any] = {}
        best_epoch = epoch = 0
        for epoch in range(1, cfg.max_epochs + 1):
            model.train()
            order = torch.randperm(len(Xtr), generator=gen)
            for i in range(0, len(order), cfg.batch_size):
                idx = order[i : i + cfg.batch_size]
                opt.zero_grad()
                loss_fn(model(Xtr[idx]), ytr[idx]).backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                out = model(Xva)
                score = (float((out.argmax(1) == yva).float().mean()), -float(loss_fn(out, yva)))
            if best is None or score > best:
                best, best_epoch = score, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if progress is not None:
                progress(f"epoch {epoch}: val {score[0]:.3f}", epoch / cfg.max_epochs)
            if epoch - best_epoch >= cfg.patience:
                break
        model.load_state_dict(best_state)
        model.eval()
    log.info("digits ConvNet %s: best epoch %d of %d, val accuracy %.4f", cfg.channels, best_epoch, epoch,
             best[0] if best else float("nan"))
    return model, {"epochs": epoch, "best_epoch": best_epoch, "train_seconds": round(time.monotonic() - t0, 2)}


class DigitsCNNTask(SequenceTask):
    """8 × 8 digit classification with a small ``ConvNet`` (see the module docstring).

    Parameters
    ----------
    train_config:
        Hyper-parameters of the baseline (default ``CNNTrainConfig()``).
    cache_root:
        Cache root (default ``edgeprune.bench.paths.cache_dir()``).
    progress:
        Optional ``progress(description, fraction)`` callback while training.
    """

    #: Fine-tuning learning rate after compression (``compress.compressor``). Measured on the baseline cut to
    #: 8 + 8 channels (6× fewer MACs), 800 distillation steps: validation 0.926 at the default 3e-3, 0.963 at 1e-2.
    finetune_lr = 1e-2

    def __init__(self, train_config: CNNTrainConfig | None = None, cache_root: Path | None = None,
                 progress: Progress | None = None) -> None:
        X, y = load_digits()
        data = SequenceData(X=X, y=y, splits=stratified_splits(y), kind="classifier", num_outputs=CLASSES,
                            class_names=[str(d) for d in range(CLASSES)], data_hash=DATA_SHA256)
        self.train_config = train_config or CNNTrainConfig()
        super().__init__("digits-cnn", data, seed=self.train_config.seed)
        self.cache_root = cache_root
        self.progress = progress

    def _key_inputs(self) -> dict[str, object]:
        return {
            "task": self.name,
            "code": CODE_VERSION,
            "source": source_fingerprint(BASELINE_SOURCES),
            "data": DATA_SHA256,
            "fractions": SPLIT_FRACTIONS,
            "split_seed": SPLIT_SEED,
            "train": self.train_config.to_dict(),
        }

    def content_hash(self) -> str:
        return digest(self._key_inputs())

    def _make_baseline(self) -> nn.Module:
        def train() -> tuple[nn.Module, dict[str, Any], dict[str, bytes]]:
            model, info = train_cnn(self.data, self.train_config, self.progress)
            return model, info, {}

        return ensure_baseline(self, self._key_inputs(), train, self.cache_root)
