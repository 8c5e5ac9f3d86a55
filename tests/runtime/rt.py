"""ctypes binding of the firmware runtime built for the host (test helper, not library code)."""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np

from edgeprune.bench.runtime_status import RuntimeStatus

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "firmware" / "runtime"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared"]

# The runtime's status codes by value, from the checked mirror of ep_runtime.h (not copied by hand).
STATUS = {int(s): s.short for s in RuntimeStatus}
NO_FUSE = 1  # EP_RT_INIT_NO_FUSE
DTYPES = {0: np.float32, 2: np.int32, 9: np.int8, 3: np.uint8, 7: np.int16}


def sources() -> list[str]:
    return [str(p) for p in sorted(RUNTIME.glob("*.c"))] + [str(RUNTIME / "tests" / "host_shim.c")]


def build(out: Path, extra: list[str] | None = None) -> Path:
    cmd = ["gcc", *CFLAGS, *(extra or ["-O2"]), "-o", str(out), *sources(), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)
    return out


class TensorInfo(ctypes.Structure):
    """ctypes mirror of ``ep_tensor_info_t`` (fields as in ep_runtime.h)."""

    _fields_ = [
        ("data", ctypes.c_void_p), ("bytes", ctypes.c_uint32), ("dtype", ctypes.c_uint8),
        ("scale", ctypes.c_float), ("zero_point", ctypes.c_int32), ("rank", ctypes.c_uint8),
        ("dims", ctypes.c_int32 * 6),
    ]


class Runtime:
    """Thin wrapper over the shared library: one model, one arena.

    :param lib_path: the runtime built as a shared library by ``build``
    """

    def __init__(self, lib_path: Path):
        self.lib = ctypes.CDLL(str(lib_path))
        L = self.lib
        L.ep_host_model_size.restype = ctypes.c_uint32
        L.ep_model_init.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_uint32]
        L.ep_model_init_ex.argtypes = [*L.ep_model_init.argtypes, ctypes.c_uint32]
        L.ep_model_num_fused.argtypes = [ctypes.c_void_p]
        L.ep_model_num_fused.restype = ctypes.c_uint32
        L.ep_model_io.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.POINTER(TensorInfo)]
        L.ep_model_set_input.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_uint32]
        L.ep_model_set_sequence.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_uint32]
        L.ep_model_invoke.argtypes = [ctypes.c_void_p]
        L.ep_model_num_inputs.argtypes = [ctypes.c_void_p]
        L.ep_model_num_outputs.argtypes = [ctypes.c_void_p]
        L.ep_model_arena_used.argtypes = [ctypes.c_void_p]
        L.ep_model_arena_used.restype = ctypes.c_uint32
        L.ep_model_macs.argtypes = [ctypes.c_void_p]
        L.ep_model_macs.restype = ctypes.c_uint64
        L.ep_rt_status_str.restype = ctypes.c_char_p
        L.ep_requantize.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_float, ctypes.c_int32,
                                    ctypes.c_float, ctypes.c_int32]
        L.ep_requantize16.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_float, ctypes.c_float]
        L.ep_logistic_i8.argtypes = [ctypes.c_int32] * 4
        L.ep_logistic_i8.restype = ctypes.c_int8
        L.ep_tanh_i8.argtypes = [ctypes.c_int32] * 4
        L.ep_tanh_i8.restype = ctypes.c_int8
        self.model = ctypes.create_string_buffer(L.ep_host_model_size())
        self.arena = None
        self.blob = None

    def init(self, tflite: bytes, arena_len: int = 1 << 20, flags: int | None = None) -> int:
        """``ep_model_init``, or ``ep_model_init_ex`` with ``flags`` (``NO_FUSE``: the op-by-op path)."""
        self.blob = ctypes.create_string_buffer(tflite, len(tflite))  # kept alive: constants point into it
        self.arena = ctypes.create_string_buffer(arena_len)
        if flags is None:
            return self.lib.ep_model_init(self.model, self.blob, len(tflite), self.arena, arena_len)
        return self.lib.ep_model_init_ex(self.model, self.blob, len(tflite), self.arena, arena_len, flags)

    @property
    def num_fused(self) -> int:
        return int(self.lib.ep_model_num_fused(self.model))

    def io(self, is_output: bool, index: int) -> TensorInfo:
        info = TensorInfo()
        st = self.lib.ep_model_io(self.model, int(is_output), index, ctypes.byref(info))
        assert st == 0, STATUS.get(st)
        return info

    def set_input(self, index: int, data: bytes, offset: int = 0) -> int:
        return self.lib.ep_model_set_input(self.model, index, offset, data, len(data))

    def set_sequence(self, steps: int, stream_input: int, pairs: list[tuple[int, int]]) -> int:
        raw = bytes(b for p in pairs for b in p)
        return self.lib.ep_model_set_sequence(self.model, steps, stream_input, raw or None, len(pairs))

    def invoke(self) -> int:
        return self.lib.ep_model_invoke(self.model)

    def output(self, index: int) -> np.ndarray:
        info = self.io(True, index)
        raw = ctypes.string_at(info.data, info.bytes)
        return np.frombuffer(raw, dtype=DTYPES[info.dtype]).reshape(tuple(info.dims[: info.rank]))

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        for i, x in enumerate(inputs):
            st = self.set_input(i, np.ascontiguousarray(x).tobytes())
            assert st == 0, STATUS.get(st)
        st = self.invoke()
        assert st == 0, STATUS.get(st)
        return [self.output(i).copy() for i in range(self.lib.ep_model_num_outputs(self.model))]
