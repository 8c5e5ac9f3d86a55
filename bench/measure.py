"""Measuring one model on one device, every number tagged with its source.

The path: HELLO (what is this board, which counter, which clock) → LOAD_MODEL (the device checks the
SHA-256; no reflash per candidate) → SET_SEQUENCE from the manifest's ``sequence`` block → SET_INPUT
→ INFER ``warmup`` runs (discarded) → INFER ``repeats`` runs → statistics → latency, energy, power
→ on-device output agreement with the TFLM oracle on a subset of test inputs.

Statistics. The per-run counts are summarised by their median, interquartile range (IQR) and minimum
after removing outliers by Tukey's fences: a run is an outlier when it lies below Q1 − 1.5·IQR or
above Q3 + 1.5·IQR of all runs (quartiles by linear interpolation), each fence widened by one counter
step (the device's ``counter_scale``, e.g. 40 instructions per SysTick tick under QEMU) so a run one
tick off identical runs counts as quantisation, not as an outlier. The number removed is reported;
with fewer than four runs nothing is removed.

Counts and clocks. On a real board the counter is the DWT cycle counter (source ``board``) and
latency = cycles / ``hello().clock_hz``. Under QEMU the count is *instructions* under ``-icount``
(source ``qemu``) — a lower bound on cycles — and the emulator's clock means nothing for latency, so
the latency is an *estimate* at a target board's clock (default: the energy table's board for that
core), labelled as such.

``Figure`` lives in :mod:`edgeprune.bench.figures` and is re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.bench import protocol as P
from edgeprune.bench.atomic import atomic_write_text
from edgeprune.bench.energy import EnergyTable, EnergyTableError, load_table, model_energy
from edgeprune.bench.figures import Figure, absent
from edgeprune.bench.link import DeviceError

__all__ = [
    "Agreement",
    "CountStats",
    "Figure",
    "Measurement",
    "MeasureError",
    "bench_model",
    "measure",
    "summarize_counts",
    "tukey_filter",
]

log = logging.getLogger(__name__)

MAX_RUNS_PER_INFER = P.MAX_RUNS
TUKEY_K = 1.5


class MeasureError(RuntimeError):
    """A measurement could not be made (bad inputs, manifest/device mismatch); the message says why."""


@dataclass(frozen=True)
class CountStats:
    """Summary of per-run counts after Tukey outlier removal.

    :param median: median of the kept runs
    :param q1: first quartile of the kept runs
    :param q3: third quartile of the kept runs
    :param iqr: ``q3 - q1``
    :param min: smallest kept run
    :param max: largest kept run
    :param n: runs measured
    :param outliers: runs removed by the fences
    :param fences: ``(low, high)`` Tukey fences computed on all runs
    """

    median: float
    q1: float
    q3: float
    iqr: float
    min: float
    max: float
    n: int
    outliers: int
    fences: tuple[float, float]


def tukey_filter(values: Sequence[float], k: float = TUKEY_K,
                 resolution: float = 0.0) -> tuple[np.ndarray, tuple[float, float]]:
    """Values inside ``[Q1 − k·IQR − resolution, Q3 + k·IQR + resolution]`` and the fences (no
    filtering below four values). ``resolution`` is the counter's step: a run one tick away from
    identical runs (IQR 0) is quantisation, not an outlier."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise MeasureError("no runs to summarise")
    if arr.size < 4:
        return arr, (-math.inf, math.inf)
    q1, q3 = np.percentile(arr, [25, 75])
    lo, hi = q1 - k * (q3 - q1) - resolution, q3 + k * (q3 - q1) + resolution
    return arr[(arr >= lo) & (arr <= hi)], (float(lo), float(hi))


def summarize_counts(counts: Sequence[float], k: float = TUKEY_K, resolution: float = 0.0) -> CountStats:
    """Median, IQR and minimum of ``counts`` after Tukey outlier removal (see module doc)."""
    kept, fences = tukey_filter(counts, k, resolution)
    q1, med, q3 = np.percentile(kept, [25, 50, 75])
    return CountStats(
        median=float(med),
        q1=float(q1),
        q3=float(q3),
        iqr=float(q3 - q1),
        min=float(kept.min()),
        max=float(kept.max()),
        n=len(counts),
        outliers=len(counts) - int(kept.size),
        fences=fences,
    )


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


def _configure(device: Any, manifest: Mapping[str, Any] | None) -> int:
    seq = (manifest or {}).get("sequence")
    if not seq:
        device.set_sequence(1, 0, [])
        return 1
    steps = int(seq["steps"])
    pairs = [(int(o), int(i)) for o, i in seq.get("recurrent", [])]
    device.set_sequence(steps, int(seq.get("stream_input", 0)), pairs)
    return steps


def bare_manifest(tflite_bytes: bytes) -> dict[str, Any]:
    """A manifest for a .tflite that came without one: its I/O list and quantisation, no sequence."""
    from edgeprune.export.manifest import io_entries
    from edgeprune.export.tflite_info import read_model

    info = read_model(tflite_bytes)
    return {"inputs": io_entries(info, [], output=False), "outputs": io_entries(info, [], output=True)}


