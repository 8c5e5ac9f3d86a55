"""The one path every strategy's proposal takes: run store → global cache → device, then commit.

A strategy never calls the evaluator directly; it calls ``SearchSession.evaluate``, which answers a
config already seen (in this run or any earlier run on the same task/target/firmware) without using
the device, counts the budget in device evaluations only, and commits every result before returning
it, so whatever the strategy does next, the evaluation is durable.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeprune.bench.link import fault_kind
from edgeprune.host.search.fidelity import STOPPED, RungRule, RungStop
from edgeprune.host.search.objective import Constraints, Objective, RewardWeights, Verdict, drop_unit
from edgeprune.host.search.store import EvalCache, RunStore, StoredEvaluation
from edgeprune.host.search.timing import Clock
from edgeprune.host.search.types import UNMEASURED_ORIGINS, EvalResult, Evaluator

log = logging.getLogger(__name__)


class BudgetExhausted(Exception):
    """Raised by ``SearchSession.evaluate`` once the device-evaluation budget is used up."""


@dataclass(frozen=True)
class Outcome:
    """What a strategy gets back for one proposal.

    Parameters
    ----------
    result:
        The measurement (possibly from the store or the cache).
    verdict:
        Feasibility, reason, reward and observation features.
    origin:
        ``"device"``, ``"cache"`` or ``"run"``.
    seq:
        Row number in the run store.
    """

    result: EvalResult
    verdict: Verdict
    origin: str
    seq: int


class SearchSession:
    """Budgeted, durable access to an evaluator for one run.

    Parameters
    ----------
    evaluator:
        Anything following the ``Evaluator`` protocol.
    store:
        The run's ``RunStore``.
    cache:
        Global ``EvalCache``, or ``None`` to measure everything.
    strategy:
        Name recorded with each evaluation.
    budget:
        Device evaluations allowed (cache and store hits are free).
    constraints, weights:
        See ``edgeprune.host.search.objective``.
    metric, higher_is_better:
        The task's quality metric and direction.
    max_free_proposals:
        Cap on consecutive proposals answered without the device, so a strategy that keeps
        proposing known configs ends instead of looping forever.
    on_outcome:
        Called after each committed evaluation (progress display).
    reward_mode:
        ``"measured"`` or ``"proxy"`` (see ``Objective``).
    reference_quality:
        The quality drops are measured from (the FP32 baseline's validation score); ``None``: the
        measured int8 baseline's.

    Candidates are screened on the host first: the evaluator's ``prepare`` gives the int8 model's
    validation quality from TFLM, which is bit-exact with the device, and a candidate whose drop
    already breaks ``max_acc_drop`` is stored as infeasible (origin ``"host"``) without using the
    device or the budget. A host-screened proposal counts toward ``max_free_proposals`` and toward
    ``max_screened_streak`` (consecutive host-screened proposals without a device evaluation; ``None``:
    no such cap), which bounds the time a strategy stuck below the quality limit can spend.

    Resume replays the store (``replay_stored``): a strategy restarted from its seed proposes again the
    configs the store holds, in order, and gets the stored outcomes back without the device, so the
    streaks, the budget spent and the strategy's own state are exactly those of the run that was killed.
    """

    def __init__(
        self,
        evaluator: Evaluator,
        store: RunStore,
        cache: EvalCache | None,
        *,
        strategy: str,
        budget: int,
        constraints: Constraints,
        metric: str,
        higher_is_better: bool,
        weights: RewardWeights | None = None,
        max_free_proposals: int = 200,
        max_screened_streak: int | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
        reference_quality: float | None = None,
        reward_mode: str = "measured",
        fidelity: bool = False,
    ) -> None:
        self.evaluator = evaluator
        #: Check candidates part-way through fine-tuning (``host/search/fidelity.py``).
        self.fidelity = bool(fidelity)
        self.store = store
        self.cache = cache
        self.strategy = strategy
        self.budget = budget
        self.constraints = constraints
        self.metric = metric
        self.higher_is_better = higher_is_better
        self.weights = weights
        self.max_free_proposals = max_free_proposals
        self.on_outcome = on_outcome
        self._free_streak = 0
        self.max_screened_streak = max_screened_streak
        self._screened_streak = 0
        self.objective: Objective | None = None
        self.reference_quality = reference_quality
        self.reward_mode = reward_mode
        #: Candidates dropped on the host (quality over the limit) in this process.
        self.screened = 0
        #: Set by a parallel engine (``edgeprune.host.search.parallel``): identity checked on every worker, and
        #: where ``evaluate`` goes instead of this process's evaluator.
        self.fixed_identity: Any = None
        self.parallel: Any = None
        #: Stored candidates not yet proposed again by the restarted strategy (``replay_stored``).
        self._replay: deque[StoredEvaluation] = deque()
        self._replay_used = 0
        #: Why ``exhausted()`` first said yes: ``"budget"``, ``"host-rejections"`` or ``"known-configs"``.
        self.stop_reason: str | None = None
        #: This process's own time: proposals, bookkeeping, baseline (``edgeprune.host.search.timing``).
        self.clock = Clock()
        #: Called with every judged ``Outcome`` in the order the strategy gets them, replayed ones included
        #: (the search's per-layer bounds learn from them, ``bounds.py``).
        self.judged: list[Callable[[Outcome], None]] = []

    # -- budget -----------------------------------------------------------------------------------
    @property
    def used(self) -> int:
        """Budget units spent: while the store is replayed, those of the replayed rows (as the killed run saw)."""
        return self._replay_used if self._replay else self.store.device_evaluations()

    @property
    def remaining(self) -> int:
        return max(0, self.budget - self.used)

    @property
    def replaying(self) -> bool:
        """Stored candidates are still being proposed again after a resume."""
        return bool(self._replay)

    def exhausted(self) -> bool:
        reason = None
        if self.max_screened_streak is not None and self._screened_streak >= self.max_screened_streak:
            reason = "host-rejections"
        elif self.remaining == 0:
            reason = "budget"
        elif self._free_streak >= self.max_free_proposals:
            reason = "known-configs"
        if reason is not None and self.stop_reason is None:
            self.stop_reason = reason
        return reason is not None

    def replay_stored(self) -> int:
        """Answer the next proposals from the stored candidates, in order (call before the strategy starts).

        A strategy restarted from its seed proposes what it proposed before the kill; each proposal that is the
        next stored row gets that row's outcome back (not recorded again, no device), and the streaks and budget
        follow the rows as they did when they were recorded. The first proposal that differs (a strategy that is
        not reproducible, or a store written by an older edgeprune) ends the replay: from there every stored
        config is still answered from the store (origin ``"run"``), never measured twice. Returns the rows armed.
        """
        self._replay = deque(self.store.evaluations("candidate"))
        self._replay_used = 0
        return len(self._replay)

    def restore_streaks(self) -> None:
        """Set the streaks from the stored candidates (a parallel resume, whose order cannot be replayed)."""
        self._free_streak = self._screened_streak = 0
        for row in self.store.evaluations("candidate"):
            self._advance_streaks(row.origin)

    def _replayed(self, config: Any) -> Outcome | None:
        """The next stored row's outcome when ``config`` is that row's config, else ``None`` (replay ends)."""
        row = self._replay[0]
        if row.digest != config.digest():
            log.warning("resume: the strategy proposed %s where the store holds #%d (%s); %d stored candidates are "
                        "answered from the store from here on", config.digest()[:10], row.seq, row.digest[:10],
                        len(self._replay))
            self._replay.clear()
            self.restore_streaks()  # every stored row counts toward the streaks, replayed or not
            return None
        self._replay.popleft()
        assert self.objective is not None
        verdict = self._verdict(row.result, row.origin)
        # The strategy learned from the stored verdict; a later edgeprune that judges differently must not
        # change what the resumed strategy sees.
        verdict = dataclasses.replace(verdict, feasible=row.feasible, reason=row.reason,
                                      reward=verdict.reward if row.reward is None else float(row.reward))
        self._advance_streaks(row.origin)
        self._replay_used += int(row.counted)
        outcome = Outcome(row.result, verdict, row.origin, row.seq)
        for listener in self.judged:
            listener(outcome)
        return outcome

    # -- measuring --------------------------------------------------------------------------------
    def identity(self) -> Any:
        """The evaluator's identity (the one fixed by a parallel engine once its workers answered, if set)."""
        return self.fixed_identity if self.fixed_identity is not None else self.evaluator.identity()

    def lookup(self, config: Any) -> tuple[EvalResult, str] | None:
        """``config``'s result from the run store or the global cache, without the device; ``None`` if unknown."""
        digest = config.digest()
        # A device fault (hang, reset, ...) is the device's, not the config's: a re-proposal measures again.
        stored = self.store.find(digest, accept=lambda e: fault_kind(e.result.error) is None)
        if stored is not None:
            return stored.result, "run"
        if self.cache is not None:
            cached = self.cache.get(self.identity(), digest)
            if cached is not None:
                return cached, "cache"
        return None

    def _measure(self, config: Any, screen: bool = False) -> tuple[EvalResult, str, bool]:
        """``(result, origin, fresh)``: fresh when measured now (to be cached once it is stored)."""
        known = self.lookup(config)
        if known is not None:
            return known[0], known[1], False
        objective = self.objective if screen else None
        with isolated_rng():
            result, origin, screened = screen_and_measure(self.evaluator, config, objective,
                                                          self.constraints.max_acc_drop, self.fidelity)
        self.screened += int(screened)
        return result, origin, True

    def remember(self, result: EvalResult, origin: str) -> None:
        """Put a device measurement in the global cache (host-screened and refused ones are not).

        Called once the result is in the run store: a kill between the two then leaves a stored row that a
        resume replays, never a cache entry that a resume would take for free as ``"cache"`` where the run
        that was not killed spent a device evaluation.
        """
        if origin == "device" and self.cache is not None:
            self.cache.put(self.identity(), result)

    def ensure_baseline(self, config: Any) -> EvalResult:
        """Measure (or reload) the uncompressed model on this target; it anchors every ratio."""
        stored = self.store.baseline()
        if stored is None:
            started = time.time()
            result, origin, fresh = self._measure(config)
            if result.error is not None:
                raise RuntimeError(f"the baseline model failed on the target: {result.error}")
            # Judged like a candidate, so a baseline over a flash limit or below the FP32 reference
            # is stored (and reported) as such rather than labelled feasible.
            verdict = self._objective_for(result).judge(result)
            self.store.record(
                kind="baseline",
                strategy=self.strategy,
                result=result,
                origin=origin,
                counted=False,
                feasible=verdict.feasible,
                reason="baseline" if verdict.feasible else f"baseline: {verdict.reason}",
                reward=None,
                proposal={"baseline": True},
                started=started,
            )
            if fresh:
                self.remember(result, origin)
        else:
            result = stored.result
        self.objective = self._objective_for(result)
        return result

    def _objective_for(self, baseline: EvalResult) -> Objective:
        return Objective(
            baseline, self.metric, self.higher_is_better, self.constraints, self.weights,
            reference_quality=self.reference_quality, reward_mode=self.reward_mode,
        )

    def evaluate(self, config: Any, proposal: dict[str, Any] | None = None) -> Outcome:
        """Measure ``config`` (or recall it), commit it, and return the verdict.

        Raises ``BudgetExhausted`` before measuring when no device evaluation is left.
        """
        if self.objective is None:
            raise RuntimeError("call ensure_baseline() before evaluate()")
        if self.exhausted():
            raise BudgetExhausted(f"{self.used}/{self.budget} device evaluations used")
        proposal_s = self.clock.proposed()
        try:
            if self._replay:
                replayed = self._replayed(config)
                if replayed is not None:
                    return replayed
            if self.parallel is not None:
                return self.parallel.evaluate(config, proposal, proposal_s=proposal_s)
            started = time.time()
            result, origin, fresh = self._measure(config, screen=True)
            if fresh:
                result.timings["proposal"] = proposal_s
            outcome = self.commit(result, origin, proposal, started)
            if fresh:
                with self.clock.timed("bookkeeping"):
                    self.remember(result, origin)
            return outcome
        finally:
            self.clock.returned()

    def _verdict(self, result: EvalResult, origin: str) -> Verdict:
        assert self.objective is not None
        if origin == STOPPED:
            verdict = self.objective.judge(result)
            f = result.fidelity
            stop = RungStop(int(f.get("step", 0)), int(f.get("steps", 0)), float(f.get("quality", math.nan)),
                            float(f.get("drop", math.nan)), float(f.get("threshold", math.nan)))
            return dataclasses.replace(verdict, feasible=False, reason=stop.reason(drop_unit(self.metric)))
        if origin == "host" and result.error is None:
            return self.objective.screened(result)
        return self.objective.judge(result)

    def _advance_streaks(self, origin: str) -> None:
        counted = origin == "device"
        self._free_streak = 0 if counted else self._free_streak + 1
        # Answers from the store are instant; a host-screened (or stopped) proposal costs a compress + export.
        screened = origin in UNMEASURED_ORIGINS
        self._screened_streak = self._screened_streak + 1 if screened else 0 if counted else self._screened_streak

    def commit(self, result: EvalResult, origin: str, proposal: dict[str, Any] | None, started: float,
               inflight: str | None = None) -> Outcome:
        """Judge ``result``, update the streaks, record it durably and tell ``on_outcome``.

        ``inflight``: the digest of the store's in-flight row this result ends (dropped in the same transaction).
        """
        assert self.objective is not None
        verdict = self._verdict(result, origin)
        counted = origin == "device"
        self._advance_streaks(origin)
        record: dict[str, Any] = dict(
            kind="candidate",
            strategy=self.strategy,
            result=result,
            origin=origin,
            counted=counted,
            feasible=verdict.feasible,
            reason=verdict.reason,
            reward=verdict.reward,
            proposal=proposal or {},
            started=started,
        )
        with self.clock.timed("bookkeeping"):
            seq = self.store.record(**record) if inflight is None else self.store.record_done(inflight, **record)
        outcome = Outcome(result, verdict, origin, seq)
        for listener in self.judged:
            listener(outcome)
        log.info(
            "eval #%d %s (%s): reward %.3f%s",
            seq,
            result.digest[:10],
            origin,
            verdict.reward,
            "" if verdict.feasible else f" infeasible: {verdict.reason}",
        )
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        return outcome


@contextmanager
def isolated_rng() -> Iterator[None]:
    """Run a measurement without touching the strategy's randomness.

    Compression and fine-tuning seed torch's global generator with the config's seed; an agent sampling from
    that generator would otherwise act differently after a measurement than after a replayed row, and a
    resumed run would not be the run that was killed. Python's, NumPy's and torch's global states are put back.
    """
    import torch

    py, npy, pt = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)
        torch.set_rng_state(pt)


