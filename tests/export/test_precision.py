"""Per-layer precision export (issue 30) on every model family: the int8 export rewritten with int4-packed weights
and 16x8 layers loads and runs in TFLM (PyPI tflite-micro), and the device runtime (host build) gives TFLM's bytes;
int4 weights take half the bytes; layers map to ops by dataflow (recurrent cells) or order (feed-forward).

A GRU/LSTM with every layer at 16x8 is the converter's whole-model 16x8 through the normal pipeline (manifest, C
array, TFLM verification); the runtime in sequence mode (its own int16 carry) equals TFLM run step by step with
``bench.qmath.requantize16``, every output byte, and so does the GRU's deploy library in QEMU (M4, M0). One 16x8
cell or convolution beside int8/int4 layers is stitched from the two conversions (``export.precision_stitch``):
the same checks, its state int16, the rest of the I/O int8."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from export_helpers import FEATURES, SEQ, synthetic_windows
from runtime.oracle import tflm_run
from runtime.rt import STATUS, Runtime, build

from edgeprune.bench.errors import ExportError
from edgeprune.bench.inputs import quantize_input
from edgeprune.bench.tflite_info import tflite_schema
from edgeprune.bench.tflm import TflmRunner
from edgeprune.export import precision as P
from edgeprune.export.deploy import write_deploy
from edgeprune.export.deploy_build import footprint
from edgeprune.export.pipeline import export_model
from edgeprune.export.verify import predict_fn
from edgeprune.host.models import MLP, ConvNet, StackedGRU, StackedLSTM

pytestmark = [pytest.mark.slow, pytest.mark.tf]


def _inputs(manifest: dict, rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.integers(-128, 128, i["shape"], dtype=np.int8) for i in manifest["inputs"]]


def _same_in_tflm_and_runtime(rt, tflite: bytes, manifest: dict, trials: int = 3) -> None:
    rng = np.random.default_rng(0)
    st = rt.init(tflite)
    assert st == 0, STATUS.get(st)
    for _ in range(trials):
        xs = _inputs(manifest, rng)
        ref = tflm_run(tflite, xs, len(manifest["outputs"]))
        got = rt.run(xs)
        for a, b in zip(got, ref, strict=True):
            assert a.tobytes() == b.tobytes()


def _check_plans(rt, res, layers, plans, recurrent=None) -> None:
    tfl = res.read_tflite()
    ops = P.layer_ops(tfl, layers, recurrent, output_names=[o["name"] for o in res.manifest["outputs"]])
    base = P.weight_bytes(tfl)
    for plan in plans:
        new = P.apply_precision(tfl, {i: plan[name] for i, name in ops.items() if name in plan})
        _same_in_tflm_and_runtime(rt, new, res.manifest)
        wb = P.weight_bytes(new)
        int4_ops = [i for i, name in ops.items() if plan.get(name) == "int4"]
        assert (wb["int4"] > 0) == bool(int4_ops), plan
        # every int4 weight takes half a byte (an odd count pads one nibble per op)
        assert 0 <= wb["int8"] + 2 * wb["int4"] - base["int8"] <= len(int4_ops), plan


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("precision")


@pytest.fixture(scope="module")
def rt(tmp):
    return Runtime(build(tmp / "libep.so"))


def test_gru_int4_and_16x8_head(rt, tmp):
    torch.manual_seed(0)
    model = StackedGRU(FEATURES, [12, 10], 3, SEQ).eval()
    res = export_model(model, synthetic_windows(64), tmp / "gru", weights="tensor")
    ops = P.layer_ops(res.read_tflite(), [], P.cell_layers("gru", 2), [o["name"] for o in res.manifest["outputs"]])
    assert sorted(ops.values()).count("gru0") == 6 and sorted(ops.values()).count("gru1") == 6
    assert list(ops.values()).count("head") == 1
    _check_plans(rt, res, [], [{"gru0": "int4"}, {"gru0": "int4", "gru1": "int4", "head": "int4"}, {"head": "16x8"}],
                 P.cell_layers("gru", 2))


def test_lstm_int4(rt, tmp):
    torch.manual_seed(1)
    model = StackedLSTM(FEATURES, [9], 2, SEQ).eval()
    res = export_model(model, synthetic_windows(64), tmp / "lstm", weights="tensor")
    _check_plans(rt, res, [], [{"lstm0": "int4"}, {"lstm0": "int4", "head": "16x8"}], P.cell_layers("lstm", 1))


def test_mlp_every_mix(rt, tmp):
    torch.manual_seed(2)
    model = MLP([4, 24, 16, 2]).eval()
    res = export_model(model, np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32), tmp / "mlp")
    layers = [("fc0", 1), ("fc1", 1), ("fc2", 1)]
    _check_plans(rt, res, layers, [{"fc1": "int4"}, {"fc0": "16x8", "fc1": "16x8"}, {"fc1": "16x8", "fc2": "16x8"},
                                   {"fc0": "int4", "fc1": "16x8", "fc2": "int4"}, {"fc0": "16x8", "fc1": "int4"}])


def test_cnn_int4_conv_runs_in_tflm_and_in_the_runtime(rt, tmp):
    torch.manual_seed(3)
    model = ConvNet((8, 8), 1, [6, 8], 4).eval()
    res = export_model(model, np.random.default_rng(0).normal(size=(32, 8, 8, 1)).astype(np.float32), tmp / "cnn")
    layers = [("conv0", 1), ("conv1", 1), ("head", 1)]
    _check_plans(rt, res, layers, [{"head": "int4"}, {"head": "16x8"}])
    tfl = res.read_tflite()
    ops = P.layer_ops(tfl, layers)
    new = P.apply_precision(tfl, {i: "int4" for i in ops})
    assert P.weight_bytes(new)["int8"] == 0
    _check_plans(rt, res, layers, [{"conv0": "int4", "conv1": "int4", "head": "int4"}, {"conv1": "int4"}])
    # one int4 scale per filter tensor: 12 B less per channel of each filter and bias, the same in TFLM and runtime
    per_tensor = P.apply_precision(tfl, {i: "int4" for i in ops}, int4_scales="tensor")
    _same_in_tflm_and_runtime(rt, per_tensor, res.manifest)
    # float scale + int64 zero point per channel of each filter and bias; the exact byte count also moves with the
    # 16-byte alignment of the buffers behind them (tensor names, hence offsets, differ with what the process exported
    # before), so the quantisation vectors are counted and the bytes bounded by one alignment pad per buffer
    saved = 12 * 2 * ((6 - 1) + (8 - 1))
    assert sorted(_filter_quant_lengths(per_tensor)) == [1, 1, 1, 1]
    assert sorted(_filter_quant_lengths(new)) == [6, 6, 8, 8]
    assert abs((len(new) - len(per_tensor)) - saved) < 16 * 4
    with pytest.raises(ExportError, match="int4_scales"):
        P.apply_precision(tfl, {i: "int4" for i in ops}, int4_scales="row")


def _filter_quant_lengths(tflite: bytes) -> list[int]:
    """Scales per tensor of the convolutions' filters and biases (zero points must match them)."""
    schema = tflite_schema()
    model = schema.Model.GetRootAsModel(bytearray(tflite), 0)
    sg = model.Subgraphs(0)
    out = []
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) != schema.BuiltinOperator.CONV_2D:
            continue
        for t in (op.Inputs(1), op.Inputs(2)):
            q = sg.Tensors(t).Quantization()
            assert q.ScaleLength() == q.ZeroPointLength()
            out.append(q.ScaleLength())
    return out