def _stream_index(manifest: Mapping[str, Any] | None) -> int:
    seq = (manifest or {}).get("sequence")
    return int(seq.get("stream_input", 0)) if seq else 0


def _output_index(manifest: Mapping[str, Any] | None) -> int:
    seq = (manifest or {}).get("sequence")
    return int(seq.get("output", 0)) if seq else 0


def quantize_input(x: Any, manifest: Mapping[str, Any] | None, index: int) -> bytes:
    """Bytes for input ``index``: raw bytes pass through, int8 arrays are sent as is, float arrays are
    quantised with the manifest's scale and zero point for that input (the stream input by the
    exporter's ``quantize_input``, which also applies its ``input_norm``)."""
    if isinstance(x, bytes | bytearray | memoryview):
        return bytes(x)
    arr = np.asarray(x)
    specs = (manifest or {}).get("inputs") or []
    want = specs[index].get("dtype") if index < len(specs) else None
    if arr.dtype.kind == "f" and index < len(specs) and index == _stream_index(manifest):
        # The exporter's own rule for its stream input: the folded standardisation (and fine-input
        # split) first, then that input's quantisation.
        from edgeprune.export.verify import quantize_input as export_quantize_input

        arr = export_quantize_input(arr, dict(manifest or {}))
    elif arr.dtype.kind == "f" and want == "int8":
        from edgeprune.export.verify import quantize_array

        arr = quantize_array(arr, specs[index]["scale"], specs[index]["zero_point"])
    elif arr.dtype.kind == "f" and want not in ("float32", None):
        raise MeasureError(f"float data for input {index}, which is {want}; give bytes of that type")
    elif want == "float32":
        arr = arr.astype(np.float32)
    return np.ascontiguousarray(arr).tobytes()


def _set_inputs(device: Any, inputs: Any, manifest: Mapping[str, Any] | None) -> None:
    """``inputs`` is a mapping input-index → data, or the stream input's data alone."""
    items = inputs.items() if isinstance(inputs, Mapping) else [(_stream_index(manifest), inputs)]
    for index, data in items:
        device.set_input(int(index), quantize_input(data, manifest, int(index)))


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
    from edgeprune.bench.power.ina import power_figure

    power = power_figure(sample)
    if latency_ms.source != "board" or not latency_ms.known:
        return power, absent("uJ", "board", "latency is not a board measurement; power x time not formed")
    energy = Figure(power.value * latency_ms.value, "uJ", "board",
                    f"INA power {power.value:.3g} mW x median latency {latency_ms.value:.4g} ms")
    return power, energy