def screen_and_measure(evaluator: Evaluator, config: Any, objective: Objective | None,
                       max_acc_drop: float, fidelity: bool = False) -> tuple[EvalResult, str, bool]:
    """Evaluate ``config`` on ``evaluator``: ``(result, origin, screened)``, origin ``"device"``, ``"host"`` or
    ``"stopped"``.

    With an ``objective`` and an evaluator that has ``prepare``, the host half runs first and a candidate
    whose TFLM quality already breaks ``max_acc_drop`` is not sent to the device (``screened``). With
    ``fidelity`` (and an evaluator that ``supports_rungs``) a candidate is also checked part-way through its
    fine-tuning and may stop there (``host/search/fidelity.py``; origin ``"stopped"``, screened). The same
    function serves the search's own evaluator and each parallel worker's.
    """
    prepare = getattr(evaluator, "prepare", None)
    if prepare is not None and objective is not None:
        if fidelity and getattr(evaluator, "supports_rungs", False):
            prepared = prepare(config, rule=RungRule(objective, max_acc_drop))
        else:
            prepared = prepare(config)
        result = prepared.result
        if result.error is not None:
            return result, "host", False
        if getattr(prepared, "stopped", None) is not None:
            return result, STOPPED, True
        if objective.drop(float(prepared.quality.value)) > max_acc_drop:
            # The int8 quality from TFLM is bit-exact with the device's, so this candidate is
            # infeasible whatever the device would measure: no budget is spent on it.
            return result, "host", True
        result = evaluator.measure_prepared(prepared)  # type: ignore[attr-defined]
    else:
        result = evaluator.evaluate(config)
    if result.error is not None and result.error.startswith("ModelTooBig"):
        return result, "host", False  # refused before sending (larger than the board's buffer): no budget spent
    return result, "device", False
