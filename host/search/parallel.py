"""Several evaluations at once: the search (driver) side, whatever engine runs them.

An engine (``pool.LocalPool``: processes on this machine; ``ray_pool.RayPool``: Ray actors on a cluster)
owns the workers, each with its own device target. ``ParallelEvaluations`` sits between the strategies and
the engine and keeps ``SearchSession``'s guarantees with results arriving in any order:

* a proposal already in the run store or the global cache is answered at once, without a worker;
* a proposal handed to a worker is noted in the store's ``inflight`` table first and its result is
  recorded in the same transaction that drops that note, so a finished evaluation is never lost or
  measured again; after a crash, ``resume_pending`` hands in-flight work back once (a second crash with
  the same work in flight records it as failed);
* never more evaluations in flight than device budget left, so the budget is never overspent and a
  seeded proposal sequence evaluates the same configs whatever the number of workers;
* a worker that dies (or raises) costs its evaluation: it is retried once on another worker, then
  recorded as failed with the reason.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from edgeprune.bench.targets import split_specs
from edgeprune.host.compress.config import CompressionConfig
from edgeprune.host.search.session import Outcome, SearchSession
from edgeprune.host.search.types import EvalResult, EvaluatorIdentity

log = logging.getLogger(__name__)

#: Tries of one evaluation on workers (the first, then one retry elsewhere).
MAX_TRIES = 2
#: How long one wait for a result blocks before checking the workers again.
POLL_S = 1.0


class PoolError(RuntimeError):
    """The workers cannot serve this search (a board differs, a worker cannot start, all workers are gone)."""


@dataclass(frozen=True)
class WorkerContext:
    """What every worker needs besides its device, fixed once the baseline is measured.

    Parameters
    ----------
    objective:
        The run's ``Objective`` (screening on the host uses its quality drop).
    max_acc_drop:
        The run's quality limit.
    deploy_base:
        The search's evaluator's first deploy build (flash, RAM, model bytes, arena), so every worker
        derives flash/RAM from the same anchor as a single-worker search instead of building its own.
    fidelity:
        Check candidates part-way through fine-tuning (``host/search/fidelity.py``).
    """

    objective: Any
    max_acc_drop: float
    deploy_base: tuple[int, int, int, int] | None = None
    fidelity: bool = False


@dataclass(frozen=True)
class Event:
    """One job's end as an engine reports it.

    Parameters
    ----------
    job:
        The job number given to ``Engine.dispatch``.
    worker:
        Which worker ran it.
    outcome:
        ``(result, origin, screened)`` from ``session.screen_and_measure``, or ``None`` when it failed.
    failure:
        Why the worker could not finish it (died, raised); ``None`` on success.
    """

    job: int
    worker: int
    outcome: tuple[EvalResult, str, bool] | None = None
    failure: str | None = None


class Engine(Protocol):
    """What ``ParallelEvaluations`` needs from an engine (``LocalPool``, ``RayPool``)."""

    capacity: int

    def start(self, context: WorkerContext) -> list[tuple[str, EvaluatorIdentity]]: ...

    def idle(self) -> list[int]: ...

    def dispatch(self, worker: int, job: int, config: Any) -> None: ...

    def poll(self, timeout_s: float) -> list[Event]: ...

    def close(self) -> None: ...


@dataclass
class _Job:
    number: int
    config: Any
    proposal: dict[str, Any]
    tag: Any
    started: float
    tries: int = 0
    failures: list[str] = field(default_factory=list)
    avoid: int | None = None
    proposal_s: float = 0.0


def check_identities(expected: EvaluatorIdentity, answered: Sequence[tuple[str, EvaluatorIdentity]]) -> None:
    """Refuse workers whose device is not the search's (core, firmware build, task): results would mix."""
    for device, ident in answered:
        for what, want, got in (("target/core", expected.target, ident.target),
                                ("firmware build", expected.build_id, ident.build_id),
                                ("task/code hash", expected.task_hash, ident.task_hash)):
            if want != got:
                raise PoolError(f"worker on {device} reports {what} {got!r}, the search's device {want!r}; "
                                "every worker must run the same core and firmware build")


