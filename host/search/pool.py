"""The local engine: one process per worker on this machine, each owning its own device target.

A worker is a ``multiprocessing`` process (``spawn``: no inherited torch/TF threads) that builds its
evaluator once — its own QEMU instance from the existing launcher, or its one board — answers with the
evaluator's identity (HELLO's core and build), then evaluates the configs it is sent over its ``Pipe``
one at a time. Fine-tuning in a worker uses one torch thread, so N workers use N cores. A worker that
dies is noticed by its process sentinel; its job is reported failed and a new worker is started on the
same device (its pid file ends the emulator the dead one left behind).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from edgeprune.bench.proc_group import die_with_parent
from edgeprune.bench.targets import probe
from edgeprune.host.search.evaluator import HardwareEvaluator
from edgeprune.host.search.options import SearchOptions, board_link_options, load_task
from edgeprune.host.search.parallel import Event, PoolError, WorkerContext
from edgeprune.host.search.session import screen_and_measure
from edgeprune.host.search.types import EvaluatorIdentity

log = logging.getLogger(__name__)

#: Deadline for a worker to load the task, start its device and answer HELLO (a loaded 2-core host is slow).
START_TIMEOUT_S = 600.0
#: Deadline for a worker to stop after being asked to.
STOP_TIMEOUT_S = 20.0
#: Replacement workers started on one device before the search gives up on it (a device that kills every
#: worker would otherwise be restarted forever).
MAX_RESTARTS = 3

#: ``factory(slot, device) -> Evaluator``, picklable (it crosses into the worker process).
WorkerFactory = Callable[[int, str], Any]


def one_thread() -> None:
    """Fine-tuning in a worker uses one core: N workers, N cores (set before torch starts its pools)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                "TF_NUM_INTEROP_THREADS"):
        os.environ[var] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def open_worker(factory: WorkerFactory, slot: int, device: str, context: WorkerContext) -> Any:
    """A worker's evaluator, primed with the search's deploy anchor (see ``WorkerContext.deploy_base``)."""
    one_thread()
    evaluator = factory(slot, device)
    one_thread()
    if context.deploy_base is not None and hasattr(evaluator, "_base"):
        # HardwareEvaluator keeps its first deploy build as the anchor of derived flash/RAM; the search's
        # own evaluator built it for the baseline, so every worker derives exactly as one worker would.
        evaluator._base = context.deploy_base
    return evaluator


def run_job(evaluator: Any, config: Any, context: WorkerContext) -> tuple[Any, str, bool]:
    """One evaluation in a worker: the same screening and measuring as a single-worker search."""
    return screen_and_measure(evaluator, config, context.objective, context.max_acc_drop,
                              getattr(context, "fidelity", False))


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through ``finally``: the worker's emulator is stopped


def _worker_main(factory: WorkerFactory, slot: int, device: str, context: WorkerContext, conn: Connection) -> None:
    # Ctrl-C reaches the whole process group: the search decides (it ends busy workers with SIGTERM).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    # A search killed outright (SIGKILL, OOM) cannot end its workers: the kernel does, so no worker goes on
    # fine-tuning with its emulator for minutes as an orphan (seen before this: a SIGTERMed search's two
    # workers re-parented to init, still busy).
    if not die_with_parent(signal.SIGTERM):
        return
    try:
        evaluator = open_worker(factory, slot, device, context)
        ident = evaluator.identity()
    except Exception as exc:  # reported to the search, which refuses to start with a clear reason
        conn.send(("start-failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", ident))
    try:
        _serve(evaluator, slot, context, conn)
    finally:
        evaluator.close()
    # Asked to stop, device closed, nothing left to flush: skip the interpreter's teardown of TF and torch,
    # which takes tens of seconds on a loaded host (measured: 4 workers on 2 busy cores, > 20 s).
    os._exit(0)