def test_int4_halves_weight_bytes():
    w = np.random.default_rng(0).normal(size=(64, 64))
    s = P.int4_scale(w)
    assert 0.55 * np.abs(w).max() / 7 <= s <= np.abs(w).max() / 7
    assert np.mean((np.clip(np.round(w / s), -8, 7) * s - w) ** 2) <= np.mean((np.round(w / (np.abs(w).max() / 7)) *
                                                                               (np.abs(w).max() / 7) - w) ** 2)


def test_export_model_writes_the_layer_precisions(rt, tmp):
    torch.manual_seed(4)
    model = StackedGRU(FEATURES, [16], 3, SEQ).eval()
    calib = synthetic_windows(64)
    base = export_model(model, calib, tmp / "g8", weights="tensor")
    res = export_model(model, calib, tmp / "g4", weights="tensor", precision={"gru0": "int4", "head": "int8"})
    assert res.manifest["precision"] == {"gru0": "int4"}
    assert "precision" not in base.manifest
    gru0 = 3 * 16 * (FEATURES + 16)  # the layer's six gate matrices
    assert res.manifest["weight_bytes"] == base.manifest["weight_bytes"] - gru0 + gru0 // 2
    _same_in_tflm_and_runtime(rt, res.read_tflite(), res.manifest)
    with pytest.raises(P.ExportError, match="quantize='int8'"):
        export_model(model, calib, tmp / "gf", quantize="float32", precision={"gru0": "int4"})