class ParallelEvaluations:
    """Hands proposals to an engine's workers and records their results through the session.

    Parameters
    ----------
    session:
        The run's ``SearchSession`` (baseline measured).
    engine:
        A started-or-not ``Engine``; ``start`` starts it.
    """

    def __init__(self, session: SearchSession, engine: Engine) -> None:
        self.session = session
        self.engine = engine
        self.capacity = int(engine.capacity)
        self._numbers = itertools.count(1)
        self._inflight: dict[str, _Job] = {}
        self._by_number: dict[int, str] = {}
        self._queue: deque[_Job] = deque()
        self._ready: list[tuple[Any, Outcome]] = []
        self._requeued: set[str] = set()

    # -- life cycle -------------------------------------------------------------------------------
    def start(self, context: WorkerContext) -> None:
        """Start the workers; each must report the search's own identity (same core, build and task)."""
        expected = self.session.identity()
        self.session.fixed_identity = expected
        check_identities(expected, self.engine.start(context))
        self.session.parallel = self
        log.info("%d workers ready", self.capacity)

    def close(self) -> None:
        self.session.parallel = None
        self.engine.close()

    # -- submitting -------------------------------------------------------------------------------
    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def can_submit(self) -> bool:
        """Whether one more proposal may go out: a worker slot and a unit of budget not yet spoken for."""
        if self.session.exhausted():
            return False
        return len(self._inflight) < min(self.capacity, self.session.remaining)

    def submit(self, config: Any, proposal: dict[str, Any] | None = None, tag: Any = None,
               proposal_s: float | None = None) -> Outcome | None:
        """Answer ``config`` from the store/cache (returns the ``Outcome``) or hand it to a worker (``None``:
        its outcome comes back from ``wait`` with ``tag``). ``proposal_s``: the strategy's time for this
        proposal when the caller measured it (``SearchSession.evaluate``), else measured here."""
        spent = self.session.clock.proposed()
        try:
            return self._submit(config, proposal, tag, spent if proposal_s is None else proposal_s)
        finally:
            self.session.clock.returned()

    def _submit(self, config: Any, proposal: dict[str, Any] | None, tag: Any, proposal_s: float) -> Outcome | None:
        proposal = dict(proposal or {})
        digest = config.digest()
        while digest in self._inflight:  # the same config already out: its result answers this one too
            self._collect()
        started = time.time()
        known = self.session.lookup(config)
        if known is not None:
            return self.session.commit(known[0], known[1], proposal, started, inflight=digest)
        requeued = int(digest in self._requeued)
        self.session.store.add_inflight(digest, config.to_json(), proposal, requeued)
        job = _Job(next(self._numbers), config, proposal, tag, started, proposal_s=proposal_s)
        self._inflight[digest] = job
        self._by_number[job.number] = digest
        self._queue.append(job)
        self._dispatch()
        return None

    def wait(self) -> list[tuple[Any, Outcome]]:
        """Block until at least one handed-out evaluation is recorded; ``(tag, outcome)`` of those that were."""
        while not self._ready and self._inflight:
            self._collect()
        ready, self._ready = self._ready, []
        self.session.clock.returned()
        return ready

    def evaluate(self, config: Any, proposal: dict[str, Any] | None = None, proposal_s: float | None = None) -> Outcome:
        """One evaluation through the workers, waited for (strategies that take one result at a time)."""
        token = object()
        outcome = self.submit(config, proposal, tag=token, proposal_s=proposal_s)
        held: list[tuple[Any, Outcome]] = []
        while outcome is None:
            for tag, done in self.wait():
                if tag is token:
                    outcome = done
                else:
                    held.append((tag, done))
        self._ready[:0] = held
        return outcome

    def drain(self) -> list[tuple[Any, Outcome]]:
        """Wait for everything in flight."""
        out: list[tuple[Any, Outcome]] = []
        while self._inflight or self._ready:
            out += self.wait()
        return out

    def resume_pending(self) -> list[tuple[Any, dict[str, Any]]]:
        """Work a killed search left in flight: ``(config, proposal)`` to submit again, each at most once.

        What was already re-queued by an earlier resume and is in flight again is recorded as failed.
        """
        again: list[tuple[Any, dict[str, Any]]] = []
        for digest, config_json, proposal, requeued in self.session.store.inflight():
            config = CompressionConfig.from_json(config_json)
            if requeued:
                result = EvalResult(config_json, digest, error="WorkerLost: in flight when the search died, "
                                    "twice (re-queued once on resume, then lost again)")
                self.session.commit(result, "device", proposal, time.time(), inflight=digest)
                continue
            self._requeued.add(digest)
            again.append((config, proposal))
        if again:
            log.info("re-queuing %d evaluation(s) in flight when the search stopped", len(again))
        return again

    # -- engine side ------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        idle = self.engine.idle()
        while self._queue and idle:
            job = self._queue.popleft()
            others = [w for w in idle if w != job.avoid]
            worker = (others or idle)[0]
            idle.remove(worker)
            job.tries += 1
            self.engine.dispatch(worker, job.number, job.config)

    def _collect(self) -> None:
        for event in self.engine.poll(POLL_S):
            digest = self._by_number.get(event.job)
            job = self._inflight.get(digest) if digest is not None else None
            if job is None:
                continue
            if event.outcome is None:
                self._failed(job, event)
            else:
                result, origin, screened = event.outcome
                self.session.screened += int(screened)
                self._finish(job, result, origin)
                self.session.remember(result, origin)  # after the store: a kill between leaves a stored row
        self._dispatch()

    def _failed(self, job: _Job, event: Event) -> None:
        job.failures.append(event.failure or "unknown failure")
        if job.tries < MAX_TRIES:
            log.warning("evaluation %s: %s; retrying it on another worker", job.config.digest()[:10], event.failure)
            job.avoid = event.worker
            self._queue.appendleft(job)
            return
        # The device time is spent (twice): it counts, like a device fault in a single-worker search.
        reasons = "; then ".join(job.failures)
        result = EvalResult(job.config.to_json(), job.config.digest(),
                            error=f"WorkerFailed: {reasons} (tried {job.tries} times)")
        self._finish(job, result, "device")

    def _finish(self, job: _Job, result: EvalResult, origin: str) -> None:
        digest = job.config.digest()
        if job.tries > 1:
            job.proposal["worker_tries"] = job.tries
        if origin not in ("run", "cache"):
            result.timings["proposal"] = job.proposal_s
        outcome = self.session.commit(result, origin, job.proposal, job.started, inflight=digest)
        del self._inflight[digest]
        self._by_number.pop(job.number, None)
        self._requeued.discard(digest)
        self._ready.append((job.tag, outcome))


