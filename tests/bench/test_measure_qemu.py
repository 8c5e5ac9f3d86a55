"""The whole measure path on the real firmware in qemu-system-arm, checked against TFLM's interpreter.

Counts are QEMU -icount instructions (deterministic), outputs must equal the TFLM oracle byte for byte,
and every figure must carry the right source.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeprune.bench.discovery import open_target
from edgeprune.bench.flash import FlashError, flash_qemu
from edgeprune.bench.measure import measure
from edgeprune.bench.model_bench import bench_model
from edgeprune.bench.reference import ad01_path

AD01 = ad01_path()  # shipped in bench/reference/, SHA-256 checked
AD01_MACS = 264_192

pytestmark = pytest.mark.qemu


@pytest.fixture(scope="module", autouse=True)
def _toolchain() -> None:
    missing = [t for t in ("qemu-system-arm", "arm-none-eabi-gcc") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"QEMU tests need {missing}: apt-get install qemu-system-arm gcc-arm-none-eabi")
    if not AD01.exists():
        pytest.fail(f"reference model missing: {AD01}")


def test_ad01_on_qemu_m4_counts_instructions_and_agrees_with_tflm(tmp_path: Path) -> None:
    m = bench_model(AD01, "qemu:m4", repeats=3, warmup=1, agreement=2, timeout_s=120.0,
                    json_out=tmp_path / "m.json")
    count = m.figures["count"]
    assert count.source == "qemu" and count.unit == "instructions" and "lower bound" in count.detail
    # at least one instruction per MAC, and far from absurd
    assert AD01_MACS < count.value < 200 * AD01_MACS
    assert m.figures["per_mac"].value == pytest.approx(count.value / AD01_MACS)
    assert m.stats.outliers == 0 and m.stats.iqr <= 0.01 * count.value  # -icount is deterministic
    assert m.target["counter"] == "icount" and m.target["core"] == "m4"
    assert m.figures["latency"].source == "qemu" and "estimate at 120 MHz" in m.figures["latency"].detail
    assert m.figures["energy_model"].source == "model" and "lower bound" in m.figures["energy_model"].detail
    assert m.agreement is not None and m.agreement.n == 2
    assert m.agreement.byte_equal_rate.value == 1.0, m.agreement
    assert (tmp_path / "m.json").is_file()


def test_qemu_flash_is_launching_the_elf_and_checking_its_build() -> None:
    res = flash_qemu("m3")
    try:
        assert res.build_id and res.hello.core == "m3" and res.port == res.board.url
    finally:
        res.board.close()
    with pytest.raises(FlashError) as err:
        flash_qemu("m3", expect_build_id="not-this-build")
    assert err.value.stage == "verify"


@pytest.mark.slow
@pytest.mark.tf
def test_streaming_gru_sequence_and_metric_on_qemu(tmp_path: Path) -> None:
    import torch

    from edgeprune.export.pipeline import export_model
    from edgeprune.host.models.gru import StackedGRU

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = StackedGRU(4, [8], 3, 6).eval()
    rng = np.random.default_rng(0)
    calib = rng.normal(size=(64, 6, 4)).astype(np.float32)
    res = export_model(model, calib, tmp_path / "gru")
    tflite = (tmp_path / "gru" / "model.tflite").read_bytes()
    manifest = res.manifest
    test_x = rng.normal(size=(5, 6, 4)).astype(np.float32)
    with torch.no_grad():
        y_float = model(torch.from_numpy(test_x)).numpy()

    def rmse(pred: np.ndarray, y: np.ndarray) -> float:
        return float(np.sqrt(np.mean((pred - y) ** 2)))

    with open_target("qemu:m4", timeout_s=60.0) as dev:
        m = measure(dev, tflite, manifest, test_x[0], warmup=1, repeats=3, agreement_inputs=test_x,
                    agreement_labels=y_float, metric=rmse, metric_name="rmse")
    assert m.model["steps"] == 6 and m.model["macs_per_inference"] == 6 * m.model["macs"]
    assert m.agreement is not None and m.agreement.byte_equal_rate.value == 1.0, m.agreement
    assert m.agreement.metric is not None and m.agreement.metric.source == "qemu"
    # the int8 device model tracks the float model closely on its own outputs
    assert m.agreement.metric.value < 0.1 * (np.abs(y_float).max() + 1e-6) + 0.05
