"""Measuring one model on one device, every number tagged with its source.

The path: HELLO (what is this board, which counter, which clock) → LOAD_MODEL (the device checks the
SHA-256; no reflash per candidate) → SET_SEQUENCE from the manifest's ``sequence`` block → SET_INPUT
→ INFER ``warmup`` runs (discarded) → INFER ``repeats`` runs → statistics → latency, energy, power
→ on-device output agreement with the TFLM oracle on a subset of test inputs.

Statistics (Tukey outlier removal, median, IQR) are in :mod:`edgeprune.bench.stats`, input encoding in
:mod:`edgeprune.bench.inputs`, oracle agreement in :mod:`edgeprune.bench.agreement`, and benchmarking a
.tflite file (``edgeprune bench``) in :mod:`edgeprune.bench.model_bench`; import each name from its own
module.

Counts and clocks. On a real board the counter is the DWT cycle counter (source ``board``) and
latency = cycles / ``hello().clock_hz``. Under QEMU the count is *instructions* under ``-icount``
(source ``qemu``) — a lower bound on cycles — and the emulator's clock means nothing for latency, so
the latency is an *estimate* at a target board's clock (default: the energy table's board for that
core), labelled as such.

``Figure`` lives in :mod:`edgeprune.bench.figures`.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeprune.bench import protocol as P
from edgeprune.bench.agreement import Agreement, check_agreement
from edgeprune.bench.energy import EnergyTable, EnergyTableError, load_table, model_energy
from edgeprune.bench.errors import MeasureError
from edgeprune.bench.figures import Figure, absent
from edgeprune.bench.inputs import set_inputs, typed
from edgeprune.bench.link import DeviceError
from edgeprune.bench.manifest import Manifest, ManifestLike
from edgeprune.bench.power import PowerMeterError
from edgeprune.bench.power.host import host_energy_tflite
from edgeprune.bench.power.ina import power_figure
from edgeprune.bench.stats import TUKEY_K, CountStats, summarize_counts

__all__ = ["Measurement", "configure_sequence", "measure"]

log = logging.getLogger(__name__)

MAX_RUNS_PER_INFER = P.MAX_RUNS


@dataclass
class Measurement:
    """Everything measured for one model on one device.

    :param target: what ran it: ``board``, ``core``, ``counter``, ``clock_hz``, ``build_id``,
        ``resolution`` (counts per counter tick, e.g. 40 instructions per SysTick tick on mps2) (and
        ``recovered_resets`` when the device reset mid-measurement and the runs were redone)
    :param model: ``sha256``, ``bytes``, and what LOAD_MODEL reported (``macs``, ``arena_used``)
    :param stats: per-run count statistics (in ``count_unit``)
    :param count_unit: ``"cycles"`` (board) or ``"instructions"`` (qemu)
    :param figures: named figures: ``count``, ``count_iqr``, ``count_min``, ``latency``,
        ``energy_model``, ``power_board``, ``energy_board_ina``, ``energy_board_ppk2``, ``energy_host``,
        ``per_mac`` (each with its own source; absent ones carry NaN and the reason)
    :param counts: the raw per-run counts
    :param agreement: on-device agreement with the oracle (``None`` when not requested)
    :param warmup: warm-up runs discarded
    """

    target: dict[str, Any]
    model: dict[str, Any]
    stats: CountStats
    count_unit: str
    figures: dict[str, Figure]
    counts: list[int]
    agreement: Agreement | None = None
    warmup: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "target": dict(self.target),
            "model": dict(self.model),
            "count_unit": self.count_unit,
            "stats": {**self.stats.__dict__, "fences": [f if math.isfinite(f) else None for f in self.stats.fences], "rule": f"Tukey k={TUKEY_K}"},
            "counts": list(self.counts),
            "warmup": self.warmup,
            "figures": {k: v.to_dict() for k, v in self.figures.items()},
        }
        if self.agreement is not None:
            a = self.agreement
            out["agreement"] = {
                "n": a.n,
                "byte_equal_rate": a.byte_equal_rate.to_dict(),
                "max_abs_diff": a.max_abs_diff if math.isfinite(a.max_abs_diff) else None,
                "metric": a.metric.to_dict() if a.metric is not None else None,
                "mismatches": list(a.mismatches),
            }
        return out


def _counter_kind(hello: Any) -> str:
    kind = getattr(hello, "counter", "dwt")
    if isinstance(kind, int):
        return "icount" if kind == 1 else "dwt"
    return str(kind)


def _core_name(hello: Any) -> str:
    core = getattr(hello, "core", "")
    if isinstance(core, int):
        return {0: "m0", 1: "m0plus", 3: "m3", 4: "m4", 7: "m7", 33: "m33"}.get(core, f"core{core}")
    return str(core).lower().removeprefix("cortex-")


def _infer_counts(device: Any, runs: int) -> tuple[list[int], Any]:
    counts: list[int] = []
    last = None
    left = runs
    while left > 0:
        n = min(left, MAX_RUNS_PER_INFER)
        last = device.infer(n, fetch_outputs=False)
        got = list(last.counts)
        if len(got) != n:
            raise MeasureError(f"device returned {len(got)} counts for INFER {n}")
        counts += [int(c) for c in got]
        left -= n
    return counts, last


def configure_sequence(device: Any, manifest: Manifest | None) -> int:
    """Put ``device`` in the manifest's sequence mode (one plain step without one); the steps per inference."""
    seq = manifest.sequence if manifest is not None else None
    if seq is None:
        device.set_sequence(1, 0, [])
        return 1
    device.set_sequence(seq.steps, seq.stream_input, list(seq.recurrent))
    return seq.steps