def _every_16x8(model) -> dict[str, str]:
    return {**{f"{model.PREFIX}{i}": "16x8" for i in range(len(model.layers))}, "head": "16x8"}


def _check_export(rt, res, model, calib: np.ndarray, plan: dict[str, str] | None = None) -> None:
    """The export at ``plan`` (default every layer 16x8): its 16x8 cells' state (all I/O for whole-model 16x8) int16
    at zero point 0, the rest int8; the runtime's sequence mode equals TFLM's step loop byte for byte (each state
    carried as its type is: int16 by ``requantize16``); TFLM follows the float model."""
    man = res.manifest
    plan = plan or _every_16x8(model)
    assert man["precision"] == plan
    whole = plan == _every_16x8(model)
    assert man["quantize"] == ("16x8" if whole else "int8")  # the converter mode that made the model
    for io in man["inputs"] + man["outputs"]:
        state16 = io["name"].split("_")[0] in "hc" and plan.get(f"{model.PREFIX}{io['name'].split('_')[1]}") == "16x8"
        assert io["dtype"] == ("int16" if whole or state16 else "int8"), io["name"]
        assert io["dtype"] == "int8" or io["zero_point"] == 0
    assert (res.out_dir / "model_data.c").read_text().count("0x") > len(res.read_tflite()) // 2
    seq = man["sequence"]
    pairs = [tuple(p) for p in seq["recurrent"]]
    # at least one state's scale differs between its output and its input: the carry is a real requantisation
    assert any(man["outputs"][o]["scale"] != man["inputs"][i]["scale"] for o, i in pairs)
    tflite = res.read_tflite()
    runner = TflmRunner.oracle(tflite, man)
    st = rt.init(tflite, arena_len=1 << 21)
    assert st == 0, STATUS.get(st)
    assert STATUS[rt.set_sequence(seq["steps"], seq["stream_input"], pairs)] == "OK"
    xs = quantize_input(calib[:4], man)
    assert xs.dtype == (np.int16 if whole else np.int8) and xs.shape[1] == SEQ > 1
    finals = set()
    for x in xs:
        ref = runner.run_all(x)
        assert rt.set_input(seq["stream_input"], x.tobytes()) == 0
        assert rt.invoke() == 0
        for k, r in enumerate(ref):
            assert rt.output(k).tobytes() == r.tobytes(), f"output {k}"
        finals.add(ref[seq["output"]].tobytes())
    assert len(finals) == len(xs)
    # the export's own TFLM figure: the 16x8 model follows the float one
    with torch.no_grad():
        want = model(torch.from_numpy(calib[:16])).numpy()
    got = predict_fn(tflite, man)(calib[:16])
    # int8/int4 layers beside a 16x8 one keep their own rounding error
    assert np.max(np.abs(got - want)) < (0.02 if whole else 0.05) * max(1.0, float(np.max(np.abs(want))))


@pytest.fixture(scope="module")
def gru16(tmp):
    torch.manual_seed(5)
    model = StackedGRU(FEATURES, [12, 10], 3, SEQ).eval()
    calib = synthetic_windows(64, seed=6)
    return model, calib, export_model(model, calib, tmp / "gru16", precision=_every_16x8(model))


def test_gru_every_layer_16x8_exports_and_runs_tflm_exact(rt, gru16):
    model, calib, res = gru16
    _check_export(rt, res, model, calib)


@pytest.mark.qemu
@pytest.mark.parametrize("core", ["m4", "m0"])
def test_gru_16x8_deploy_library_matches_tflm(gru16, core, tmp_path):
    """The all-16x8 GRU as ``edgeprune export --deploy`` ships it (prepared at export: its int16 carry's multiplier
    is part of the arena image), its example run in QEMU: the output of the example's input pattern (int16 here)
    equals TFLM's sequence loop with the int16 carry."""
    _deploy_matches_tflm(gru16[2], core, tmp_path)


