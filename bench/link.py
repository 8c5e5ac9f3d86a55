"""Host side of the device link: frames over a transport, and the :class:`Device` client.

Every request gets exactly one reply with the same seq (see ``firmware/include/ep_protocol.h``).
Bytes that do not decode (boot noise, a half frame after a reconnect) are dropped up to the next 0x00
delimiter, so the link resynchronises by itself; each request is also preceded by a 0x00 so the
device drops any partial frame it still holds.
"""

from __future__ import annotations

import hashlib
import logging
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgeprune.bench import protocol as P
from edgeprune.bench.runtime_status import describe
from edgeprune.bench.transports import open_port

log = logging.getLogger(__name__)

# A port that talks garbage (wrong baud rate, another program) would otherwise log one line per chunk:
# the first drop is logged, later ones are summarised at most this often.
DROP_LOG_INTERVAL_S = 10.0
# How often a waiting read asks the target whether the device is still there (an emulator's process).
WATCHDOG_INTERVAL_S = 0.1
#: SET_BAUD request (ep_protocol.h: -> u32 rate; <- empty at the old rate, then the board switches and, if no
#: valid frame arrives at the new rate within its grace period, switches back). A firmware older than the
#: command answers UNKNOWN_TYPE and the link stays at its rate.
MSG_SET_BAUD = P.MSG_SET_BAUD
#: Rates tried, fastest first (common USB-UART bridges: ST-LINK V2-1 up to 2 Mbaud, CP210x/CH340 to 921,600).
BAUD_RATES = (2_000_000, 921_600, 460_800, 230_400)
#: How long a board waits at a new rate for the host's confirming HELLO before it reverts.
BAUD_GRACE_S = P.BAUD_GRACE_MS / 1000
BAUD_CONFIRM_TRIES = 3  # HELLOs at a new rate before giving it up (one lost to the UART's switch is not a refusal)
BAUD_SETTLE_S = 0.005  # the board's reply is out; give it time to rewrite its BRR before we talk at the new rate
#: INFER deadline on a board once an inference has been timed (``Device.infer_deadline``): this many times the
#: slowest inference seen on the link, times the request's runs, and never under the floor (seconds). Why 50: the
#: slowest candidate a search proposes against its int8 baseline is a float32 model on a core without an FPU,
#: 34x the baseline's instructions on the M0 (BENCHMARKS.md, study m0dqn: 1,049,750 vs 30,813); the floor covers
#: a model that runs in microseconds, where the link's round trip and the host's scheduling dominate.
BOARD_INFER_DEADLINE = (50.0, 10.0)
#: What a device fault that outlived its retries is recorded as (``DeviceFault.kind``).
FAULT_KINDS = ("hang", "reset", "corrupt", "wrong-build", "gone")


class LinkError(Exception):
    """Base of every link failure."""


class LinkTimeout(LinkError, TimeoutError):
    """No (complete, matching) reply before the deadline."""


class FrameError(LinkError):
    """A frame was malformed: the device could not parse ours, or we could not parse its reply."""


class DeviceGone(LinkError):
    """The device is no longer there: its emulator exited or was stopped, or its port vanished."""


class BuildMismatch(LinkError):
    """The device answers with another firmware build than the one this session started with."""


class DeviceFault(LinkError):
    """A device fault that outlived its retries; recorded as a failed evaluation with its kind.

    :param kind: one of :data:`FAULT_KINDS`
    :param detail: what was seen (one line)
    :param attempts: attempts made (each after a restart of the device)
    :param elapsed_s: wall-clock seconds from the first attempt to giving up
    """

    def __init__(self, kind: str, detail: str, attempts: int, elapsed_s: float):
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        self.kind, self.detail, self.attempts, self.elapsed_s = kind, detail, attempts, elapsed_s
        super().__init__(f"{kind}: {detail} ({attempts} attempts in {elapsed_s:.1f} s)")


_FAULT_TEXT = re.compile(r"^DeviceFault: ([a-z-]+):")


def fault_kind(error: str | None) -> str | None:
    """The fault kind of a stored ``EvalResult.error`` written from a :class:`DeviceFault`, else ``None``.

    Such a failure is transient (the device's, not the candidate's), so it is never reused for the config.
    """
    m = _FAULT_TEXT.match(error or "")
    return m.group(1) if m and m.group(1) in FAULT_KINDS else None


