"""Optuna's TPE sampler over the config vector."""

from __future__ import annotations

from typing import Any

from edgeprune.host.search.strategies.common import StrategyContext, run_optuna


def run(ctx: StrategyContext) -> None:
    # A third of the budget (2..5 points) explores at random before TPE models the front.
    n_startup = max(2, min(5, ctx.session.budget // 3))

    def sampler(seed: int) -> Any:
        import optuna

        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup)

    run_optuna(ctx, sampler)