def _latency(stats: CountStats, counter: str, clock_hz: float, row: Any, core: str) -> Figure:
    if counter == "dwt":
        return Figure(stats.median / clock_hz * 1e3, "ms", "board",
                      f"median DWT cycles / {clock_hz / 1e6:g} MHz core clock")
    if row is None:
        return absent("ms", "qemu", f"no target board clock known for core {core}; only instructions are measured")
    return Figure(
        stats.median / row.clock_hz * 1e3,
        "ms",
        "qemu",
        f"estimate at {row.clock_hz / 1e6:g} MHz ({row.mcu}) from the instruction count: a lower bound, "
        "real cores need more than one cycle for loads and taken branches",
        extra={"clock_hz": row.clock_hz, "board": row.board},
    )


def _power_figures(device: Any, latency_ms: Figure) -> tuple[Figure, Figure]:
    """INA219/INA226 power from the device's POWER command, and power × latency (both ``board``)."""
    try:
        sample = device.power()
    except (AttributeError, NotImplementedError) as exc:
        why = f"device does not support POWER ({exc})"
        return absent("mW", "board", why), absent("uJ", "board", why)
    if sample is None:
        return absent("mW", "board", "no on-board power meter"), absent("uJ", "board", "no on-board power meter")
    power = power_figure(sample)
    if latency_ms.source != "board" or not latency_ms.known:
        return power, absent("uJ", "board", "latency is not a board measurement; power x time not formed")
    energy = Figure(power.value * latency_ms.value, "uJ", "board",
                    f"INA power {power.value:.3g} mW x median latency {latency_ms.value:.4g} ms")
    return power, energy