def _serve(evaluator: Any, slot: int, context: WorkerContext, conn: Connection) -> None:
    """Evaluate what the search sends until it sends ``None`` or goes away."""
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the search is gone
            return
        if message is None:
            return
        job, config = message
        try:
            outcome = run_job(evaluator, config, context)
        except Exception as exc:  # the job's failure, reported and retried elsewhere; the worker goes on
            log.exception("worker %d: evaluation failed", slot)
            conn.send(("failed", job, f"{type(exc).__name__}: {exc}"))
            continue
        conn.send(("done", job, outcome))


@dataclass
class _Worker:
    slot: int
    device: str
    process: Any
    conn: Connection
    ready: bool = False
    job: int | None = None
    restarts: int = 0
    started: float = field(default_factory=time.monotonic)


class LocalPool:
    """N worker processes on this machine.

    Parameters
    ----------
    devices:
        One device spec per worker (``qemu:m4`` repeated, or one board path each).
    factory:
        ``factory(slot, device) -> Evaluator``; must be picklable (a module-level class or function).
    start_timeout_s:
        Deadline for every worker to be ready.
    """

    def __init__(self, devices: Sequence[str], factory: WorkerFactory, start_timeout_s: float = START_TIMEOUT_S) -> None:
        if not devices:
            raise PoolError("no device for the workers")
        self.devices = list(devices)
        self.factory = factory
        self.capacity = len(self.devices)
        self.start_timeout_s = float(start_timeout_s)
        self._mp = mp.get_context("spawn")
        self._workers: dict[int, _Worker] = {}
        self._context: WorkerContext | None = None
        self._events: list[Event] = []

    def _spawn(self, slot: int, restarts: int = 0) -> _Worker:
        assert self._context is not None
        ours, theirs = self._mp.Pipe()
        process = self._mp.Process(target=_worker_main, name=f"edgeprune-worker-{slot}",
                                   args=(self.factory, slot, self.devices[slot], self._context, theirs), daemon=True)
        process.start()
        theirs.close()
        worker = _Worker(slot, self.devices[slot], process, ours, restarts=restarts)
        self._workers[slot] = worker
        return worker

    def start(self, context: WorkerContext) -> list[tuple[str, EvaluatorIdentity]]:
        """Start every worker and wait until each has its device open; ``(device, identity)`` of each."""
        self._context = context
        for slot in range(self.capacity):
            self._spawn(slot)
        answered: list[tuple[str, EvaluatorIdentity]] = []
        deadline = time.monotonic() + self.start_timeout_s
        try:
            for worker in self._workers.values():
                answered.append((worker.device, self._await_ready(worker, deadline)))
        except BaseException:
            self.close()
            raise
        return answered

    def _await_ready(self, worker: _Worker, deadline: float) -> EvaluatorIdentity:
        remaining = max(0.0, deadline - time.monotonic())
        if not worker.conn.poll(remaining):
            raise PoolError(f"worker {worker.slot} on {worker.device} was not ready within {self.start_timeout_s:.0f} s")
        try:
            kind, payload = worker.conn.recv()
        except EOFError as exc:
            raise PoolError(f"worker {worker.slot} on {worker.device} exited while starting "
                            f"(exit code {worker.process.exitcode})") from exc
        if kind != "ready":
            raise PoolError(f"worker {worker.slot} cannot use {worker.device}: {payload}")
        worker.ready = True
        return payload  # type: ignore[no-any-return]

    def idle(self) -> list[int]:
        return [w.slot for w in self._workers.values() if w.ready and w.job is None and w.process.is_alive()]

    def dispatch(self, worker: int, job: int, config: Any) -> None:
        w = self._workers[worker]
        w.job = job
        try:
            w.conn.send((job, config))
        except (BrokenPipeError, EOFError, OSError):
            self._lost(w)

    def poll(self, timeout_s: float) -> list[Event]:
        """Results and failures that arrived within ``timeout_s``."""
        waitables: list[Any] = []
        for w in self._workers.values():
            waitables += [w.conn, w.process.sentinel]
        if waitables and not self._events:
            wait(waitables, timeout=timeout_s)
        for w in list(self._workers.values()):
            self._read(w)
        events, self._events = self._events, []
        return events

    def _read(self, w: _Worker) -> None:
        try:
            while w.conn.poll(0):
                message = w.conn.recv()
                if message[0] == "ready":
                    w.ready = True
                    log.info("worker %d on %s ready again", w.slot, w.device)
                elif message[0] == "start-failed":
                    raise PoolError(f"worker {w.slot} could not restart on {w.device}: {message[1]}")
                else:
                    kind, job, payload = message
                    w.job = None
                    if kind == "done":
                        self._events.append(Event(job, w.slot, outcome=payload))
                    else:
                        self._events.append(Event(job, w.slot, failure=f"worker {w.slot} on {w.device}: {payload}"))
        except (EOFError, OSError):
            pass
        if not w.process.is_alive():
            self._lost(w)

    def _lost(self, w: _Worker) -> None:
        w.process.join(timeout=STOP_TIMEOUT_S)
        code = w.process.exitcode
        if w.job is not None:
            self._events.append(Event(w.job, w.slot, failure=f"worker {w.slot} on {w.device} (pid {w.process.pid}) "
                                                           f"died (exit code {code}) while evaluating"))
        log.warning("worker %d on %s died (exit code %s); starting another on the same device", w.slot, w.device, code)
        w.conn.close()
        if w.restarts >= MAX_RESTARTS:
            raise PoolError(f"worker {w.slot} on {w.device} died {w.restarts + 1} times; giving up on that device")
        self._spawn(w.slot, w.restarts + 1)

    def close(self) -> None:
        """Ask idle workers to stop and end busy ones (the search is over or failing: their results have no
        taker; each closes its device), then end any that does not stop."""
        for w in self._workers.values():
            if w.job is not None:
                w.process.terminate()
                continue
            try:
                w.conn.send(None)
            except (BrokenPipeError, EOFError, OSError):
                pass
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for w in self._workers.values():
            w.process.join(timeout=max(0.1, deadline - time.monotonic()))
            if w.process.is_alive():
                log.warning("worker %d did not stop; killing it", w.slot)
                w.process.kill()
                w.process.join(timeout=STOP_TIMEOUT_S)
            w.conn.close()
        self._workers.clear()


