"""The whole GRU export: TFLM loads it, only device ops, weights once, names mapped, the oracle loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from export_helpers import compile_and_dump, compressed_gru, synthetic_windows

from edgeprune.bench.inputs import quantize_array
from edgeprune.bench.tflite_info import read_model
from edgeprune.bench.tflm import TflmRunner
from edgeprune.export import export_model, predict_fn
from edgeprune.export.verify import ALLOWED_OPS

pytestmark = pytest.mark.tf


def weight_elements(model: torch.nn.Module) -> int:
    """Elements of every weight matrix (biases excluded): the int8 bytes stored exactly once."""
    return sum(p.numel() for name, p in model.named_parameters() if name.endswith("weight"))


def test_outputs_and_manifest_fields(gru_export) -> None:
    out = gru_export.out_dir
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json", "model.onnx", "model.tflite", "model_data.c", "model_data.h"
    ]
    man = json.loads((out / "manifest.json").read_text())
    assert man == gru_export.manifest
    for key in ("ops", "tensors", "arena_bytes", "sizes", "weight_bytes", "hashes", "tools", "sequence",
                "inputs", "outputs", "input_names", "output_names", "parity"):
        assert key in man, key
    assert man["input_names"] == ["x_t", "h_0", "h_1"]
    assert man["output_names"] == ["y", "h_0_next", "h_1_next"]
    assert man["tools"]["onnx2tf"] == "1.28.8" and man["tools"]["tensorflow"] != "absent"
    assert man["arena_bytes"] > 0 and man["sizes"]["tflite_bytes"] == len(gru_export.read_tflite())
    assert man["ops"]["FULLY_CONNECTED"] == 2 * 6 + 1
    for spec in man["inputs"] + man["outputs"]:
        assert spec["dtype"] == "int8" and isinstance(spec["scale"], float) and isinstance(spec["zero_point"], int)


def test_tflite_is_what_the_device_runs(gru_export) -> None:
    info = read_model(gru_export.read_tflite())
    assert info.num_subgraphs == 1
    assert set(info.ops) <= ALLOWED_OPS
    assert not {"int64", "float32"} & {t.dtype for t in info.tensors}
    # Per-channel weights: one scale per output row of every FULLY_CONNECTED weight.
    weights = [t for t in info.tensors if t.constant and t.dtype == "int8"]
    assert weights and all(len(t.scales) == t.shape[0] for t in weights)


def test_names_map_to_the_right_tensors(gru_export) -> None:
    man = gru_export.manifest
    by_name = {s["name"]: s for s in man["inputs"]}
    assert by_name["x_t"]["shape"] == [1, 4] and by_name["h_0"]["shape"] == [1, 32]
    assert by_name["h_1"]["shape"] == [1, 24]
    seq = man["sequence"]
    assert seq["steps"] == 12
    assert man["inputs"][seq["stream_input"]]["name"] == "x_t"
    assert man["outputs"][seq["output"]]["name"] == "y"
    for o, i in seq["recurrent"]:
        assert man["outputs"][o]["name"] == man["inputs"][i]["name"] + "_next"


def test_weights_are_stored_once_and_size_is_bounded(gru_export, gru_model) -> None:
    man = gru_export.manifest
    assert man["weight_bytes"] == weight_elements(gru_model)
    assert man["sizes"]["tflite_bytes"] <= 1.2 * man["weight_bytes"] + 24 * 1024


def straightforward_loop(tflite: bytes, windows_q: np.ndarray, names: dict[str, int], man: dict) -> np.ndarray:
    """The sequence loop written out plainly against TFLM, by tensor name, for comparison with TflmRunner."""
    from tflite_micro.python.tflite_micro import runtime

    from edgeprune.bench.qmath import requantize

    ip = runtime.Interpreter.from_bytes(tflite, arena_size=256 * 1024)
    ins = {s["name"]: s for s in man["inputs"]}
    outs = {s["name"]: s for s in man["outputs"]}
    results = []
    for window in windows_q:
        h0 = np.full((1, 32), ins["h_0"]["zero_point"], np.int8)
        h1 = np.full((1, 24), ins["h_1"]["zero_point"], np.int8)
        for t in range(window.shape[0]):
            ip.set_input(window[t : t + 1], names["x_t"])
            ip.set_input(h0, names["h_0"])
            ip.set_input(h1, names["h_1"])
            ip.invoke()
            o0, o1 = ip.get_output(names["h_0_next"]), ip.get_output(names["h_1_next"])
            h0 = requantize(o0, outs["h_0_next"]["scale"], outs["h_0_next"]["zero_point"],
                            ins["h_0"]["scale"], ins["h_0"]["zero_point"])
            h1 = requantize(o1, outs["h_1_next"]["scale"], outs["h_1_next"]["zero_point"],
                            ins["h_1"]["scale"], ins["h_1"]["zero_point"])
        results.append(ip.get_output(names["y"]))
    return np.concatenate(results)


def test_runner_sequence_loop_equals_a_plain_per_step_loop(gru_export) -> None:
    man, tflite = gru_export.manifest, gru_export.read_tflite()
    x_spec = next(s for s in man["inputs"] if s["name"] == "x_t")
    windows_q = quantize_array(synthetic_windows(6, seed=9), x_spec["scale"], x_spec["zero_point"])
    names = {s["name"]: s["position"] for s in man["inputs"] + man["outputs"]}
    expected = straightforward_loop(tflite, windows_q, names, man)
    got = TflmRunner(tflite, man).run_batch(windows_q)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, expected)
    # The state really is carried: restarting from zero state each step would give other outputs.
    last_only = TflmRunner(tflite, dict(man, sequence=dict(man["sequence"], steps=1)))
    assert not np.array_equal(last_only.run_batch(windows_q[:, -1:]), expected)


def test_int8_predictions_track_the_float_model(gru_export, gru_model) -> None:
    x = synthetic_windows(64, seed=11)
    got = predict_fn(gru_export.read_tflite(), gru_export.manifest)(x)
    with torch.no_grad():
        ref = gru_model(torch.from_numpy(x)).numpy()
    spread = ref.max() - ref.min()
    assert np.mean(np.abs(got - ref)) < 0.05 * spread
    assert np.mean(got.argmax(1) == ref.argmax(1)) >= 0.9
    parity = gru_export.manifest["parity"]
    assert parity["onnx_max_abs_diff"] <= 1e-4 and parity["tf_max_abs_diff"] <= 1e-3


def test_per_tensor_weights_drop_the_per_row_scales(gru_export, gru_model, calibration, tmp_path) -> None:
    out = export_model(gru_model, calibration, tmp_path / "pt", name="gru-test", weights="tensor")
    assert out.manifest["weight_scales"] == "tensor" and gru_export.manifest["weight_scales"] == "channel"
    dense = [t for t in read_model(out.read_tflite()).tensors if t.constant and t.dtype == "int8"]
    assert dense and all(len(t.scales) == 1 for t in dense)
    rows = sum(t.shape[0] for t in dense)
    # Each dropped row had a float32 scale and an int64 zero point in both the weight and the bias tensor.
    assert len(gru_export.read_tflite()) - len(out.read_tflite()) >= 12 * rows
    windows = synthetic_windows(32, seed=11)
    with torch.no_grad():
        ref = gru_model(torch.from_numpy(windows)).argmax(1).numpy()
    agree = np.mean(predict_fn(out.read_tflite(), out.manifest)(windows).argmax(1) == ref)
    assert agree >= 0.9


def test_an_unknown_weight_layout_is_refused_before_any_work(gru_model, calibration, tmp_path) -> None:
    from edgeprune.export import ExportError

    with pytest.raises(ExportError, match="weights must be one of"):
        export_model(gru_model, calibration, tmp_path / "bad", weights="row")
    assert not (tmp_path / "bad").exists()


def test_compressed_gru_exports(tmp_path) -> None:
    """Unequal hidden sizes, a low-rank projection and pruned rows export and stay accurate."""
    model = compressed_gru()
    result = export_model(model, synthetic_windows(48, seed=2), tmp_path / "c")
    man = result.manifest
    assert set(man["ops"]) <= ALLOWED_OPS and man["subgraphs"] == 1
    assert man["weight_bytes"] == weight_elements(model)
    assert man["parity"]["tflm_argmax_agreement"] >= 0.9
    assert man["sizes"]["tflite_bytes"] <= 1.2 * man["weight_bytes"] + 24 * 1024


def test_float32_export_matches_pytorch(tmp_path, gru_model) -> None:
    result = export_model(gru_model, synthetic_windows(16, seed=4), tmp_path / "f", quantize="float32")
    man = result.manifest
    assert {s["dtype"] for s in man["inputs"] + man["outputs"]} == {"float32"}
    assert set(man["ops"]) <= ALLOWED_OPS
    x = synthetic_windows(8, seed=12)
    got = predict_fn(result.read_tflite(), man)(x)
    with torch.no_grad():
        ref = gru_model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_exported_c_array_equals_the_tflite(gru_export, tmp_path: Path) -> None:
    out = gru_export.out_dir
    c_text, h_text = (out / "model_data.c").read_text(), (out / "model_data.h").read_text()
    tflite = gru_export.read_tflite()
    assert compile_and_dump(c_text, h_text, tmp_path) == tflite
    assert gru_export.manifest["hashes"]["tflite_sha256"] in c_text
    assert "gru-test" in c_text
