"""Python mirror of ``firmware/include/ep_protocol.h`` (the host/device contract).

Constants carry the header's names without the ``EP_`` prefix; each payload struct is a
:class:`Layout` listing the C fields in order. ``tests/device/test_protocol_mirror.py`` parses the
header and fails if any constant, field, type or size differs. Framing (COBS + CRC) lives here too,
because the golden frames pin both sides to the same bytes.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

PROTOCOL_VERSION = 1

MAX_PAYLOAD = 1024
FRAME_OVERHEAD = 10
MAX_BODY = MAX_PAYLOAD + FRAME_OVERHEAD
MAX_ENCODED = MAX_BODY + MAX_BODY // 254 + 2
CHUNK_HEADER = 4
MAX_CHUNK = MAX_PAYLOAD - CHUNK_HEADER
MAX_RUNS = 128
MAX_PAIRS = 8
BUILD_ID_LEN = 32
BOARD_LEN = 16
MAX_DIMS = 6
BAUD_DEFAULT = 115_200
BAUD_GRACE_MS = 1000
REPLY_FLAG = 0x80

MSG_HELLO = 0x01
MSG_LOAD_BEGIN = 0x02
MSG_LOAD_CHUNK = 0x03
MSG_LOAD_END = 0x04
MSG_SET_SEQUENCE = 0x05
MSG_SET_INPUT = 0x06
MSG_INFER = 0x07
MSG_GET_OUTPUT = 0x08
MSG_POWER = 0x09
MSG_RESET = 0x0A
MSG_IO_INFO = 0x0B
MSG_TEST_HANG = 0x0C
MSG_SET_BAUD = 0x0D
MSG_ERROR = 0x7F

ST_OK = 0
ST_CRC = 1
ST_COBS = 2
ST_TOO_LONG = 3
ST_TRUNCATED = 4
ST_VERSION = 5
ST_UNKNOWN_TYPE = 6
ST_BAD_LENGTH = 7
ST_SEQUENCE = 8
ST_NO_LOAD = 9
ST_LOAD_ORDER = 10
ST_MODEL_TOO_BIG = 11
ST_LOAD_SIZE = 12
ST_HASH = 13
ST_RUNTIME = 14
ST_NO_MODEL = 15
ST_BAD_ARG = 16
ST_NO_RUNTIME = 17

CORE_M0 = 0
CORE_M0PLUS = 1
CORE_M3 = 3
CORE_M4 = 4
CORE_M7 = 7
CORE_M33 = 33

COUNTER_DWT = 0
COUNTER_ICOUNT = 1

RESET_POWER_ON = 0
RESET_SOFTWARE = 1
RESET_WATCHDOG = 2
RESET_OTHER = 3

POWER_ABSENT = 0
POWER_INA219 = 1
POWER_INA226 = 2

STATUS_NAMES = {v: k[3:] for k, v in dict(globals()).items() if k.startswith("ST_") and isinstance(v, int)}
CORE_NAMES = {CORE_M0: "m0", CORE_M0PLUS: "m0plus", CORE_M3: "m3", CORE_M4: "m4", CORE_M7: "m7", CORE_M33: "m33"}
COUNTER_NAMES = {COUNTER_DWT: "dwt", COUNTER_ICOUNT: "icount"}
RESET_NAMES = {RESET_POWER_ON: "power-on", RESET_SOFTWARE: "software", RESET_WATCHDOG: "watchdog", RESET_OTHER: "other"}
POWER_NAMES = {POWER_ABSENT: "absent", POWER_INA219: "ina219", POWER_INA226: "ina226"}

# C type → struct code. "char" fields are fixed NUL-padded strings.
_CODES = {"uint8_t": "B", "int8_t": "b", "uint16_t": "H", "int16_t": "h", "uint32_t": "I", "int32_t": "i",
          "float": "f", "char": "s"}


@dataclass(frozen=True)
class Layout:
    """One packed payload struct of the header.

    :param c_name: the typedef name in ep_protocol.h
    :param fields: ``(name, c_type, count)`` in declaration order; count > 1 is an array
    """

    c_name: str
    fields: tuple[tuple[str, str, int], ...]

    @property
    def fmt(self) -> str:
        parts = []
        for _, ctype, count in self.fields:
            code = _CODES[ctype]
            parts.append(f"{count}{code}" if count > 1 or code == "s" else code)
        return "<" + "".join(parts)

    @property
    def size(self) -> int:
        return struct.calcsize(self.fmt)

    def pack(self, **values: Any) -> bytes:
        """Pack keyword fields (missing ones are zero; arrays are sequences, strings are str/bytes)."""
        unknown = set(values) - {f[0] for f in self.fields}
        if unknown:
            raise ValueError(f"{self.c_name} has no field(s) {sorted(unknown)}; see firmware/include/ep_protocol.h")
        flat: list[Any] = []
        for name, ctype, count in self.fields:
            v = values.get(name)
            if ctype == "char":
                flat.append((v.encode() if isinstance(v, str) else (v or b""))[:count])
            elif count > 1:
                seq = list(v) if v is not None else []
                flat.extend((seq + [0] * count)[:count])
            else:
                flat.append(v if v is not None else 0)
        return struct.pack(self.fmt, *flat)

    def unpack(self, data: bytes) -> dict[str, Any]:
        """Unpack the first ``size`` bytes of ``data`` into a dict (strings decoded, NULs stripped)."""
        flat = list(struct.unpack_from(self.fmt, data))
        out: dict[str, Any] = {}
        for name, ctype, count in self.fields:
            if ctype == "char":
                out[name] = flat.pop(0).split(b"\0", 1)[0].decode("ascii", "replace")
            elif count > 1:
                out[name] = [flat.pop(0) for _ in range(count)]
            else:
                out[name] = flat.pop(0)
        return out


def _layout(c_name: str, *fields: tuple[str, str] | tuple[str, str, int]) -> Layout:
    return Layout(c_name, tuple((f[0], f[1], f[2] if len(f) > 2 else 1) for f in fields))  # type: ignore[misc]


HELLO = _layout("ep_hello_t", ("protocol", "uint16_t"), ("core", "uint8_t"), ("counter", "uint8_t"),
                ("clock_hz", "uint32_t"), ("counter_scale_milli", "uint32_t"), ("arena_bytes", "uint32_t"),
                ("max_model", "uint32_t"), ("max_payload", "uint32_t"), ("reset_reason", "uint8_t"),
                ("has_runtime", "uint8_t"), ("baked_model", "uint8_t"), ("reserved", "uint8_t"),
                ("build_id", "char", BUILD_ID_LEN), ("board", "char", BOARD_LEN), ("model_sha256", "uint8_t", 32))
LOAD_BEGIN = _layout("ep_load_begin_t", ("size", "uint32_t"), ("sha256", "uint8_t", 32))
LOAD_CHUNK = _layout("ep_load_chunk_t", ("offset", "uint32_t"))
LOAD_REPLY = _layout("ep_load_reply_t", ("arena_used", "uint32_t"), ("macs", "uint32_t"),
                     ("num_inputs", "uint8_t"), ("num_outputs", "uint8_t"), ("reserved", "uint16_t"))
SET_SEQUENCE = _layout("ep_set_sequence_t", ("steps", "uint16_t"), ("stream_input", "uint8_t"), ("npairs", "uint8_t"))
SET_INPUT = _layout("ep_set_input_t", ("index", "uint8_t"), ("reserved", "uint8_t", 3), ("offset", "uint32_t"))
INFER = _layout("ep_infer_t", ("n", "uint16_t"), ("reserved", "uint16_t"))
INFER_REPLY = _layout("ep_infer_reply_t", ("n", "uint16_t"), ("counter", "uint8_t"), ("num_outputs", "uint8_t"),
                      ("min", "uint32_t"), ("median", "uint32_t"))
GET_OUTPUT = _layout("ep_get_output_t", ("index", "uint8_t"), ("reserved", "uint8_t"), ("max_len", "uint16_t"),
                     ("offset", "uint32_t"))
OUTPUT_REPLY = _layout("ep_output_reply_t", ("total", "uint32_t"), ("offset", "uint32_t"))
POWER = _layout("ep_power_t", ("sensor", "uint8_t"), ("reserved", "uint8_t", 3), ("bus_uv", "uint32_t"),
                ("current_ua", "int32_t"), ("power_uw", "uint32_t"))
IO_INFO_REQ = _layout("ep_io_info_req_t", ("is_output", "uint8_t"), ("index", "uint8_t"), ("reserved", "uint16_t"))
IO_INFO = _layout("ep_io_info_t", ("bytes", "uint32_t"), ("scale", "float"), ("zero_point", "int32_t"),
                  ("dtype", "uint8_t"), ("rank", "uint8_t"), ("reserved", "uint16_t"), ("dims", "int32_t", MAX_DIMS))
SET_BAUD = _layout("ep_set_baud_t", ("rate", "uint32_t"))
ERROR = _layout("ep_error_t", ("request_type", "uint8_t"), ("reserved", "uint8_t"), ("status", "int16_t"),
                ("detail", "int32_t"))

LAYOUTS: tuple[Layout, ...] = (HELLO, LOAD_BEGIN, LOAD_CHUNK, LOAD_REPLY, SET_SEQUENCE, SET_INPUT, INFER,
                               INFER_REPLY, GET_OUTPUT, OUTPUT_REPLY, POWER, IO_INFO_REQ, IO_INFO, SET_BAUD, ERROR)


# ---- framing -------------------------------------------------------------------------------------------

class FrameDecodeError(ValueError):
    """A received frame is malformed; ``status`` is the ``ST_*`` code the firmware would answer with."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"{STATUS_NAMES.get(status, status)}: {detail}")
        self.status = status


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    :param type: message type (a reply has ``REPLY_FLAG`` set)
    :param seq: sequence number echoed by replies
    :param payload: payload bytes
    :param version: protocol version byte
    """

    type: int
    seq: int
    payload: bytes
    version: int = PROTOCOL_VERSION


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def cobs_encode(data: bytes) -> bytes:
    """Canonical COBS (no trailing delimiter): a 254-byte run that ends the data opens no new block."""
    out = bytearray([0])
    code_at, code = 0, 1
    for i, b in enumerate(data):
        if b == 0:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
        else:
            out.append(b)
            code += 1
            if code == 0xFF and i + 1 < len(data):
                out[code_at] = code
                code_at, code = len(out), 1
                out.append(0)
    out[code_at] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        i += 1
        if code == 0 or i + code - 1 > len(data):
            raise FrameDecodeError(ST_COBS, "bad COBS block")
        block = data[i : i + code - 1]
        if 0 in block:
            raise FrameDecodeError(ST_COBS, "zero inside a COBS block")
        out += block
        i += code - 1
        if code != 0xFF and i < len(data):
            out.append(0)
    return bytes(out)


def body(type_: int, seq: int, payload: bytes = b"", version: int = PROTOCOL_VERSION) -> bytes:
    head = struct.pack("<BBHH", version, type_, seq & 0xFFFF, len(payload)) + payload
    return head + struct.pack("<I", crc32(head))


def encode_frame(type_: int, seq: int, payload: bytes = b"", version: int = PROTOCOL_VERSION) -> bytes:
    """COBS(body) + 0x00, exactly as the firmware builds it."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds MAX_PAYLOAD={MAX_PAYLOAD}")
    return cobs_encode(body(type_, seq, payload, version)) + b"\0"


def decode_frame(encoded: bytes) -> Frame:
    """Decode one frame without its delimiter; raises :class:`FrameDecodeError` like the firmware parser."""
    raw = cobs_decode(encoded)
    if len(raw) < FRAME_OVERHEAD:
        raise FrameDecodeError(ST_TRUNCATED, f"{len(raw)}-byte body is shorter than a header")
    version, type_, seq, length = struct.unpack_from("<BBHH", raw)
    if length + FRAME_OVERHEAD != len(raw):
        status = ST_TOO_LONG if length > MAX_PAYLOAD else ST_TRUNCATED
        raise FrameDecodeError(status, f"len field {length} but body holds {len(raw) - FRAME_OVERHEAD}")
    (crc,) = struct.unpack_from("<I", raw, len(raw) - 4)
    if crc32(raw[:-4]) != crc:
        raise FrameDecodeError(ST_CRC, "CRC mismatch")
    if version != PROTOCOL_VERSION:
        raise FrameDecodeError(ST_VERSION, f"protocol version {version}, expected {PROTOCOL_VERSION}")
    return Frame(type_, seq, raw[6:-4], version)
