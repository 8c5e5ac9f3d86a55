"""Compression of canonical models: structured/unstructured pruning, low-rank SVD, QAT fine-tuning, proxies.

``CompressionConfig`` and friends import without torch; everything else is loaded on first use so
importing this package from the CLI stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from edgeprune.host.compress.compress_errors import CompressError, ConfigError, DataError
from edgeprune.host.compress.config import (
    CompressionConfig,
    Knob,
    LayerConfig,
    from_vector,
    to_vector,
    vector_knobs,
)

_LAZY = {
    "compress": "compressor",
    "Compressed": "compressor",
    "proxies": "cost_proxies",
    "Proxies": "cost_proxies",
    "prune_structured": "structured",
    "factorise": "lowrank",
    "factorise_linear": "lowrank",
    "magnitude_masks": "sparsity",
    "apply_masks": "sparsity",
    "finetune": "finetuning",
    "FinetuneResult": "finetuning",
    "TrainData": "data",
}

__all__ = [
    "CompressionConfig", "LayerConfig", "Knob", "vector_knobs", "to_vector", "from_vector",
    "CompressError", "ConfigError", "DataError", *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"edgeprune.host.compress.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'edgeprune.host.compress' has no attribute {name!r}")
