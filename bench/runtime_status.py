"""The device runtime's status codes, mirrored from ``ep_rt_status`` in firmware/runtime/ep_runtime.h.

A refused LOAD_END or INFER comes back as protocol status ``ST_RUNTIME`` with the runtime's own code in
``detail``; this module names it. ``tests/device/test_runtime_status_mirror.py`` checks every value
and description against the header, so the two cannot drift apart silently.
"""

from __future__ import annotations

from enum import IntEnum


class RuntimeStatus(IntEnum):
    """``EP_RT_*`` codes: 0 is success, every failure a distinct negative value."""

    OK = 0
    ERR_ARG = -1
    ERR_TRUNCATED = -2
    ERR_IDENTIFIER = -3
    ERR_BOUNDS = -4
    ERR_SUBGRAPHS = -5
    ERR_OP = -6
    ERR_DTYPE = -7
    ERR_SHAPE = -8
    ERR_QUANT = -9
    ERR_BUFFER = -10
    ERR_LIMITS = -11
    ERR_ARENA = -12
    ERR_STATE = -13
    ERR_INDEX = -14
    ERR_SEQUENCE = -15
    ERR_GRAPH = -16
    ERR_RANGE = -17

    @property
    def short(self) -> str:
        """``"OK"``, ``"ARG"``, ``"ARENA"``, …: the name without ``ERR_``."""
        return self.name.removeprefix("ERR_")

    @property
    def meaning(self) -> str:
        return MEANINGS[self]


# The header's comment for each code, word for word.
MEANINGS: dict[RuntimeStatus, str] = {
    RuntimeStatus.OK: "success",
    RuntimeStatus.ERR_ARG: "NULL pointer or nonsensical argument",
    RuntimeStatus.ERR_TRUNCATED: "model shorter than its headers / tables claim",
    RuntimeStatus.ERR_IDENTIFIER: 'not a TFLite flatbuffer ("TFL3") or schema version != 3',
    RuntimeStatus.ERR_BOUNDS: "a flatbuffer offset / vector points outside the model",
    RuntimeStatus.ERR_SUBGRAPHS: "subgraph count != 1",
    RuntimeStatus.ERR_OP: "operator (builtin code, custom op, or option) not supported",
    RuntimeStatus.ERR_DTYPE: "tensor type not supported for this operator",
    RuntimeStatus.ERR_SHAPE: "shapes inconsistent for this operator, or rank > 6",
    RuntimeStatus.ERR_QUANT: "missing / invalid quantisation parameters",
    RuntimeStatus.ERR_BUFFER: "constant buffer size != tensor size, external/offset buffers",
    RuntimeStatus.ERR_LIMITS: "more tensors / ops / IO than EP_RT_MAX_*",
    RuntimeStatus.ERR_ARENA: "arena too small",
    RuntimeStatus.ERR_STATE: "model not initialised (or init failed)",
    RuntimeStatus.ERR_INDEX: "tensor / IO index out of range",
    RuntimeStatus.ERR_SEQUENCE: "bad sequence configuration (pair shapes, stream index, steps)",
    RuntimeStatus.ERR_GRAPH: "tensor read before written, written twice, or bad tensor index",
    RuntimeStatus.ERR_RANGE: "set_input offset + length beyond the tensor / staging buffer",
}


def describe(code: int) -> str:
    """``"OP (operator ... not supported)"`` for a known code, ``"runtime status -99"`` otherwise."""
    try:
        status = RuntimeStatus(code)
    except ValueError:
        return f"runtime status {code}"
    return f"{status.short} ({status.meaning})"
