"""PPO over the discrete study's 16 actions (8 pruning ratios × float32/int8), one device evaluation
per step: the same agent as ``ppo`` on the action space the discrete study used with its own agent."""

from __future__ import annotations

from edgeprune.host.search.strategies.common import StrategyContext, run_sb3
from edgeprune.host.search.strategies.ppo import hyper


def run(ctx: StrategyContext) -> None:
    run_sb3(ctx, "ppo", hyper(ctx), mode="discrete")
