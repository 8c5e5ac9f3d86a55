"""One retain rate for every layer, swept from light to heavy compression over the budget.

The sweep is ``budget`` evenly spaced rates; when some were already measured (cache hits cost no
budget) it continues with the midpoints between swept rates, then quarter points, and so on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeprune.host.search.strategies.common import StrategyContext, run_sequence

RATE_HI = 0.95
RATE_LO = 0.10
MAX_LEVELS = 6


def sweep_rates(n: int) -> list[float]:
    """The sweep order: ``n`` evenly spaced rates, then successive bisections of the grid."""
    n = max(2, n)
    grid = list(np.linspace(RATE_HI, RATE_LO, n))
    out = [float(r) for r in grid]
    for _ in range(MAX_LEVELS):
        mids = [float((a + b) / 2) for a, b in zip(grid[:-1], grid[1:], strict=True)]
        out += mids
        merged: list[float] = []
        for a, m in zip(grid[:-1], mids, strict=True):
            merged += [a, m]
        grid = merged + [grid[-1]]
    return out


def run(ctx: StrategyContext) -> None:
    rates = sweep_rates(ctx.session.budget)

    def propose(rng: np.random.Generator, index: int) -> tuple[Any, dict[str, Any]]:
        if index >= len(rates):
            return None, {}
        rate = rates[index]
        return ctx.space.retain(rate), {"retain_rate": rate}

    run_sequence(ctx, propose, "uniform")