def measure(
    device: Any,
    tflite_bytes: bytes,
    manifest: ManifestLike | None,
    inputs: Any,
    *,
    warmup: int = 2,
    repeats: int = 20,
    agreement_inputs: Any = None,
    agreement_labels: Any = None,
    metric: Callable[[np.ndarray, Any], float] | None = None,
    metric_name: str = "metric",
    oracle: Any = None,
    macs: int | None = None,
    energy_board: str | None = None,
    energy_table: EnergyTable | None = None,
    ppk2: Any = None,
    host_energy_runs: int = 0,
) -> Measurement:
    """Measure ``tflite_bytes`` on ``device``; see the module doc for the path and the statistics.

    :param device: an open ``bench.link.Device`` (or anything with its methods)
    :param tflite_bytes: the int8 model
    :param manifest: the export manifest (its ``sequence`` block configures a streaming GRU);
        ``None`` for a plain single-step model
    :param inputs: the data to time with: the stream input alone (bytes, int8 array, or float array
        quantised with the manifest's parameters; a sequence model takes all ``steps`` steps), or a
        mapping input index → data
    :param warmup: runs executed and discarded first
    :param repeats: runs measured (split into INFER calls of at most 128)
    :param agreement_inputs: test samples (a batch: float arrays are quantised with the manifest,
        int8 arrays sent as is) run on the device and in the TFLM oracle; ``None`` skips agreement
    :param agreement_labels: labels passed to ``metric`` with the device outputs
    :param metric: ``metric(predictions, labels) -> float`` where predictions are the *device*
        outputs dequantised to float, ``[B, C]``
    :param metric_name: name of the metric (e.g. ``"accuracy"``)
    :param oracle: an object with ``run(x_int8) -> output`` like ``bench.tflm.TflmRunner``
        (built from the manifest when agreement is asked and none is given)
    :param macs: MACs per inference, all steps (for counts per MAC); default: what LOAD_MODEL reports
        per invoke × the sequence's steps
    :param energy_board: energy-table row for the model energy (default: the core's default row)
    :param energy_table: an already loaded table
    :param ppk2: an open ``Ppk2Meter``; when given the timed runs are windowed by its GPIO channel
    :param host_energy_runs: when > 0, CodeCarbon host energy of that many TFLite inferences
    """
    if repeats < 1 or warmup < 0:
        raise MeasureError("repeats must be >= 1 and warmup >= 0")
    man = typed(manifest)
    steps = man.steps if man is not None else 1
    hello = device.hello()
    counter = _counter_kind(hello)
    core = _core_name(hello)
    clock_hz = float(getattr(hello, "clock_hz", 0) or 0)
    source = "board" if counter == "dwt" else "qemu"
    unit = "cycles" if counter == "dwt" else "instructions"
    target: dict[str, Any] = {
        "board": str(getattr(hello, "board", "")),
        "core": core,
        "counter": counter,
        "clock_hz": clock_hz,
        "build_id": str(getattr(hello, "build_id", "")),
        "resolution": float(getattr(hello, "counter_scale", 1) or 1),
    }
    if counter == "dwt" and clock_hz <= 0:
        raise MeasureError("device reports a DWT counter but no clock; cannot convert cycles to time")

    def prepare() -> Any:
        info = device.load_model(tflite_bytes)
        configure_sequence(device, man)
        set_inputs(device, inputs, man)
        return info

    load_info = prepare()
    model: dict[str, Any] = {"sha256": hashlib.sha256(tflite_bytes).hexdigest(), "bytes": len(tflite_bytes)}
    for key in ("macs", "arena_used", "num_inputs", "num_outputs"):
        if load_info is not None and hasattr(load_info, key):
            model[key] = int(getattr(load_info, key))
    model["steps"] = steps

    if warmup:
        _infer_counts(device, warmup)

    def timed_with_recovery() -> tuple[list[int], Any]:
        # A board that reset (watchdog, brown-out) has lost its model: reload once and start over, so
        # the counts never mix runs from before and after the reset.
        try:
            return _infer_counts(device, repeats)
        except DeviceError as exc:
            if exc.status != P.ST_NO_MODEL:
                raise
            log.warning("device lost its model (reset during measurement); reloading and re-measuring")
            target["recovered_resets"] = int(target.get("recovered_resets", 0)) + 1
            prepare()
            if warmup:
                _infer_counts(device, warmup)
            return _infer_counts(device, repeats)

    ppk2_fig: Figure
    if ppk2 is not None:
        ppk2_fig, (counts, _) = ppk2.energy_during(timed_with_recovery)
    else:
        counts, _ = timed_with_recovery()
        ppk2_fig = absent("uJ", "board", "no PPK2 attached")
    stats = summarize_counts(counts, resolution=target["resolution"])

    table = energy_table if energy_table is not None else load_table()
    try:
        row = table.row(board=energy_board, core=None if energy_board else core)
    except EnergyTableError as exc:
        log.info("no energy-table row: %s", exc)
        row = None
    what = "DWT cycles" if counter == "dwt" else "instructions under QEMU -icount (lower bound on cycles)"
    figures: dict[str, Figure] = {
        "count": Figure(stats.median, unit, source, f"median of {stats.n} runs, {stats.outliers} Tukey outliers "
                        f"removed; {what}; resolution {target['resolution']:g} {unit}"),
        "count_iqr": Figure(stats.iqr, unit, source, "interquartile range of kept runs"),
        "count_min": Figure(stats.min, unit, source, "minimum of kept runs"),
    }
    latency = _latency(stats, counter, clock_hz, row, core)
    figures["latency"] = latency
    # LOAD_END reports MACs per invoke; a streaming model invokes once per step.
    mac_count = int(macs) if macs is not None else int(model.get("macs", 0)) * int(model["steps"])
    if mac_count:
        model["macs_per_inference"] = mac_count
        figures["per_mac"] = Figure(stats.median / mac_count, f"{unit}/MAC", source,
                                    f"median {unit} / {mac_count} MACs per inference")
    figures["energy_model"] = (model_energy(stats.median, counter, row) if row is not None
                               else absent("uJ", "model", f"no cited energy figure for core {core}"))
    power, ina_energy = _power_figures(device, latency)
    figures["power_board"] = power
    figures["energy_board_ina"] = ina_energy
    figures["energy_board_ppk2"] = ppk2_fig
    if host_energy_runs > 0:
        try:
            figures["energy_host"] = host_energy_tflite(tflite_bytes, host_energy_runs, steps=steps).per_inference
        except PowerMeterError as exc:  # a host-side figure: the device's measurement stands without it
            log.warning("host energy not measured: %s", exc)
            figures["energy_host"] = absent("uJ", "host", f"host energy not measured: {exc}")
    else:
        figures["energy_host"] = absent("uJ", "host", "host energy not requested")

    agreement = None
    if agreement_inputs is not None and len(agreement_inputs) > 0:
        agreement = check_agreement(device, tflite_bytes, man, agreement_inputs, agreement_labels,
                                    metric, metric_name, oracle, source)
        # Agreement left the last agreement sample as the device input; restore the timing input.
        set_inputs(device, inputs, man)
    return Measurement(target, model, stats, unit, figures, counts, agreement, warmup)
