"""Bring-your-own models: both GRU state-dict layouts, SB3 DQN zips, and every refusal path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgeprune.host.tasks import TaskError, get_task
from edgeprune.host.tasks.gru_train import make_gru_net

from .conftest import baseline_entries

CONFIG = {"input_size": 3, "hidden_sizes": [8, 8], "num_outputs": 4, "seq_len": 6, "kind": "classifier"}


def write_gru(path: Path, config: dict | None = None, state: dict | None = None) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = dict(CONFIG if config is None else config)
    net = make_gru_net(cfg["input_size"], cfg["hidden_sizes"][0], len(cfg["hidden_sizes"]), cfg["num_outputs"])
    torch.save({"config": cfg, "state_dict": net.state_dict() if state is None else state}, path)
    return net


def write_data(path: Path, n: int = 60, **override: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "X": rng.normal(size=(n, 6, 3)).astype(np.float32),
        "y": rng.integers(0, 4, n).astype(np.int64),
    }
    arrays.update(override)
    np.savez(path, **arrays)
    return arrays


def test_nn_gru_file_becomes_an_exact_stacked_gru(tmp_path: Path, cache_root: Path) -> None:
    net = write_gru(tmp_path / "gru.pt")
    arrays = write_data(tmp_path / "data.npz")
    task = get_task(model=tmp_path / "gru.pt", data=tmp_path / "data.npz")
    assert task.name.startswith("byo-gru:") and task.kind == "classifier" and task.metric == "accuracy"
    model = task.baseline()
    x = torch.as_tensor(arrays["X"][:5])
    np.testing.assert_allclose(model(x).detach().numpy(), net.eval()(x).detach().numpy(), atol=1e-5)
    # Default split: rows in order, 70/15/15.
    assert list(task.data.splits["test"]) == list(range(51, 60))
    q = task.evaluate_model(model)
    assert q.details["n"] == 9
    assert [p.name for p in baseline_entries(cache_root)] == [task.content_hash()]


def test_stacked_gru_regressor_with_explicit_splits(tmp_path: Path, cache_root: Path) -> None:
    from edgeprune.host.models import StackedGRU

    model = StackedGRU(3, [5, 4], 1, 6)
    cfg = {**CONFIG, "hidden_sizes": [5, 4], "num_outputs": 1, "kind": "regressor"}
    torch.save({"config": cfg, "state_dict": model.state_dict()}, tmp_path / "m.pt")
    idx = np.arange(60)
    write_data(
        tmp_path / "d.npz",
        y=np.linspace(0, 1, 60).astype(np.float32),
        train_idx=idx[20:], val_idx=idx[10:20], test_idx=idx[:10],
    )
    task = get_task("byo-gru", model=tmp_path / "m.pt", data=tmp_path / "d.npz")
    assert task.metric == "rmse" and not task.higher_is_better
    q = task.evaluate_model(task.baseline())
    assert q.details["n"] == 10 and q.value > 0
    # The RMSE's interval resamples per-window squared errors: RMSE is the root of their mean.
    assert len(q.samples) == 10 and abs(np.sqrt(np.mean(q.samples)) - q.value) < 1e-9
    iv = q.interval()
    assert iv is not None and iv.lo <= q.value <= iv.hi
    assert task.train_arrays()[0].shape == (40, 6, 3)


def _expect_refusal(tmp_path: Path, cache_root: Path, match: str, **kw: object) -> None:
    with pytest.raises(TaskError, match=match) as info:
        get_task(**kw)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)  # one line
    assert baseline_entries(cache_root) == []  # nothing half-written


def test_wrong_model_formats_are_refused(tmp_path: Path, cache_root: Path) -> None:
    write_data(tmp_path / "d.npz")
    data = tmp_path / "d.npz"
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    _expect_refusal(tmp_path, cache_root, "not a torch.save", model=tmp_path / "junk.pt", data=data)
    (tmp_path / "text.pt").write_bytes(b"junk\n")  # legacy-pickle path: torch raises KeyError (bad magic)
    _expect_refusal(tmp_path, cache_root, "not a torch.save", model=tmp_path / "text.pt", data=data)
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    _expect_refusal(tmp_path, cache_root, "'config' and 'state_dict'", model=tmp_path / "tensor.pt", data=data)
    write_gru(tmp_path / "nokind.pt", config={k: v for k, v in CONFIG.items() if k != "kind"})
    _expect_refusal(tmp_path, cache_root, "config must hold", model=tmp_path / "nokind.pt", data=data)
    net = make_gru_net(3, 16, 2, 4)  # weights 16 wide, config says 8
    write_gru(tmp_path / "mismatch.pt", state=net.state_dict())
    _expect_refusal(tmp_path, cache_root, "does not match config", model=tmp_path / "mismatch.pt", data=data)
    bad = make_gru_net(3, 8, 2, 4).state_dict()
    bad["head.weight"][0, 0] = float("nan")
    write_gru(tmp_path / "nan.pt", state=bad)
    _expect_refusal(tmp_path, cache_root, "NaN", model=tmp_path / "nan.pt", data=data)
    _expect_refusal(tmp_path, cache_root, "not found", model=tmp_path / "absent.pt", data=data)
    _expect_refusal(tmp_path, cache_root, "cannot tell", model=tmp_path / "model.onnx", data=data)


def test_wrong_data_is_refused(tmp_path: Path, cache_root: Path) -> None:
    model = tmp_path / "gru.pt"
    write_gru(model)
    X = np.random.default_rng(0).normal(size=(60, 6, 3)).astype(np.float32)
    cases = {
        "NaN": {"X": np.where(np.arange(60)[:, None, None] == 7, np.nan, X).astype(np.float32)},
        r"X must be \[N, 6, 3\]": {"X": X[:, :5]},
        "int64 class ids": {"y": np.zeros(60, dtype=np.float32)},
        r"class ids must lie in \[0, 4\)": {"y": np.full(60, 9, dtype=np.int64)},
        "rows but X has": {"y": np.zeros(59, dtype=np.int64)},
        "all of train_idx": {"train_idx": np.arange(10)},
        "overlaps": {"train_idx": np.arange(0, 40), "val_idx": np.arange(30, 50), "test_idx": np.arange(50, 60)},
    }
    for i, (match, override) in enumerate(cases.items()):
        path = tmp_path / f"d{i}.npz"
        write_data(path, **override)
        _expect_refusal(tmp_path, cache_root, match, model=model, data=path)
    np.savez(tmp_path / "noy.npz", X=X)
    _expect_refusal(tmp_path, cache_root, "arrays 'X' and 'y'", model=model, data=tmp_path / "noy.npz")
    _expect_refusal(tmp_path, cache_root, "needs --model", name_or_spec="byo-gru", model=model)


@pytest.fixture(scope="module")
def sb3_zips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from stable_baselines3 import DQN, PPO

    root = tmp_path_factory.mktemp("zips")
    torch.manual_seed(0)
    DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, seed=0, device="cpu").save(root / "dqn.zip")
    PPO("MlpPolicy", "CartPole-v1", n_steps=32, batch_size=32, seed=0, device="cpu").save(root / "ppo.zip")
    return {"dqn": root / "dqn.zip", "ppo": root / "ppo.zip"}


def test_sb3_dqn_zip_becomes_an_mlp(sb3_zips: dict[str, Path], cache_root: Path) -> None:
    from stable_baselines3 import DQN

    task = get_task(model=sb3_zips["dqn"], env="CartPole-v1")
    model = task.baseline()
    assert model.sizes == [4, 8, 2] and task.name.startswith("byo-dqn:")
    sb3 = DQN.load(sb3_zips["dqn"], device="cpu")
    obs = torch.randn(7, 4)
    np.testing.assert_allclose(model(obs).detach().numpy(), sb3.q_net(obs).detach().numpy(), atol=1e-6)
    assert (task.cache_path / "policy.zip").read_bytes() == sb3_zips["dqn"].read_bytes()
    # The dict spec `edgeprune search --model ... --env ...` passes names the same task (a cache hit).
    same = get_task({"model": str(sb3_zips["dqn"]), "env": "CartPole-v1"})
    assert same.name == task.name and same.cache_path == task.cache_path


def test_sb3_refusals(sb3_zips: dict[str, Path], tmp_path: Path, cache_root: Path) -> None:
    _expect_refusal(tmp_path, cache_root, "PPO/A2C policy; expected a stable-baselines3 DQN",
                    model=sb3_zips["ppo"], env="CartPole-v1")
    _expect_refusal(tmp_path, cache_root, "wrong --env", model=sb3_zips["dqn"], env="Acrobot-v1")
    _expect_refusal(tmp_path, cache_root, "Discrete action space", model=sb3_zips["dqn"], env="Pendulum-v1")
    (tmp_path / "junk.zip").write_bytes(b"PK not really")
    _expect_refusal(tmp_path, cache_root, "not a stable-baselines3 model zip", model=tmp_path / "junk.zip", env="CartPole-v1")
    _expect_refusal(tmp_path, cache_root, "needs --model", model=sb3_zips["dqn"])


def test_cli_prints_metrics_table_and_cache_path(tmp_path: Path, cache_root: Path) -> None:
    from click.testing import CliRunner

    from edgeprune.host.cli import main

    write_gru(tmp_path / "gru.pt")
    write_data(tmp_path / "data.npz")
    runner = CliRunner()
    ok = runner.invoke(main, ["train", "--model", str(tmp_path / "gru.pt"), "--data", str(tmp_path / "data.npz")])
    assert ok.exit_code == 0, ok.output
    assert "parameters" in ok.output and "test accuracy" in ok.output
    [entry] = baseline_entries(cache_root)
    assert str(entry) in ok.output.replace("\n", "")
    write_data(tmp_path / "bad.npz", y=np.zeros(60, dtype=np.float32))
    bad = runner.invoke(main, ["train", "--model", str(tmp_path / "gru.pt"), "--data", str(tmp_path / "bad.npz")])
    assert bad.exit_code == 1 and "int64 class ids" in bad.output


@pytest.mark.parametrize("layout", ["nn.LSTM", "StackedLSTM"])
def test_byo_lstm_model_in_either_layout_is_the_same_model(tmp_path: Path, layout: str) -> None:
    """A bring-your-own LSTM .pt (nn.LSTM + head, or a canonical StackedLSTM) loads as a StackedLSTM
    computing what the saved network computes."""
    import torch

    from edgeprune.host.models import StackedLSTM
    from edgeprune.host.tasks.byo_gru import build_model
    from edgeprune.host.tasks.gru_train import make_lstm_net

    torch.manual_seed(0)
    net = make_lstm_net(3, 6, 2, 4).eval()
    canonical = StackedLSTM.from_torch_lstm(net.lstm, net.head, 7).eval()
    state = net.state_dict() if layout == "nn.LSTM" else canonical.state_dict()
    config = {"input_size": 3, "hidden_sizes": [6, 6], "num_outputs": 4, "seq_len": 7, "kind": "classifier"}
    model = build_model(config, state, tmp_path / "m.pt")
    assert isinstance(model, StackedLSTM) and model.hidden_sizes == [6, 6]
    x = torch.randn(2, 7, 3)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x), rtol=0, atol=1e-6)


def test_byo_cnn_with_images_is_a_convnet_task(tmp_path: Path) -> None:
    """A ConvNet .pt (canonical state dict, `"class": "ConvNet"` config) with an NHWC .npz: the same model
    comes back, the images are its inputs, and a wrong image shape is one clear error."""
    from edgeprune.host.models import ConvNet
    from edgeprune.host.tasks.model_io import model_config

    torch.manual_seed(0)
    net = ConvNet((6, 6), 2, [4, 5], 3).eval()
    cfg = {**model_config(net), "kind": "classifier"}
    torch.save({"config": cfg, "state_dict": net.state_dict()}, tmp_path / "cnn.pt")
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (40, 6, 6, 2)).astype(np.float32)
    np.savez(tmp_path / "d.npz", X=X, y=rng.integers(0, 3, 40))
    task = get_task(model=tmp_path / "cnn.pt", data=tmp_path / "d.npz", cache_dir=tmp_path / "cache")
    model = task.baseline()
    assert isinstance(model, ConvNet) and model.channels == [4, 5] and task.input_shape == (6, 6, 2)
    with torch.no_grad():
        torch.testing.assert_close(model(torch.from_numpy(X[:4])), net(torch.from_numpy(X[:4])))
    np.savez(tmp_path / "bad.npz", X=X[:, :5], y=rng.integers(0, 3, 40))
    with pytest.raises(TaskError, match=r"X must be \[N, 6, 6, 2\]"):
        get_task(model=tmp_path / "cnn.pt", data=tmp_path / "bad.npz", cache_dir=tmp_path / "cache")
    torch.save({"config": {**cfg, "channels": [4]}, "state_dict": net.state_dict()}, tmp_path / "mismatch.pt")
    with pytest.raises(TaskError, match="pool_after must hold one bool per conv layer"):
        get_task(model=tmp_path / "mismatch.pt", data=tmp_path / "d.npz", cache_dir=tmp_path / "cache")
