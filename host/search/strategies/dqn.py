"""DQN over the 16 discrete compression actions, one device evaluation per step."""

from __future__ import annotations

from edgeprune.host.search.strategies.common import StrategyContext, run_sb3


def run(ctx: StrategyContext) -> None:
    budget = max(1, ctx.session.budget)
    run_sb3(
        ctx,
        "dqn",
        {
            "buffer_size": 2000,
            "learning_starts": ctx.horizon,
            "batch_size": 8,
            "train_freq": 1,
            "gradient_steps": 1,
            "target_update_interval": 2 * ctx.horizon,
            # Exploration decays over about half the budget (total steps ≈ 4 × budget + free proposals).
            "exploration_fraction": min(0.5, budget / (8 * budget + ctx.session.max_free_proposals)),
            "exploration_final_eps": 0.1,
            "gamma": 0.9,
            "policy_kwargs": {"net_arch": [32, 32]},
        },
    )
