"""Kept so ``edgeprune.export.carray`` keeps working: the C-array writer lives in ``edgeprune.bench.carray``
because the deploy build (bench) generates C arrays too, and bench may not import export."""

from __future__ import annotations

from edgeprune.bench.carray import BYTES_PER_LINE, SYMBOL, c_source

__all__ = ["BYTES_PER_LINE", "SYMBOL", "c_source"]
