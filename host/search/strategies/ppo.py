"""PPO over continuous per-layer actions (the layer-wise study), one device evaluation per step."""

from __future__ import annotations

from typing import Any

from edgeprune.host.search.strategies.common import StrategyContext, run_sb3


def hyper(ctx: StrategyContext, **extra: Any) -> dict[str, Any]:
    """PPO's settings for a search: tiny rollouts, because every environment step costs a device evaluation,
    so updates must come early."""
    n_steps = 2 * ctx.horizon
    return {
        "n_steps": n_steps,
        "batch_size": n_steps,
        "n_epochs": 5,
        "learning_rate": 3e-4,
        "gamma": 0.9,
        "policy_kwargs": {"net_arch": [32, 32], **extra},
    }


def run(ctx: StrategyContext) -> None:
    # std ≈ 0.6 in the [-1, 1] box: explores without pinning most samples to the bounds.
    run_sb3(ctx, "ppo", hyper(ctx, log_std_init=-0.5))