@dataclass(frozen=True)
class HardwareWorkers:
    """The default worker factory: the run's task and a ``HardwareEvaluator`` on the worker's own device.

    Parameters
    ----------
    options:
        The run's ``SearchOptions`` as a dict (picklable, and what ``--resume`` reads back).
    state_dir:
        Where each worker notes its QEMU pid (``.qemu-w<slot>.pid``) and keeps its deploy builds; the
        run directory locally, a local temporary directory on a Ray node.
    """

    options: dict[str, Any]
    state_dir: str

    def __call__(self, slot: int, device: str) -> Any:
        options = SearchOptions.from_dict(self.options)
        task = load_task(options)
        task.test_sealed = True  # a worker serves selection only: validation data
        # A Ray node has no run directory: its worker keeps its pid file and builds in a directory of its own.
        state = Path(self.state_dir) if self.state_dir else Path(tempfile.mkdtemp(prefix=f"edgeprune-w{slot}-"))
        return HardwareEvaluator(
            task,
            device,
            repeats=options.repeats,
            host_energy=options.host_energy,
            pidfile=state / f".qemu-w{slot}.pid",
            deploy_dir=state / f".deploy-build-w{slot}",
            **({"warm_start": options.warm_start} | board_link_options(device) | options.evaluator_options),
        )


def check_boards(devices: Sequence[str], timeout_s: float = 2.0) -> None:
    """Every listed board answers HELLO with the same core and firmware build, or ``PoolError`` naming it."""
    first: tuple[str, Any] | None = None
    for device in devices:
        hello, reason = probe(device, timeout_s=timeout_s)
        if hello is None:
            raise PoolError(f"board {device} does not answer: {reason}")
        if first is None:
            first = (device, hello)
            continue
        ref_device, ref = first
        for what in ("core", "build_id"):
            if getattr(hello, what) != getattr(ref, what):
                raise PoolError(f"board {device} reports {what} {getattr(hello, what)!r} but {ref_device} reports "
                                f"{getattr(ref, what)!r}; every board of a search must run the same core and "
                                "firmware build (flash them with `edgeprune flash`)")
