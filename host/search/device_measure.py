"""A candidate's export measured on the device: LOAD_MODEL + timed INFER over one link (``bench.targets.Target``,
restarted and retried on a fault), its outputs compared byte for byte with TFLM's on a sample. A model larger than
the board's load buffer is not sent: on QEMU it is measured from a deploy build with the model in flash instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.bench.firmware_build import build
from edgeprune.bench.link import LoadResult
from edgeprune.bench.measure import measure
from edgeprune.bench.model_bench import BakedDevice
from edgeprune.bench.targets import Target, TargetSpec
from edgeprune.bench.tflm import TflmRunner
from edgeprune.host.search.result_figures import keep_deploy

log = logging.getLogger(__name__)


class ModelTooBig(RuntimeError):
    """A candidate's model is larger than the board's load buffer (HELLO's ``max_model``)."""


class DeviceMeasurer:
    """Measures exports on one ``Target`` (one device connection serves every candidate).

    Parameters
    ----------
    target:
        The open-on-demand ``bench.targets.Target``.
    spec:
        Its ``TargetSpec``.
    repeats, warmup:
        Timed and discarded inferences per candidate.
    agreement_n:
        Inputs run on the device and in TFLM (0: no comparison).
    energy_board:
        Energy-table row for the model energy (default: the core's row).
    host_energy_runs:
        TFLite inferences timed under CodeCarbon per candidate (0 = no host energy).
    deploy_env, deploy_dir:
        PlatformIO env and build dir of the deploy build that measures a model too big to load.
    link_timeout_s, wire:
        The link's request timeout and QEMU wire, for the deploy build's own emulator.
    """

    def __init__(self, target: Target, spec: TargetSpec, *, repeats: int, warmup: int, agreement_n: int,
                 energy_board: str | None, host_energy_runs: int, deploy_env: str | None, deploy_dir: Path,
                 link_timeout_s: float, wire: str) -> None:
        self.target = target
        self.spec = spec
        self.repeats = repeats
        self.warmup = warmup
        self.agreement_n = agreement_n
        self.energy_board = energy_board
        self.host_energy_runs = host_energy_runs
        self.deploy_env = deploy_env
        self.deploy_dir = deploy_dir
        self.link_timeout_s = link_timeout_s
        self.wire = wire
        #: Faults the last measurement recovered from (restart + retry succeeded).
        self.recovered_faults = 0

    def measure(self, tflite: bytes, manifest: dict[str, Any], agreement: np.ndarray,
                out_dir: Path | None = None) -> Any:
        """The ``bench.measure`` ``Measurement`` of ``tflite`` on the device (float ``agreement`` windows; the first
        is the timed input). ``out_dir``: the export's folder, for a deploy build when the model is too big.

        :raises ModelTooBig: larger than the board's load buffer and not measurable from a deploy build
        :raises DeviceFault: a fault that persisted after a restart (the target is left closed)
        """
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
        faults_before = len(self.target.faults)
        try:
            return self.target.run(job)
        except ModelTooBig as exc:
            if out_dir is None or not self.spec.is_qemu:
                raise ModelTooBig(f"{exc}; not sent (a board is measured with such a model only from a "
                                  f"deploy build flashed with `edgeprune flash`)") from exc
            log.info("%s: measuring a deploy build with the model in flash instead", exc)
            return self._measure_deployed(tflite, manifest, samples[0], out_dir, kwargs)
        finally:
            self.recovered_faults = len(self.target.faults) - faults_before

    def _measure_deployed(self, tflite: bytes, manifest: dict[str, Any], x: Any, out_dir: Path,
                          kwargs: dict[str, Any]) -> Any:
        """A model larger than the loading firmware's buffer, measured as it would ship: a deploy build with the
        model compiled into flash, booted in its own emulator (nothing is loaded over the link)."""
        env = self.deploy_env or f"qemu-{self.spec.core}"
        built = build(env, baked_model_dir=out_dir, build_dir=self.deploy_dir)  # BuildError: a RuntimeError
        keep_deploy(built, out_dir)
        man = manifest if isinstance(manifest, dict) else {}
        load = LoadResult(arena_used=built.plan.arena if built.plan is not None else 0, macs=0,
                          num_inputs=len(man.get("inputs", [])), num_outputs=len(man.get("outputs", [])))
        with Target(self.spec, link_timeout_s=self.link_timeout_s, elf=built.elf, wire=self.wire,
                    slow_timeout_s=self.target.slow_timeout_s) as deployed:
            measurement = deployed.run(lambda device: measure(BakedDevice(device, load, ModelTooBig), tflite,
                                                              manifest, x, **kwargs))
        measurement.model["deploy_build"] = built.build_id
        return measurement
