"""A simulated edgeprune board on a pseudo-terminal, for tests of the link, measurement and flashing.

It speaks ``bench/protocol.py`` frames on the slave side of ``os.openpty()`` (so the host opens a
real tty path with pyserial, exactly like ``/dev/ttyACM0``) and behaves like the firmware at the
protocol level: sequence-number checks, chunked model load with size and SHA-256 verification,
SET_SEQUENCE / SET_INPUT / INFER / GET_OUTPUT / POWER / IO_INFO / RESET, and error replies.

It does not run the model. Outputs are a deterministic function of (model hash, inputs), and counts
are ``base_count`` plus a deterministic jitter, so tests can predict them. It can misbehave on purpose
(:class:`Faults`): garbage bytes before a reply, dropped replies, corrupted replies, a corrupted load
chunk, flipped output bits, a count spike, and spontaneous reboots.

This is a test double for the host code; the real firmware is exercised under QEMU.
"""

from __future__ import annotations

import hashlib
import logging
import os
import select
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from doubles.pty_peer import PtyPeer
from edgeprune.bench import protocol as P
from edgeprune.bench.link import BAUD_GRACE_S, MSG_SET_BAUD

log = logging.getLogger(__name__)

_CORE_IDS = {v: k for k, v in P.CORE_NAMES.items()}


@dataclass
class Faults:
    """Misbehaviours to inject; each counter is consumed as it fires.

    :param garbage_before_reply: bytes written (with no delimiter) before every reply
    :param drop_replies: the next this-many requests get no reply
    :param corrupt_replies: the next this-many replies have a flipped CRC byte
    :param corrupt_chunk: flip one byte of the next LOAD_CHUNK as it is received
    :param flip_output: XOR the first output byte with 1 (device/oracle mismatch)
    :param spike_every: every this-many INFER runs take ``spike_factor`` × the count (0 = never)
    :param spike_factor: multiplier of a spiked run
    :param reboot_after_infers: reboot (watchdog) right after answering this many more INFERs (0 = never)
    :param hang_on_infer: an INFER hangs the board: no reply to anything afterwards, until ``hung`` is cleared
    :param reset_on_infer: every INFER reboots the board (watchdog) before it answers, as a crash mid-inference
    :param drop_infer_replies: every INFER reply is lost on the wire (the board keeps answering the rest)
    :param unplug_on_infer: an INFER unplugs the board: its port vanishes (as a USB cable pulled mid-inference)
    """

    garbage_before_reply: bytes = b""
    drop_replies: int = 0
    corrupt_replies: int = 0
    corrupt_chunk: bool = False
    flip_output: bool = False
    spike_every: int = 0
    spike_factor: int = 5
    reboot_after_infers: int = 0
    hang_on_infer: bool = False
    reset_on_infer: bool = False
    drop_infer_replies: bool = False
    unplug_on_infer: bool = False
    hung: bool = False