def _deploy_matches_tflm(res, core: str, tmp_path) -> None:
    tfl = res.read_tflite()
    lib = write_deploy(tfl, tmp_path / "lib", manifest=res.manifest, name="gru", core=core)
    assert lib.prepared
    # firmware/deploy/example/main.c: input[i] = (EDGEPRUNE_INPUT_T)(i * 37 + 11), the stream input's type
    dtype = np.dtype(res.manifest["inputs"][res.manifest["sequence"]["stream_input"]]["dtype"])
    x = (np.arange(SEQ * FEATURES, dtype=np.int64) * 37 + 11).astype(dtype)
    expected = TflmRunner.oracle(tfl, res.manifest).run(x.reshape(SEQ, FEATURES)).tobytes()
    assert footprint(lib.out_dir, core).output == expected


def test_lstm_every_layer_16x8_exports_and_runs_tflm_exact(rt, tmp):
    torch.manual_seed(6)
    model = StackedLSTM(FEATURES, [10], 2, SEQ).eval()
    calib = synthetic_windows(64, seed=7)
    res = export_model(model, calib, tmp / "lstm16", precision=_every_16x8(model))
    _check_export(rt, res, model, calib)


@pytest.fixture(scope="module")
def gru0_16(tmp):
    torch.manual_seed(5)
    model = StackedGRU(FEATURES, [12, 10], 3, SEQ).eval()
    calib = synthetic_windows(64, seed=6)
    plan = {"gru0": "16x8", "gru1": "int4"}
    return model, calib, plan, export_model(model, calib, tmp / "gru0-16", precision=plan)


def test_one_16x8_gru_cell_beside_int8_and_int4_runs_tflm_exact(rt, gru0_16):
    """gru0 at 16x8 (its ops taken from the converter's 16x8 model, its state int16), gru1 int4, head int8: TFLM-exact
    in the runtime over the whole sequence; QUANTIZE only at the cell's edges (the int8 stream input in, its int16 new
    state out to gru1's int8 readers)."""
    model, calib, plan, res = gru0_16
    _check_export(rt, res, model, calib, plan)
    assert res.manifest["op_sequence"].count("QUANTIZE") == 2
    assert P.weight_bytes(res.read_tflite())["int4"] > 0


@pytest.mark.qemu
@pytest.mark.parametrize("core", ["m4", "m0"])
def test_one_16x8_gru_cell_deploy_library_matches_tflm(gru0_16, core, tmp_path):
    """The GRU with gru0 alone at 16x8 as ``edgeprune export --deploy`` ships it, run in QEMU: the example's int8 input
    pattern gives TFLM's output (int16 carry of h_0, int8 carry of h_1)."""
    _deploy_matches_tflm(gru0_16[3], core, tmp_path)


@pytest.mark.parametrize("plan", [{"lstm1": "16x8", "head": "16x8"}, {"lstm0": "16x8", "lstm1": "16x8"}])
def test_16x8_lstm_cells_beside_int8_run_tflm_exact(rt, tmp, plan):
    """lstm1 stitched together with the head (int16 between them, a QUANTIZE to the int8 output); both cells at 16x8
    with an int8 head (int16 from cell to cell, one QUANTIZE in, one out)."""
    torch.manual_seed(6)
    model = StackedLSTM(FEATURES, [10, 8], 2, SEQ).eval()
    calib = synthetic_windows(64, seed=7)
    res = export_model(model, calib, tmp / ("lstm-" + "-".join(plan)), precision=plan)
    _check_export(rt, res, model, calib, plan)
    ops = res.manifest["op_sequence"]
    assert ops.count("QUANTIZE") == 2
    assert (ops[-1] == "QUANTIZE") == (plan.get("head") == "16x8")


def test_stitching_refuses_conversions_that_do_not_correspond(gru0_16, cnn16):
    """The 16x8 conversion must match the int8 one op for op before a layer is taken from it; else one line naming
    the layer."""
    from edgeprune.export.precision_stitch import stitch_16x8

    with pytest.raises(ExportError, match="gru0 at 16x8: the int8 and 16x8 conversions do not correspond"):
        stitch_16x8(gru0_16[3].read_tflite(), cnn16[2].read_tflite(), {"gru0": {0, 1}})


@pytest.fixture(scope="module")
def cnn16(tmp):
    torch.manual_seed(8)
    model = ConvNet((8, 8), 1, [4, 6], 5).eval()
    calib = np.random.default_rng(9).normal(size=(32, 8, 8, 1)).astype(np.float32)
    return model, calib, export_model(model, calib, tmp / "cnn16", precision=_every_16x8(model))


