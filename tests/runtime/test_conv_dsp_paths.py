"""The DSP cores' fast convolution paths (issue 31) give TFLM's bytes in the real firmware under QEMU: the 3x3
depthwise kernel (one assembly block per pixel and four channels, border windows gathered with the input zero
point, the zero point folded into the requantisation's rounding constant) and the CONV_2D pair loop for an even
channel count (halfword stores). Random geometry: images down to 1x1 (every tap of a SAME window outside), strides
1-2, dilation 2, SAME/VALID, channel tails, every fused activation."""

from __future__ import annotations

import numpy as np
import pytest

from .qemu_exact import qemu_mismatches
from .test_conv_vs_tflm import ACT, PAD, conv_model

pytestmark = [pytest.mark.qemu, pytest.mark.slow]
SEED = 31


def cases() -> list[tuple[str, bytes, np.ndarray]]:
    rng = np.random.default_rng(SEED)
    acts = [ACT.NONE, ACT.RELU, ACT.RELU6]
    out = []
    for i in range(14):  # 3x3 depthwise, C >= 4 (C mod 4 tails go to the generic loop after the blocks)
        dil = (2, 2) if i % 5 == 4 else (1, 1)
        pad = PAD.SAME if i % 3 else PAD.VALID
        lo = 1 if pad == PAD.SAME else 2 * dil[0] + 1
        shape = (1, int(rng.integers(lo, 10)), int(rng.integers(lo, 10)), int(rng.integers(4, 41)))
        stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        buf = conv_model(rng, True, i % 4 != 0, pad, stride, dil, acts[i % 3], (3, 3), shape, shape[3])
        out.append((f"dw3x3 #{i} {shape} s{stride} d{dil}", buf, rng.integers(-128, 128, shape, dtype=np.int8)))
    for i in range(10):  # CONV_2D with an even output channel count, 1x1 and 3x3, depth tails
        k = (1, 1) if i % 2 == 0 else (3, 3)
        shape = (1, int(rng.integers(3, 9)), int(rng.integers(3, 9)), int(rng.integers(1, 21)))
        oc = 2 * int(rng.integers(1, 20))
        buf = conv_model(rng, False, i % 3 != 0, PAD.SAME, (1 + i % 2, 1), (1, 1), acts[i % 3], k, shape, oc)
        out.append((f"conv{k} #{i} {shape} oc {oc}", buf, rng.integers(-128, 128, shape, dtype=np.int8)))
    return out


@pytest.mark.parametrize("core", ["m4", "m33"])
def test_dsp_conv_paths_bit_exact(core, tmp_path):
    bad = qemu_mismatches(core, tmp_path / "pio", cases())
    assert not bad, "\n".join(bad)
