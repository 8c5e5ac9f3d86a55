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
from edgeprune.bench.inputs import synthetic_inputs
from edgeprune.bench.manifest import Manifest
from edgeprune.bench.manifests import load_manifest
from edgeprune.bench.measure import Measurement, measure
from edgeprune.bench.power.ppk2 import Ppk2Meter
from edgeprune.bench.targets import open_device


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def bench_model(model_path: str | Path, device: str, *, manifest_path: str | Path | None = None,
                repeats: int = 20, warmup: int = 2, agreement: int = 0, energy_board: str | None = None,
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
    try:
        with open_device(device, timeout_s=timeout_s, elf=elf) as dev:
            result = measure(dev, tflite, manifest, samples[0], warmup=warmup, repeats=repeats,
                             agreement_inputs=agreement_inputs, energy_board=energy_board, ppk2=meter,
                             host_energy_runs=host_energy_runs)
    finally:
        if meter is not None:
            meter.close()
    result.model["path"] = str(path)
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(result.to_dict(), indent=2, default=_json_default, allow_nan=False))
    return result
