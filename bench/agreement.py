"""Oracle agreement: the device's outputs compared byte for byte with TFLM's on the same inputs.

int8 kernels are integer arithmetic, so any difference is a bug in the runtime (or the oracle); the
task metric can also be computed from the *device* outputs, to show the quality the board delivers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeprune.bench.errors import MeasureError
from edgeprune.bench.figures import Figure
from edgeprune.bench.inputs import INT_IO, encode_input
from edgeprune.bench.manifest import Manifest, ManifestLike, bare_manifest
from edgeprune.bench.tflm import TflmRunner


@dataclass(frozen=True)
class Agreement:
    """On-device outputs compared with the TFLM oracle.

    :param n: inputs compared
    :param byte_equal_rate: fraction of inputs whose output bytes equal the oracle's (source = device's)
    :param max_abs_diff: largest |device − oracle| over all output elements, in the output's own
        units (quantised steps for int8 outputs)
    :param metric: the task metric computed from the *device* outputs, when a metric was given
    :param mismatches: indices of inputs whose outputs differ
    """

    n: int
    byte_equal_rate: Figure
    max_abs_diff: float
    metric: Figure | None = None
    mismatches: list[int] = field(default_factory=list)


def check_agreement(device: Any, tflite_bytes: bytes, manifest: ManifestLike | None, samples: Any,
                    labels: Any = None, metric: Callable[..., float] | None = None, metric_name: str = "metric",
                    oracle: Any = None, source: str = "board") -> Agreement:
    """Run each of ``samples`` on ``device`` (model loaded, sequence set) and in the oracle; compare.

    :param samples: a batch of stream inputs (float arrays are encoded with the manifest, int8 sent as is)
    :param labels: passed to ``metric`` with the device outputs
    :param metric: ``metric(predictions, labels) -> float`` on the device outputs dequantised to float
    :param oracle: anything with ``run(x) -> output`` (default: ``TflmRunner.oracle`` of the model)
    :param source: the device's figure source (``board`` or ``qemu``)
    """
    man = Manifest.from_dict(manifest if manifest is not None else bare_manifest(tflite_bytes))
    if oracle is None:
        oracle = TflmRunner.oracle(tflite_bytes, man)
    stream, out_idx = man.stream_input, man.output_index
    in_spec = man.inputs[stream]
    out_spec = man.outputs[out_idx]
    out_dtype = np.dtype(out_spec.dtype)
    equal = 0
    max_diff = 0.0
    mismatches: list[int] = []
    device_rows: list[np.ndarray] = []
    for i, sample in enumerate(samples):
        data = encode_input(sample, man, stream)
        device.set_input(stream, data)
        res = device.infer(1)
        if out_idx >= len(res.outputs):
            raise MeasureError(f"device returned {len(res.outputs)} outputs; manifest reads output {out_idx}")
        dev = np.frombuffer(bytes(res.outputs[out_idx]), dtype=out_dtype)
        x = np.frombuffer(data, dtype=np.dtype(in_spec.dtype))
        ref = np.asarray(oracle.run(x)).astype(out_dtype).reshape(-1)
        if dev.tobytes() == ref.tobytes():
            equal += 1
        else:
            mismatches.append(i)
            diff = (float(np.max(np.abs(dev.astype(np.float64) - ref.astype(np.float64))))
                    if dev.size == ref.size else math.inf)
            max_diff = max(max_diff, diff)
        device_rows.append(dev)
    n = len(device_rows)
    rate = Figure(equal / n, "fraction", source,
                  f"{equal}/{n} test inputs with device output bytes equal to the TFLM oracle")
    metric_fig = None
    if metric is not None:
        preds = np.stack(device_rows).astype(np.float32)
        if out_spec.dtype in INT_IO:  # a 16x8 model's int16 output is quantised like an int8 one
            preds = (preds - out_spec.zero_point) * np.float32(out_spec.scale)
        value = float(metric(preds, labels))
        metric_fig = Figure(value, metric_name, source,
                            f"{metric_name} computed from device outputs on {n} test inputs")
    return Agreement(n, rate, max_diff, metric_fig, mismatches)