@dataclass
class SimConfig:
    """What the simulated board reports and how it computes.

    :param build_id: firmware build id in HELLO (``build_id_file`` overrides it when present)
    :param build_id_file: a file whose content, if it exists, is the build id (lets a test "flash")
    :param board: board name
    :param core: ``m0`` | ``m3`` | ``m4`` | ``m7`` | ``m33``
    :param counter: ``"dwt"`` or ``"icount"``
    :param clock_hz: clock in HELLO
    :param counter_scale: counts per tick; counts are rounded to a multiple of it
    :param max_model: LOAD_BEGIN size limit
    :param arena_bytes: arena in HELLO
    :param io_inputs: per input: bytes of one step
    :param io_outputs: per output: bytes
    :param base_count: count of one step of one run
    :param jitter: counts vary by ``0..jitter`` (deterministically)
    :param power: ``None`` (absent) or ``(sensor, bus_uv, current_ua, power_uw)``
    :param macs: MACs reported by LOAD_END
    :param protocol: protocol version HELLO reports (a mismatch tests the host's check)
    :param bauds: rates SET_BAUD accepts (empty: a firmware without SET_BAUD, which answers UNKNOWN_TYPE)
    :param bridge_max_baud: fastest rate the simulated USB bridge carries; above it bytes do not get through
    :param simulate_rate: take 10 bit times per received byte at the current rate (load times as on a UART)
    :param lost_after_switch: host writes lost right after each rate switch, as a UART that drops what arrives
        while it is disabled for its BRR write (QEMU's STM32L4 USART does; a busy host makes it likely)
    """

    build_id: str = "sim-0000000-00000000"
    build_id_file: Path | None = None
    board: str = "sim"
    core: str = "m4"
    counter: str = "icount"
    clock_hz: int = 25_000_000
    counter_scale: int = 1
    max_model: int = 512 * 1024
    arena_bytes: int = 64 * 1024
    io_inputs: list[int] = field(default_factory=lambda: [16])
    io_outputs: list[int] = field(default_factory=lambda: [4])
    base_count: int = 10_000
    jitter: int = 0
    power: tuple[int, int, int, int] | None = None
    macs: int = 1000
    protocol: int = P.PROTOCOL_VERSION
    bauds: tuple[int, ...] = ()
    bridge_max_baud: int = 2_000_000
    simulate_rate: bool = False
    lost_after_switch: int = 0


def sim_output(model_sha: bytes, stream: bytes, size: int) -> bytes:
    """The simulated model's output: SHA-256-expanded bytes of (model hash, inputs), ``size`` long."""
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(model_sha + stream + counter.to_bytes(4, "little")).digest()
        counter += 1
    return out[:size]