def available_cores() -> int:
    """Cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def parse_workers(text: str | int) -> int | str:
    """``--workers``: a number ≥ 1 or ``"auto"``; ``PoolError`` otherwise."""
    if str(text).strip() == "auto":
        return "auto"
    if str(text).strip().isdigit() and int(text) >= 1:
        return int(text)
    raise PoolError(f"--workers {text!r}: give a number ≥ 1 or 'auto'")


def worker_count(workers: int | str, devices: Sequence[str], is_qemu: bool) -> int:
    """How many workers ``--workers`` means: ``auto`` = min(cores, boards) for boards, the cores for QEMU.

    Several boards with ``--workers 1`` use them all (one worker each).
    """
    cores = available_cores()
    if str(workers) == "auto":
        return cores if is_qemu else max(1, min(cores, len(devices)))
    try:
        n = int(workers)
    except ValueError as exc:
        raise PoolError(f"--workers {workers!r}: give a number ≥ 1 or 'auto'") from exc
    if n < 1:
        raise PoolError(f"--workers {n}: give a number ≥ 1 or 'auto'")
    if not is_qemu:
        if n > len(devices) and len(devices) > 0:
            raise PoolError(f"--workers {n} but --device names {len(devices)} board(s): one worker per board; "
                            "list more boards with --device /dev/ttyACM0,/dev/ttyACM1")
        return max(n, len(devices)) if n == 1 else n
    return n


def worker_devices(device: str, n: int) -> list[str]:
    """The device each of ``n`` workers owns: its own emulator of the one QEMU core, or one listed board each."""
    devices = split_specs(device)
    if len(devices) == 1:
        return devices * n
    return devices[:n]
