"""A stand-in PPK2 on a pseudo-terminal, for tests and demos without the hardware.

It speaks the part of the PPK2 serial protocol that ``ppk2_api`` uses: the metadata request
(answered with calibration lines ending in ``END``), mode/voltage/DUT-power commands (accepted),
and average start/stop (streams 4-byte little-endian samples: bits 0–13 ADC code, 14–16 range,
24–31 logic inputs). After each start it plays a programmed waveform once, then idle samples.

The metadata calibrates range ``RANGE`` with resistor ``R`` and zero gain/offset terms, so a sample
with ADC code ``c`` decodes to exactly ``c × 4 × 1.8 / 163840 / R`` amperes.
"""

from __future__ import annotations

import logging
import os
import select
import time
from dataclasses import dataclass

import numpy as np

from doubles.pty_peer import PtyPeer

log = logging.getLogger(__name__)

_CMD_METADATA = 0x19
_CMD_START = 0x06
_CMD_STOP = 0x07
_ARGS = {0x0D: 2, 0x11: 1, 0x0C: 1, 0x08: 1, 0x01: 3, 0x03: 1, 0x04: 1, 0x05: 1, 0x12: 1, 0x25: 5}

RANGE = 1
R_OHM = 100.0
ADC_MULT = 1.8 / 163840
SAMPLE_RATE_HZ = 100_000


@dataclass(frozen=True)
class Segment:
    """A stretch of the fake's waveform.

    :param samples: how many 10 µs samples
    :param current_ua: current during the segment
    :param logic: logic-input byte during the segment (bit 0 = D0)
    """

    samples: int
    current_ua: float
    logic: int = 0


def adc_code(current_ua: float) -> int:
    """The ADC code the fake sends for ``current_ua`` (14 bits, range ``RANGE``)."""
    code = round(current_ua * 1e-6 * R_OHM / (ADC_MULT * 4))
    if not 0 <= code < (1 << 14):
        raise ValueError(f"{current_ua} uA is outside the fake's range")
    return code


def decoded_ua(current_ua: float) -> float:
    """What ``ppk2_api`` will decode for a segment at ``current_ua`` (after ADC quantisation)."""
    return adc_code(current_ua) * 4 * ADC_MULT / R_OHM * 1e6


def encode(segments: list[Segment]) -> bytes:
    words: list[np.ndarray] = []
    for seg in segments:
        word = adc_code(seg.current_ua) | (RANGE << 14) | ((seg.logic & 0xFF) << 24)
        words.append(np.full(seg.samples, word, dtype="<u4"))
    return np.concatenate(words).tobytes() if words else b""


def _metadata() -> bytes:
    lines = ["Calibrated: 0"]
    for i in range(5):
        lines += [f"R{i}: {R_OHM if i == RANGE else 1000.0 / 10**i:.2f}", f"GS{i}: 0", f"GI{i}: 1",
                  f"O{i}: 0", f"S{i}: 0", f"I{i}: 0", f"UG{i}: 1"]
    lines += ["HW: 9173", "mode: 2", "IA: 56", "END", ""]
    return "\n".join(lines).encode()


class FakePpk2(PtyPeer):
    """A PPK2 look-alike on a pty; ``port`` is the path to open with ``ppk2_api``.

    :param waveform: segments played once after every AVERAGE_START
    :param idle_ua: current of the idle samples that follow the waveform
    :param chunk: samples written per write call (the real device streams continuously)
    """

    def __init__(self, waveform: list[Segment], *, idle_ua: float = 1000.0, chunk: int = 2000) -> None:
        self._payload = encode(waveform)
        self._idle = encode([Segment(chunk, idle_ua, 0)])
        self._chunk_bytes = chunk * 4
        super().__init__("fake-ppk2")
        self.commands: list[int] = []
        self._measuring = False
        self._cursor = 0

    def _run(self) -> None:
        pending = b""
        next_write = 0.0
        while not self._stop.is_set():
            readable, _, _ = select.select([self._master], [], [], 0.002)
            if readable:
                try:
                    pending += os.read(self._master, 256)
                except OSError:
                    return
                pending = self._handle(pending)
            now = time.monotonic()
            if self._measuring and now >= next_write:
                sent = self._stream_once()
                # Pace the stream near the real 100 kS/s so the reader is not flooded.
                next_write = now + sent / 4 / SAMPLE_RATE_HZ

    def _handle(self, buf: bytes) -> bytes:
        while buf:
            cmd = buf[0]
            need = 1 + _ARGS.get(cmd, 0)
            if len(buf) < need:
                break
            self.commands.append(cmd)
            if cmd == _CMD_METADATA:
                self._write(_metadata())
            elif cmd == _CMD_START:
                self._measuring = True
                self._cursor = 0
            elif cmd == _CMD_STOP:
                self._measuring = False
            buf = buf[need:]
        return buf

    def _stream_once(self) -> int:
        if self._cursor < len(self._payload):
            data = self._payload[self._cursor:self._cursor + self._chunk_bytes]
            self._cursor += len(data)
        else:
            data = self._idle
        return len(data) if self._write(data) else 0

    def _write(self, data: bytes) -> bool:
        view = memoryview(data)
        while view and not self._stop.is_set():
            _, writable, _ = select.select([], [self._master], [], 0.05)
            if writable:
                try:
                    view = view[os.write(self._master, view):]
                except OSError:
                    return False
        return not view
