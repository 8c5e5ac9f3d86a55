"""Uniform random points of the config vector space (the baseline every strategy must beat)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeprune.host.search.strategies.common import StrategyContext, run_sequence


def run(ctx: StrategyContext) -> None:
    lo, hi = ctx.space.vector_bounds()

    def propose(rng: np.random.Generator, index: int) -> tuple[Any, dict[str, Any]]:
        vec = rng.uniform(lo, hi)
        return ctx.space.vector(vec), {"vector": [float(v) for v in vec]}

    run_sequence(ctx, propose, "random")
