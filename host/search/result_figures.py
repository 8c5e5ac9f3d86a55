"""What a candidate's ``EvalResult`` records: proxy figures of the compressed model, the device's figures
(latency count, energy, and the quality with the device-vs-TFLM agreement behind it), and flash/RAM by the rules
of ``host/search/footprint.py`` (with the deploy build kept beside the export).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.bench.atomic import atomic_write_text
from edgeprune.bench.firmware_build import BuildError, build
from edgeprune.bench.qemu import MACHINES, default_elf
from edgeprune.bench.targets import TargetSpec
from edgeprune.host.search.footprint import (
    IMAGE_FLASH_BYTES,
    IMAGE_RAM_BYTES,
    deploy_library_figures,
    image_estimate,
)
from edgeprune.host.search.types import (
    ENERGY_UJ,
    HOST_ENERGY_UJ,
    LATENCY_COUNT,
    LATENCY_MS,
    MACS,
    PARAMS,
    QUALITY,
    SPARSITY,
    EvalResult,
    FigureRecord,
)

log = logging.getLogger(__name__)

# Largest |device − TFLM| accepted for a float32 model's outputs (a few ULPs of typical logits).
FLOAT_AGREEMENT_TOL = 1e-4


def proxy_figures(result: EvalResult, compressed: Any) -> None:
    """Record the compressed model's counted figures (params, MACs, sparsity) and its per-layer outcome."""
    p = compressed.proxies
    result.figures[PARAMS] = FigureRecord(float(p.params), "params", "proxy", "counted from the compressed shapes")
    result.figures[MACS] = FigureRecord(float(p.macs), "MACs", "proxy", "matrix-product MACs per inference")
    result.figures[SPARSITY] = FigureRecord(float(p.sparsity), "fraction", "proxy", "zero weights / weights")
    report = compressed.report if isinstance(compressed.report, dict) else {}
    result.layers = []
    for lc in compressed.config.layers:
        entry = lc.to_dict()
        for key in ("kept_units", "ranks", "layer_sparsity"):
            per_layer = report.get(key)
            if isinstance(per_layer, dict) and lc.name in per_layer:
                entry[key] = per_layer[lc.name]
        result.layers.append(entry)


def device_figures(result: EvalResult, m: Any, quality: Any, float_model: bool) -> None:
    """Record a device measurement ``m`` (``bench.measure``): quality (TFLM's, with the device's agreement with
    it), instruction count, latency and energy. Outputs that differ from TFLM make ``result`` an error.

    Parameters
    ----------
    result:
        The candidate's ``EvalResult``.
    m:
        The ``Measurement``.
    quality:
        The candidate's TFLM validation ``Quality``.
    float_model:
        A float32 model, whose kernels may round differently from TFLM's within ``FLOAT_AGREEMENT_TOL``.
    """
    figs = m.figures
    agreement = m.agreement
    detail = f"{quality.metric} on the validation split, TFLM interpreter (the device's bit-exact oracle)"
    if agreement is not None:
        rate = agreement.byte_equal_rate.value
        detail += f"; device outputs byte-equal to TFLM on {round(rate * agreement.n)}/{agreement.n} validation inputs"
        # int8 kernels are integer arithmetic: any difference is a bug. Float kernels may round
        # differently (summation order), so float32 models get a tolerance instead.
        if float_model and rate < 1.0 and agreement.max_abs_diff <= FLOAT_AGREEMENT_TOL:
            detail += f" (float32: others within {agreement.max_abs_diff:.2g} ≤ {FLOAT_AGREEMENT_TOL:g})"
        elif rate < 1.0:
            result.error = (
                f"device outputs differ from TFLM on {len(agreement.mismatches)}/{agreement.n} inputs "
                f"(max |diff| {agreement.max_abs_diff}); the firmware and the oracle disagree"
            )
    source = m.figures["count"].source
    result.figures[QUALITY] = FigureRecord(float(quality.value), quality.metric, source, detail)
    result.figures[LATENCY_COUNT] = FigureRecord.of(figs["count"])
    if "latency" in figs:
        result.figures[LATENCY_MS] = FigureRecord.of(figs["latency"])
    energy = None
    for key in ("energy_board_ppk2", "energy_board_ina", "energy_model"):
        fig = figs.get(key)
        if fig is not None and np.isfinite(fig.value):
            energy = fig
            break
    if energy is not None:
        result.figures[ENERGY_UJ] = FigureRecord.of(energy)
    host = figs.get("energy_host")
    if host is not None and np.isfinite(host.value):
        result.figures[HOST_ENERGY_UJ] = FigureRecord.of(host)


