"""Training a recurrent baseline: fast ``nn.GRU``/``nn.LSTM`` training with early stopping, then
conversion to the canonical ``StackedGRU``/``StackedLSTM`` (the conversion is exact; the test split is
never looked at here).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from edgeprune.host.tasks.base import Progress

if TYPE_CHECKING:
    from edgeprune.host.models import StackedRNN
    from edgeprune.host.tasks.sequence import SequenceData

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GRUTrainConfig:
    """Hyper-parameters of recurrent (GRU or LSTM) baseline training (all enter the cache key).

    Parameters
    ----------
    hidden_size, num_layers:
        Width and depth of the ``nn.GRU`` / ``nn.LSTM``.
    lr, weight_decay:
        AdamW learning rate and decoupled weight decay.
    batch_size:
        Mini-batch size.
    max_epochs, patience:
        Epoch budget; stop after ``patience`` epochs without a better validation score.
    grad_clip:
        Max global gradient norm (GRUs occasionally spike early in training).
    dropout:
        Dropout between recurrent layers (training only; the converted model has none).
    class_weighting:
        ``"none"``, ``"sqrt"`` (cross-entropy weights ∝ 1/√frequency of the training labels) or
        ``"balanced"`` (∝ 1/frequency). Classifier only.
    seed:
        Seeds initialisation and shuffling; with ``threads`` fixed the run is repeatable.
    threads:
        Torch intra-op threads during training (restored afterwards).
    """

    hidden_size: int = 256
    num_layers: int = 2
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    max_epochs: int = 25
    patience: int = 6
    grad_clip: float = 1.0
    dropout: float = 0.2
    class_weighting: str = "none"
    seed: int = 0
    threads: int = 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rnn_net(cell: str, input_size: int, hidden_size: int, num_layers: int, num_outputs: int, dropout: float) -> Any:
    """``nn.GRU``/``nn.LSTM`` (batch_first) stored as attribute ``cell`` + ``nn.Linear`` readout on the last step."""
    from torch import nn

    rnn_class = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]

    class RNNNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            setattr(self, cell, rnn_class(input_size, hidden_size, num_layers=num_layers, batch_first=True,
                                          dropout=dropout))
            self.head = nn.Linear(hidden_size, num_outputs)

        def forward(self, x: Any) -> Any:
            out, _ = getattr(self, cell)(x)
            return self.head(out[:, -1])

    return RNNNet()


def make_gru_net(input_size: int, hidden_size: int, num_layers: int, num_outputs: int, dropout: float = 0.0) -> Any:
    """``nn.GRU`` (attribute ``gru``) + ``nn.Linear`` readout on the last step; the bring-your-own format."""
    return _rnn_net("gru", input_size, hidden_size, num_layers, num_outputs, dropout)


def make_lstm_net(input_size: int, hidden_size: int, num_layers: int, num_outputs: int, dropout: float = 0.0) -> Any:
    """``nn.LSTM`` (attribute ``lstm``) + ``nn.Linear`` readout on the last step; the bring-your-own LSTM format."""
    return _rnn_net("lstm", input_size, hidden_size, num_layers, num_outputs, dropout)


#: Recurrent cells a baseline can be trained with: the training net factory and its canonical class name.
CELLS = {"gru": (make_gru_net, "StackedGRU"), "lstm": (make_lstm_net, "StackedLSTM")}


def class_weights(y: Any, num_classes: int, how: str) -> Any:
    """Cross-entropy class weights from the training labels (mean weight 1 over the samples)."""
    import torch

    if how == "none":
        return None
    if how not in ("sqrt", "balanced"):
        raise ValueError(f"class_weighting must be none, sqrt or balanced, got {how!r}")
    counts = torch.bincount(y, minlength=num_classes).double().clamp(min=1.0)
    w = 1.0 / counts.sqrt() if how == "sqrt" else 1.0 / counts
    w = w / (w[y].mean())
    return w.float()


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_gru(
    data: SequenceData, cfg: GRUTrainConfig, progress: Progress | None = None, cell: str = "gru"
) -> tuple[StackedRNN, dict[str, Any]]:
    """Train on ``data``'s train split, select the epoch by validation score, return the canonical model.

    ``cell``: ``"gru"`` (``nn.GRU`` → ``StackedGRU``) or ``"lstm"`` (``nn.LSTM`` → ``StackedLSTM``).

    The validation score is accuracy for a classifier (ties broken by lower loss) and minus the loss
    for a regressor. Returns the model and a dict with ``epochs``, ``best_epoch``, ``train_seconds``.
    """
    import torch
    from torch import nn

    from edgeprune.host import models

    if cell not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
    make_net, canonical = CELLS[cell]
    t0 = time.monotonic()
    classifier = data.kind == "classifier"
    with torch_threads(cfg.threads):
        torch.manual_seed(cfg.seed)
        # nn.GRU applies dropout between layers only (and warns when there are none).
        dropout = cfg.dropout if cfg.num_layers > 1 else 0.0
        net = make_net(data.num_features, cfg.hidden_size, cfg.num_layers, data.num_outputs, dropout)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        Xtr, ytr = (torch.as_tensor(a) for a in data.part("train"))
        loss_fn: nn.Module = (
            nn.CrossEntropyLoss(weight=class_weights(ytr, data.num_outputs, cfg.class_weighting))
            if classifier
            else nn.MSELoss()
        )
        Xva, yva = (torch.as_tensor(a) for a in data.part("val"))
        if not classifier and ytr.ndim == 1:
            ytr, yva = ytr[:, None], yva[:, None]
        gen = torch.Generator().manual_seed(cfg.seed)
        best: tuple[float, float] | None = None
        best_state: dict[str, Any] = {}
        best_epoch = 0
        epoch = 0
        for epoch in range(1, cfg.max_epochs + 1):
            net.train()
            order = torch.randperm(len(Xtr), generator=gen)
            for i in range(0, len(order), cfg.batch_size):
                idx = order[i : i + cfg.batch_size]
                opt.zero_grad()
                loss = loss_fn(net(Xtr[idx]), ytr[idx])
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
                opt.step()
            net.eval()
            with torch.no_grad():
                out = net(Xva)
                val_loss = float(loss_fn(out, yva))
                val_acc = float((out.argmax(1) == yva).float().mean()) if classifier else -val_loss
            score = (val_acc, -val_loss)
            if best is None or score > best:
                best, best_epoch = score, epoch
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            log.info("epoch %d: val loss %.4f, val score %.4f (best epoch %d)", epoch, val_loss, val_acc, best_epoch)
            if progress is not None:
                progress(f"epoch {epoch}: val {val_acc:.3f}", epoch / cfg.max_epochs)
            if epoch - best_epoch >= cfg.patience:
                break
        net.load_state_dict(best_state)
        model = getattr(models, canonical).from_torch(getattr(net, cell), net.head, data.seq_len)
        model.eval()
    if progress is not None:
        progress("trained", 1.0)
    info = {"epochs": epoch, "best_epoch": best_epoch, "train_seconds": round(time.monotonic() - t0, 2)}
    return model, info

