"""Bring-your-own GRU, LSTM or CNN: a saved model plus windowed data (or images).

Model file (``torch.save`` of a dict; loaded with ``weights_only=True``, so no pickled code)::

    {"config": {"input_size": F, "hidden_sizes": [H1, H2, ...], "num_outputs": C, "seq_len": T,
                "kind": "classifier" | "regressor"},
     "state_dict": ...}

``state_dict`` is either (a) that of a module with attributes ``gru`` (an ``nn.GRU``, batch_first,
unidirectional, all layers ``H`` wide) and ``head`` (``nn.Linear(H, C)`` on the last step's output),
e.g. ``edgeprune.host.tasks.gru_train.make_gru_net``; or the same with ``lstm`` (an ``nn.LSTM``,
``make_lstm_net``); or (b) that of a canonical ``StackedGRU`` / ``StackedLSTM`` (keys ``layers.*`` /
``head.*``; four gate projections per layer make it an LSTM, or say ``"cell": "lstm"`` in the config).
A classifier outputs C logits; a regressor C values.

A CNN: ``config`` ``{"class": "ConvNet", "input_hw": [H, W], "in_channels": C, "channels": [C1, …],
"num_outputs": K, "pool_after": [bool, …], "kind": "classifier"}`` and the state dict of a canonical
``ConvNet`` (``host/models/cnn.py``: 3×3 convs with padding 1, ReLU, optional 2×2 max pools, global average
pooling, linear head; it reads NHWC images). Its data file holds ``X`` float32 ``[N, H, W, C]``.

Data file (``numpy.savez``; loaded with ``allow_pickle=False``): ``X`` float32 ``[N, T, F]``;
``y`` int64 ``[N]`` class ids (classifier) or float ``[N]`` / ``[N, C]`` targets (regressor);
optionally all three of ``train_idx``, ``val_idx``, ``test_idx`` (disjoint int row indices).
Without them the rows are taken as chronological and split 70 / 15 / 15 in order.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeprune.host.tasks.base import TaskError
from edgeprune.host.tasks.baselines import ensure_baseline
from edgeprune.host.tasks.cache import digest, file_sha256
from edgeprune.host.tasks.gru_train import make_gru_net, make_lstm_net
from edgeprune.host.tasks.model_io import build_model as build_canonical
from edgeprune.host.tasks.sequence import SequenceData, SequenceTask

if TYPE_CHECKING:
    from torch import nn

CODE_VERSION = "byo-gru/1"
CONFIG_KEYS = ("input_size", "hidden_sizes", "num_outputs", "seq_len", "kind")
CNN_CONFIG_KEYS = ("input_hw", "in_channels", "channels", "num_outputs", "pool_after", "kind")
SPLIT_KEYS = ("train_idx", "val_idx", "test_idx")


def read_model_file(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    import torch

    if not path.is_file():
        raise TaskError(f"model file {path} not found")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    # A non-torch file surfaces as any of these, depending on its first bytes (KeyError: bad magic number).
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, KeyError):
            first = "unrecognised file header"
        raise TaskError(f"{path}: not a torch.save'd {{'config', 'state_dict'}} dict ({first})") from exc
    if not isinstance(blob, dict) or "config" not in blob or "state_dict" not in blob:
        raise TaskError(f"{path}: expected a dict with keys 'config' and 'state_dict' (see byo_gru docs)")
    config, state = blob["config"], blob["state_dict"]
    if isinstance(config, dict) and config.get("class") == "ConvNet":
        return _check_cnn_config(config, path), _check_state(state, path)
    if not isinstance(config, dict) or any(k not in config for k in CONFIG_KEYS):
        raise TaskError(f"{path}: config must hold {', '.join(CONFIG_KEYS)}")
    if config["kind"] not in ("classifier", "regressor"):
        raise TaskError(f"{path}: config kind must be 'classifier' or 'regressor', got {config['kind']!r}")
    hs = config["hidden_sizes"]
    if not isinstance(hs, list | tuple) or not hs or not all(isinstance(h, int) and h > 0 for h in hs):
        raise TaskError(f"{path}: hidden_sizes must be a non-empty list of positive ints, got {hs!r}")
    for k in ("input_size", "num_outputs", "seq_len"):
        if not isinstance(config[k], int) or config[k] <= 0:
            raise TaskError(f"{path}: config {k} must be a positive int, got {config[k]!r}")
    return config, _check_state(state, path)


def _check_state(state: Any, path: Path) -> dict[str, Any]:
    if not isinstance(state, dict):
        raise TaskError(f"{path}: state_dict must be a dict of tensors")
    return state


def _check_cnn_config(config: dict[str, Any], path: Path) -> dict[str, Any]:
    missing = [k for k in CNN_CONFIG_KEYS if k not in config]
    if missing:
        raise TaskError(f"{path}: a ConvNet config must hold {', '.join(CNN_CONFIG_KEYS)} (missing {', '.join(missing)})")
    if config["kind"] != "classifier":
        raise TaskError(f"{path}: a ConvNet is a classifier (config kind 'classifier'), got {config['kind']!r}")
    hw, ch, pools = config["input_hw"], config["channels"], config["pool_after"]
    if not (isinstance(hw, list | tuple) and len(hw) == 2 and all(isinstance(v, int) and v > 0 for v in hw)):
        raise TaskError(f"{path}: input_hw must be [H, W] positive ints, got {hw!r}")
    if not (isinstance(ch, list | tuple) and ch and all(isinstance(c, int) and c > 0 for c in ch)):
        raise TaskError(f"{path}: channels must be a non-empty list of positive ints, got {ch!r}")
    if not (isinstance(pools, list | tuple) and len(pools) == len(ch) and all(isinstance(p, bool) for p in pools)):
        raise TaskError(f"{path}: pool_after must hold one bool per conv layer, got {pools!r}")
    for k in ("in_channels", "num_outputs"):
        if not isinstance(config[k], int) or config[k] <= 0:
            raise TaskError(f"{path}: config {k} must be a positive int, got {config[k]!r}")
    return config


def build_model(config: dict[str, Any], state: dict[str, Any], path: Path) -> nn.Module:
    """The canonical ``StackedGRU``/``StackedLSTM`` for a BYO model file (either state-dict layout)."""
    import torch

    from edgeprune.host.models import StackedGRU, StackedLSTM
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise TaskError(f"{path}: state_dict entry {k} is not a tensor")
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise TaskError(f"{path}: weight {k} holds NaN/inf; the model is not usable")
    if config.get("class") == "ConvNet":
        try:
            cnn = build_canonical(config)
            cnn.load_state_dict(state)
        except (RuntimeError, ValueError) as exc:
            first = str(exc).splitlines()[0]
            raise TaskError(f"{path}: state_dict does not match the ConvNet config ({first})") from exc
        return cnn.eval()
    hs = [int(h) for h in config["hidden_sizes"]]
    try:
        for prefix, make, canonical in (("gru", make_gru_net, StackedGRU), ("lstm", make_lstm_net, StackedLSTM)):
            if any(k.startswith(f"{prefix}.") for k in state):
                if len(set(hs)) != 1:
                    raise TaskError(f"{path}: an nn.{prefix.upper()} has one width for all layers, config says {hs}")
                net = make(config["input_size"], hs[0], len(hs), config["num_outputs"])
                net.load_state_dict(state)
                return canonical.from_torch(getattr(net, prefix), net.head, config["seq_len"]).eval()
        if any(k.startswith("layers.") for k in state):
            lstm = config.get("cell") == "lstm" or "layers.0.x_proj.3.weight" in state
            cls = StackedLSTM if lstm else StackedGRU
            model = cls(config["input_size"], hs, config["num_outputs"], config["seq_len"])
            model.load_state_dict(state)
            return model.eval()
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        detail = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else ""
        raise TaskError(f"{path}: state_dict does not match config {hs} ({first} {detail})") from exc
    raise TaskError(f"{path}: state_dict keys must start with 'gru.'/'lstm.' and 'head.' (nn.GRU/nn.LSTM) or "
                    "'layers.'/'head.' (StackedGRU/StackedLSTM)")


def read_data_file(path: Path, config: dict[str, Any]) -> SequenceData:
    if not path.is_file():
        raise TaskError(f"data file {path} not found")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != b"PK\x03\x04":  # an .npz is a zip archive; anything else would be read as a pickle
        what = "the file is empty" if not magic else "not a zip archive"
        raise TaskError(f"{path}: expected a numpy .npz with arrays X and y, written by numpy.savez ({what})")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise TaskError(f"{path}: expected a numpy .npz with arrays X and y ({exc})") from exc
    if "X" not in arrays or "y" not in arrays:
        raise TaskError(f"{path}: expected arrays 'X' and 'y', found {sorted(arrays)}")
    X, y = arrays["X"], arrays["y"]
    if not np.issubdtype(X.dtype, np.floating):
        raise TaskError(f"{path}: X must be float32, got {X.dtype}")
    if config.get("class") == "ConvNet":
        want: tuple[int, ...] = (*config["input_hw"], config["in_channels"])
    else:
        want = (config["seq_len"], config["input_size"])
    if X.shape[1:] != want:
        raise TaskError(f"{path}: X must be [N, {', '.join(map(str, want))}] to match the model config, got {list(X.shape)}")
    kind = config["kind"]
    if kind == "classifier":
        if not np.issubdtype(y.dtype, np.integer):
            raise TaskError(f"{path}: classifier y must be int64 class ids, got {y.dtype}")
        y = y.astype(np.int64)
    else:
        if not np.issubdtype(y.dtype, np.floating):
            raise TaskError(f"{path}: regressor y must be float, got {y.dtype}")
        y = y.astype(np.float32)
    present = [k for k in SPLIT_KEYS if k in arrays]
    n = X.shape[0]
    if present and len(present) != 3:
        raise TaskError(f"{path}: give all of {', '.join(SPLIT_KEYS)} or none (found {', '.join(present)})")
    if present:
        for k in SPLIT_KEYS:
            if not np.issubdtype(arrays[k].dtype, np.integer):
                raise TaskError(f"{path}: {k} must hold integer row indices, got {arrays[k].dtype}")
        splits = {k[:-4]: arrays[k].astype(np.int64).ravel() for k in SPLIT_KEYS}
    else:
        a, b = int(round(n * 0.70)), int(round(n * 0.85))
        splits = {"train": np.arange(0, a), "val": np.arange(a, b), "test": np.arange(b, n)}
    data = SequenceData(
        X=X.astype(np.float32),
        y=y,
        splits=splits,
        kind=kind,
        num_outputs=config["num_outputs"],
        class_names=None,
        data_hash=file_sha256(path),
    )
    try:
        data.validate()
    except TaskError as exc:
        raise TaskError(f"{path}: {exc}") from exc
    return data


class BYOGRUTask(SequenceTask):
    """A user's GRU, LSTM or CNN and data (formats in the module docstring); the given model is the baseline.

    Parameters
    ----------
    model_path:
        ``.pt`` model file.
    data_path:
        ``.npz`` data file.
    cache_root:
        Cache root (default ``edgeprune.bench.paths.cache_dir()``).
    seed:
        Seeds the choice of calibration / agreement rows.
    """

    def __init__(self, model_path: Path, data_path: Path, cache_root: Path | None = None, seed: int = 0) -> None:
        self.model_path, self.data_path = Path(model_path), Path(data_path)
        self.config, state = read_model_file(self.model_path)
        # Build before reading data: a model/config mismatch is the likelier mistake and clearer first.
        self._loaded = build_model(self.config, state, self.model_path)
        data = read_data_file(self.data_path, self.config)
        self._key = {
            "task": "byo-gru",
            "code": CODE_VERSION,
            "model": file_sha256(self.model_path),
            "data": data.data_hash,
            "seed": seed,
        }
        super().__init__(f"byo-gru:{digest(self._key)[:12]}", data, seed=seed)
        self.cache_root = cache_root

    def content_hash(self) -> str:
        return digest(self._key)

    def _make_baseline(self) -> nn.Module:
        return ensure_baseline(self, self._key, lambda: (self._loaded, {"source": str(self.model_path)}, {}), self.cache_root)
