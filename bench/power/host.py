"""Host energy: CodeCarbon measuring the host computer running the same model.

This is what the published study reported as "energy": the host CPU running the TFLite interpreter,
not the microcontroller. Figures from here have source ``host`` and are labelled "host energy"; they
are never compared with or added to ``board`` or ``model`` energy.

CodeCarbon reads RAPL counters when the host exposes them; otherwise it estimates from the CPU's TDP
and load. Which one happened is recorded in the figure's detail.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeprune.bench.figures import Figure
from edgeprune.bench.power import PowerMeterError

log = logging.getLogger(__name__)

_RAPL = "/sys/class/powercap/intel-rapl"
KWH_TO_UJ = 3.6e12


@dataclass(frozen=True)
class HostEnergy:
    """Result of a CodeCarbon run.

    :param per_inference: energy per inference (µJ, source ``host``)
    :param total: total energy over the run (µJ, source ``host``)
    :param duration_s: wall-clock seconds of the tracked run
    :param inferences: how many inferences ran
    """

    per_inference: Figure
    total: Figure
    duration_s: float
    inferences: int


def _rapl_readable() -> bool:
    try:
        return any(os.access(os.path.join(_RAPL, d, "energy_uj"), os.R_OK) for d in os.listdir(_RAPL))
    except OSError:
        return False


def host_energy(run_once: Callable[[], Any], n: int, *, country_iso_code: str = "USA",
                label: str = "model", min_duration_s: float = 1.0) -> HostEnergy:
    """Track ``n`` calls of ``run_once`` with CodeCarbon's ``OfflineEmissionsTracker`` (no network).

    The loop is repeated until at least ``min_duration_s`` has passed, because CodeCarbon samples
    power about once per second; the per-inference energy divides by the calls actually made.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    try:
        from codecarbon import OfflineEmissionsTracker
    except ImportError as exc:
        raise PowerMeterError("codecarbon is not installed: pip install codecarbon") from exc

    # CodeCarbon logs TDP-fallback warnings at WARNING; they are recorded in the detail instead.
    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    tracker = OfflineEmissionsTracker(
        country_iso_code=country_iso_code,
        output_methods=[],  # nothing written to disk; the result is read from the tracker
        log_level="error",
        measure_power_secs=1,
        tracking_mode="process",
        project_name=f"edgeprune-{label}",
    )
    calls = 0
    tracker.start()
    t0 = time.perf_counter()
    try:
        while calls < n or time.perf_counter() - t0 < min_duration_s:
            run_once()
            calls += 1
    finally:
        tracker.stop()
    duration = time.perf_counter() - t0
    data = tracker.final_emissions_data
    if data is None or not data.energy_consumed or data.energy_consumed <= 0:
        raise PowerMeterError("CodeCarbon reported no energy; run longer (min_duration_s) or check its logs")
    total_uj = float(data.energy_consumed) * KWH_TO_UJ
    method = "RAPL counters" if _rapl_readable() else "TDP/CPU-load estimate (no RAPL)"
    detail = (f"host energy: CodeCarbon ({method}), {calls} host inferences of {label} on "
              f"{data.cpu_model}, CPU+RAM, process mode")
    extra = {"cpu_model": data.cpu_model, "cpu_energy_kwh": float(data.cpu_energy),
             "ram_energy_kwh": float(data.ram_energy), "duration_s": duration, "calls": calls}
    return HostEnergy(
        per_inference=Figure(total_uj / calls, "uJ", "host", detail, extra=extra),
        total=Figure(total_uj, "uJ", "host", detail, extra=extra),
        duration_s=duration,
        inferences=calls,
    )


def tflite_runner(tflite_bytes: bytes, inputs: np.ndarray | None = None) -> Callable[[], Any]:
    """A zero-argument callable running one inference of ``tflite_bytes`` in TensorFlow Lite on the host.

    :raises PowerMeterError: TensorFlow Lite cannot run the model (TFLM can run ops TFLite's host kernels refuse,
        e.g. the int8 -> int16 QUANTIZE at the edge of a 16x8 layer)
    """
    import tensorflow as tf

    try:
        with warnings.catch_warnings():
            # tf.lite.Interpreter's deprecation notice; it is still the host interpreter TF ships.
            warnings.simplefilter("ignore", UserWarning)
            interp = tf.lite.Interpreter(model_content=tflite_bytes, num_threads=1)
        interp.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PowerMeterError(f"TensorFlow Lite on the host cannot run this model ({first})") from exc
    inp = interp.get_input_details()[0]
    if inputs is None:
        rng = np.random.default_rng(0)
        info = np.iinfo(inp["dtype"]) if np.issubdtype(inp["dtype"], np.integer) else None
        if info is not None:
            x = rng.integers(info.min, info.max + 1, size=inp["shape"], dtype=inp["dtype"])
        else:
            x = rng.standard_normal(inp["shape"]).astype(inp["dtype"])
    else:
        x = np.asarray(inputs, dtype=inp["dtype"]).reshape(inp["shape"])
    interp.set_tensor(inp["index"], x)

    def run() -> None:
        interp.invoke()

    return run


def host_energy_tflite(tflite_bytes: bytes, n: int = 200, *, steps: int = 1, **kwargs: Any) -> HostEnergy:
    """CodeCarbon host energy of ``n`` TFLite-interpreter inferences of the model.

    ``steps``: invocations per inference — a streaming recurrent cell runs ``T`` times per window on
    the device, so the host must too, or its per-inference energy would be ``T`` times too small.
    """
    if steps < 1:
        raise ValueError("steps must be at least 1")
    step = tflite_runner(tflite_bytes)

    def inference() -> None:
        for _ in range(steps):
            step()

    return host_energy(inference, n, **kwargs)
