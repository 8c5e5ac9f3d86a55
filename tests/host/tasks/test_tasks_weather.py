"""weather-gru: windowing, split hygiene, scaler, and a tiny model that must beat the majority class."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from edgeprune.host.tasks import TaskError, get_task
from edgeprune.host.tasks import weather as W
from edgeprune.host.tasks.baselines import TRAIN_CALLS
from edgeprune.host.tasks.gru_train import GRUTrainConfig

from .conftest import baseline_entries

TINY = GRUTrainConfig(hidden_size=16, num_layers=1, lr=1e-2, max_epochs=10, patience=10, threads=1)


@pytest.fixture(scope="module")
def days() -> W.WeatherDays:
    return W.load_days()


@pytest.fixture(scope="module")
def windows(days: W.WeatherDays) -> W.WeatherWindows:
    return W.build_windows(days, "test")


def test_dataset_is_the_corrected_seattle_table(days: W.WeatherDays) -> None:
    assert len(days.dates) == 1461
    assert days.dates[0] == "2012-01-01" and days.dates[-1] == "2015-12-31"
    assert days.features.shape == (1461, 4)
    counts = dict(zip(W.CLASSES, np.bincount(days.labels, minlength=len(W.CLASSES)).tolist(), strict=True))
    # The corrected labels (vega-datasets 2.x), not PyPI vega_datasets 0.9's stale copy.
    assert counts == {"rain": 641, "sun": 640, "fog": 101, "drizzle": 53, "snow": 26}
    year = np.array([d[:4] for d in days.dates])
    assert int(np.sum((year == "2014") & (days.labels == W.CLASSES.index("rain")))) > 100


def test_an_edited_data_file_is_refused(tmp_path: Path) -> None:
    from edgeprune.host.tasks import TaskError

    edited = tmp_path / "seattle-weather.csv"
    text = W.csv_path().read_text()
    edited.write_text(text.replace("2012-01-02,10.9,10.6,2.8,4.5,rain", "2012-01-02,10.9,10.6,2.8,4.5,sun", 1))
    with pytest.raises(TaskError, match="not the corrected seattle-weather.csv") as err:
        W.load_days(edited)
    assert "\n" not in str(err.value)
    assert W.verify_csv(W.csv_path()) == W.DATA_SHA256


def test_persistence_and_majority_references(days: W.WeatherDays) -> None:
    task = W.WeatherGRUTask(TINY, Path("/nonexistent-unused"))
    # Figures checked by hand on the corrected labels: a model must beat these to mean anything.
    assert task.persistence_accuracy("val") == pytest.approx(0.577, abs=0.001)
    assert task.persistence_accuracy("test") == pytest.approx(0.589, abs=0.003)
    y_test = task.data.part("test")[1]
    block_majority = np.bincount(y_test).max() / len(y_test)
    assert block_majority < task.persistence_accuracy("test") - 0.1


def test_shuffled_split_is_the_studys_protocol_and_says_so(days: W.WeatherDays) -> None:
    win = W.build_windows(days, "x", split="shuffled")
    sizes = {s: len(v) for s, v in win.data.splits.items()}
    assert sizes == {"train": 1431 - 287 - 215, "val": 215, "test": 287}
    assert W.parse_name("weather-gru:shuffled") == "shuffled" and W.parse_name("weather-gru") == "chronological"
    from edgeprune.host.tasks import TaskError

    with pytest.raises(TaskError, match="weather-gru:shuffled"):
        W.parse_name("weather-gru:random")


def test_sealed_task_refuses_the_test_split() -> None:
    from edgeprune.host.tasks.base import TestSplitSealed

    task = W.WeatherGRUTask(TINY, Path("/nonexistent-unused"))
    task.test_sealed = True
    with pytest.raises(TestSplitSealed):
        task.agreement_inputs(4)
    with pytest.raises(TestSplitSealed):
        task.evaluate(lambda x: np.zeros((len(x), 5), np.float32), "test")
    assert task.agreement_inputs(4, split="val").shape == (4, 30, 4)
    task.test_sealed = False
    assert task.evaluate(lambda x: np.zeros((len(x), 5), np.float32), "test").value >= 0.0


def test_window_holds_previous_30_days_and_next_day_label(days: W.WeatherDays, windows: W.WeatherWindows) -> None:
    data = windows.data
    scaled = (days.features - windows.mean) / windows.std
    for row in (0, 500, len(data.X) - 1):
        t = int(windows.target_day[row])
        np.testing.assert_allclose(data.X[row], scaled[t - W.SEQ_LEN : t], rtol=1e-5, atol=1e-5)
        assert data.y[row] == days.labels[t]
    assert data.X.shape[1:] == (30, 4) and data.X.dtype == np.float32


def test_split_is_chronological_without_leakage(windows: W.WeatherWindows) -> None:
    used: dict[str, set[int]] = {}
    for split, idx in windows.data.splits.items():
        start, end = windows.blocks[split]
        targets = windows.target_day[idx]
        # Every input day and the target day of every window lie inside the split's own block.
        assert targets.min() - W.SEQ_LEN >= start and targets.max() < end
        used[split] = {d for t in targets for d in range(int(t) - W.SEQ_LEN, int(t) + 1)}
    assert not used["train"] & used["val"] and not used["val"] & used["test"] and not used["train"] & used["test"]
    assert max(used["train"]) < min(used["val"]) and max(used["val"]) < min(used["test"])
    fractions = {s: (e - b) / 1461 for s, (b, e) in windows.blocks.items()}
    assert fractions["train"] == pytest.approx(0.70, abs=0.01) and fractions["test"] == pytest.approx(0.15, abs=0.01)
    # Dates agree with the indices (the CSV is one row per day).
    last_train = windows.dates[int(windows.target_day[windows.data.splits["train"]].max())]
    first_test = windows.dates[int(windows.target_day[windows.data.splits["test"]].min())]
    assert last_train < first_test


def test_scaler_is_fit_on_training_days_only(days: W.WeatherDays, windows: W.WeatherWindows) -> None:
    start, end = windows.blocks["train"]
    np.testing.assert_allclose(windows.mean, days.features[start:end].mean(axis=0))
    # Changing every non-training day must leave the scaler and all training windows untouched.
    altered = dataclasses.replace(days, features=days.features.copy())
    altered.features[end:] = altered.features[end:] * 7.0 + 100.0
    other = W.build_windows(altered, "altered")
    np.testing.assert_array_equal(other.mean, windows.mean)
    train = windows.data.splits["train"]
    np.testing.assert_array_equal(other.data.X[train], windows.data.X[train])
    assert not np.array_equal(other.data.X[windows.data.splits["test"]], windows.data.X[windows.data.splits["test"]])


@pytest.fixture(scope="module")
def tiny_task(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("weather-cache")
    return get_task("weather-gru", root, train_config=TINY), root


@pytest.mark.slow
def test_tiny_gru_beats_majority_class(tiny_task) -> None:
    from edgeprune.host.models import StackedGRU

    task, _ = tiny_task
    model = task.baseline()
    assert isinstance(model, StackedGRU) and model.hidden_sizes == [16] and model.seq_len == 30
    q = task.evaluate_model(model, "test")
    assert q.metric == "accuracy" and q.details["n"] == len(task.data.splits["test"])
    assert q.value > q.details["majority_accuracy"] + 0.03, q
    assert q.details["persistence_accuracy"] > 0.5
    assert 0.0 < q.details["macro_f1"] <= 1.0
    metrics = task.baseline_metrics()
    assert metrics["quality"]["test"]["value"] == pytest.approx(q.value)
    assert metrics["params"] == sum(p.numel() for p in model.parameters())


@pytest.mark.slow
def test_second_get_task_hits_the_cache(tiny_task, monkeypatch: pytest.MonkeyPatch) -> None:
    task, root = tiny_task
    key = task.content_hash()
    entries = baseline_entries(root)
    assert [p.name for p in entries] == [key]  # no temp dirs left behind
    stamp = (entries[0] / "metrics.json").stat().st_mtime_ns
    calls = TRAIN_CALLS[key]

    def no_training(*_a: object, **_k: object) -> None:
        raise AssertionError("cache hit expected, but training ran")

    monkeypatch.setattr(W, "train_gru", no_training)
    again = get_task("weather-gru", root, train_config=TINY)
    assert TRAIN_CALLS[key] == calls
    assert (entries[0] / "metrics.json").stat().st_mtime_ns == stamp
    assert again.cache_path == entries[0]
    x = task.agreement_inputs(8)
    np.testing.assert_allclose(
        again.baseline()(__import__("torch").as_tensor(x)).detach().numpy(),
        task.baseline()(__import__("torch").as_tensor(x)).detach().numpy(),
    )
    # A different seed is a different baseline (the key covers hyper-parameters).
    other = W.WeatherGRUTask(dataclasses.replace(TINY, seed=1), root)
    assert other.content_hash() != key


def test_reference_baseline_size_is_computed() -> None:
    from edgeprune.host.models import StackedGRU
    from edgeprune.host.tasks.model_io import count_macs, count_params

    cfg = GRUTrainConfig()
    model = StackedGRU(4, [cfg.hidden_size] * cfg.num_layers, len(W.CLASSES), W.SEQ_LEN)
    assert count_params(model) == 597_253
    # 30 steps × (3·(4·256 + 256²) + 3·(256² + 256²)) + 256·5 ≈ 17.8 M MACs ≈ 35.6 MFLOPs.
    assert count_macs(model) == 30 * (3 * (4 * 256 + 256 * 256) + 3 * 2 * 256 * 256) + 256 * 5


def test_inputs_for_calibration_and_agreement_come_from_their_splits(windows: W.WeatherWindows) -> None:
    task = W.WeatherGRUTask(TINY, Path("/nonexistent-unused"))
    cal = task.calibration_inputs(40)
    agr = task.agreement_inputs(300)  # more than the split holds: rows repeat
    assert cal.shape == (40, 30, 4) and agr.shape == (300, 30, 4)
    train_rows = {r.tobytes() for r in windows.data.part("train")[0]}
    test_rows = {r.tobytes() for r in windows.data.part("test")[0]}
    assert all(r.tobytes() in train_rows for r in cal)
    assert all(r.tobytes() in test_rows for r in agr)
    np.testing.assert_array_equal(cal, task.calibration_inputs(40))
    json.dumps(task.content_hash())


def test_training_is_deterministic_under_a_seed(windows: W.WeatherWindows) -> None:
    import torch

    from edgeprune.host.tasks.gru_train import train_gru

    cfg = dataclasses.replace(TINY, hidden_size=8, max_epochs=2)
    a, _ = train_gru(windows.data, cfg)
    b, _ = train_gru(windows.data, cfg)
    c, _ = train_gru(windows.data, dataclasses.replace(cfg, seed=1))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


@pytest.mark.slow
def test_weather_lstm_is_the_same_data_and_split_with_an_lstm(tmp_path: Path) -> None:
    from edgeprune.host.models import StackedLSTM

    gru = W.WeatherGRUTask(TINY, Path("/nonexistent-unused"))
    task = get_task("weather-lstm", tmp_path, train_config=TINY)
    assert task.name == "weather-lstm" and task.content_hash() != gru.content_hash()
    for split in ("train", "val"):
        np.testing.assert_array_equal(task.data.splits[split], gru.data.splits[split])
    np.testing.assert_array_equal(task.data.X, gru.data.X)
    model = task.baseline()
    assert isinstance(model, StackedLSTM) and model.hidden_sizes == [16] and model.seq_len == 30
    q = task.evaluate_model(model, "val")
    assert q.value > q.details["majority_accuracy"] + 0.03, q
    assert get_task("weather-lstm:shuffled", tmp_path, train_config=TINY, ensure_baseline=False).split_kind == "shuffled"
    with pytest.raises(TaskError, match="not a weather task"):
        W.parse_cell("weather-rnn")
