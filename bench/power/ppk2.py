"""Energy per inference from a Nordic PPK2, windowed by the firmware's GPIO toggle.

The firmware raises a GPIO for the duration of each inference; wired to one of the PPK2's logic
inputs (D0..D7), that bit is recorded with every current sample (100 kS/s). The energy of one
inference is the integral of current × supply voltage over one contiguous run of samples with the
bit high. Runs cut by the start or the end of the trace are dropped (they are partial inferences);
the number kept and dropped is reported.

The serial protocol is spoken by PyPI's ``ppk2_api`` (imported lazily).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeprune.bench.figures import Figure
from edgeprune.bench.power import PowerMeterError

log = logging.getLogger(__name__)

PPK2_SAMPLE_RATE_HZ = 100_000


@dataclass(frozen=True)
class Ppk2Trace:
    """Samples captured by the PPK2.

    :param current_ua: current per sample, µA
    :param logic: the 8 logic inputs per sample (bit i = D<i>)
    :param sample_rate_hz: samples per second (100 kHz on the PPK2)
    :param vdd_mv: supply voltage the DUT ran at, mV
    """

    current_ua: np.ndarray
    logic: np.ndarray
    sample_rate_hz: float
    vdd_mv: float


@dataclass(frozen=True)
class WindowedEnergy:
    """Per-inference energies cut out of a trace.

    :param energies_uj: energy of each complete high window, µJ
    :param durations_s: length of each window, s
    :param dropped: windows cut by the trace start/end (not counted)
    """

    energies_uj: list[float]
    durations_s: list[float]
    dropped: int

    @property
    def count(self) -> int:
        return len(self.energies_uj)

    def figure(self, channel: int) -> Figure:
        """Median energy per inference as a ``board`` figure."""
        if not self.energies_uj:
            raise PowerMeterError(
                f"no complete GPIO window on logic channel D{channel}; check the wiring and that the firmware toggles it"
            )
        med = float(np.median(self.energies_uj))
        return Figure(
            med,
            "uJ",
            "board",
            f"PPK2, median of {self.count} GPIO-windowed inferences on D{channel} ({self.dropped} partial dropped)",
            extra={"energies_uj": list(self.energies_uj), "durations_s": list(self.durations_s)},
        )


def windowed_energy(trace: Ppk2Trace, channel: int = 0) -> WindowedEnergy:
    """Integrate ``I × V`` over each complete run of samples with logic bit ``channel`` high."""
    if not 0 <= channel <= 7:
        raise ValueError(f"PPK2 logic channel must be 0..7, got {channel}")
    current = np.asarray(trace.current_ua, dtype=np.float64)
    high = ((np.asarray(trace.logic, dtype=np.int64) >> channel) & 1).astype(np.int8)
    if current.shape != high.shape:
        raise PowerMeterError(f"trace has {current.size} current samples but {high.size} logic samples")
    if high.size == 0:
        return WindowedEnergy([], [], 0)
    edges = np.diff(np.concatenate(([0], high, [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)  # exclusive
    dt = 1.0 / trace.sample_rate_hz
    vdd = trace.vdd_mv / 1000.0
    energies: list[float] = []
    durations: list[float] = []
    dropped = 0
    for s, e in zip(starts, ends, strict=True):
        # A window touching either end of the capture was not seen whole.
        if s == 0 or e == high.size:
            dropped += 1
            continue
        energies.append(float(current[s:e].sum()) * vdd * dt)  # µA·V·s = µJ
        durations.append((e - s) * dt)
    return WindowedEnergy(energies, durations, dropped)


class Ppk2Meter:
    """A PPK2 on a serial port, capturing while a callable runs.

    :param port: serial device of the PPK2 (e.g. ``/dev/ttyACM1``)
    :param vdd_mv: supply voltage in mV (source-meter mode sets it; ampere-meter mode must state it)
    :param mode: ``"source"`` (PPK2 powers the DUT) or ``"ampere"`` (in series with the DUT's supply)
    :param channel: logic input wired to the firmware's inference GPIO
    :param timeout_s: serial read/write timeout
    :param settle_s: idle time captured before and after the callable, so windows are complete
    """

    def __init__(self, port: str, *, vdd_mv: int = 3300, mode: str = "source", channel: int = 0,
                 timeout_s: float = 2.0, settle_s: float = 0.05) -> None:
        if mode not in ("source", "ampere"):
            raise ValueError(f"mode must be 'source' or 'ampere', got {mode!r}")
        self.port = port
        self.vdd_mv = vdd_mv
        self.mode = mode
        self.channel = channel
        self.timeout_s = timeout_s
        self.settle_s = settle_s
        self._api: Any = None

    def open(self) -> Ppk2Meter:
        try:
            from ppk2_api.ppk2_api import PPK2_API
        except ImportError as exc:
            raise PowerMeterError("ppk2-api is not installed: pip install ppk2-api") from exc
        try:
            api = PPK2_API(self.port, timeout=self.timeout_s, write_timeout=self.timeout_s)
        except OSError as exc:
            raise PowerMeterError(f"cannot open PPK2 on {self.port}: {exc}") from exc
        if api.get_modifiers() is None:
            api.ser.close()
            raise PowerMeterError(f"{self.port} did not answer the PPK2 metadata request; is it a PPK2?")
        if self.mode == "source":
            api.use_source_meter()
        else:
            api.use_ampere_meter()
        api.set_source_voltage(self.vdd_mv)
        if self.mode == "source":
            api.toggle_DUT_power("ON")
        self._api = api
        return self

    def close(self) -> None:
        if self._api is not None:
            try:
                self._api.stop_measuring()
            finally:
                self._api.ser.close()
                self._api = None

    def __enter__(self) -> Ppk2Meter:
        return self.open() if self._api is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def capture(self, during: Callable[[], Any]) -> tuple[Ppk2Trace, Any]:
        """Record while ``during()`` runs; returns the trace and what ``during`` returned."""
        if self._api is None:
            raise PowerMeterError("PPK2 meter is not open")
        api = self._api
        chunks: list[bytes] = []
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                data = api.get_data()
                if data:
                    chunks.append(data)
                else:
                    time.sleep(0.001)

        thread = threading.Thread(target=reader, name="ppk2-reader", daemon=True)
        api.get_data()  # drop bytes left from an earlier capture so samples stay 4-byte aligned
        api.remainder = {"sequence": b"", "len": 0}
        api.start_measuring()
        thread.start()
        try:
            time.sleep(self.settle_s)
            result = during()
            time.sleep(self.settle_s)
        finally:
            stop.set()
            thread.join(timeout=self.timeout_s)
            api.stop_measuring()
            tail = api.get_data()
            if tail:
                chunks.append(tail)
        samples, bits = api.get_samples(b"".join(chunks))
        n = min(len(samples), len(bits))
        trace = Ppk2Trace(np.asarray(samples[:n], dtype=np.float64), np.asarray(bits[:n], dtype=np.uint8),
                          PPK2_SAMPLE_RATE_HZ, float(self.vdd_mv))
        log.debug("PPK2 captured %d samples", n)
        return trace, result

    def energy_during(self, during: Callable[[], Any]) -> tuple[Figure, Any]:
        """Median GPIO-windowed energy per inference (``board``) while ``during()`` runs."""
        trace, result = self.capture(during)
        return windowed_energy(trace, self.channel).figure(self.channel), result
