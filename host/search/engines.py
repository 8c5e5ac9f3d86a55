"""Which engine runs a search's evaluations: none (the search's own evaluator), local processes, or Ray."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edgeprune.bench.targets import TargetSpec, split_specs
from edgeprune.host.search.parallel import (
    ParallelEvaluations,
    WorkerContext,
    worker_count,
    worker_devices,
)
from edgeprune.host.search.pool import HardwareWorkers, LocalPool
from edgeprune.host.search.ray_pool import RayPool
from edgeprune.host.search.session import SearchSession

log = logging.getLogger(__name__)

#: Strategies that learn from one result before proposing the next: they take the pool one at a time.
# PPO and DQN step one environment per worker together (host/search/vec_env.py): none is left here.
SEQUENTIAL_STRATEGIES: tuple[str, ...] = ("greedy",)


def start_parallel(options: Any, session: SearchSession, evaluator: Any, run_dir: Path,
                   worker_factory: Any = None) -> ParallelEvaluations | None:
    """Start the workers ``options`` ask for (``workers`` > 1, several boards, or ``ray_address``), or ``None``.

    Called once the baseline is measured: the search's own evaluator then releases its device (a board
    cannot be open twice) and each worker opens its own.
    """
    devices = split_specs(options.device)
    is_qemu = TargetSpec.parse(devices[0]).is_qemu
    ray_address = getattr(options, "ray_address", None)
    workers = getattr(options, "workers", 1)
    if ray_address is None and str(workers) == "1" and len(devices) == 1:
        return None
    if worker_factory is None:
        worker_factory = HardwareWorkers(options.to_dict(), str(run_dir) if ray_address is None else "")
    base = getattr(evaluator, "_base", None)  # the baseline's deploy build (see WorkerContext.deploy_base)
    assert session.objective is not None
    context = WorkerContext(session.objective, session.constraints.max_acc_drop, base, session.fidelity)
    if ray_address is not None:
        engine: Any = RayPool(ray_address, devices, workers, worker_factory)
    else:
        n = worker_count(workers, devices, is_qemu)
        engine = LocalPool(worker_devices(options.device, n), worker_factory)
    if options.strategy in SEQUENTIAL_STRATEGIES:
        log.warning("%s learns from each result before its next proposal: it uses the %d workers one at a time",
                    options.strategy, engine.capacity)
    parallel = ParallelEvaluations(session, engine)
    session.fixed_identity = session.identity()
    evaluator.close()  # the workers open their own devices
    parallel.start(context)
    return parallel
