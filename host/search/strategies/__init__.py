"""Search strategies: each module only proposes configs; ``common`` holds the shared drivers.

``get_strategy(name)`` returns the module's ``run(ctx)`` function.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

STRATEGIES = ("ppo", "ppo-discrete", "dqn", "tpe", "cmaes", "random", "uniform", "greedy")


def get_strategy(name: str) -> Callable[[Any], None]:
    """The ``run(ctx: StrategyContext)`` function of strategy ``name``."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    module = importlib.import_module(f"edgeprune.host.search.strategies.{name.replace('-', '_')}")
    return module.run  # type: ignore[no-any-return]
