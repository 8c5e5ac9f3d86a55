"""PPO over the discrete study's 16 actions (8 pruning ratios × float32/int8), one device evaluation
per step: the same agent as ``ppo`` on the action space the discrete study used with its own agent."""

from __future__ import annotations

from edgeprune.host.search.strategies.common import StrategyContext, run_sb3


def run(ctx: StrategyContext) -> None:
    n_steps = 2 * ctx.horizon
    run_sb3(
        ctx,
        "ppo",
        {
            "n_steps": n_steps,
            "batch_size": n_steps,
            "n_epochs": 5,
            "learning_rate": 3e-4,
            "gamma": 0.9,
            "policy_kwargs": {"net_arch": [32, 32]},
        },
        mode="discrete",
    )