class SimDevice(PtyPeer):
    """The simulated board. ``port`` is the tty path the host opens.

    :param config: what it reports and computes (:class:`SimConfig`)
    :param faults: misbehaviour to inject (:class:`Faults`); may be changed while running
    """

    def __init__(self, config: SimConfig | None = None, faults: Faults | None = None) -> None:
        self.config = config or SimConfig()
        self.faults = faults or Faults()
        super().__init__("sim-device")
        self.requests: list[int] = []
        self._runs = 0
        self.baud = 115_200
        self._baud_revert: tuple[int, float] | None = None  # (old rate, deadline) until a HELLO confirms
        self._lose = 0  # host writes still to drop after a switch
        self.wire_s = 0.0  # time the received bytes took on the wire at the rate in use (simulate_rate)
        self._boot(P.RESET_POWER_ON)

    # ---- lifecycle ----------------------------------------------------------------------------------

    def _boot(self, reason: int) -> None:
        self.reset_reason = reason
        self.expected_seq: int | None = None
        self.model: bytes | None = None
        self.model_sha = b""
        self._load: dict[str, object] | None = None
        self.steps = 1
        self.stream_input = 0
        self.inputs = [bytearray(n) for n in self.config.io_inputs]
        self.outputs = [bytes(n) for n in self.config.io_outputs]

    def unplug(self) -> None:
        """The port vanishes (callable from the serving thread, which then ends)."""
        self._stop.set()
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
        self._master = self._slave = -1  # never close a number another open has since reused

    def reboot(self, reason: int = P.RESET_WATCHDOG) -> None:
        """Spontaneous reboot (as after a watchdog reset): the model and sequence state are lost."""
        self._boot(reason)

    # ---- I/O ------------------------------------------------------------------------------------------

    def _host_baud(self) -> int | None:
        """The rate the host set on its end of the pty (termios), or None when it is not a standard rate."""
        import termios

        try:
            speed = termios.tcgetattr(self._slave)[5]
        except termios.error:
            return None
        for rate in (self.baud, 115_200, *self.config.bauds):
            if getattr(termios, f"B{rate}", None) == speed:
                return rate
        return None

    def _run(self) -> None:
        rx = bytearray()
        while not self._stop.is_set():
            if self._baud_revert is not None and time.monotonic() > self._baud_revert[1]:
                self.baud, self._baud_revert = self._baud_revert[0], None  # no confirmation: back to the old rate
            ready, _, _ = select.select([self._master], [], [], 0.02)
            if not ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:
                return
            if self.config.simulate_rate:
                self.wire_s += len(data) * 10 / self.baud
                time.sleep(len(data) * 10 / self.baud)
            if self._lose:
                self._lose -= 1
                continue
            if self.baud > self.config.bridge_max_baud or (self.config.bauds and self._host_baud() != self.baud):
                continue  # the two ends disagree on the rate (or the bridge cannot carry it): nothing decodes
            rx += data
            while 0 in rx:
                end = rx.index(0)
                chunk = bytes(rx[:end])
                del rx[: end + 1]
                if chunk:
                    self._on_frame(chunk)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            _, writable, _ = select.select([], [self._master], [], 1.0)
            if not writable:
                log.warning("sim device: host is not reading; reply dropped")
                return
            view = view[os.write(self._master, view):]

    def _reply(self, type_: int, seq: int, payload: bytes = b"") -> None:
        f = self.faults
        if f.hung or (f.drop_infer_replies and type_ == P.MSG_INFER):
            return
        if f.drop_replies > 0:
            f.drop_replies -= 1
            return
        frame = P.encode_frame(type_ | P.REPLY_FLAG, seq, payload)
        if f.corrupt_replies > 0:
            f.corrupt_replies -= 1
            raw = bytearray(P.cobs_decode(frame[:-1]))
            raw[-1] ^= 0x5A
            frame = P.cobs_encode(bytes(raw)) + b"\0"
        self._write(f.garbage_before_reply + frame)

    def _error(self, req_type: int, seq: int, status: int, detail: int = 0) -> None:
        self._reply(P.MSG_ERROR, seq, P.ERROR.pack(request_type=req_type, status=status, detail=detail))

    # ---- protocol -------------------------------------------------------------------------------------

    def _on_frame(self, encoded: bytes) -> None:
        try:
            frame = P.decode_frame(encoded)
        except P.FrameDecodeError as exc:
            # Like the firmware: echo type and seq when the body got far enough to hold them.
            try:
                raw = P.cobs_decode(encoded)
            except P.FrameDecodeError:
                raw = b""
            req_type = raw[1] if len(raw) >= 2 else 0
            seq = int.from_bytes(raw[2:4], "little") if len(raw) >= 4 else 0xFFFF
            self._error(req_type, seq, exc.status)
            return
        self.requests.append(frame.type)
        t, seq = frame.type, frame.seq
        if t not in (P.MSG_HELLO, P.MSG_RESET) and self.expected_seq is not None:
            # As the firmware: a gap is fine (a request was lost), an old or repeated seq is refused.
            if (seq - self.expected_seq) & 0xFFFF >= 0x8000:
                self._error(t, seq, P.ST_SEQUENCE, self.expected_seq)
                return
        self.expected_seq = (seq + 1) & 0xFFFF
        handler = {
            P.MSG_HELLO: self._hello,
            P.MSG_LOAD_BEGIN: self._load_begin,
            P.MSG_LOAD_CHUNK: self._load_chunk,
            P.MSG_LOAD_END: self._load_end,
            P.MSG_SET_SEQUENCE: self._set_sequence,
            P.MSG_SET_INPUT: self._set_input,
            P.MSG_INFER: self._infer,
            P.MSG_GET_OUTPUT: self._get_output,
            P.MSG_POWER: self._power,
            P.MSG_IO_INFO: self._io_info,
            P.MSG_RESET: self._reset,
            MSG_SET_BAUD: self._set_baud,
        }.get(t)
        if t == P.MSG_HELLO:
            self._baud_revert = None  # a frame at the new rate confirms it
        if handler is None:
            self._error(t, seq, P.ST_UNKNOWN_TYPE)
            return
        handler(t, seq, frame.payload)

    def _build_id(self) -> str:
        f = self.config.build_id_file
        if f is not None and f.exists():
            return f.read_text().strip()
        return self.config.build_id

    def _hello(self, t: int, seq: int, payload: bytes) -> None:
        c = self.config
        self._reply(t, seq, P.HELLO.pack(
            protocol=c.protocol, core=_CORE_IDS.get(c.core, 4),
            counter=P.COUNTER_ICOUNT if c.counter == "icount" else P.COUNTER_DWT,
            clock_hz=c.clock_hz, counter_scale_milli=c.counter_scale * 1000, arena_bytes=c.arena_bytes,
            max_model=c.max_model, max_payload=P.MAX_PAYLOAD, reset_reason=self.reset_reason,
            has_runtime=1, baked_model=0, build_id=self._build_id(), board=c.board,
            model_sha256=self.model_sha if self.model is not None else b""))

    def _load_begin(self, t: int, seq: int, payload: bytes) -> None:
        if len(payload) != P.LOAD_BEGIN.size:
            self._error(t, seq, P.ST_BAD_LENGTH)
            return
        req = P.LOAD_BEGIN.unpack(payload)
        if req["size"] > self.config.max_model:
            self._error(t, seq, P.ST_MODEL_TOO_BIG, self.config.max_model)
            return
        self.model = None
        self._load = {"size": req["size"], "sha": bytes(req["sha256"]), "data": bytearray()}
        self._reply(t, seq)

    def _load_chunk(self, t: int, seq: int, payload: bytes) -> None:
        if self._load is None:
            self._error(t, seq, P.ST_NO_LOAD)
            return
        (offset,) = struct.unpack_from("<I", payload)
        data = self._load["data"]
        assert isinstance(data, bytearray)
        if offset != len(data):
            self._error(t, seq, P.ST_LOAD_ORDER, len(data))
            return
        chunk = bytearray(payload[4:])
        if self.faults.corrupt_chunk and chunk:
            self.faults.corrupt_chunk = False
            chunk[0] ^= 0xFF
        if len(data) + len(chunk) > int(self._load["size"]):  # type: ignore[call-overload]
            self._error(t, seq, P.ST_LOAD_SIZE)
            return
        data += chunk
        self._reply(t, seq)

    def _load_end(self, t: int, seq: int, payload: bytes) -> None:
        load, self._load = self._load, None
        if load is None:
            self._error(t, seq, P.ST_NO_LOAD)
            return
        data = bytes(load["data"])  # type: ignore[call-overload]
        if len(data) != load["size"]:
            self._error(t, seq, P.ST_LOAD_SIZE)
            return
        if hashlib.sha256(data).digest() != load["sha"]:
            self._error(t, seq, P.ST_HASH)
            return
        self.model = data
        self.model_sha = hashlib.sha256(data).digest()
        self._reply(t, seq, P.LOAD_REPLY.pack(arena_used=self.config.arena_bytes // 2, macs=self.config.macs,
                                              num_inputs=len(self.inputs), num_outputs=len(self.outputs)))

    def _set_sequence(self, t: int, seq: int, payload: bytes) -> None:
        req = P.SET_SEQUENCE.unpack(payload)
        if req["steps"] < 1 or req["stream_input"] >= len(self.config.io_inputs):
            self._error(t, seq, P.ST_BAD_ARG)
            return
        self.steps, self.stream_input = req["steps"], req["stream_input"]
        size = self.config.io_inputs[self.stream_input] * self.steps
        self.inputs[self.stream_input] = bytearray(size)
        self._reply(t, seq)

    def _set_input(self, t: int, seq: int, payload: bytes) -> None:
        req = P.SET_INPUT.unpack(payload)
        idx, off, data = req["index"], req["offset"], payload[P.SET_INPUT.size:]
        if idx >= len(self.inputs) or off + len(data) > len(self.inputs[idx]):
            self._error(t, seq, P.ST_BAD_ARG)
            return
        self.inputs[idx][off:off + len(data)] = data
        self._reply(t, seq)

    def _infer(self, t: int, seq: int, payload: bytes) -> None:
        n = P.INFER.unpack(payload)["n"]
        if not 1 <= n <= P.MAX_RUNS:
            self._error(t, seq, P.ST_BAD_ARG)
            return
        if self.model is None:
            self._error(t, seq, P.ST_NO_MODEL)
            return
        c, f = self.config, self.faults
        if f.hang_on_infer:
            f.hung = True
            return
        if f.reset_on_infer:
            self.reboot()
            return
        if f.unplug_on_infer:
            self.unplug()
            return
        counts = []
        for _ in range(n):
            self._runs += 1
            count = c.base_count * self.steps + (self._runs * 7919) % (c.jitter + 1)
            if f.spike_every and self._runs % f.spike_every == 0:
                count *= f.spike_factor
            counts.append(count - count % max(c.counter_scale, 1))
        stream = b"".join(bytes(b) for b in self.inputs)
        outs = [bytearray(sim_output(self.model_sha + bytes([i]), stream, size))
                for i, size in enumerate(c.io_outputs)]
        if f.flip_output and outs and outs[0]:
            outs[0][0] ^= 1
        self.outputs = [bytes(o) for o in outs]
        ordered = sorted(counts)
        head = P.INFER_REPLY.pack(n=n, counter=P.COUNTER_ICOUNT if c.counter == "icount" else P.COUNTER_DWT,
                                  num_outputs=len(self.outputs), min=ordered[0], median=ordered[(n - 1) // 2])
        self._reply(t, seq, head + struct.pack(f"<{n}I", *counts))
        if f.reboot_after_infers > 0:
            f.reboot_after_infers -= 1
            if f.reboot_after_infers == 0:
                self.reboot()

    def _get_output(self, t: int, seq: int, payload: bytes) -> None:
        req = P.GET_OUTPUT.unpack(payload)
        if req["index"] >= len(self.outputs):
            self._error(t, seq, P.ST_BAD_ARG)
            return
        out = self.outputs[req["index"]]
        off = req["offset"]
        part = out[off:off + min(req["max_len"], P.MAX_PAYLOAD - P.OUTPUT_REPLY.size)]
        self._reply(t, seq, P.OUTPUT_REPLY.pack(total=len(out), offset=off) + part)

    def _power(self, t: int, seq: int, payload: bytes) -> None:
        p = self.config.power
        if p is None:
            self._reply(t, seq, P.POWER.pack(sensor=P.POWER_ABSENT))
        else:
            self._reply(t, seq, P.POWER.pack(sensor=p[0], bus_uv=p[1], current_ua=p[2], power_uw=p[3]))

    def _io_info(self, t: int, seq: int, payload: bytes) -> None:
        req = P.IO_INFO_REQ.unpack(payload)
        sizes = self.config.io_outputs if req["is_output"] else self.config.io_inputs
        if req["index"] >= len(sizes):
            self._error(t, seq, P.ST_BAD_ARG)
            return
        n = sizes[req["index"]]
        self._reply(t, seq, P.IO_INFO.pack(bytes=n, scale=1.0, zero_point=0, dtype=9, rank=2, dims=[1, n]))

    def _set_baud(self, t: int, seq: int, payload: bytes) -> None:
        if not self.config.bauds:
            self._error(t, seq, P.ST_UNKNOWN_TYPE)
            return
        (rate,) = struct.unpack_from("<I", payload) if len(payload) == 4 else (0,)
        if rate not in self.config.bauds:
            self._error(t, seq, P.ST_BAD_ARG)
            return
        self._reply(t, seq)  # at the old rate
        self._baud_revert = (self.baud, time.monotonic() + BAUD_GRACE_S)
        self.baud = rate
        self._lose = self.config.lost_after_switch

    def _reset(self, t: int, seq: int, payload: bytes) -> None:
        self._reply(t, seq)
        # A real board is silent while it reboots; long enough for the host to see it.
        time.sleep(0.05)
        self._boot(P.RESET_SOFTWARE)