def test_cnn_every_layer_16x8_exports_and_runs_tflm_exact(rt, tmp, cnn16):
    """A ConvNet with every layer at 16x8 is the converter's whole-model 16x8 (CONV_2D, MAX_POOL_2D, AVERAGE_POOL_2D,
    FULLY_CONNECTED, all int16, int64 biases): int16 I/O at zero point 0, and the runtime's bytes equal TFLM's on
    calibration images and on random int16 inputs; TFLM follows the float model."""
    model, calib, res = cnn16
    man, tflite = res.manifest, res.read_tflite()
    assert man["precision"] == _every_16x8(model) and man["quantize"] == "16x8"
    assert {io["dtype"] for io in man["inputs"] + man["outputs"]} == {"int16"}
    assert all(io["zero_point"] == 0 for io in man["inputs"] + man["outputs"])
    st = rt.init(tflite)
    assert st == 0, STATUS.get(st)
    rng = np.random.default_rng(10)
    xs = [*quantize_input(calib[:4], man), *rng.integers(-32768, 32768, (3, 1, 8, 8, 1)).astype(np.int16)]
    outs = set()
    for x in xs:
        x = x.reshape(man["inputs"][0]["shape"]).astype(np.int16)
        ref = tflm_run(tflite, [x])[0]
        assert rt.run([x])[0].tobytes() == ref.tobytes()
        outs.add(ref.tobytes())
    assert len(outs) == len(xs)
    with torch.no_grad():
        want = model(torch.from_numpy(calib[:16])).numpy()
    got = predict_fn(tflite, man)(calib[:16])
    assert np.max(np.abs(got - want)) < 0.02 * max(1.0, float(np.max(np.abs(want))))


def test_one_16x8_convolution_beside_int8_runs_tflm_exact(rt, tmp, cnn16):
    """conv0 (and its max pool) at 16x8 from the converter's 16x8 model, conv1 and head int8: int8 I/O, int16 inside
    the layer, the runtime's bytes equal TFLM's; TFLM follows the float model."""
    model, calib, _ = cnn16
    res = export_model(model, calib, tmp / "cnn-conv0-16", precision={"conv0": "16x8"})
    man, tflite = res.manifest, res.read_tflite()
    assert man["precision"] == {"conv0": "16x8"}
    assert {io["dtype"] for io in man["inputs"] + man["outputs"]} == {"int8"}
    assert man["op_sequence"] == ["QUANTIZE", "CONV_2D", "MAX_POOL_2D", "QUANTIZE", "CONV_2D", "AVERAGE_POOL_2D",
                                  "FULLY_CONNECTED"]
    assert "int16" in {t["dtype"] for t in man["tensors"]}
    st = rt.init(tflite)
    assert st == 0, STATUS.get(st)
    outs = set()
    for x in quantize_input(calib[:6], man):
        x = x.reshape(man["inputs"][0]["shape"]).astype(np.int8)
        ref = tflm_run(tflite, [x])[0]
        assert rt.run([x])[0].tobytes() == ref.tobytes()
        outs.add(ref.tobytes())
    assert len(outs) > 1
    with torch.no_grad():
        want = model(torch.from_numpy(calib[:16])).numpy()
    got = predict_fn(tflite, man)(calib[:16])
    assert np.max(np.abs(got - want)) < 0.03 * max(1.0, float(np.max(np.abs(want))))


@pytest.mark.qemu
def test_cnn_16x8_deploy_library_matches_tflm(cnn16, tmp_path):
    """The all-16x8 CNN as ``edgeprune export --deploy`` ships it for M4 (prepared at export, only its kernels linked),
    its example run in QEMU: the output of the example's int16 input pattern equals TFLM's."""
    _, _, res = cnn16
    tfl = res.read_tflite()
    lib = write_deploy(tfl, tmp_path / "lib", manifest=res.manifest, name="cnn16", core="m4")
    assert lib.prepared
    # firmware/deploy/example/main.c: input[i] = (EDGEPRUNE_INPUT_T)(i * 37 + 11)
    x = ((np.arange(64, dtype=np.uint32) * 37 + 11) & 0xFFFF).astype(np.uint16).view(np.int16).reshape(1, 8, 8, 1)
    assert footprint(lib.out_dir, "m4").output == tflm_run(tfl, [x])[0].tobytes()