def deploy_record(built: Any) -> dict[str, Any]:
    """What ``deploy.json`` says about a ``bench.firmware_build.BuildResult``."""
    return {
        "status": "built",
        "env": built.env,
        "flash_bytes": built.flash_bytes,
        "ram_bytes": built.ram_bytes,
        "text": built.text,
        "data": built.data,
        "bss": built.bss,
        "build_id": built.build_id,
        "source": "build",
        "detail": "PlatformIO deploy build with the model compiled in: flash = .text+.data, RAM = .data+.bss",
    }


def keep_deploy(built: Any, out_dir: Path) -> None:
    """Keep a candidate's deploy ELF and sizes beside its export (the report reuses them)."""
    shutil.copy2(built.elf, out_dir / "firmware.elf")
    atomic_write_text(out_dir / "deploy.json", json.dumps(deploy_record(built), indent=2))


class MemoryFigures:
    """Flash/RAM of every candidate by one rule per figure (``host/search/footprint.py``): the deploy library,
    measured for every candidate (the objective); the measurement image beside it, built or estimated.

    Parameters
    ----------
    spec:
        The evaluator's ``TargetSpec``.
    deploy_build:
        ``"baseline"`` (estimate the image), ``"auto"`` (build it, falling back to the estimate when PlatformIO
        cannot run), ``"always"`` (build it; failures are errors) or ``"never"`` (no image figures).
    deploy_env:
        PlatformIO env of the image build (default ``qemu-<core>``; none for a serial board unless given).
    deploy_dir:
        PlatformIO build dir of the image builds.
    elf:
        The measurement firmware's ELF (default: the env's serial-loading build), read by the estimate.
    """

    def __init__(self, spec: TargetSpec, deploy_build: str, deploy_env: str | None, deploy_dir: Path,
                 elf: str | None) -> None:
        self.spec = spec
        self.deploy_build = deploy_build
        self.deploy_env = deploy_env
        self.deploy_dir = deploy_dir
        self.elf = elf
        #: Why the image build cannot run on this machine (then every image figure is the estimate).
        self.broken: str | None = None

    def record(self, result: EvalResult, prepared: Any, hello: Any) -> None:
        """Put ``prepared``'s flash/RAM figures into ``result`` (``hello``: the board's, for its core)."""
        # An emulated STM32 twin is named for its board; its deploy library is built for the board's core.
        twin = MACHINES.get(str(self.spec.core)) if self.spec.kind == "qemu" else None
        core = (twin.cpu or self.spec.core) if twin is not None else getattr(hello, "core", None)
        out_dir = Path(str(prepared.out_dir))
        library = deploy_library_figures(result.figures, prepared.tflite, prepared.manifest, out_dir, core)
        env = self.deploy_env or (f"qemu-{self.spec.core}" if self.spec.kind == "qemu" else None)
        if env is None:
            return
        if self.deploy_build in ("auto", "always") and self.broken is None:
            try:
                built = build(env, baked_model_dir=out_dir, build_dir=self.deploy_dir)
            except BuildError as exc:
                if exc.stage in ("limits", "model"):  # this candidate's fault, not the build's
                    result.error = f"BuildError: {exc}"
                    return
                if self.deploy_build == "always":
                    raise
                self.broken = str(exc).splitlines()[0]
                log.warning("deploy build unavailable (%s); image flash/RAM are estimates", self.broken)
            else:
                keep_deploy(built, out_dir)
                result.figures[IMAGE_FLASH_BYTES] = FigureRecord(
                    built.flash_bytes, "bytes", "build", f"measurement image {env}: .text+.data (model compiled in)")
                result.figures[IMAGE_RAM_BYTES] = FigureRecord(
                    built.ram_bytes, "bytes", "build", f"measurement image {env}: .data+.bss (stack extra)")
                return
        if self.deploy_build == "never" or self.spec.kind != "qemu":
            return
        flash, ram, detail = image_estimate(prepared.tflite, prepared.manifest, env,
                                            Path(self.elf) if self.elf else default_elf(self.spec.core),
                                            library.record_bytes if library is not None else None)
        result.figures[IMAGE_FLASH_BYTES] = FigureRecord(flash, "bytes", "build", detail)
        result.figures[IMAGE_RAM_BYTES] = FigureRecord(ram, "bytes", "build", detail)