def measure(
    device: Any,
    tflite_bytes: bytes,
    manifest: Mapping[str, Any] | None,
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
    :param oracle: an object with ``run(x_int8) -> output`` like ``export.verify.TflmRunner``
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
        _configure(device, manifest)
        _set_inputs(device, inputs, manifest)
        return info

    load_info = prepare()
    model: dict[str, Any] = {"sha256": hashlib.sha256(tflite_bytes).hexdigest(), "bytes": len(tflite_bytes)}
    for key in ("macs", "arena_used", "num_inputs", "num_outputs"):
        if load_info is not None and hasattr(load_info, key):
            model[key] = int(getattr(load_info, key))
    seq_block = (manifest or {}).get("sequence")
    model["steps"] = int(seq_block["steps"]) if seq_block else 1

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
        from edgeprune.bench.power.host import host_energy_tflite

        steps = int(((manifest or {}).get("sequence") or {}).get("steps", 1))
        figures["energy_host"] = host_energy_tflite(tflite_bytes, host_energy_runs, steps=steps).per_inference
    else:
        figures["energy_host"] = absent("uJ", "host", "host energy not requested")

    agreement = None
    if agreement_inputs is not None and len(agreement_inputs) > 0:
        agreement = _agreement(device, tflite_bytes, manifest, agreement_inputs, agreement_labels,
                               metric, metric_name, oracle, source)
        # Agreement left the last agreement sample as the device input; restore the timing input.
        _set_inputs(device, inputs, manifest)
    return Measurement(target, model, stats, unit, figures, counts, agreement, warmup)


def _agreement(device: Any, tflite_bytes: bytes, manifest: Mapping[str, Any] | None, samples: Any,
               labels: Any, metric: Callable[..., float] | None, metric_name: str, oracle: Any,
               source: str) -> Agreement:
    man = dict(manifest) if manifest is not None else bare_manifest(tflite_bytes)
    if oracle is None:
        from edgeprune.export.verify import TflmRunner

        oracle = TflmRunner.oracle(tflite_bytes, man)
    stream, out_idx = _stream_index(man), _output_index(man)
    in_spec = man["inputs"][stream]
    out_dtype = np.dtype(man["outputs"][out_idx]["dtype"])
    equal = 0
    max_diff = 0.0
    mismatches: list[int] = []
    device_rows: list[np.ndarray] = []
    for i, sample in enumerate(samples):
        data = quantize_input(sample, man, stream)
        device.set_input(stream, data)
        res = device.infer(1)
        if out_idx >= len(res.outputs):
            raise MeasureError(f"device returned {len(res.outputs)} outputs; manifest reads output {out_idx}")
        dev = np.frombuffer(bytes(res.outputs[out_idx]), dtype=out_dtype)
        x = np.frombuffer(data, dtype=np.dtype(in_spec["dtype"]))
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
        out_spec = man["outputs"][out_idx]
        preds = np.stack(device_rows).astype(np.float32)
        if out_spec.get("dtype") == "int8":
            preds = (preds - out_spec["zero_point"]) * np.float32(out_spec["scale"])
        value = float(metric(preds, labels))
        metric_fig = Figure(value, metric_name, source,
                            f"{metric_name} computed from device outputs on {n} test inputs")
    return Agreement(n, rate, max_diff, metric_fig, mismatches)


def synthetic_inputs(manifest: Mapping[str, Any], n: int, seed: int = 0) -> list[dict[int, bytes]]:
    """``n`` seeded random samples (int8, or float32 for float I/O) for every input the host sets
    (not the recurrent ones).

    Used when a bare .tflite is benchmarked without a task: timing does not depend on values, and
    byte agreement with the oracle holds for any input.
    """
    seq = manifest.get("sequence") or {}
    steps = int(seq.get("steps", 1)) if seq else 1
    stream = _stream_index(manifest)
    recurrent = {int(i) for _, i in seq.get("recurrent", [])} if seq else set()
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n):
        sample: dict[int, bytes] = {}
        for pos, spec in enumerate(manifest["inputs"]):
            if pos in recurrent:
                continue
            size = int(np.prod(spec["shape"])) * (steps if pos == stream else 1)
            if spec.get("dtype") == "int8":
                sample[pos] = rng.integers(-128, 128, size=size, dtype=np.int8).tobytes()
            elif spec.get("dtype") == "float32":
                # A float input is quantised inside the model (QUANTIZE op); any finite values do.
                sample[pos] = rng.standard_normal(size).astype(np.float32).tobytes()
            else:
                raise MeasureError(f"input {pos} is {spec.get('dtype')}; the runtime takes int8 or float32 I/O")
        samples.append(sample)
    return samples


def load_manifest(model_path: str | Path, manifest_path: str | Path | None, tflite_bytes: bytes) -> dict[str, Any]:
    """The given manifest, else ``manifest.json`` beside the model, else one read from the .tflite."""
    candidates = [Path(manifest_path)] if manifest_path is not None else [Path(model_path).with_name("manifest.json")]
    for p in candidates:
        if p.is_file():
            try:
                data = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise MeasureError(f"cannot read manifest {p}: {exc}") from exc
            want = (data.get("hashes") or {}).get("tflite_sha256")
            if want and want != hashlib.sha256(tflite_bytes).hexdigest():
                raise MeasureError(f"manifest {p} belongs to another model (sha256 differs); pass the right --manifest")
            return dict(data)
        if manifest_path is not None:
            raise MeasureError(f"manifest {p} does not exist")
    return bare_manifest(tflite_bytes)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def bench_model(model_path: str | Path, device: str, *, manifest_path: str | Path | None = None,
                repeats: int = 20, warmup: int = 2, agreement: int = 0, energy_board: str | None = None,
                host_energy_runs: int = 0, ppk2_port: str | None = None, ppk2_channel: int = 0,
                ppk2_mv: int = 3300, timeout_s: float = 10.0, json_out: str | Path | None = None,
                elf: str | Path | None = None) -> Measurement:
    """Measure a .tflite file on ``device`` (any target spec, see ``bench.targets``): what ``edgeprune bench`` runs.

    Inputs are seeded random int8 (timing does not depend on values); ``agreement`` > 0 compares that
    many further random inputs with the TFLM oracle. ``json_out`` receives ``Measurement.to_dict()``
    (written to a temporary file, then renamed). ``elf`` overrides the firmware QEMU runs.
    """
    from edgeprune.bench.targets import open_device

    path = Path(model_path)
    try:
        tflite = path.read_bytes()
    except OSError as exc:
        raise MeasureError(f"cannot read model {path}: {exc}") from exc
    manifest = load_manifest(path, manifest_path, tflite)
    samples = synthetic_inputs(manifest, 1 + agreement, seed=0)
    stream = _stream_index(manifest)
    agreement_inputs = None
    if agreement:
        dtype = np.dtype(manifest["inputs"][stream]["dtype"])
        agreement_inputs = [np.frombuffer(s[stream], dtype=dtype) for s in samples[1:]]
    meter = None
    if ppk2_port is not None:
        from edgeprune.bench.power.ppk2 import Ppk2Meter

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
