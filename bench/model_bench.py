"""Benchmarking a .tflite file on a target: what ``edgeprune bench`` runs.

The model's manifest (given, beside it, or read from the flatbuffer), seeded random inputs, the target
opened from its spec (``bench.targets``), an optional PPK2, then :func:`edgeprune.bench.measure.measure`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.bench.atomic import atomic_write_text
from edgeprune.bench.errors import MeasureError
from edgeprune.bench.firmware_build import deploy_footprint
from edgeprune.bench.inputs import synthetic_inputs
from edgeprune.bench.link import LoadResult
from edgeprune.bench.manifest import Manifest, load_manifest
from edgeprune.bench.measure import Measurement, measure
from edgeprune.bench.power.ppk2 import Ppk2Meter
from edgeprune.bench.qemu import MACHINES
from edgeprune.bench.targets import TargetSpec, open_device


class BakedDevice:
    """A deploy build's device: the model is compiled in, so LOAD is skipped and ``load`` stands in for its reply;
    everything else goes to the device. Used by ``edgeprune bench`` and the search's deploy measurements.

    :param device: the open ``bench.link.Device`` of the deploy build
    :param load: the ``LoadResult`` to report (arena from the build's plan)
    :param error: raised (with the reason) when the board did not report a baked model
    """

    def __init__(self, device: Any, load: Any, error: type[Exception] = MeasureError) -> None:
        self._device = device
        self._load = load
        self._error = error

    def load_model(self, tflite: bytes, timeout_s: float | None = None) -> Any:
        if not self._device.last_hello.baked_model:
            raise self._error("the deploy build did not report a baked model")
        return self._load

    def __getattr__(self, name: str) -> Any:
        return getattr(self._device, name)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def bench_model(model_path: str | Path, device: str, *, manifest_path: str | Path | None = None,
                repeats: int = 20, warmup: int = 2, agreement: int = 4, energy_board: str | None = None,
                host_energy_runs: int = 0, ppk2_port: str | None = None, ppk2_channel: int = 0,
                ppk2_mv: int = 3300, timeout_s: float = 10.0, json_out: str | Path | None = None,
                elf: str | Path | None = None) -> Measurement:
    """Measure a .tflite file on ``device`` (any target spec, see ``bench.targets``).

    Inputs are seeded random int8 (timing does not depend on values); ``agreement`` > 0 compares that
    many further random inputs with the TFLM oracle. ``json_out`` receives ``Measurement.to_dict()``
    (written atomically). ``elf`` overrides the firmware QEMU runs.
    """
    path = Path(model_path)
    try:
        tflite = path.read_bytes()
    except OSError as exc:
        raise MeasureError(f"cannot read model {path}: {exc}") from exc
    manifest = Manifest.from_dict(load_manifest(path, manifest_path, tflite))
    samples = synthetic_inputs(manifest, 1 + agreement, seed=0)
    stream = manifest.stream_input
    agreement_inputs = None
    if agreement:
        dtype = np.dtype(manifest.inputs[stream].dtype)
        agreement_inputs = [np.frombuffer(s[stream], dtype=dtype) for s in samples[1:]]
    meter = None
    if ppk2_port is not None:
        meter = Ppk2Meter(ppk2_port, vdd_mv=ppk2_mv, channel=ppk2_channel).open()
    kwargs: dict[str, Any] = dict(warmup=warmup, repeats=repeats, agreement_inputs=agreement_inputs,
                                  energy_board=energy_board, ppk2=meter, host_energy_runs=host_energy_runs)
    deploy_build = None
    try:
        with open_device(device, timeout_s=timeout_s, elf=elf) as dev:
            too_big = len(tflite) > dev.last_hello.max_model
            if not too_big or elf is not None or not TargetSpec.parse(device).is_qemu:
                result = measure(dev, tflite, manifest, samples[0], **kwargs)
        if too_big and elf is None and TargetSpec.parse(device).is_qemu:
            # Larger than the emulated board's load buffer (an STM32 with 96-128 KiB RAM): measured as it would ship,
            # a deploy build of the target's image with the model in flash.
            result, deploy_build = _measure_deployed(path, tflite, manifest, device, timeout_s, samples[0], kwargs)
    finally:
        if meter is not None:
            meter.close()
    result.model["path"] = str(path)
    if deploy_build is not None:
        result.model["deploy_build"] = deploy_build
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(result.to_dict(), indent=2, default=_json_default, allow_nan=False))
    return result


def _measure_deployed(path: Path, tflite: bytes, manifest: Manifest, device: str, timeout_s: float, x: Any,
                      kwargs: dict[str, Any]) -> tuple[Measurement, str]:
    """Measure ``tflite`` from a deploy build (model compiled into flash) of the emulated ``device``'s image.

    :returns: the measurement and the deploy build's id
    """
    spec = TargetSpec.parse(device)
    built = deploy_footprint(path, MACHINES[spec.core].env, manifest.to_dict())
    load = LoadResult(arena_used=built.plan.arena if built.plan is not None else 0, macs=0,
                      num_inputs=len(manifest.inputs), num_outputs=len(manifest.outputs))
    with open_device(spec, timeout_s=timeout_s, elf=built.elf) as dev:
        return measure(BakedDevice(dev, load), tflite, manifest, x, **kwargs), built.build_id
