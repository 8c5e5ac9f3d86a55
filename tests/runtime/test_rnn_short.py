"""The fused GRU and LSTM steps' short element-wise chains (firmware/runtime/ep_gru.c, issue 27) on random GRUs and
LSTMs from the real exporter: random feature counts, one or two layers of random (odd and even) hidden sizes,
per-channel and per-tensor weight scales. On the host every layer fuses, and the fused steps, the op-by-op path and
TFLM give the same bytes; in the firmware under QEMU every core (v6-M split multiply on M0, SMLAL on M3, SMMULR on
the DSP cores) gives TFLM's bytes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from .rt import NO_FUSE
from .test_gru_fused import _inputs, _run_host

pytestmark = [pytest.mark.tf, pytest.mark.slow]
STEPS = 12
N_MODELS = 7


def _shapes() -> list[tuple[str, int, list[int], str]]:
    """(cell, features, hidden sizes, weight scales) per model: sizes on both sides of the 16-row block and the 4-row
    dot groups, the 17 + 30 shape of the default search's winner among them; GRUs and LSTMs alternate."""
    rng = np.random.default_rng(27)
    out = [("gru", 4, [17, 30], "tensor")]
    for k in range(N_MODELS - 1):
        layers = [int(v) for v in rng.integers(3, 41, size=int(rng.integers(1, 3)))]
        out.append(("lstm" if k % 2 == 0 else "gru", int(rng.integers(1, 8)), layers,
                    "channel" if k % 4 < 2 else "tensor"))
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> list[tuple[str, bytes, dict]]:
    import torch

    from edgeprune.export.pipeline import export_model
    from edgeprune.host.models.gru import StackedGRU
    from edgeprune.host.models.lstm import StackedLSTM

    torch.set_num_threads(1)
    out = []
    for k, (cell, features, hidden, weights) in enumerate(_shapes()):
        torch.manual_seed(100 + k)
        model = (StackedGRU if cell == "gru" else StackedLSTM)(features, hidden, 3, seq_len=STEPS).eval()
        calib = np.random.default_rng(k).normal(0, 1, (32, STEPS, features)).astype(np.float32)
        d = tmp_path_factory.mktemp(f"{cell}{k}")
        export_model(model, calib, d / "x", weights=weights)
        name = f"{cell}-F{features}-{'x'.join(map(str, hidden))}-{weights}"
        out.append((name, (d / "x" / "model.tflite").read_bytes(), json.loads((d / "x" / "manifest.json").read_text())))
    return out


def test_every_layer_fuses_and_equals_op_by_op_and_tflm(rt, models):
    from edgeprune.bench.tflm import TflmRunner

    for k, (name, tflite, man) in enumerate(models):
        layers = len(man["sequence"]["recurrent"]) // (2 if name.startswith("lstm") else 1)  # LSTM: h and c pairs
        xs = _inputs(man, 2, seed=k)
        fused = _run_host(rt, tflite, man, xs, None)
        assert rt.num_fused == layers, name  # every layer runs as one kernel
        ops = _run_host(rt, tflite, man, xs, NO_FUSE)
        runner = TflmRunner(tflite, man)
        for x, f, o in zip(xs, fused, ops, strict=True):
            assert f == o, name  # every output, hidden states included
            assert f[man["sequence"]["output"]] == runner.run(x).tobytes(), name


def _fc_multiplier_one_half(tflite: bytes) -> bytes:
    """The model with its first FULLY_CONNECTED's output scale set so that the FC multiplier is 2/3 (shift 0)."""
    import flatbuffers

    from .tflbuild import S

    model = S.ModelT.InitFromObj(S.Model.GetRootAsModel(tflite, 0))
    graph = model.subgraphs[0]
    fc = next(op for op in graph.operators
              if model.operatorCodes[op.opcodeIndex].builtinCode == S.BuiltinOperator.FULLY_CONNECTED)
    x, w, y = graph.tensors[fc.inputs[0]], graph.tensors[fc.inputs[1]], graph.tensors[fc.outputs[0]]
    y.quantization.scale = [float(x.quantization.scale[0] * max(w.quantization.scale) * 1.5)]
    b = flatbuffers.Builder(0)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_layer_outside_the_short_chain_runs_op_by_op(rt, models):
    from edgeprune.bench.tflm import TflmRunner

    name, tflite, man = next(m for m in models if m[0].startswith("gru") and "x" not in m[0].split("-")[2])
    odd = _fc_multiplier_one_half(tflite)
    xs = _inputs(man, 2, seed=3)
    fused = _run_host(rt, odd, man, xs, None)
    assert rt.num_fused == 0, name  # the short chain needs every FC shift below 0: the layer is left op by op
    runner = TflmRunner(odd, man)
    for x, f in zip(xs, fused, strict=True):
        assert f[man["sequence"]["output"]] == runner.run(x).tobytes(), name


