"""A candidate's flash and RAM do not depend on what the process measured before (issue 32): the same candidate
measured first by a fresh evaluator and second after another one gets the same figures, by the same rule."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from edgeprune.bench.manifest import bare_manifest
from edgeprune.host.search.candidate import Prepared
from edgeprune.host.search.evaluator import HardwareEvaluator
from edgeprune.host.search.footprint import IMAGE_FLASH_BYTES, IMAGE_RAM_BYTES
from edgeprune.host.search.types import FLASH_BYTES, RAM_BYTES, EvalResult

pytestmark = [pytest.mark.qemu]


class _Task:
    name = "fc"

    def content_hash(self) -> str:
        return "fc"


def _prepared(model: bytes, out_dir: Path) -> Prepared:
    out_dir.mkdir(parents=True)
    (out_dir / "model.tflite").write_bytes(model)
    return Prepared(SimpleNamespace(quantize="int8"), EvalResult("{}", out_dir.name), model, bare_manifest(model),
                    SimpleNamespace(tflite_bytes=len(model), arena_bytes=4096), out_dir)


def _figures(ev: HardwareEvaluator, prepared: Prepared) -> dict[str, tuple[float, str, str]]:
    ev.memory.record(prepared.result, prepared, ev.hello)
    figs = prepared.result.figures
    return {k: (figs[k].value, figs[k].source, figs[k].detail.replace(str(prepared.out_dir), "<dir>"))
            for k in (FLASH_BYTES, RAM_BYTES, IMAGE_FLASH_BYTES, IMAGE_RAM_BYTES)}


def test_flash_and_ram_do_not_depend_on_process_history(tmp_path):
    from runtime.seed_models import fc_square

    first, second = fc_square(48, seed=1), fc_square(96, seed=2)
    with HardwareEvaluator(_Task(), "qemu:m4", host_energy=False, artifacts_dir=tmp_path / "a") as ev:
        _figures(ev, _prepared(first, tmp_path / "a" / "first"))
        after_another = _figures(ev, _prepared(second, tmp_path / "a" / "second"))
    with HardwareEvaluator(_Task(), "qemu:m4", host_energy=False, artifacts_dir=tmp_path / "b") as ev:
        alone = _figures(ev, _prepared(second, tmp_path / "b" / "second"))
    assert after_another == alone
    flash, source, detail = alone[FLASH_BYTES]
    assert source == "build" and detail.startswith("deploy library on m4") and flash > len(second)
    # The image (measurement firmware + model) is an estimate by its own rule, labelled, and larger.
    assert alone[IMAGE_FLASH_BYTES][2].startswith("estimate: measurement firmware")
    assert alone[IMAGE_FLASH_BYTES][0] > flash and alone[IMAGE_RAM_BYTES][0] > 0
    # One FULLY_CONNECTED: the convolution and GRU files' code (from the firmware's ld map) is left out.
    left_out = re.search(r"(\d+) B of kernel families this model does not run left out", alone[IMAGE_FLASH_BYTES][2])
    assert left_out is not None and int(left_out.group(1)) > 4096
