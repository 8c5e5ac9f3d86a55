"""`edgeprune bench` prints the deploy build's flash and RAM, as `search` reports them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgeprune.bench.paths import project_root
from edgeprune.host.cli import main

pytestmark = [pytest.mark.qemu, pytest.mark.slow]


def test_bench_prints_deploy_flash_and_ram_of_a_bare_tflite(tmp_path: Path) -> None:
    ad01 = project_root() / "bench" / "reference" / "mlperf_tiny_ad01_int8.tflite"
    model = tmp_path / "ad01.tflite"  # bare: no model_data.c beside it, the C array is generated
    shutil.copy(ad01, model)
    res = CliRunner().invoke(main, ["bench", str(model), "--repeats", "1", "--warmup", "0", "--agreement", "0"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    m = re.search(r"deploy build qemu-m4: flash ([\d.]+) KiB \(\.text\+\.data\), RAM ([\d.]+) KiB", text)
    assert m, text[-800:]
    flash_kib, ram_kib = float(m.group(1)), float(m.group(2))
    assert flash_kib * 1024 > model.stat().st_size  # the model is in flash, with the firmware around it
    assert 0 < ram_kib < 4096
    assert "`search` times a real test window" in text  # why the two commands' counts can differ
    skipped = CliRunner().invoke(main, ["bench", str(model), "--repeats", "1", "--agreement", "0", "--no-deploy-build"])
    assert skipped.exit_code == 0 and "deploy build" not in skipped.output


def test_planner_plans_consumed_inputs_when_asked() -> None:
    """`plan_model(..., flags=CONSUME_INPUTS)` plans as an application that writes its inputs before every invoke:
    VWW's 27 KB input is reused once its last reader ran, so the arena shrinks; the default plan keeps it."""
    from edgeprune.bench.firmware_build import CONSUME_INPUTS, plan_model
    from edgeprune.bench.reference import mlperf_bytes

    vww = mlperf_bytes("vww")
    default, consumed = plan_model(vww, "qemu-m4"), plan_model(vww, "qemu-m4", flags=CONSUME_INPUTS)
    assert consumed.arena <= default.arena - 96 * 96 * 3 + 1024, (default.arena, consumed.arena)
    assert (consumed.tensors, consumed.ops, consumed.kernels) == (default.tensors, default.ops, default.kernels)
