"""float32 for one layer inside an int8 model (issue 30), every family, through ``export_model``: the layer's ops are
float32 with the original float weights (DEQUANTIZE before, QUANTIZE after, I/O int8), the model loads in TFLM (PyPI
tflite-micro) and the device runtime (host build) gives TFLM's bytes on every output, the recurrent ones also over
whole windows in sequence mode (the device's int8 carry of each state, an LSTM's float cell state quantised at its
calibrated range); int4/16x8 on other layers still apply; manifest ``weight_bytes`` counts the float weights at 4 B."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from export_helpers import FEATURES, SEQ, synthetic_windows
from runtime.oracle import tflm_run
from runtime.rt import STATUS, Runtime, build

from edgeprune.bench.errors import ExportError
from edgeprune.bench.inputs import quantize_input
from edgeprune.bench.tflite_info import read_model
from edgeprune.bench.tflm import TflmRunner
from edgeprune.export import precision as P
from edgeprune.export.deploy import write_deploy
from edgeprune.export.deploy_build import footprint
from edgeprune.export.pipeline import export_model
from edgeprune.host.models import MLP, ConvNet, StackedGRU, StackedLSTM

pytestmark = [pytest.mark.slow, pytest.mark.tf]


@pytest.fixture(scope="module")
def rt(tmp_path_factory):
    return Runtime(build(tmp_path_factory.mktemp("rtf") / "libep.so"))


def _case(kind: str):
    torch.manual_seed(5)
    if kind == "gru":
        return StackedGRU(FEATURES, [12, 10], 3, SEQ).eval(), synthetic_windows(64)
    if kind == "lstm":
        return StackedLSTM(FEATURES, [9, 7], 2, SEQ).eval(), synthetic_windows(64)
    if kind == "mlp":
        return MLP([4, 24, 16, 2]).eval(), np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    return ConvNet((8, 8), 1, [6, 8], 4).eval(), np.random.default_rng(0).normal(size=(32, 8, 8, 1)).astype(np.float32)


def _float_weights(model, layer: str) -> list[np.ndarray]:
    mod = model.head if layer == "head" else model.layers[int(layer.lstrip("abcdefghijklmnopqrstuvwxyz"))]
    return [p.detach().numpy().ravel() for n, p in mod.named_parameters() if "weight" in n]


def _float_consts(tflite: bytes, min_rank: int) -> list[np.ndarray]:
    schema, fb = P._load(tflite)
    sg = fb.subgraphs[0]
    return [np.frombuffer(bytes(bytearray(fb.buffers[t.buffer].data)), np.float32) for t in sg.tensors
            if t.type == 0 and fb.buffers[t.buffer].data is not None and len(t.shape) >= min_rank]


@pytest.mark.parametrize("kind,plan,float_ops", [
    ("gru", {"gru1": "float32", "head": "int4"}, {"FULLY_CONNECTED", "ADD", "SUB", "MUL", "LOGISTIC", "TANH"}),
    ("lstm", {"lstm0": "float32"}, {"FULLY_CONNECTED", "ADD", "MUL", "LOGISTIC", "TANH"}),
    ("mlp", {"fc0": "int4", "fc1": "float32", "fc2": "16x8"}, {"FULLY_CONNECTED"}),
    ("cnn", {"conv0": "float32"}, {"CONV_2D", "MAX_POOL_2D"}),
    ("cnn", {"conv1": "float32", "head": "int4"}, {"CONV_2D", "AVERAGE_POOL_2D"}),
])
def test_one_float32_layer_runs_tflm_exact(rt, tmp_path, kind, plan, float_ops):
    model, calib = _case(kind)
    res = export_model(model, calib, tmp_path / kind, precision=plan)
    tfl, man = res.read_tflite(), res.manifest
    assert man["precision"] == dict(sorted(plan.items()))
    info = read_model(tfl)
    ops = info.op_counts
    assert ops.get("DEQUANTIZE", 0) >= 1 and ops.get("QUANTIZE", 0) >= 1
    # the float tensors are the layer's: its weights are the model's own float32 values, nothing else is float
    layer = next(n for n, p in plan.items() if p == "float32")
    want = np.sort(np.concatenate(_float_weights(model, layer)).astype(np.float32))
    got = np.sort(np.concatenate(_float_consts(tfl, min_rank=2)))
    if layer not in ("gru0", "lstm0", "fc0"):  # layer 0 carries the folded input standardisation
        np.testing.assert_array_equal(got, want)  # the original weights, in any layout
    else:
        assert got.size == want.size
    assert all(info.tensors[i].dtype == "int8" for i in info.inputs + info.outputs)
    assert man["weight_bytes"] >= 4 * sum(w.size for w in _float_weights(model, layer))
    assert man["parity"]["tflm_argmax_agreement"] >= 0.9
    st = rt.init(tfl)
    assert st == 0, STATUS.get(st)
    rng = np.random.default_rng(1)
    for _ in range(4):
        xs = [rng.integers(-128, 128, i["shape"], dtype=np.int8) for i in man["inputs"]]
        ref = tflm_run(tfl, xs, len(man["outputs"]))
        for a, b in zip(rt.run(xs), ref, strict=True):
            assert a.tobytes() == b.tobytes()
    assert float_ops <= set(ops)
    seq = man.get("sequence")
    if seq:  # the whole window in the device's sequence mode (its int8 carry) against TFLM's step loop
        pairs = [tuple(p) for p in seq["recurrent"]]
        runner = TflmRunner.oracle(tfl, man)
        assert STATUS[rt.set_sequence(seq["steps"], seq["stream_input"], pairs)] == "OK"
        for x in quantize_input(calib[:3], man):
            ref = runner.run_all(x)
            assert rt.set_input(seq["stream_input"], x.tobytes()) == 0 and rt.invoke() == 0
            for k, r in enumerate(ref):
                assert rt.output(k).tobytes() == r.tobytes(), f"output {k}"


def test_float32_beside_a_stitched_16x8_cell_is_refused(tmp_path):
    model, calib = _case("gru")
    with pytest.raises(ExportError, match="float32"):
        export_model(model, calib, tmp_path / "g", precision={"gru0": "16x8", "gru1": "float32"})
    assert not (tmp_path / "g").exists()


@pytest.mark.qemu
@pytest.mark.parametrize("kind,plan,core", [("cnn", {"conv0": "float32"}, "m4"), ("gru", {"gru1": "float32"}, "m0")])
def test_a_float32_layer_ships_in_the_deploy_library(tmp_path, kind, plan, core):
    """The model with a float32 layer as ``edgeprune export --deploy`` ships it (prepared at export; only the kernels
    its run list uses, the float ones included), its example run in QEMU: TFLM's output bytes for the example's
    input pattern (firmware/deploy/example/main.c: input[i] = i * 37 + 11)."""
    model, calib = _case(kind)
    res = export_model(model, calib, tmp_path / kind, precision=plan)
    tfl, man = res.read_tflite(), res.manifest
    lib = write_deploy(tfl, tmp_path / "lib", manifest=man, name=kind, core=core)
    assert lib.prepared
    seq = man.get("sequence")
    shape = man["inputs"][seq["stream_input"] if seq else 0]["shape"]
    n = int(np.prod(shape)) * (seq["steps"] if seq else 1)
    x = (np.arange(n, dtype=np.int64) * 37 + 11).astype(np.int8)
    runner = TflmRunner.oracle(tfl, man)
    expected = runner.run(x.reshape(seq["steps"], -1) if seq else x.reshape(shape)).tobytes()
    assert footprint(lib.out_dir, core).output == expected