class DeviceError(LinkError):
    """The device refused a request.

    :param status: ``protocol.ST_*`` code
    :param detail: status-specific value (expected seq/offset, a limit, or the runtime status)
    :param request_type: the refused request's type
    """

    def __init__(self, status: int, detail: int = 0, request_type: int = 0):
        self.status = status
        self.detail = detail
        self.request_type = request_type
        name = P.STATUS_NAMES.get(status, str(status))
        # ST_RUNTIME carries the runtime's own ep_rt_status in detail: name it, it says what to fix.
        what = describe(detail) if status == P.ST_RUNTIME else f"detail {detail}"
        super().__init__(f"device refused request 0x{request_type:02x}: {name} ({what})")

    @property
    def name(self) -> str:
        return P.STATUS_NAMES.get(self.status, str(self.status))


@dataclass(frozen=True)
class Hello:
    """What a device reports about itself (HELLO reply).

    :param protocol: protocol version
    :param build_id: firmware build id ``<git hash>-<config hash>``
    :param core: ``"m0" | "m3" | "m4" | "m7" | "m33" | ...``
    :param clock_hz: core clock (QEMU: the emulated SysTick clock)
    :param counter: ``"dwt"`` (cycles) or ``"icount"`` (QEMU instructions)
    :param counter_scale: counts per counter tick, i.e. the resolution of each count (62.5 on microbit)
    :param arena: tensor arena bytes
    :param max_model: largest model LOAD accepts, bytes
    :param max_payload: frame payload limit
    :param reset_reason: ``"power-on" | "software" | "watchdog" | "other"``
    :param has_runtime: firmware built with the inference runtime
    :param baked_model: deploy build with a compiled-in model
    :param board: board name
    :param model_sha256: SHA-256 of the model the board holds, loaded and validated (``None``: none, a baked
        model, or a firmware older than the field)
    """

    protocol: int
    build_id: str
    core: str
    clock_hz: int
    counter: str
    counter_scale: float
    arena: int
    max_model: int
    max_payload: int
    reset_reason: str
    has_runtime: bool
    baked_model: bool
    board: str
    model_sha256: bytes | None = None

    @property
    def unit(self) -> str:
        return "cycles" if self.counter == "dwt" else "instructions"


@dataclass(frozen=True)
class LoadResult:
    """Reply to a completed model load: what the runtime planned."""

    arena_used: int
    macs: int
    num_inputs: int
    num_outputs: int


@dataclass(frozen=True)
class IoInfo:
    """One model input or output as the device's runtime sees it."""

    bytes: int
    scale: float
    zero_point: int
    dtype: int
    shape: tuple[int, ...]


@dataclass(frozen=True)
class InferResult:
    """INFER n: per-run counts in run order, their min/median, and the outputs of the last run.

    :param counts: one count per run (cycles for ``dwt``, instructions for ``icount``)
    :param min: smallest count
    :param median: lower median
    :param counter: ``"dwt"`` or ``"icount"``
    :param outputs: bytes of every output tensor after the last run (empty if not fetched)
    """

    counts: list[int]
    min: int
    median: int
    counter: str
    outputs: list[bytes] = field(default_factory=list)

    @property
    def unit(self) -> str:
        return "cycles" if self.counter == "dwt" else "instructions"


@dataclass(frozen=True)
class PowerSample:
    """One reading of the board's power monitor."""

    sensor: str
    bus_uv: int
    current_ua: int
    power_uw: int


