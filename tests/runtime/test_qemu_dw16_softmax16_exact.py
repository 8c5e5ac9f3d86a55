"""int16 DEPTHWISE_CONV_2D and SOFTMAX (issue 30, ep_dwconv16.c, ep_softmax16.c) in the real firmware under QEMU give
TFLM's bytes on the v6-M (M0: C blocks, libgcc's 64-bit shifts) and DSP (M4: SMLABB/SMLATT on int16 pairs) builds: a
4-channel block with a tail, depth multiplier 2 with stride and dilation, the int64 window path, and SOFTMAX over a
dense sweep of input differences and wide rows; the host planner's arena is the device's for them (the widened
filter copy in the persistent part); and the converter's 16x8 depthwise + SOFTMAX model as the prepared deploy library
(``edgeprune export --deploy``) gives TFLM's bytes in its QEMU example."""

from __future__ import annotations

import numpy as np
import pytest

from edgeprune.bench.firmware_build import CORE_ENVS, build, plan_model
from edgeprune.bench.link import Device
from edgeprune.bench.qemu import QemuBoard
from edgeprune.export.deploy import write_deploy
from edgeprune.export.deploy_build import footprint

from . import tflbuild as tb
from .models16 import converter_dw_softmax_16x8, dwconv_16x8, softmax_16
from .oracle import tflm_run
from .qemu_exact import qemu_mismatches

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.tf]


def cases() -> list[tuple[str, bytes, np.ndarray]]:
    rng = np.random.default_rng(161)
    k = np.arange(0, 65536, 97, dtype=np.int64)  # 676 rows: differences 0 .. -65475 in steps of 97
    sweep = np.stack([np.full_like(k, -32768), -32768 + k], axis=1).astype(np.int16)
    rows = rng.integers(-32768, 32768, (4, 300)).astype(np.int16)
    return [
        ("dw16 3x3 relu c6", *dwconv_16x8(tb, rng, (1, 8, 8, 6), (3, 3), act=1)),
        ("dw16 dm2 s2 dil2 per-tensor", *dwconv_16x8(tb, rng, (1, 9, 9, 3), (3, 3), 2, (2, 2), 0, 0, "none", False,
                                                      (2, 2))),
        ("dw16 16x16 int64 taps", *dwconv_16x8(tb, rng, (1, 17, 17, 4), (16, 32), padding=0)),
        ("softmax16 sweep", softmax_16(tb, sweep.shape, 3e-4), sweep),
        ("softmax16 rows", softmax_16(tb, rows.shape, 1e-3, 0.7), rows),
    ]


@pytest.mark.parametrize("core", ["m0", "m4"])
def test_dw16_softmax16_match_tflm_in_qemu(core, tmp_path_factory):
    build_dir = tmp_path_factory.mktemp(f"fw-dw16-{core}")
    assert qemu_mismatches(core, build_dir, cases()) == []
    elf = build(CORE_ENVS[core], build_dir=build_dir).elf  # the firmware just built (nothing to rebuild)
    with QemuBoard(core, elf=elf) as board, Device.open(board.url, 30.0) as dev:
        for name, buf, _ in cases():
            assert dev.load_model(buf).arena_used == plan_model(buf, CORE_ENVS[core]).arena, name


@pytest.mark.parametrize("core", ["m0", "m4"])
def test_converter_dw16_softmax16_deploy_library_matches_tflm(core, tmp_path):
    buf = converter_dw_softmax_16x8()
    lib = write_deploy(buf, tmp_path / "lib", name="dw16", core=core)
    assert lib.prepared and lib.kernels == ("conv",)
    # firmware/deploy/example/main.c: input[i] = (EDGEPRUNE_INPUT_T)(i * 37 + 11)
    x = (np.arange(8 * 8 * 4, dtype=np.int64) * 37 + 11).astype(np.int16).reshape(1, 8, 8, 4)
    assert footprint(lib.out_dir, core).output == tflm_run(buf, [x])[0].tobytes()
