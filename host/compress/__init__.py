"""Compression of canonical models: structured/unstructured pruning, low-rank SVD, QAT fine-tuning, proxies.

The package exports what imports without torch (``CompressionConfig`` and friends, the errors); the torch code
is imported from its own module (``edgeprune.host.compress.compressor.compress``, ``.finetuning.finetune``,
``.cost_proxies.proxies``, ...), so importing this package from the CLI stays fast.
"""

from __future__ import annotations

from edgeprune.host.compress.compress_errors import CompressError, ConfigError, DataError
from edgeprune.host.compress.config import (
    CompressionConfig,
    Knob,
    LayerConfig,
    from_vector,
    to_vector,
    vector_knobs,
)

__all__ = [
    "CompressionConfig", "LayerConfig", "Knob", "vector_knobs", "to_vector", "from_vector",
    "CompressError", "ConfigError", "DataError",
]
