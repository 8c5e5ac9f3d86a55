"""ep_requantize (C) is byte-identical to bench.qmath.requantize (Python) for any scales and zero points."""

from __future__ import annotations

import ctypes

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeprune.bench.qmath import requantize

from .rt import Runtime

_CACHE: dict = {}


def _runtime(lib):
    if lib not in _CACHE:
        _CACHE[lib] = Runtime(lib)
    return _CACHE[lib]

scales = st.floats(min_value=2.0**-20, max_value=8.0, allow_nan=False, allow_infinity=False, width=32)
zps = st.integers(min_value=-128, max_value=127)


def _c_requantize(rt, q: np.ndarray, s_from, z_from, s_to, z_to) -> np.ndarray:
    dst = ctypes.create_string_buffer(q.size)
    rt.lib.ep_requantize(q.tobytes(), dst, q.size, s_from, z_from, s_to, z_to)
    return np.frombuffer(dst.raw, dtype=np.int8)


ALL = np.arange(-128, 128, dtype=np.int8)


@settings(max_examples=400, deadline=None)
@given(s_from=scales, z_from=zps, s_to=scales, z_to=zps)
def test_matches_qmath(runtime_lib, s_from, z_from, s_to, z_to):
    rt = _runtime(runtime_lib)
    ref = requantize(ALL, s_from, z_from, s_to, z_to)
    assert np.array_equal(_c_requantize(rt, ALL, s_from, z_from, s_to, z_to), ref)


def test_identity_and_real_rescale(rt):
    assert np.array_equal(_c_requantize(rt, ALL, 0.05, 3, 0.05, 3), ALL)
    out = _c_requantize(rt, ALL, 0.02, 0, 0.04, 0)
    assert np.array_equal(out, requantize(ALL, 0.02, 0, 0.04, 0))
    assert out.max() == 64 and out.min() == -64
