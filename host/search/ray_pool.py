"""The Ray engine: evaluations as Ray actors on an existing cluster, each where its device is.

Every node advertises what it can measure as Ray custom resources when it joins (``ray start
--resources '{"edgeprune_m4": 2}'``): ``edgeprune_<core>`` is how many QEMU instances of that core it
can run at once (about its cores), ``edgeprune_board_<USB serial number>`` is a board wired to it. A
worker is an actor holding one unit of its device's resource and one CPU (fine-tuning, one torch
thread), so Ray places it on a node that has that device; the search itself runs on the driver. Only
this module imports Ray (the ``edgeprune[ray]`` extra).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from edgeprune.bench.targets import TargetSpec
from edgeprune.host.search.parallel import Event, PoolError, WorkerContext
from edgeprune.host.search.pool import START_TIMEOUT_S, STOP_TIMEOUT_S, WorkerFactory, open_worker, run_job
from edgeprune.host.search.types import EvaluatorIdentity

log = logging.getLogger(__name__)

RESOURCE_PREFIX = "edgeprune_"


def device_resource(device: str) -> str:
    """The custom resource a node declares for ``device``: ``edgeprune_m4`` for ``qemu:m4``,
    ``edgeprune_board_<SN>`` for ``serial:<SN>`` (a port path names no node, so it is refused)."""
    spec = TargetSpec.parse(device)
    if spec.is_qemu:
        return f"{RESOURCE_PREFIX}{spec.core}"
    if spec.usb_serial:
        return f"{RESOURCE_PREFIX}board_{spec.usb_serial}"
    raise PoolError(f"--device {device}: on Ray, name a board by its USB serial number (serial:<SN>), which says "
                    "which node it is on; a port path does not")


class _Actor:
    """One worker: its evaluator (and device) for the actor's life."""

    def __init__(self, factory: WorkerFactory, slot: int, device: str, context: WorkerContext) -> None:
        self.context = context
        self.evaluator = open_worker(factory, slot, device, context)

    def identity(self) -> EvaluatorIdentity:
        return self.evaluator.identity()  # type: ignore[no-any-return]

    def evaluate(self, config: Any) -> tuple[Any, str, bool]:
        return run_job(self.evaluator, config, self.context)

    def close(self) -> None:
        self.evaluator.close()


class RayPool:
    """Workers as Ray actors on the cluster at ``address``.

    Parameters
    ----------
    address:
        Ray address (``auto``: the cluster ``ray start`` made on this machine); when this process already
        called ``ray.init`` that connection is used.
    devices:
        The search's ``--device`` list: one QEMU core (workers spread over the nodes that declare it), or
        ``serial:<SN>`` boards (one worker each, on the node that declares the board).
    workers:
        Workers for QEMU: a number, or ``"auto"`` / 1 = every unit of ``edgeprune_<core>`` in the cluster.
    factory:
        ``factory(slot, device) -> Evaluator`` (pickled to the nodes; they need edgeprune installed).
    start_timeout_s:
        Deadline for every actor to open its device and answer.
    """

    def __init__(self, address: str, devices: Sequence[str], workers: int | str, factory: WorkerFactory,
                 start_timeout_s: float = START_TIMEOUT_S) -> None:
        import ray

        self._ray = ray
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        self.factory = factory
        self.start_timeout_s = float(start_timeout_s)
        self.slots = self._plan(list(devices), workers)
        self.capacity = len(self.slots)
        self._actors: dict[int, Any] = {}
        self._busy: dict[int, int] = {}  # worker -> job
        self._pending: dict[Any, tuple[int, int]] = {}  # object ref -> (worker, job)
        self._context: WorkerContext | None = None

    def _plan(self, devices: list[str], workers: int | str) -> list[tuple[str, str]]:
        """``(device, resource)`` of every worker, checked against what the cluster declares."""
        available = self._ray.cluster_resources()
        wanted = [(d, device_resource(d)) for d in devices]
        if len(wanted) == 1 and not wanted[0][1].startswith(f"{RESOURCE_PREFIX}board_"):
            device, resource = wanted[0]
            offered = int(available.get(resource, 0))
            n = offered if str(workers) in ("auto", "1") else int(workers)
            if offered < max(1, n):
                raise PoolError(f"the Ray cluster offers {offered} × {resource}, {max(1, n)} needed: start each node "
                                f"with `ray start ... --resources '{{\"{resource}\": <emulators it can run>}}'`")
            wanted = [(device, resource)] * n
        for device, resource in wanted:
            if available.get(resource, 0) < 1:
                raise PoolError(f"no node of the Ray cluster declares {resource} (for {device}); start the node "
                                f"the board is wired to with `ray start ... --resources '{{\"{resource}\": 1}}'`")
        return wanted

    def _actor(self, slot: int) -> Any:
        assert self._context is not None
        device, resource = self.slots[slot]
        remote = self._ray.remote(_Actor).options(num_cpus=1, resources={resource: 1}, max_restarts=0,
                                                  name=None, max_concurrency=1)
        actor = remote.remote(self.factory, slot, device, self._context)
        self._actors[slot] = actor
        return actor

    def start(self, context: WorkerContext) -> list[tuple[str, EvaluatorIdentity]]:
        self._context = context
        refs = [self._actor(slot).identity.remote() for slot in range(self.capacity)]
        try:
            idents = self._ray.get(refs, timeout=self.start_timeout_s)
        except self._ray.exceptions.GetTimeoutError as exc:
            self.close()
            raise PoolError(f"the Ray workers were not ready within {self.start_timeout_s:.0f} s") from exc
        except self._ray.exceptions.RayError as exc:
            self.close()
            raise PoolError(f"a Ray worker could not open its device: {exc}") from exc
        return [(device, ident) for (device, _), ident in zip(self.slots, idents, strict=True)]

    def idle(self) -> list[int]:
        return [slot for slot in self._actors if slot not in self._busy]

    def dispatch(self, worker: int, job: int, config: Any) -> None:
        self._busy[worker] = job
        self._pending[self._actors[worker].evaluate.remote(config)] = (worker, job)

    def poll(self, timeout_s: float) -> list[Event]:
        if not self._pending:
            time.sleep(min(timeout_s, 0.05))
            return []
        refs = list(self._pending)
        ready, rest = self._ray.wait(refs, num_returns=1, timeout=timeout_s)
        if ready and rest:
            more, _ = self._ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        events = []
        for ref in ready:
            worker, job = self._pending.pop(ref)
            del self._busy[worker]
            device = self.slots[worker][0]
            try:
                events.append(Event(job, worker, outcome=self._ray.get(ref, timeout=STOP_TIMEOUT_S)))
            except self._ray.exceptions.RayActorError as exc:
                events.append(Event(job, worker, failure=f"Ray worker {worker} on {device} died: {exc}"))
                log.warning("Ray worker %d on %s died; starting another", worker, device)
                self._actor(worker)
            except self._ray.exceptions.RayError as exc:
                events.append(Event(job, worker, failure=f"Ray worker {worker} on {device}: {exc}"))
        return events

    def close(self) -> None:
        closing = [a.close.remote() for a in self._actors.values()]
        try:
            self._ray.get(closing, timeout=STOP_TIMEOUT_S)
        except self._ray.exceptions.RayError as exc:  # a dead actor has nothing to close
            log.warning("closing Ray workers: %s", exc)
        for actor in self._actors.values():
            self._ray.kill(actor)
        self._actors.clear()
        if self._owns_ray:
            self._ray.shutdown()
