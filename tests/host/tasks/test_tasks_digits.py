"""digits-cnn: the shipped digits (SHA-256 checked), a stratified split that never shares an image, and a
small ConvNet baseline that learns them, from the data file alone (offline)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeprune.host.tasks import TaskError, get_task
from edgeprune.host.tasks import digits as D

TINY = D.CNNTrainConfig(channels=(8, 16), lr=1e-2, max_epochs=15, patience=15, threads=1)


def test_data_is_the_uci_test_set_as_shipped() -> None:
    X, y = D.load_digits()
    assert X.shape == (1797, 8, 8, 1) and X.dtype == np.float32 and 0.0 <= X.min() and X.max() == 1.0
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_an_edited_data_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "digits.csv.gz"
    shutil.copy(D.DATA_FILE, bad)
    with bad.open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(TaskError, match="SHA-256"):
        D.load_digits(bad)


def test_split_is_stratified_and_disjoint() -> None:
    _, y = D.load_digits()
    s = D.stratified_splits(y)
    assert sum(len(v) for v in s.values()) == len(y)
    assert not (set(s["train"]) & set(s["val"]) or set(s["train"]) & set(s["test"]) or set(s["val"]) & set(s["test"]))
    for part, frac in zip(("train", "val", "test"), D.SPLIT_FRACTIONS, strict=True):
        share = np.bincount(y[s[part]], minlength=10) / np.bincount(y)
        assert np.all(np.abs(share - frac) < 0.02), (part, share)
    assert all(np.array_equal(s[k], D.stratified_splits(y)[k]) for k in s)  # seeded


@pytest.mark.slow
def test_tiny_convnet_baseline_learns_the_digits(tmp_path: Path) -> None:
    from edgeprune.host.models import ConvNet

    task = get_task("digits-cnn", tmp_path, train_config=TINY)
    model = task.baseline()
    assert isinstance(model, ConvNet) and model.channels == [8, 16]
    assert task.input_shape == (8, 8, 1)
    q = task.evaluate_model(model, "val")
    assert q.metric == "accuracy" and q.value > 0.8, q
    assert task.calibration_inputs(5).shape == (5, 8, 8, 1)
