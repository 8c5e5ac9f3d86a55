"""Random CONV_2D / DEPTHWISE_CONV_2D / MAX_POOL_2D / AVERAGE_POOL_2D models in the real firmware under QEMU give
TFLM's bytes on each kernel family: M0 (v6-M assembly dot rows), M3 (two pixels per SMLAL), M4 (DSP SIMD: 2x2
SMLAD convolution, SSUB8/SEL max pool, SXTAB16 average pool). Odd channel and depth tails, strides, dilation,
SAME/VALID borders, multipliers above one (the long requantisation path), clipped and global pool windows."""

from __future__ import annotations

import numpy as np
import pytest

from .qemu_exact import qemu_mismatches
from .seed_models import conv_multiplier_above_one, pool_2d
from .test_conv_vs_tflm import _random_conv, conv_model
from .tflbuild import S

pytestmark = [pytest.mark.qemu, pytest.mark.slow]
SEED = 19
N_CONV, N_ODD, N_LONG, N_POOL = 8, 10, 6, 30  # per core


def odd_conv(rng: np.random.Generator, depthwise: bool) -> tuple[bytes, np.ndarray]:
    """Small images, 1-39 channels, strides 1-2, dilation 2 in one case of five, SAME or VALID (inside the image)."""
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    dil = (1, 2) if rng.integers(5) == 0 else (1, 1)
    shape = (1, int(rng.integers(kh, 9)), int(rng.integers((kw - 1) * dil[1] + 1, 9)), int(rng.integers(1, 40)))
    act = [S.ActivationFunctionType.NONE, S.ActivationFunctionType.RELU, S.ActivationFunctionType.RELU6]
    buf = conv_model(rng, depthwise, bool(rng.integers(2)), [S.Padding.SAME, S.Padding.VALID][int(rng.integers(2))],
                     (int(rng.integers(1, 3)), int(rng.integers(1, 3))), dil, act[int(rng.integers(3))], (kh, kw),
                     shape, int(rng.integers(1, 40)))
    return buf, rng.integers(-128, 128, shape, dtype=np.int8)


def cases() -> list[tuple[str, bytes, np.ndarray]]:
    rng = np.random.default_rng(SEED)
    out = []
    for i in range(N_CONV):
        buf, (x,) = _random_conv(i, bool(i % 2))
        out.append((f"random_conv({i}, {bool(i % 2)})", buf, x))
    for i in range(N_ODD):
        out.append((f"odd_conv #{i}", *odd_conv(rng, bool(i % 2))))
    for i in range(N_LONG):
        out.append((f"multiplier>1 #{i}", *conv_multiplier_above_one(rng, bool(i % 2))))
    for i in range(N_POOL):
        out.append((f"pool #{i}", *pool_2d(rng)))
    return out


def test_cases_cover_the_tails():
    """The generated set reaches what the kernels special-case: every C mod 4 pool tail, averages over > 256 taps."""
    schema = S
    tails, big_avg = set(), False
    for name, buf, x in cases():
        if name.startswith("pool"):
            model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(buf, 0))
            opt = model.subgraphs[0].operators[0].builtinOptions
            tails.add(x.shape[3] % 4)
            is_avg = model.operatorCodes[0].builtinCode == schema.BuiltinOperator.AVERAGE_POOL_2D
            big_avg |= is_avg and opt.filterHeight * opt.filterWidth > 256
    assert tails == {0, 1, 2, 3}
    assert big_avg


@pytest.mark.parametrize("core", ["m0", "m3", "m4"])
def test_random_windowed_ops_bit_exact(core, tmp_path):
    bad = qemu_mismatches(core, tmp_path / "pio", cases())
    assert not bad, "\n".join(bad)