@pytest.mark.qemu
@pytest.mark.parametrize("core", ["m0", "m3", "m4", "m7", "m33"])
def test_short_chain_on_device(core, models, tmp_path):
    from edgeprune.bench.firmware_build import CORE_ENVS
    from edgeprune.bench.firmware_build import build as build_fw
    from edgeprune.bench.link import Device
    from edgeprune.bench.qemu import QemuBoard
    from edgeprune.bench.tflm import TflmRunner

    elf = build_fw(CORE_ENVS[core], build_dir=tmp_path / "fw").elf
    with QemuBoard(core, elf=elf) as board, Device.open(board.url, 60.0) as dev:
        for k, (name, tflite, man) in enumerate(models):
            seq = man["sequence"]
            runner = TflmRunner(tflite, man)
            dev.load_model(tflite)
            dev.set_sequence(seq["steps"], seq["stream_input"], seq["recurrent"])
            for x in _inputs(man, 2, seed=50 + k):
                dev.set_input(seq["stream_input"], x.tobytes())
                res = dev.infer(1, timeout_s=120.0)
                assert res.outputs[seq["output"]] == runner.run(x).tobytes(), (core, name)


def _other_input_orders(tflite: bytes) -> tuple[bytes, dict[str, bool]]:
    """A one-layer cell with the exact inputs the exporter's models do not have (the DSP one-pass chains take each
    input order on its own path). GRU: the candidate ADD's x-side FC at half the MUL's scale and h, h' at twice
    theirs (the candidate ADD's exact input becomes the MUL, SUB(h, n)'s the h side). LSTM: MUL(f, c) at half
    MUL(i, g)'s scale (the c' ADD's exact input becomes i * g). Returns the model and whether each order holds."""
    import flatbuffers

    from .tflbuild import S

    model = S.ModelT.InitFromObj(S.Model.GetRootAsModel(tflite, 0))
    graph = model.subgraphs[0]
    code = {i: model.operatorCodes[op.opcodeIndex].builtinCode for i, op in enumerate(graph.operators)}
    prod = {o: i for i, op in enumerate(graph.operators) for o in op.outputs}
    kind = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}

    def src(t: int) -> str:
        return kind[code[prod[t]]] if t in prod else "input"

    def op_of(name: str, inputs: list[str]):
        return next(op for i, op in enumerate(graph.operators) if kind[code[i]] == name
                    and sorted(map(src, op.inputs)) == inputs)

    def scale(t: int) -> float:
        return graph.tensors[t].quantization.scale[0]

    def set_scale(t: int, v: float) -> None:
        graph.tensors[t].quantization.scale = [float(v)]

    if any(kind[c] == "SUB" for c in code.values()):  # GRU
        add_n, sub = op_of("ADD", ["FULLY_CONNECTED", "MUL"]), op_of("SUB", ["TANH", "input"])
        fc_out = next(t for t in add_n.inputs if src(t) == "FULLY_CONNECTED")
        mul_out = next(t for t in add_n.inputs if src(t) == "MUL")
        set_scale(fc_out, scale(mul_out) / 2)
        for t in (sub.inputs[0], op_of("ADD", ["MUL", "TANH"]).outputs[0]):  # h and h': the state is carried as bytes
            set_scale(t, scale(t) * 2)
        orders = {"add_n exact MUL": scale(mul_out) > scale(fc_out),
                  "sub exact h": scale(sub.inputs[0]) >= scale(sub.inputs[1])}
    else:  # LSTM
        add_c = op_of("ADD", ["MUL", "MUL"])
        ig = next(t for t in add_c.inputs if "TANH" in map(src, graph.operators[prod[t]].inputs))
        fc = next(t for t in add_c.inputs if t != ig)
        set_scale(fc, scale(ig) / 2)
        orders = {"c' exact i * g": scale(ig) > scale(fc)}
    b = flatbuffers.Builder(0)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output()), orders


@pytest.mark.qemu
@pytest.mark.parametrize("core", ["m4"])
def test_other_input_orders_on_device(core, rt, models, tmp_path):
    from edgeprune.bench.firmware_build import CORE_ENVS
    from edgeprune.bench.firmware_build import build as build_fw
    from edgeprune.bench.link import Device
    from edgeprune.bench.qemu import QemuBoard
    from edgeprune.bench.tflm import TflmRunner

    cases = []
    for cell in ("gru", "lstm"):
        name, tflite, man = next(m for m in models if m[0].startswith(cell) and "x" not in m[0].split("-")[2])
        odd, orders = _other_input_orders(tflite)
        assert all(orders.values()), (name, orders)  # the model takes the paths this test is for
        xs = _inputs(man, 2, seed=7)
        _run_host(rt, odd, man, xs, None)
        assert rt.num_fused == 1, name  # still one fused step
        cases.append((name, odd, man, xs))
    elf = build_fw(CORE_ENVS[core], build_dir=tmp_path / "fw").elf
    with QemuBoard(core, elf=elf) as board, Device.open(board.url, 60.0) as dev:
        for name, odd, man, xs in cases:
            seq = man["sequence"]
            runner = TflmRunner(odd, man)
            dev.load_model(odd)
            dev.set_sequence(seq["steps"], seq["stream_input"], seq["recurrent"])
            for x in xs:
                dev.set_input(seq["stream_input"], x.tobytes())
                assert dev.infer(1, timeout_s=120.0).outputs[seq["output"]] == runner.run(x).tobytes(), name
