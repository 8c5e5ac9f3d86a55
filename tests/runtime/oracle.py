"""TFLM (PyPI tflite-micro) as the oracle: run a flatbuffer with given inputs (test helper)."""

from __future__ import annotations

import numpy as np

from edgeprune.bench.tflm import ORACLE_ARENA_DEFAULT


def tflm_interpreter(tflite: bytes, arena_size: int = ORACLE_ARENA_DEFAULT):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(tflite, arena_size=arena_size)


def tflm_run(tflite: bytes, inputs: list[np.ndarray], n_outputs: int = 1, arena_size: int = ORACLE_ARENA_DEFAULT) -> list[np.ndarray]:
    it = tflm_interpreter(tflite, arena_size)
    for i, x in enumerate(inputs):
        it.set_input(np.ascontiguousarray(x), i)
    it.invoke()
    return [np.array(it.get_output(i)) for i in range(n_outputs)]
