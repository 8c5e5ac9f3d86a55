"""int4 weights in the prepared deploy library (issue 30): the runtime's init unpacks an int4 convolution filter into
the arena, so the snapshot's arena image holds it as int8; the library ships the nibbles instead and
``ep_prepared_bind`` unpacks them back. The library is smaller than its int8 twin's by about half the filters, and
the example prints TFLM's bytes. int4 FULLY_CONNECTED weights are read packed by their kernel: they ship as the
model's nibbles."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from runtime.oracle import tflm_run

from edgeprune.bench.tflite_info import tflite_schema
from edgeprune.export import precision as P
from edgeprune.export.deploy import write_deploy
from edgeprune.export.deploy_build import footprint
from edgeprune.export.pipeline import export_model
from edgeprune.export.slim import slim_tflite
from edgeprune.host.models import ConvNet

pytestmark = [pytest.mark.tf]

HW, CHANNELS, CLASSES = 12, [16, 32], 4
FILTERS = 9 * 1 * CHANNELS[0] + 9 * CHANNELS[0] * CHANNELS[1]  # 3x3 filters' elements
HEAD = CHANNELS[1] * CLASSES


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    torch.manual_seed(3)
    model = ConvNet((HW, HW), 1, CHANNELS, CLASSES).eval()
    calib = np.random.default_rng(0).normal(size=(32, HW, HW, 1)).astype(np.float32)
    res = export_model(model, calib, tmp_path_factory.mktemp("cnn") / "export", name="cnn-int4")
    tfl = res.read_tflite()
    ops = P.layer_ops(tfl, [("conv0", 1), ("conv1", 1), ("head", 1)])
    return tfl, ops


def _pattern() -> np.ndarray:
    """The example's input (firmware/deploy/example/main.c: PATTERN)."""
    n = HW * HW
    return ((np.arange(n, dtype=np.uint32) * 37 + 11) & 0xFF).astype(np.uint8).view(np.int8).reshape(1, HW, HW, 1)


@pytest.mark.qemu
@pytest.mark.slow
def test_int4_filters_ship_packed_and_run_tflm_exact(cnn, tmp_path):
    tfl, ops = cnn
    convs = P.apply_precision(tfl, {i: "int4" for i, n in ops.items() if n.startswith("conv")})
    every = P.apply_precision(tfl, {i: "int4" for i in ops})
    libs, fps = {}, {}
    for name, model in (("int8", tfl), ("convs", convs), ("every", every)):
        libs[name] = write_deploy(model, tmp_path / name, name=f"cnn-{name}")
        assert libs[name].prepared
        fps[name] = footprint(tmp_path / name, "m4")
        assert fps[name].output == tflm_run(model, [_pattern()], 1)[0].tobytes(), name
    source = (tmp_path / "convs" / "src" / "edgeprune_model_data.c").read_text()
    assert re.search(r"edgeprune_model_int4\[\] = \{2u,", source)  # both filters kept packed
    assert "#define EP_PREP_INT4 1" in (tmp_path / "convs" / "src" / "runtime" / "ep_deploy_config.h").read_text()
    assert "#define EP_PREP_INT4 0" in (tmp_path / "int8" / "src" / "runtime" / "ep_deploy_config.h").read_text()
    # The filters' int8 bytes left the arena image: model bytes and flash shrink by about half the filters (the
    # unpack loop and the filter table cost tens of bytes), RAM does not (the filters are unpacked there at bind).
    saved = libs["int8"].model_bytes - libs["convs"].model_bytes
    assert 0.9 * FILTERS / 2 <= saved <= FILTERS / 2 + 64, saved
    assert 0.85 * FILTERS / 2 <= fps["int8"].flash_bytes - fps["convs"].flash_bytes <= FILTERS / 2 + 64
    assert fps["convs"].arena_bytes >= fps["int8"].arena_bytes + FILTERS
    # int4 head too: its FULLY_CONNECTED kernel reads the model's nibbles, so they are what ships (half the int8
    # head's bytes), and, as for an int8 FC, not its int32 bias (16 B here): init folded that into the op's scratch.
    assert libs["convs"].weight_bytes - libs["every"].weight_bytes == HEAD // 2


@pytest.mark.qemu
@pytest.mark.slow
def test_int4_filters_on_m0(cnn, tmp_path):
    """The same packed filters bound on an M0 (no unaligned access, no DSP): TFLM's bytes."""
    tfl, ops = cnn
    convs = P.apply_precision(tfl, {i: "int4" for i, n in ops.items() if n.startswith("conv")})
    lib = write_deploy(convs, tmp_path / "m0", name="cnn-m0", core="m0")
    assert lib.prepared
    assert footprint(tmp_path / "m0", "m0").output == tflm_run(convs, [_pattern()], 1)[0].tobytes()


def test_slim_int4_model_drops_version_hints_and_keeps_tflm_bytes(cnn):
    """The device array drops has_rank and the op codes' versions (issue 30: bytes a static model on a runtime that
    picks kernels by op code does not read), int8 and int4 alike; TFLM computes the same bytes from it."""
    tfl, ops = cnn
    for full in (tfl, P.apply_precision(tfl, {i: "int4" for i in ops}, int4_scales="tensor")):
        slim = slim_tflite(full)
        model = tflite_schema().ModelT.InitFromObj(tflite_schema().Model.GetRootAsModel(bytearray(slim), 0))
        assert all(c.version == 1 for c in model.operatorCodes)
        assert not any(t.hasRank for t in model.subgraphs[0].tensors)
        assert tflm_run(slim, [_pattern()], 1)[0].tobytes() == tflm_run(full, [_pattern()], 1)[0].tobytes()