class Device:
    """A board (or QEMU instance) speaking the edgeprune protocol.

    :param port: an open pyserial-compatible port (see :func:`edgeprune.bench.transports.open_port`)
    :param timeout_s: default deadline for each request's reply
    :param name: label for messages (the path or URL)
    """

    def __init__(self, port: Any, timeout_s: float = 5.0, name: str = "device"):
        self.port = port
        self.timeout_s = timeout_s
        self.name = name
        self._seq = 0
        self._rx = bytearray()
        self._synced = False
        self.last_hello: Hello | None = None
        self.dropped_bytes = 0
        self._unlogged = [0, 0]  # chunks, bytes dropped since the last warning
        self._drop_logged_at: float | None = None
        #: Called while a read waits (every WATCHDOG_INTERVAL_S); raises DeviceGone when the device is gone,
        #: so a dead emulator is noticed at once instead of after the reply deadline.
        self.watchdog: Callable[[], None] | None = None
        #: Deadline of the slow requests (LOAD_END validates the model; INFER runs up to 128 inferences).
        self.slow_timeout_s = 60.0
        #: ``(factor, floor_s)``: derive INFER's deadline from the slowest inference timed on this link (see
        #: BOARD_INFER_DEADLINE); ``None``: ``slow_timeout_s`` always. Until the first INFER answers, the
        #: default deadline holds.
        self.infer_deadline: tuple[float, float] | None = None
        #: Slowest wall time per inference seen on this link (an INFER's round trip over its n), seconds.
        self.slowest_run_s: float | None = None
        #: Seconds the last model load took (``None`` before the first; 0.0 when it was skipped).
        self.last_load_s: float | None = None
        #: The last load was skipped: the board already held that model (HELLO's ``model_sha256``).
        self.last_load_skipped = False
        #: Skip sending a model the board reports it holds (the runtime state is re-set by SET_SEQUENCE and
        #: SET_INPUT before every measurement, so a reload would only re-plan the same arena).
        self.skip_held_model = True
        # LOAD replies of the models loaded over this link, by SHA-256: a skipped load answers with the
        # plan its real load reported (the board does not repeat it in HELLO).
        self._loaded: dict[bytes, LoadResult] = {}

    @classmethod
    def open(cls, url_or_path: str, timeout_s: float = 5.0) -> Device:
        """Open ``/dev/ttyACM0``, ``/dev/pts/N``, ``socket://127.0.0.1:PORT``, a USB serial number, or an
        emulated mps2 board's Ethernet link ``ethudp://127.0.0.1:PORT?bind=PORT`` (``QemuBoard.url``)."""
        return cls(open_port(url_or_path, timeout_s), timeout_s, url_or_path)

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- framing ------------------------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (tests use this for malformed frames)."""
        try:
            self.port.write(data)
            self.port.flush()
        except Exception as exc:  # pyserial raises SerialTimeoutException / OSError subclasses
            if type(exc).__name__ == "SerialTimeoutException":
                raise LinkTimeout(f"{self.name}: write timed out after {self.timeout_s:g} s") from exc
            if type(exc).__module__ == "termios":  # termios.error is no OSError: a tty whose far end is gone
                raise DeviceGone(f"{self.name}: the port failed ({exc}); unplugged?") from exc
            raise

    def next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def read_frame(self, timeout_s: float | None = None) -> P.Frame:
        """The next well-formed frame; garbage up to a delimiter is logged and dropped."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        next_check = time.monotonic() + WATCHDOG_INTERVAL_S
        while True:
            while 0 in self._rx:
                end = self._rx.index(0)
                chunk = bytes(self._rx[:end])
                del self._rx[: end + 1]
                if not chunk:
                    continue
                try:
                    return P.decode_frame(chunk)
                except P.FrameDecodeError as exc:
                    self._dropped(len(chunk), f"undecodable ({exc})")
            if len(self._rx) > 4 * P.MAX_ENCODED:
                self._dropped(len(self._rx), "without a delimiter")
                self._rx.clear()
            now = time.monotonic()
            if self.watchdog is not None and now >= next_check:
                self.watchdog()
                next_check = now + WATCHDOG_INTERVAL_S
            if now >= deadline:
                noise = (f" ({self.dropped_bytes:,} bytes of garbage received: wrong baud rate, or another program "
                         "on the port?)" if self.dropped_bytes else "")
                raise LinkTimeout(f"{self.name}: no reply within {timeout_s or self.timeout_s:g} s; "
                                  f"is the firmware running?{noise}")
            data = self.port.read(max(1, self.port.in_waiting or 0))
            if data:
                self._rx += data

    def _dropped(self, n: int, why: str) -> None:
        self.dropped_bytes += n
        self._unlogged[0] += 1
        self._unlogged[1] += n
        now = time.monotonic()
        if self._drop_logged_at is None:
            log.warning("%s: dropped %d bytes %s; further drops are summarised every %g s",
                        self.name, n, why, DROP_LOG_INTERVAL_S)
        elif now - self._drop_logged_at >= DROP_LOG_INTERVAL_S:
            log.warning("%s: dropped %d more garbled chunks (%d bytes) in %.0f s",
                        self.name, self._unlogged[0], self._unlogged[1], now - self._drop_logged_at)
        else:
            log.debug("%s: dropped %d bytes %s", self.name, n, why)
            return
        self._drop_logged_at = now
        self._unlogged = [0, 0]

    def read_reply(self, seq: int, timeout_s: float | None = None) -> P.Frame:
        """The reply carrying ``seq``; replies to older requests (e.g. after a timeout) are skipped."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while True:
            frame = self.read_frame(max(0.0, deadline - time.monotonic()))
            if frame.seq == seq:
                return frame
            if frame.seq == 0xFFFF and frame.type == (P.MSG_ERROR | P.REPLY_FLAG):
                # The device could not parse something: line garbage flushed by our leading 0x00, or our own
                # frame damaged in transit (then our reply never comes and the deadline raises LinkTimeout).
                err = P.ERROR.unpack(frame.payload)
                log.warning("%s: device dropped an unparsable frame (%s)", self.name, P.STATUS_NAMES.get(err["status"]))
                continue
            log.debug("%s: skipped stale reply seq %d (waiting for %d)", self.name, frame.seq, seq)

    def request(self, type_: int, payload: bytes = b"", timeout_s: float | None = None) -> bytes:
        """Send one request and return its reply payload; raises :class:`DeviceError` on an error reply."""
        if not self._synced and type_ not in (P.MSG_HELLO, P.MSG_RESET):
            # The device still expects the previous session's seqs; HELLO resynchronises them.
            self.hello()
        seq = self.next_seq()
        self.send_raw(b"\0" + P.encode_frame(type_, seq, payload))
        frame = self.read_reply(seq, timeout_s)
        if frame.type == (P.MSG_ERROR | P.REPLY_FLAG):
            err = P.ERROR.unpack(frame.payload)
            raise DeviceError(err["status"], err["detail"], err["request_type"])
        if frame.type != (type_ | P.REPLY_FLAG):
            raise FrameError(f"{self.name}: reply type 0x{frame.type:02x} to request 0x{type_:02x}")
        if type_ in (P.MSG_HELLO, P.MSG_RESET):
            self._synced = type_ == P.MSG_HELLO
        return frame.payload

    # ---- commands ------------------------------------------------------------------------------------

    def hello(self, timeout_s: float | None = None) -> Hello:
        payload = self.request(P.MSG_HELLO, timeout_s=timeout_s)
        # A firmware older than model_sha256 sends a shorter HELLO: the missing tail reads as "no model held".
        h = P.HELLO.unpack(payload.ljust(P.HELLO.size, b"\0"))
        held = bytes(h["model_sha256"])
        self.last_hello = Hello(
            protocol=h["protocol"], build_id=h["build_id"], core=P.CORE_NAMES.get(h["core"], str(h["core"])),
            clock_hz=h["clock_hz"], counter=P.COUNTER_NAMES.get(h["counter"], str(h["counter"])),
            counter_scale=h["counter_scale_milli"] / 1000.0, arena=h["arena_bytes"], max_model=h["max_model"],
            max_payload=h["max_payload"], reset_reason=P.RESET_NAMES.get(h["reset_reason"], str(h["reset_reason"])),
            has_runtime=bool(h["has_runtime"]), baked_model=bool(h["baked_model"]), board=h["board"],
            model_sha256=held if any(held) else None)
        if self.last_hello.protocol != P.PROTOCOL_VERSION:
            raise FrameError(f"{self.name}: firmware speaks protocol {self.last_hello.protocol}, host "
                             f"{P.PROTOCOL_VERSION}; rebuild and flash the firmware")
        return self.last_hello

    def negotiate_baud(self, rates: tuple[int, ...] = BAUD_RATES) -> int:
        """Move the link to the fastest of ``rates`` both ends manage; returns the rate in use.

        Each step is confirmed by a HELLO at the new rate; when it does not come (the USB bridge cannot do the
        rate), the host goes back to the old rate and waits out the board's grace period, after which the
        board is back too. A port without a rate (socket, Ethernet, a pty's peer that ignores it) or a firmware
        without SET_BAUD keeps its rate.
        """
        old = getattr(self.port, "baudrate", None)
        if not isinstance(old, int):
            return 0
        for rate in sorted((r for r in rates if r > old), reverse=True):
            try:
                self.request(MSG_SET_BAUD, P.SET_BAUD.pack(rate=rate))
            except DeviceError as exc:
                if exc.status == P.ST_UNKNOWN_TYPE:
                    log.info("%s: firmware has no SET_BAUD; staying at %d baud", self.name, old)
                    return old
                continue  # the board refuses this rate: try the next
            self.port.baudrate = rate
            try:
                self._confirm_rate()
            except (LinkTimeout, FrameError) as exc:
                log.warning("%s: no HELLO at %d baud (%s); back to %d", self.name, rate, type(exc).__name__, old)
                self.port.baudrate = old
                time.sleep(BAUD_GRACE_S)
                self._rx.clear()
                self.hello()
                continue
            log.info("%s: link at %d baud (was %d)", self.name, rate, old)
            return rate
        return old

    def _confirm_rate(self) -> None:
        """HELLO at a new rate, asked up to BAUD_CONFIRM_TRIES times inside the board's grace period.

        A UART drops what arrives while it is disabled for its BRR write (QEMU's STM32L4 USART does, and a busy
        host can land the first HELLO in that window), so one lost HELLO must not cost the rate. The last reply
        is due well before the board gives up on the new rate; a late reply to an earlier try is skipped by seq.
        """
        time.sleep(BAUD_SETTLE_S)
        per_try = BAUD_GRACE_S * 0.75 / BAUD_CONFIRM_TRIES
        for attempt in range(BAUD_CONFIRM_TRIES):
            try:
                self.hello(timeout_s=per_try)
                return
            except LinkTimeout:
                if attempt == BAUD_CONFIRM_TRIES - 1:
                    raise
                log.debug("%s: HELLO try %d at the new rate lost; asking again", self.name, attempt + 1)

    def load_model(self, tflite: bytes, timeout_s: float | None = None) -> LoadResult:
        """Send a model in chunks; the device checks size and SHA-256, then its runtime validates it.

        The wall-clock time of the whole load is kept in ``last_load_s`` (what the link speed costs). A model
        the board reports holding (HELLO, asked afresh: a reset since would have lost it) is not sent again:
        ``last_load_s`` is then 0.0 and ``last_load_skipped`` true.
        """
        digest = hashlib.sha256(tflite).digest()
        self.last_load_skipped = False
        if self.skip_held_model and digest in self._loaded and self.hello().model_sha256 == digest:
            log.debug("%s: the board already holds model %s; not sent again", self.name, digest.hex()[:12])
            self.last_load_s, self.last_load_skipped = 0.0, True
            return self._loaded[digest]
        started = time.monotonic()
        self._loaded.pop(digest, None)
        try:
            result = self._load_model(tflite, digest, timeout_s)
        finally:
            self.last_load_s = round(time.monotonic() - started, 3)
        self._loaded[digest] = result
        return result

    def _load_model(self, tflite: bytes, digest: bytes, timeout_s: float | None) -> LoadResult:
        self.request(P.MSG_LOAD_BEGIN, P.LOAD_BEGIN.pack(size=len(tflite), sha256=digest))
        for off in range(0, len(tflite), P.MAX_CHUNK):
            self.request(P.MSG_LOAD_CHUNK, struct.pack("<I", off) + tflite[off : off + P.MAX_CHUNK])
        r = P.LOAD_REPLY.unpack(self.request(P.MSG_LOAD_END, timeout_s=timeout_s or max(self.timeout_s, self.slow_timeout_s / 2)))
        return LoadResult(r["arena_used"], r["macs"], r["num_inputs"], r["num_outputs"])

    def set_sequence(self, steps: int, stream_input: int = 0, recurrent_pairs: list[tuple[int, int]] | list[list[int]] = ()) -> None:  # type: ignore[assignment]
        pairs = [tuple(p) for p in recurrent_pairs]
        if len(pairs) > P.MAX_PAIRS:
            raise ValueError(f"{len(pairs)} recurrent pairs, the protocol allows {P.MAX_PAIRS}")
        tail = b"".join(struct.pack("<BB", int(o), int(i)) for o, i in pairs)
        self.request(P.MSG_SET_SEQUENCE, P.SET_SEQUENCE.pack(steps=steps, stream_input=stream_input, npairs=len(pairs)) + tail)

    def set_input(self, index: int, data: bytes) -> None:
        """Write input ``index`` (in sequence mode, the streamed input takes all steps' bytes)."""
        room = P.MAX_PAYLOAD - P.SET_INPUT.size
        for off in range(0, max(len(data), 1), room):
            self.request(P.MSG_SET_INPUT, P.SET_INPUT.pack(index=index, offset=off) + data[off : off + room])

    def io_info(self, is_output: bool, index: int) -> IoInfo:
        r = P.IO_INFO.unpack(self.request(P.MSG_IO_INFO, P.IO_INFO_REQ.pack(is_output=int(is_output), index=index)))
        return IoInfo(r["bytes"], r["scale"], r["zero_point"], r["dtype"], tuple(r["dims"][: r["rank"]]))

    def get_output(self, index: int) -> bytes:
        out = bytearray()
        room = P.MAX_PAYLOAD - P.OUTPUT_REPLY.size
        while True:
            rep = self.request(P.MSG_GET_OUTPUT, P.GET_OUTPUT.pack(index=index, max_len=room, offset=len(out)))
            head = P.OUTPUT_REPLY.unpack(rep)
            out += rep[P.OUTPUT_REPLY.size :]
            if len(out) >= head["total"] or len(rep) == P.OUTPUT_REPLY.size:
                return bytes(out)

    def infer(self, n: int = 1, fetch_outputs: bool = True, timeout_s: float | None = None) -> InferResult:
        """Run ``n`` inferences (1..MAX_RUNS); counts are per run, outputs are those of the last run."""
        if not 1 <= n <= P.MAX_RUNS:
            raise ValueError(f"n={n} outside 1..{P.MAX_RUNS}")
        started = time.monotonic()
        rep = self.request(P.MSG_INFER, P.INFER.pack(n=n), timeout_s=timeout_s or self.infer_timeout(n))
        self.slowest_run_s = max(self.slowest_run_s or 0.0, (time.monotonic() - started) / n)
        head = P.INFER_REPLY.unpack(rep)
        counts = list(struct.unpack_from(f"<{head['n']}I", rep, P.INFER_REPLY.size))
        outputs = [self.get_output(i) for i in range(head["num_outputs"])] if fetch_outputs else []
        return InferResult(counts, head["min"], head["median"], P.COUNTER_NAMES.get(head["counter"], "?"), outputs)

    def infer_timeout(self, n: int) -> float:
        """Deadline of an INFER of ``n`` runs: after it a board is taken as hung (and restarted)."""
        fallback = max(self.timeout_s, self.slow_timeout_s)
        if self.infer_deadline is None or self.slowest_run_s is None:
            return fallback
        factor, floor = self.infer_deadline
        return max(floor, factor * n * self.slowest_run_s)

    def power(self) -> PowerSample | None:
        """One power reading, or None when the board has no meter ("absent")."""
        r = P.POWER.unpack(self.request(P.MSG_POWER))
        if r["sensor"] == P.POWER_ABSENT:
            return None
        return PowerSample(P.POWER_NAMES.get(r["sensor"], str(r["sensor"])), r["bus_uv"], r["current_ua"], r["power_uw"])

    def reset(self, wait_s: float | None = None) -> Hello:
        """Reset the device and wait (up to ``wait_s``) until it answers HELLO again."""
        self.request(P.MSG_RESET)
        deadline = time.monotonic() + (wait_s if wait_s is not None else max(self.timeout_s, 10.0))
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                return self.hello(timeout_s=min(0.5, max(0.05, deadline - time.monotonic())))
            except (LinkTimeout, FrameError) as exc:
                last = exc
        raise LinkTimeout(f"{self.name}: no HELLO after RESET ({last})")
