"""PPO over continuous per-layer actions (the layer-wise study), one device evaluation per step."""

from __future__ import annotations

from edgeprune.host.search.strategies.common import StrategyContext, run_sb3


def run(ctx: StrategyContext) -> None:
    # Tiny rollouts: every environment step costs a device evaluation, so updates must come early.
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
            # std ≈ 0.6 in the [-1, 1] box: explores without pinning most samples to the bounds.
            "policy_kwargs": {"net_arch": [32, 32], "log_std_init": -0.5},
        },
    )
