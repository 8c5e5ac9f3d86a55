"""Fuzz the validator under ASan/UBSan: >= 100,000 random and mutated models (GRU cells, AD01, the KWS DS-CNN with
its convolutions, pools and SOFTMAX), no crash, no UB."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from edgeprune.bench.reference import ad01_path, kws_path

from .oracle import tflm_run
from .rt import CFLAGS, RUNTIME, STATUS, sources
from .seed_models import gru_like_cell

AD01 = ad01_path()  # shipped in bench/reference/, SHA-256 checked
SAN = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


def test_gru_like_seed_is_valid_and_exact(rt):
    buf = gru_like_cell()
    rng = np.random.default_rng(3)
    xs = [rng.integers(-128, 128, (1, 4), dtype=np.int8), rng.integers(-128, 128, (1, 8), dtype=np.int8)]
    assert STATUS[rt.init(buf)] == "OK"
    assert np.array_equal(rt.run(xs)[0], tflm_run(buf, xs)[0])


@pytest.mark.slow
def test_fuzz_validator_asan_ubsan(tmp_path):
    if not AD01.exists():
        pytest.fail(f"{AD01} missing")
    exe = tmp_path / "fuzz"
    srcs = [s for s in sources() if not s.endswith("host_shim.c")] + [str(RUNTIME / "tests" / "fuzz_validator.c")]
    cflags = [f for f in CFLAGS if f not in ("-fPIC", "-shared")]
    subprocess.run(["gcc", *cflags, *SAN, "-o", str(exe), *srcs, "-lm"], check=True, timeout=180)
    seeds = [tmp_path / "gru.tflite", tmp_path / "gru2.tflite"]
    seeds[0].write_bytes(gru_like_cell(4, 8, 0))
    seeds[1].write_bytes(gru_like_cell(3, 12, 1))
    res = subprocess.run(
        [str(exe), "100000", "12345", *map(str, seeds), str(AD01), str(kws_path())],
        capture_output=True, text=True, timeout=240,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    m = re.search(r"iterations=(\d+) loaded=(\d+) invoked=(\d+)", res.stdout)
    assert m, res.stdout
    iters, loaded, invoked = map(int, m.groups())
    assert iters >= 100_000
    # The mutations must exercise both sides: many rejections of distinct kinds, and some runnable models.
    assert 0 < invoked <= loaded < iters
    assert len(re.findall(r"status\[-\d+\]", res.stdout)) >= 6, res.stdout
