"""The fused GRU step (firmware/runtime/ep_gru.c) on GRUs made by the real exporter: the fused kernel and the
op-by-op reference path give the same bytes as each other and as bench.tflm.TflmRunner, on the host build
and in the firmware on QEMU cores; models that only resemble the pattern stay op-by-op."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from .rt import NO_FUSE, STATUS, Runtime
from .seed_models import gru_like_cell

# Hidden sizes per exported model: one layer of 16 (odd depth tails), two layers 64 -> 24, one of 256.
SIZES = {"h16": [16], "h64x24": [64, 24], "h256": [256]}
STEPS = 30


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, tuple[bytes, dict]]:
    import torch

    from edgeprune.export.pipeline import export_model
    from edgeprune.host.models.gru import StackedGRU

    torch.set_num_threads(1)
    out = {}
    for k, (name, hidden) in enumerate(SIZES.items()):
        torch.manual_seed(k)
        model = StackedGRU(4, hidden, 3, seq_len=STEPS).eval()
        calib = np.random.default_rng(k).normal(0, 1, (48, STEPS, 4)).astype(np.float32)
        d = tmp_path_factory.mktemp(name)
        export_model(model, calib, d / "export")
        out[name] = ((d / "export" / "model.tflite").read_bytes(), json.loads((d / "export" / "manifest.json").read_text()))
    return out


def _inputs(man: dict, n: int, seed: int) -> list[np.ndarray]:
    seq = man["sequence"]
    shape = (seq["steps"], *man["inputs"][seq["stream_input"]]["shape"][1:])
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, shape, dtype=np.int8) for _ in range(n)]


def _run_host(rt: Runtime, tflite: bytes, man: dict, xs: list[np.ndarray], flags: int | None) -> list[list[bytes]]:
    seq = man["sequence"]
    assert STATUS[rt.init(tflite, flags=flags)] == "OK"
    assert STATUS[rt.set_sequence(seq["steps"], seq["stream_input"], [tuple(p) for p in seq["recurrent"]])] == "OK"
    outs = []
    for x in xs:
        assert rt.set_input(seq["stream_input"], x.tobytes()) == 0
        assert rt.invoke() == 0
        outs.append([rt.output(i).tobytes() for i in range(len(man["outputs"]))])
    return outs


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize("name", list(SIZES))
def test_fused_equals_op_by_op_equals_tflm(rt, exported, name):
    from edgeprune.bench.tflm import TflmRunner

    tflite, man = exported[name]
    xs = _inputs(man, 3, seed=len(name))
    fused = _run_host(rt, tflite, man, xs, None)
    assert rt.num_fused == len(SIZES[name])  # every layer runs as one kernel
    ref = _run_host(rt, tflite, man, xs, NO_FUSE)
    assert rt.num_fused == 0
    runner = TflmRunner(tflite, man)
    out_pos = man["sequence"]["output"]
    for x, f, r in zip(xs, fused, ref, strict=True):
        assert f == r  # every output, hidden states included
        assert f[out_pos] == runner.run(x).tobytes()


def test_lookalike_cell_stays_op_by_op(rt):
    # The seed cell has the gate ADDs, SUB and final ADD but no r * (W_hn h) MUL: not a GRU step.
    assert STATUS[rt.init(gru_like_cell(4, 8, 0))] == "OK"
    assert rt.num_fused == 0


@pytest.mark.qemu
@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize("core", ["m0", "m3", "m4", "m7", "m33"])
def test_fused_and_op_by_op_on_device(core, exported, tmp_path, monkeypatch):
    from edgeprune.bench.firmware_build import CORE_ENVS, build
    from edgeprune.bench.link import Device
    from edgeprune.bench.qemu import QemuBoard
    from edgeprune.bench.tflm import TflmRunner

    elfs = {"fused": build(CORE_ENVS[core], build_dir=tmp_path / "fused").elf}
    # The op-by-op firmware: ep_model_init with EP_RT_INIT_NO_FUSE (PlatformIO appends these flags).
    monkeypatch.setitem(os.environ, "PLATFORMIO_BUILD_FLAGS", "-DEP_RT_DEFAULT_FLAGS=1")
    elfs["op-by-op"] = build(CORE_ENVS[core], build_dir=tmp_path / "ops").elf
    counts: dict[str, dict[str, int]] = {}
    for path, elf in elfs.items():
        with QemuBoard(core, elf=elf) as board, Device.open(board.url, 60.0) as dev:
            for name, (tflite, man) in exported.items():
                seq = man["sequence"]
                runner = TflmRunner(tflite, man)
                dev.load_model(tflite)
                dev.set_sequence(seq["steps"], seq["stream_input"], seq["recurrent"])
                for x in _inputs(man, 2, seed=7):
                    dev.set_input(seq["stream_input"], x.tobytes())
                    res = dev.infer(1, timeout_s=120.0)
                    assert res.outputs[seq["output"]] == runner.run(x).tobytes(), (path, name)
                counts.setdefault(name, {})[path] = res.median
    for name, c in counts.items():
        assert c["fused"] != c["op-by-op"], (name, c)  # the two firmwares really run different paths


def test_no_fuse_flag_value_matches_header():
    header = (Path(__file__).resolve().parents[2] / "firmware" / "runtime" / "ep_runtime.h").read_text()
    assert f"#define EP_RT_INIT_NO_FUSE {NO_FUSE}u" in header
