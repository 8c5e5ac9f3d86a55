"""CMA-ES (Optuna's ``CmaEsSampler``) over the config vector."""

from __future__ import annotations

from typing import Any

from edgeprune.host.search.strategies.common import StrategyContext, run_optuna


def run(ctx: StrategyContext) -> None:
    def sampler(seed: int) -> Any:
        import optuna

        # Small populations: the budget is a few dozen device evaluations at most.
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=1, popsize=4, warn_independent_sampling=False)

    run_optuna(ctx, sampler)
