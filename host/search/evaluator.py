"""``HardwareEvaluator``: one candidate config, end to end, measured on the device.

compress (+ fine-tune) → export (int8 .tflite, TFLM-verified, C array) → quality from the TFLM
interpreter on the task's validation split (selection never reads the test split), checked byte for byte against the device's own outputs on
a sample → LOAD_MODEL + timed INFER on the device → flash/RAM of the deploy build (or the model's
own size and arena, labelled as an estimate) → energy (cited per-cycle model, CodeCarbon on the
host). One device connection (one QEMU instance) serves every candidate; a hung emulator is
restarted once and the candidate retried.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.bench.atomic import atomic_write_text, folder_lock
from edgeprune.bench.errors import ExportError
from edgeprune.bench.firmware_build import BuildError, build
from edgeprune.bench.link import LinkError, LoadResult
from edgeprune.bench.manifest import ManifestError, read_manifest
from edgeprune.bench.measure import measure
from edgeprune.bench.model_bench import BakedDevice
from edgeprune.bench.paths import cache_dir
from edgeprune.bench.qemu import MACHINES, default_elf
from edgeprune.bench.targets import Target, TargetSpec
from edgeprune.bench.tflm import TflmRunner
from edgeprune.export.manifest_build import tool_versions
from edgeprune.export.pipeline import ExportResult, export_model
from edgeprune.export.verify import predict_fn
from edgeprune.host.compress.compress_errors import ConfigError
from edgeprune.host.search.fidelity import rung_hook
from edgeprune.host.search.footprint import (
    IMAGE_FLASH_BYTES,
    IMAGE_RAM_BYTES,
    deploy_library_figures,
    image_estimate,
    rule_fingerprint,
)
from edgeprune.host.search.timing import Stopwatch
from edgeprune.host.search.types import (
    ENERGY_UJ,
    HOST_ENERGY_UJ,
    LATENCY_COUNT,
    LATENCY_MS,
    MACS,
    MODEL_BYTES,
    PARAMS,
    QUALITY,
    SPARSITY,
    EvalResult,
    EvaluatorIdentity,
    FigureRecord,
)
from edgeprune.host.tasks.base import torch_predict
from edgeprune.host.tasks.cache import digest, source_fingerprint

log = logging.getLogger(__name__)

#: The split every selection figure comes from; the test split is read only after a search ends.
SELECTION_SPLIT = "val"
# Largest |device − TFLM| accepted for a float32 model's outputs (a few ULPs of typical logits).
FLOAT_AGREEMENT_TOL = 1e-4


@dataclass
class Prepared:
    """A candidate after the host half of its evaluation (``HardwareEvaluator.prepare``).

    Parameters
    ----------
    config:
        The ``CompressionConfig``.
    result:
        The ``EvalResult`` being filled (``error`` set when the host half failed).
    tflite, manifest, exported, out_dir:
        The verified export and where it lives.
    quality:
        The int8 model's validation quality from TFLM (a ``Quality``).
    stopped:
        A ``fidelity.RungStop`` when the candidate was stopped part-way through fine-tuning (nothing exported).
    """

    config: Any
    result: EvalResult
    tflite: bytes = b""
    manifest: dict[str, Any] = field(default_factory=dict)
    exported: Any = None
    out_dir: Path | None = None
    quality: Any = None
    stopped: Any = None


class ModelTooBig(RuntimeError):
    """A candidate's model is larger than the board's load buffer (HELLO's ``max_model``)."""


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



#: Longest wait for another process exporting the same config into the artifacts cache, s.
EXPORT_LOCK_S = 1800.0
#: Written into an export folder once ``_export_smallest`` has chosen its weight scales (its .tflite's SHA-256).
EXPORT_CHOSEN = "chosen.txt"


class HardwareEvaluator:
    """Runs candidates on a real device link (QEMU or a board on a serial port).

    Parameters
    ----------
    task:
        The ``Task`` whose baseline is compressed.
    target:
        ``--device`` string (see ``TargetSpec.parse``) or a ``TargetSpec``.
    store:
        Unused by the evaluator itself (kept for the documented signature): the run store and the
        cache sit in ``SearchSession``, in front of the evaluator, so nothing stored is re-measured.
    repeats, warmup:
        Timed and discarded inferences per candidate.
    agreement_n:
        Test inputs run on the device and in TFLM; any byte difference makes the candidate fail.
    calibration_n:
        Training inputs used for int8 calibration.
    host_energy_runs:
        TFLite inferences timed under CodeCarbon per candidate (0 = no host energy).
    host_energy:
        Shortcut: ``False`` sets ``host_energy_runs`` to 0.
    deploy_build:
        The objective's flash/RAM are always the candidate's deploy library, built and run for every
        candidate (``host/search/footprint.py``). This option decides the measurement-image figures beside
        them (``image_flash_bytes``/``image_ram_bytes``): ``"baseline"`` (default) estimates them for every
        candidate by one rule from the serial-loading firmware's ELF, labelled ``estimate``; ``"auto"`` makes a
        PlatformIO deploy build per candidate (falling back to the estimate if PlatformIO cannot run),
        ``"always"`` too but failures are errors; ``"never"`` leaves them out.
    deploy_env:
        PlatformIO env of the deploy build (default: ``qemu-<core>``; for a serial board, give it).
    artifacts_dir:
        Where exports are kept, per task and config (default ``cache_dir()/artifacts``).
    link_timeout_s:
        Timeout of each request on the link.
    energy_board:
        Energy-table row for the model energy (default: the core's row).
    elf:
        Firmware image for QEMU (default: the env's serial-loading build).
    serial:
        QEMU wire: ``"auto"`` (emulated Ethernet on mps2 boards, the UART on m0 — see
        docs/design.md, "Wires"), ``"eth"``, ``"tcp"`` or ``"pty"``.
    deploy_dir:
        PlatformIO build dir of the deploy builds (one per run, so builds are incremental and two
        runs never share one); default ``<artifacts_dir>/deploy-build``.
    pidfile:
        Where the QEMU pid is noted (the run directory's ``.qemu.pid``): QEMU runs in its own process
        group, so a search killed with SIGKILL leaves it behind; the resumed search ends that one
        emulator (checked by pid and command name) before starting its own.
    slow_timeout_s:
        Deadline of one INFER request (LOAD_END: half), so a board hung mid-inference is noticed in
        bounded time; default the link's 60 s. An emulator's death is noticed at once (its process is polled).
    """

    def __init__(
        self,
        task: Any,
        target: str | TargetSpec,
        store: Any = None,
        *,
        repeats: int = 3,
        warmup: int = 1,
        agreement_n: int = 2,
        calibration_n: int = 64,
        host_energy_runs: int = 20,
        host_energy: bool = True,
        deploy_build: str = "baseline",
        deploy_env: str | None = None,
        artifacts_dir: Path | None = None,
        link_timeout_s: float = 60.0,
        energy_board: str | None = None,
        elf: str | None = None,
        serial: str = "auto",
        deploy_dir: Path | None = None,
        pidfile: Path | None = None,
        slow_timeout_s: float | None = None,
    ) -> None:
        if deploy_build not in ("baseline", "auto", "always", "never"):
            raise ValueError(f"deploy_build must be baseline, auto, always or never, got {deploy_build!r}")
        self.task = task
        self.spec = target if isinstance(target, TargetSpec) else TargetSpec.parse(target)
        self.repeats = int(repeats)
        self.warmup = int(warmup)
        self.agreement_n = int(agreement_n)
        self.calibration_n = int(calibration_n)
        self.host_energy_runs = int(host_energy_runs) if host_energy else 0
        self.deploy_build = deploy_build
        self.deploy_env = deploy_env
        self.link_timeout_s = float(link_timeout_s)
        self.energy_board = energy_board
        self.elf = elf
        self.serial = serial
        self.pidfile = Path(pidfile) if pidfile is not None else None
        if artifacts_dir is None:
            artifacts_dir = cache_dir() / "artifacts"
        self.artifacts_dir = Path(artifacts_dir)
        self.deploy_dir = Path(deploy_dir) if deploy_dir is not None else self.artifacts_dir / "deploy-build"
        # Opening, HELLO, restarts and stale-emulator clean-up belong to the target (bench.targets).
        self._target = Target(self.spec, link_timeout_s=self.link_timeout_s, elf=elf, wire=serial, pidfile=self.pidfile,
                              slow_timeout_s=slow_timeout_s)
        #: Faults the last measurement recovered from (restart + retry succeeded).
        self.recovered_faults = 0
        self._task_hash: str | None = None
        self._calibration: np.ndarray | None = None
        self._agreement: np.ndarray | None = None
        self._deploy_broken: str | None = None

    # -- device lifecycle (bench.targets.Target) -----------------------------------------------
    @property
    def board(self) -> Any:
        return self._target.board

    @property
    def device(self) -> Any:
        return self._target.device

    @property
    def hello(self) -> Any:
        return self._target.hello

    @property
    def restarts(self) -> int:
        return self._target.restarts

    def _ensure(self) -> Any:
        return self._target.open()

    def _restart(self) -> None:
        self._target.restart()

    def close(self) -> None:
        """Close the link and stop QEMU (safe to call twice)."""
        self._target.close()

    def __enter__(self) -> HardwareEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def target_name(self) -> str:
        if self.spec.kind == "qemu":
            return f"qemu:{self.spec.core}"
        self._ensure()
        return f"serial:{getattr(self.hello, 'board', '') or 'board'}:{self.hello.core}"

    def identity(self) -> EvaluatorIdentity:
        self._ensure()
        if self._task_hash is None:
            # The code that compresses and exports shapes every figure, and the rule that measures flash and
            # RAM, must not reuse results measured by older code (the task hash covers data and baseline only).
            self._task_hash = digest({"task": str(self.task.content_hash()), "code": source_fingerprint(),
                                      "footprint": rule_fingerprint()})
        return EvaluatorIdentity(self._task_hash, self.target_name, str(self.hello.build_id))

    # -- inputs -----------------------------------------------------------------------------------
    def _inputs(self) -> tuple[np.ndarray, np.ndarray]:
        if self._calibration is None:
            self._calibration = np.asarray(self.task.calibration_inputs(self.calibration_n), dtype=np.float32)
            # Validation windows: a search never reads the test split (see Task.test_sealed).
            self._agreement = np.asarray(
                self.task.agreement_inputs(max(1, self.agreement_n), split=SELECTION_SPLIT), dtype=np.float32
            )
        assert self._agreement is not None
        return self._calibration, self._agreement

    # -- one candidate ----------------------------------------------------------------------------
    def evaluate(self, config: Any) -> EvalResult:
        """Compress, export, measure ``config``; failures come back as ``EvalResult.error``."""
        prepared = self.prepare(config)
        if prepared.result.error is not None:
            return prepared.result
        return self.measure_prepared(prepared)

    #: ``prepare`` takes a ``RungRule`` (``host/search/fidelity.py``); evaluators without it are called without.
    supports_rungs = True

    def prepare(self, config: Any, rule: Any = None) -> Prepared:
        """The host half: compress (+ fine-tune), export, and the int8 quality on the validation split
        from the TFLM interpreter — the device's bit-exact oracle, so this quality *is* the device's.

        A search uses it to drop candidates whose quality already breaks the limit before spending a
        device evaluation on them (``SearchSession``). ``rule``: a ``fidelity.RungRule``; a candidate it
        stops part-way through fine-tuning comes back with ``Prepared.stopped`` set and no export.
        """
        digest = config.digest()
        result = EvalResult(config.to_json(), digest)
        ident = self.identity()
        prepared = Prepared(config, result)
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            result.timings[stage] = round(now - clock, 3)
            clock = now

        from edgeprune.host.compress.compressor import compress
        stops: list[Any] = []
        hook = {} if rule is None else rung_hook(self, config, rule, result, stops)
        try:
            compressed = compress(self.task, config, **hook)
        except ConfigError as exc:
            result.error = f"ConfigError: {exc}"
            return prepared
        spent = time.perf_counter() - clock
        clock = time.perf_counter()
        tuned = float(compressed.report.get("finetune_seconds") or 0.0)
        rungs = result.timings.get("rung-export", 0.0) + result.timings.get("rung-tflm", 0.0)
        result.timings["finetune"] = round(max(0.0, tuned - rungs), 3)
        result.timings["compress"] = round(max(0.0, spent - tuned), 3)
        self._proxy_figures(result, compressed)
        if stops:
            prepared.stopped = stops[0]
            result.figures[QUALITY] = FigureRecord(
                float(stops[0].quality), self.task.metric, "tflm",
                f"{self.task.metric} on the validation split, TFLM interpreter, of the weights at fine-tuning step "
                f"{stops[0].step} of {stops[0].steps} (stopped there: not fully fine-tuned)")
            return prepared

        calibration, _ = self._inputs()
        out_dir = self.artifacts_dir / ident.task_hash[:16] / digest[:16]
        # Another search exporting the same config would replace this folder while it is measured: the second
        # waits, then reuses the first's export.
        with folder_lock(out_dir, EXPORT_LOCK_S):
            # Only an export whose weight-scale choice was made: a kill between the per-tensor export and that
            # choice leaves a complete export a resumed run must not take for the one an unkilled run measures.
            exported = self._reuse_export(out_dir) if (out_dir / EXPORT_CHOSEN).is_file() else None
            if exported is None:
                try:
                    exported, quality = self._export_smallest(compressed.model, calibration, out_dir,
                                                              config.quantize, compressed.report.get("export") or {},
                                                              Stopwatch(result.timings))
                except ExportError as exc:
                    result.error = f"ExportError: {exc}"
                    return prepared
                atomic_write_text(out_dir / EXPORT_CHOSEN, hashlib.sha256(exported.read_tflite()).hexdigest() + "\n")
                clock = time.perf_counter()  # export and TFLM were timed inside, each under its own key
            else:
                quality = None
                lap("export-reused")
        result.artifacts = {"dir": str(out_dir)}
        prepared.tflite = exported.read_tflite()
        prepared.manifest = exported.manifest
        prepared.exported = exported
        prepared.out_dir = out_dir
        result.figures[MODEL_BYTES] = FigureRecord(len(prepared.tflite), "bytes", "build", ".tflite flatbuffer size")
        prepared.quality = quality if quality is not None else self._tflm_quality(prepared.tflite, prepared.manifest)
        result.figures[QUALITY] = FigureRecord(
            float(prepared.quality.value), prepared.quality.metric, "tflm",
            f"{prepared.quality.metric} on the validation split, TFLM interpreter (not yet run on the device)",
        )
        if prepared.quality.samples:
            result.samples[SELECTION_SPLIT] = list(prepared.quality.samples)
        Stopwatch(result.timings).add("tflm", time.perf_counter() - clock)
        return prepared

    def measure_prepared(self, prepared: Prepared) -> EvalResult:
        """The device half: load, time, compare with TFLM, then flash/RAM of the deploy build."""
        result = prepared.result
        _, agreement = self._inputs()
        started = time.perf_counter()
        try:
            measurement = self._measure(prepared.tflite, prepared.manifest, agreement, prepared.out_dir)
        except (LinkError, ExportError, RuntimeError, OSError) as exc:  # MeasureError/QemuError: RuntimeError
            # A DeviceFault is stored as "DeviceFault: <kind>: ..." (bench.link.fault_kind reads it back).
            result.error = f"{type(exc).__name__}: {exc}"
            result.timings["device"] = round(time.perf_counter() - started, 3)
            return result
        result.timings["device"] = round(time.perf_counter() - started, 3)
        load_s = getattr(self.device, "last_load_s", None)
        if load_s is not None:  # what the link speed costs this candidate
            result.timings["model-load"] = float(load_s)
        if self.recovered_faults:
            result.timings["device-faults-recovered"] = float(self.recovered_faults)
        self._device_figures(result, measurement, prepared.quality, prepared.config.quantize == "float32")
        if result.error is None and prepared.out_dir is not None:
            started = time.perf_counter()
            self._memory_figures(result, prepared)
            result.timings["deploy-build"] = round(time.perf_counter() - started, 3)
        return result

    def test_quality(self, result: EvalResult) -> Any:
        """Quality of a measured candidate on the **test** split, from its stored export (TFLM, bit-exact
        with the device). Called once per front point after the search has ended."""
        return self.rescore(result, "test")

    def rescore(self, result: EvalResult, split: str) -> Any:
        """``Quality`` (with per-window samples) of a stored candidate's export on ``split`` in TFLM.

        :raises FileNotFoundError: the export is gone from the cache
        """
        out_dir = Path(result.artifacts.get("dir", ""))
        exported = self._reuse_export(out_dir) if result.artifacts.get("dir") else None
        if exported is None:
            raise FileNotFoundError(f"the export of {result.digest[:10]} is gone from {out_dir}")
        return self.task.evaluate(predict_fn(exported.read_tflite(), exported.manifest), split=split)

    def _tflm_quality(self, tflite: bytes, manifest: dict[str, Any]) -> Any:
        return self.task.evaluate(predict_fn(tflite, manifest), split=SELECTION_SPLIT)

    def _export_smallest(self, model: Any, calibration: np.ndarray, out_dir: Path, quantize: str,
                         options: dict[str, Any] | None = None,
                         watch: Stopwatch | None = None) -> tuple[Any, Any]:
        """Export with one weight scale per matrix unless that costs validation quality per-row scales keep.

        Per-row (per-channel) FULLY_CONNECTED scales cost 12 B of flatbuffer per output row — 74 KB of the
        2×256 weather GRU's 690 KB, a third of a 9+60-unit candidate's. So every model (the baseline
        included) is exported per-tensor first and scored in TFLM on validation; only when that score is
        below the float model's is the per-channel export made, and kept if it scores strictly better.
        ``options``: further ``export_model`` arguments the compressed model needs (``Compressed.report["export"]``).
        Returns the chosen export (in ``out_dir``) and its TFLM validation quality.
        """
        opts = dict(options or {})
        watch = watch or Stopwatch({})
        if quantize != "int8":
            with watch("export"):
                exported = export_model(model, calibration, out_dir, quantize=quantize, name="model", **opts)
            with watch("tflm"):
                return exported, self._tflm_quality(exported.read_tflite(), exported.manifest)
        sign = 1.0 if self.task.higher_is_better else -1.0
        with watch("export"):
            exported = export_model(model, calibration, out_dir, quantize="int8", name="model", weights="tensor",
                                    **opts)
        with watch("tflm"):
            quality = self._tflm_quality(exported.read_tflite(), exported.manifest)
            floating = self.task.evaluate(torch_predict(model), split=SELECTION_SPLIT)
        if sign * (quality.value - floating.value) >= 0:
            return exported, quality
        side = out_dir.with_name(out_dir.name + ".channel")
        with watch("export"):
            other = export_model(model, calibration, side, quantize="int8", name="model", weights="channel", **opts)
        with watch("tflm"):
            other_quality = self._tflm_quality(other.read_tflite(), other.manifest)
        if sign * (other_quality.value - quality.value) <= 0:
            shutil.rmtree(side, ignore_errors=True)
            return exported, quality
        shutil.rmtree(out_dir, ignore_errors=True)
        side.rename(out_dir)
        return ExportResult(out_dir, other.manifest, other.timings), other_quality

    @staticmethod
    def _reuse_export(out_dir: Path) -> Any:
        """An earlier export of the same (task, config) by the same tool versions, if complete.

        export_model renames its output into place only when finished, so a manifest whose hash
        matches the .tflite next to it is a whole export; measuring still happens on the device.
        """
        man_path, tfl_path = out_dir / "manifest.json", out_dir / "model.tflite"
        if not (man_path.is_file() and tfl_path.is_file() and (out_dir / "model_data.c").is_file()):
            return None
        try:
            man = read_manifest(man_path)
        except ManifestError:  # unreadable or from a newer edgeprune: export again
            return None
        digest = hashlib.sha256(tfl_path.read_bytes()).hexdigest()
        if man.tflite_sha256 != digest or man.tools != tool_versions():
            return None
        return ExportResult(out_dir, man.to_dict(), {})

    def _measure(self, tflite: bytes, manifest: dict[str, Any], agreement: np.ndarray,
                 out_dir: Path | None = None) -> Any:
        # Float windows: measure() quantises them with the manifest's input parameters.
        samples = agreement[: max(1, self.agreement_n)]
        kwargs: dict[str, Any] = dict(
            warmup=self.warmup,
            repeats=self.repeats,
            agreement_inputs=samples if self.agreement_n > 0 else None,
            oracle=TflmRunner.oracle(tflite, manifest) if self.agreement_n > 0 else None,
            energy_board=self.energy_board,
            host_energy_runs=self.host_energy_runs,
        )

        def job(device: Any) -> Any:
            device.last_load_s = None
            max_model = device.last_hello.max_model
            if len(tflite) > max_model:
                # The board would refuse it after a long load: not sent, not a fault.
                raise ModelTooBig(f"model {len(tflite):,} B is larger than the board's load buffer "
                                  f"(max_model {max_model:,} B)")
            return measure(device, tflite, manifest, samples[0], **kwargs)

        # Faults (hang, reset, corrupt, wrong build, gone) are detected, retried after a restart and, if they
        # persist, raised as DeviceFault; the target is then left closed so the next candidate starts afresh.
        faults_before = len(self._target.faults)
        try:
            return self._target.run(job)
        except ModelTooBig as exc:
            if out_dir is None or not self.spec.is_qemu:
                raise ModelTooBig(f"{exc}; not sent (a board is measured with such a model only from a "
                                  f"deploy build flashed with `edgeprune flash`)") from exc
            log.info("%s: measuring a deploy build with the model in flash instead", exc)
            return self._measure_deployed(tflite, manifest, samples[0], out_dir, kwargs)
        finally:
            self.recovered_faults = len(self._target.faults) - faults_before

    def _measure_deployed(self, tflite: bytes, manifest: dict[str, Any], x: Any, out_dir: Path,
                          kwargs: dict[str, Any]) -> Any:
        """A model larger than the loading firmware's buffer, measured as it would ship: a deploy build with the
        model compiled into flash, booted in its own emulator (nothing is loaded over the link)."""
        env = self.deploy_env or f"qemu-{self.spec.core}"
        built = build(env, baked_model_dir=out_dir, build_dir=self.deploy_dir)  # BuildError: a RuntimeError
        self._keep_deploy(built, out_dir)
        man = manifest if isinstance(manifest, dict) else {}
        load = LoadResult(arena_used=built.plan.arena if built.plan is not None else 0, macs=0,
                          num_inputs=len(man.get("inputs", [])), num_outputs=len(man.get("outputs", [])))
        with Target(self.spec, link_timeout_s=self.link_timeout_s, elf=built.elf, wire=self.serial,
                    slow_timeout_s=self._target.slow_timeout_s) as deployed:
            measurement = deployed.run(lambda device: measure(BakedDevice(device, load, ModelTooBig), tflite, manifest, x, **kwargs))
        measurement.model["deploy_build"] = built.build_id
        return measurement

    # -- figures ----------------------------------------------------------------------------------
    @staticmethod
    def _proxy_figures(result: EvalResult, compressed: Any) -> None:
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

    def _device_figures(self, result: EvalResult, m: Any, quality: Any, float_model: bool) -> None:
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

    @staticmethod
    def _keep_deploy(built: Any, out_dir: Path) -> None:
        """Keep this candidate's deploy ELF and sizes beside its export (the report reuses them)."""
        shutil.copy2(built.elf, out_dir / "firmware.elf")
        atomic_write_text(out_dir / "deploy.json", json.dumps(deploy_record(built), indent=2))

    def _memory_figures(self, result: EvalResult, prepared: Prepared) -> None:
        """Flash/RAM by one rule per figure (host/search/footprint.py): the deploy library, measured for every
        candidate (the objective); the measurement image beside it, built or estimated per ``deploy_build``."""
        hello = getattr(self._target, "hello", None)
        # An emulated STM32 twin is named for its board; its deploy library is built for the board's core.
        twin = MACHINES.get(str(self.spec.core)) if self.spec.kind == "qemu" else None
        core = (twin.cpu or self.spec.core) if twin is not None else getattr(hello, "core", None)
        out_dir = Path(str(prepared.out_dir))
        library = deploy_library_figures(result.figures, prepared.tflite, prepared.manifest, out_dir, core)
        env = self.deploy_env or (f"qemu-{self.spec.core}" if self.spec.kind == "qemu" else None)
        if env is None:
            return
        if self.deploy_build in ("auto", "always") and self._deploy_broken is None:
            try:
                built = build(env, baked_model_dir=out_dir, build_dir=self.deploy_dir)
            except BuildError as exc:
                if exc.stage in ("limits", "model"):  # this candidate's fault, not the build's
                    result.error = f"BuildError: {exc}"
                    return
                if self.deploy_build == "always":
                    raise
                self._deploy_broken = str(exc).splitlines()[0]
                log.warning("deploy build unavailable (%s); image flash/RAM are estimates", self._deploy_broken)
            else:
                self._keep_deploy(built, out_dir)
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
