"""``HardwareEvaluator``: one candidate config, end to end, measured on the device.

compress (+ fine-tune) (``candidate``) → export (int8 .tflite, TFLM-verified, C array) and quality from the TFLM
interpreter on the task's validation split (``candidate_export``; selection never reads the test split) → LOAD_MODEL +
timed INFER on the device, checked byte for byte against TFLM on a sample (``device_measure``) → flash/RAM of the
deploy library and the measurement image, energy (cited per-cycle model, CodeCarbon on the host) into the
``EvalResult`` (``result_figures``). One device connection (one QEMU instance) serves every candidate; a hung
emulator is restarted once and the candidate retried.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.bench.errors import ExportError
from edgeprune.bench.link import LinkError
from edgeprune.bench.paths import cache_dir
from edgeprune.bench.targets import Target, TargetSpec
from edgeprune.host.search.ancestors import ancestors_of
from edgeprune.host.search.candidate import Prepared, compress_candidate, record_stop
from edgeprune.host.search.candidate_export import (
    SELECTION_SPLIT,
    export_candidate,
    reuse_export,
    tflm_quality,
)
from edgeprune.host.search.device_measure import DeviceMeasurer
from edgeprune.host.search.fidelity import rung_hook
from edgeprune.host.search.footprint import rule_fingerprint
from edgeprune.host.search.result_figures import MemoryFigures, device_figures
from edgeprune.host.search.types import (
    MODEL_BYTES,
    QUALITY,
    WEIGHT_BYTES,
    EvalResult,
    EvaluatorIdentity,
    FigureRecord,
)
from edgeprune.host.tasks.cache import digest, source_fingerprint


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
    warm_start:
        Fine-tune a candidate from the closest already-fine-tuned candidate of the same task it further
        compresses, kept in ``artifacts_dir`` (``host/search/ancestors.py``), instead of from the baseline. Measured to
        reach the same or better validation quality in fewer steps, but off by default (``SearchOptions.warm_start``
        says why: test drop; BENCHMARKS.md, issue 28, "Warm starts").
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
        warm_start: bool = False,
    ) -> None:
        if deploy_build not in ("baseline", "auto", "always", "never"):
            raise ValueError(f"deploy_build must be baseline, auto, always or never, got {deploy_build!r}")
        self.task = task
        self.spec = target if isinstance(target, TargetSpec) else TargetSpec.parse(target)
        self.agreement_n = int(agreement_n)
        self.calibration_n = int(calibration_n)
        self.pidfile = Path(pidfile) if pidfile is not None else None
        if artifacts_dir is None:
            artifacts_dir = cache_dir() / "artifacts"
        self.artifacts_dir = Path(artifacts_dir)
        deploy_dir = Path(deploy_dir) if deploy_dir is not None else self.artifacts_dir / "deploy-build"
        # Opening, HELLO, restarts and stale-emulator clean-up belong to the target (bench.targets).
        self._target = Target(self.spec, link_timeout_s=float(link_timeout_s), elf=elf, wire=serial,
                              pidfile=self.pidfile, slow_timeout_s=slow_timeout_s)
        self.measurer = DeviceMeasurer(
            self._target, self.spec, repeats=int(repeats), warmup=int(warmup), agreement_n=self.agreement_n,
            energy_board=energy_board, host_energy_runs=int(host_energy_runs) if host_energy else 0,
            deploy_env=deploy_env, deploy_dir=deploy_dir, link_timeout_s=float(link_timeout_s), wire=serial)
        self.memory = MemoryFigures(self.spec, deploy_build, deploy_env, deploy_dir, elf)
        self.warm_start = bool(warm_start)
        self._task_hash: str | None = None
        self._calibration: np.ndarray | None = None
        self._agreement: np.ndarray | None = None

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

    @property
    def recovered_faults(self) -> int:
        """Faults the last measurement recovered from (restart + retry succeeded)."""
        return self.measurer.recovered_faults

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
    def inputs(self) -> tuple[np.ndarray, np.ndarray]:
        """The calibration inputs (training split) and the device-vs-TFLM agreement inputs (validation split)."""
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
        result = EvalResult(config.to_json(), config.digest())
        ident = self.identity()
        prepared = Prepared(config, result)
        stops: list[Any] = []
        hook = {} if rule is None else rung_hook(self.task, self.inputs()[0], config, rule, result, stops)
        ancestors = ancestors_of(self.artifacts_dir, ident.task_hash) if self.warm_start else None
        compressed = compress_candidate(self.task, config, result, hook, ancestors)
        if compressed is None:
            return prepared
        if stops:
            prepared.stopped = stops[0]
            record_stop(result, self.task.metric, stops[0])
            return prepared
        calibration, _ = self.inputs()
        out_dir = self.artifacts_dir / ident.task_hash[:16] / result.digest[:16]
        try:
            exported, quality = export_candidate(self.task, compressed, config.quantize, calibration, out_dir,
                                                 result.timings)
        except ExportError as exc:
            result.error = f"ExportError: {exc}"
            return prepared
        result.artifacts["dir"] = str(out_dir)
        prepared.tflite = exported.read_tflite()
        prepared.manifest = exported.manifest
        prepared.exported = exported
        prepared.out_dir = out_dir
        prepared.quality = quality
        result.figures[MODEL_BYTES] = FigureRecord(len(prepared.tflite), "bytes", "build", ".tflite flatbuffer size")
        if exported.manifest.get("weight_bytes") is not None:
            result.figures[WEIGHT_BYTES] = FigureRecord(
                float(exported.manifest["weight_bytes"]), "bytes", "build",
                "weights in the .tflite at their stored widths (int4 half a byte, float32 4 B)")
        result.figures[QUALITY] = FigureRecord(
            float(quality.value), quality.metric, "tflm",
            f"{quality.metric} on the validation split, TFLM interpreter (not yet run on the device)",
        )
        if quality.samples:
            result.samples[SELECTION_SPLIT] = list(quality.samples)
        return prepared

    def measure_prepared(self, prepared: Prepared) -> EvalResult:
        """The device half: load, time, compare with TFLM, then flash/RAM of the deploy build."""
        result = prepared.result
        _, agreement = self.inputs()
        started = time.perf_counter()
        try:
            measurement = self.measurer.measure(prepared.tflite, prepared.manifest, agreement, prepared.out_dir)
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
        device_figures(result, measurement, prepared.quality, prepared.config.quantize == "float32")
        if result.error is None and prepared.out_dir is not None:
            started = time.perf_counter()
            self.memory.record(result, prepared, getattr(self._target, "hello", None))
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
        exported = reuse_export(out_dir) if result.artifacts.get("dir") else None
        if exported is None:
            raise FileNotFoundError(f"the export of {result.digest[:10]} is gone from {out_dir}")
        return tflm_quality(self.task, exported.read_tflite(), exported.manifest, split)
