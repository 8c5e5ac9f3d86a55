"""A deterministic, analytic stand-in evaluator for testing the search machinery on its own.

It is a test double, not a product path: it exercises store, cache, budget, strategies and resume
quickly. The device path is tested with ``HardwareEvaluator`` on QEMU in ``test_search_qemu.py``.
"""

from __future__ import annotations

import json
import time

from edgeprune.host.search.types import (
    ENERGY_UJ,
    FLASH_BYTES,
    LATENCY_COUNT,
    MACS,
    PARAMS,
    QUALITY,
    RAM_BYTES,
    EvalResult,
    EvaluatorIdentity,
    FigureRecord,
)

NAMES = ("gru0", "gru1", "head")


class SyntheticEvaluator:
    def __init__(self, target: str = "synthetic:m4", build_id: str = "b1", delay_s: float = 0.0) -> None:
        self.calls: list[str] = []
        self.target = target
        self.build_id = build_id
        self.delay_s = delay_s

    def identity(self) -> EvaluatorIdentity:
        return EvaluatorIdentity("task-hash-1", self.target, self.build_id)

    def evaluate(self, config) -> EvalResult:
        self.calls.append(config.digest())
        if self.delay_s:
            time.sleep(self.delay_s)
        keep = 1.0
        for lc in config.layers:
            keep *= (1.0 - lc.prune) * (1.0 - 0.5 * lc.sparsity)
            if lc.rank_frac is not None:
                keep *= 0.5 + 0.5 * lc.rank_frac
        bytes_per = 1 if config.quantize == "int8" else 4
        params = 10_000 * keep
        acc = 0.80 - 0.25 * (1.0 - keep) ** 2 - (0.0 if config.quantize == "int8" else -0.001)
        figs = {
            QUALITY: FigureRecord(acc, "accuracy", "qemu", "synthetic"),
            PARAMS: FigureRecord(params, "params", "proxy"),
            MACS: FigureRecord(params * 30, "MACs", "proxy"),
            LATENCY_COUNT: FigureRecord(params * 30 * 3 + 5000, "instructions", "qemu"),
            ENERGY_UJ: FigureRecord(params * 0.01, "uJ", "model"),
            FLASH_BYTES: FigureRecord(20_000 + params * bytes_per, "bytes", "build"),
            RAM_BYTES: FigureRecord(4_000 + params * 0.1, "bytes", "build"),
        }
        layers = [{"name": lc.name, "prune": lc.prune, "sparsity": lc.sparsity} for lc in config.layers]
        return EvalResult(config.to_json(), config.digest(), figs, layers, {"measure": 0.0})

    def close(self) -> None:
        pass


def dumps(obj) -> str:
    return json.dumps(obj)
