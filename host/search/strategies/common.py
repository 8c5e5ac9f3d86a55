"""The machinery every strategy shares: proposal loops, agent checkpoints and resume.

A strategy module only picks one of the three drivers here (SB3 agent, Optuna sampler, seeded
proposal sequence) and its hyper-parameters. All of them:

* propose configs and hand them to ``SearchSession.evaluate`` (store → cache → device, committed
  before the result comes back);
* stop when the session's device-evaluation budget is used;
* with one worker, keep no state of their own: a resumed run starts the strategy again from its seed and
  the session answers the proposals the store already holds from the store, in order
  (``SearchSession.replay_stored``), so the resumed run is the run that was killed, to the last row;
* with parallel workers (whose results come back in no fixed order), save their own state atomically
  after every evaluation under ``<run>/agent/`` and continue from it; an evaluation committed after the
  last save is answered from the run store (``origin='run'``), never measured again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.host.search.bounds import LaggedFeed
from edgeprune.host.search.session import BudgetExhausted, SearchSession
from edgeprune.host.search.space import ConfigSpace

log = logging.getLogger(__name__)


@dataclass
class StrategyContext:
    """Everything a strategy needs.

    Parameters
    ----------
    session:
        Budgeted, durable access to the evaluator (baseline already measured).
    task:
        The task being compressed.
    seed:
        Seed of the strategy's own randomness.
    state_dir:
        Where the strategy keeps its resumable state (``<run>/agent``).
    space:
        Maps proposals to configs (``ConfigSpace``).
    horizon:
        Candidates per RL episode.
    parallel:
        A ``ParallelEvaluations`` when several workers evaluate at once (``None``: one at a time).
    """

    session: SearchSession
    task: Any
    seed: int
    state_dir: Path
    space: ConfigSpace
    horizon: int = 4
    parallel: Any = None

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` so ``path`` holds either the old or the new content, never a mix."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


# --------------------------------------------------------------------------------------------------
# Stable-Baselines3 agents
# --------------------------------------------------------------------------------------------------
class _Checkpointer:
    """Versioned agent checkpoints: ``ckpt-N/`` is complete before ``latest.json`` points at it."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.latest = state_dir / "latest.json"

    def load_pointer(self) -> dict[str, Any] | None:
        ptr = read_json(self.latest)
        if ptr is None or not (self.dir / ptr["dir"]).is_dir():
            return None
        return dict(ptr)

    def save(self, model: Any, with_buffer: bool, extra: dict[str, Any]) -> None:
        n = int(model.num_timesteps)
        final = self.dir / f"ckpt-{n:06d}"
        tmp = self.dir / f"ckpt-{n:06d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        model.save(str(tmp / "model.zip"))
        if with_buffer:
            model.save_replay_buffer(str(tmp / "replay.pkl"))
        (tmp / "rng.json").write_text(json.dumps(extra))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        atomic_write_text(self.latest, json.dumps({"dir": final.name, "num_timesteps": n, **extra}))
        for old in self.dir.glob("ckpt-*"):
            if old.name != final.name:
                shutil.rmtree(old, ignore_errors=True)


def run_sb3(ctx: StrategyContext, algo: str, hyper: dict[str, Any], mode: str | None = None) -> None:
    """Drive an SB3 ``PPO`` or ``DQN`` agent; ``mode``: ``"continuous"`` (the layer-wise study's 4-D
    action; default for PPO) or ``"discrete"`` (the discrete study's 16 actions; DQN's only mode)."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.utils import set_random_seed

    from edgeprune.host.search.async_rollout import AsyncRolloutPPO
    from edgeprune.host.search.env import ENV_ID, register

    torch.set_num_threads(1)
    register()
    mode = mode or ("continuous" if algo == "ppo" else "discrete")
    env: Any
    if ctx.parallel is not None and ctx.parallel.capacity > 1:
        # One environment per worker: DQN steps them together (it stores each transition and trains once per
        # vector step); PPO steps each on its own as its candidate comes back (``async_rollout``). PPO's rollout
        # keeps its size in evaluations (n_steps per environment shrinks), so it updates as often as with one worker.
        from edgeprune.host.search.env import CompressEnv
        from edgeprune.host.search.vec_env import PoolVecEnv

        n = int(ctx.parallel.capacity)
        env = PoolVecEnv([CompressEnv(ctx.session, ctx.task, mode, ctx.horizon, ctx.space) for _ in range(n)],
                         ctx.parallel)
        if algo == "ppo":
            per_env = max(1, int(hyper.get("n_steps", 2 * ctx.horizon)) // n)
            hyper = {**hyper, "n_steps": per_env, "batch_size": per_env * n}
        # Work a killed search had in flight is measured once more and stored; the agent meets it again
        # only if it proposes it (then answered from the store).
        for config, proposal in ctx.parallel.resume_pending():
            ctx.parallel.submit(config, proposal)
        ctx.parallel.drain()
    else:
        env = gym.make(
            ENV_ID,
            session=ctx.session,
            task=ctx.task,
            mode=mode,
            horizon=ctx.horizon,
            space=ctx.space,
            disable_env_checker=True,
        )
    cls = AsyncRolloutPPO if algo == "ppo" else DQN
    ckpt = _Checkpointer(ctx.state_dir)
    # One worker: the store is the state (replayed); parallel workers: the checkpoint is.
    checkpoints = ctx.parallel is not None
    pointer = ckpt.load_pointer() if checkpoints else None
    resumes = 0
    if pointer is not None:
        path = ctx.state_dir / pointer["dir"]
        resumes = int(pointer.get("resumes", 0)) + 1
        model = cls.load(str(path / "model.zip"), env=env, device="cpu")
        if isinstance(model, DQN) and (path / "replay.pkl").is_file():
            model.load_replay_buffer(str(path / "replay.pkl"))
        # Torch/NumPy generator states are not part of SB3's zip; a fresh, distinct seed per
        # resume keeps the run reproducible from its store without replaying the same actions.
        set_random_seed(ctx.seed + 1000 * resumes)
        model.set_random_seed(ctx.seed + 1000 * resumes)
        log.info("resumed %s agent at %d steps (resume #%d)", algo, model.num_timesteps, resumes)
    else:
        model = cls("MlpPolicy", env, seed=ctx.seed, device="cpu", verbose=0, **hyper)
    # SB3's default logger makes an empty SB3-<date> folder in the temp dir on every learn(); the search logs itself
    model.set_logger(Logger(folder=None, output_formats=[]))

    session = ctx.session

    class _SaveAndStop(BaseCallback):
        def _on_step(self) -> bool:
            if checkpoints:
                ckpt.save(self.model, with_buffer=(algo == "dqn"), extra={"seed": ctx.seed, "resumes": resumes})
            return not session.exhausted()

    total = max(1, session.remaining) * 4 + session.max_free_proposals
    try:
        model.learn(total_timesteps=total, callback=_SaveAndStop(), reset_num_timesteps=pointer is None)
    except BudgetExhausted:
        pass
    finally:
        env.close()


# --------------------------------------------------------------------------------------------------
# Optuna samplers
# --------------------------------------------------------------------------------------------------
def run_optuna(ctx: StrategyContext, make_sampler: Callable[[int], Any]) -> None:
    """Ask/tell loop over the config vector with the study stored in ``<run>/agent/optuna.sqlite``."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    lo, hi = ctx.space.vector_bounds()
    names = ctx.space.vector_names()
    dists: dict[str, optuna.distributions.BaseDistribution] = {n: optuna.distributions.FloatDistribution(float(a), float(b)) for n, a, b in zip(names, lo, hi, strict=True)}
    if ctx.parallel is None:
        # One worker: a fresh study from the seed, told the stored outcomes again by the session's replay.
        study = optuna.create_study(study_name="edgeprune", sampler=make_sampler(ctx.seed), direction="maximize")
        _optuna_loop(ctx, study, dists, names)
        return
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{ctx.state_dir / 'optuna.sqlite'}", engine_kwargs={"connect_args": {"timeout": 30}}
    )
    resumes = int((read_json(ctx.state_dir / "optuna.json") or {}).get("resumes", -1)) + 1
    atomic_write_text(ctx.state_dir / "optuna.json", json.dumps({"seed": ctx.seed, "resumes": resumes}))
    study = optuna.create_study(
        study_name="edgeprune",
        storage=storage,
        sampler=make_sampler(ctx.seed + 1000 * resumes),
        direction="maximize",
        load_if_exists=True,
    )

    def config_of(params: dict[str, float]) -> Any:
        vec = np.array([params[n] for n in names], dtype=np.float64)
        return ctx.space.vector(vec)

    # A trial left RUNNING was interrupted: either its evaluation was committed (tell its reward)
    # or it never finished measuring (fail it and ask for the same point again).
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if any(n not in trial.params for n in names):
            # Killed while Optuna was still writing the trial's parameters: it was never evaluated.
            study.tell(trial.number, state=TrialState.FAIL)
            continue
        stored = ctx.session.store.find(config_of(trial.params).digest())
        if stored is not None and stored.reward is not None:
            study.tell(trial.number, stored.reward)
        else:
            study.tell(trial.number, state=TrialState.FAIL)
            study.enqueue_trial(dict(trial.params))

    _optuna_batches(ctx, study, dists, config_of)


def _optuna_loop(ctx: StrategyContext, study: Any, dists: dict[str, Any], names: list[str]) -> None:
    """One trial at a time: ask, evaluate (or replay from the store), tell."""
    from optuna.trial import TrialState

    while not ctx.session.exhausted():
        asked = study.ask(dists)
        config = ctx.space.vector(np.array([asked.params[n] for n in names], dtype=np.float64))
        try:
            outcome = ctx.session.evaluate(config, {"trial": asked.number, "params": dict(asked.params)})
        except BudgetExhausted:
            study.tell(asked.number, state=TrialState.FAIL)
            break
        study.tell(asked.number, outcome.verdict.reward)


# --------------------------------------------------------------------------------------------------
# Seeded proposal sequences (random, uniform)
# --------------------------------------------------------------------------------------------------
Proposer = Callable[[np.random.Generator, int], tuple[Any, dict[str, Any]]]


def run_sequence(ctx: StrategyContext, propose: Proposer, name: str) -> None:
    """Call ``propose(rng, index)`` until the budget is used; RNG state and index saved after each."""
    state_path = ctx.state_dir / f"{name}.json"
    rng = np.random.default_rng(ctx.seed)
    index = 0
    # The space's bounds move with the outcomes, fed in proposal order (the same configs with 1 or 2 workers).
    feed = LaggedFeed(ctx.space.bounds)
    if ctx.parallel is not None:
        saved = read_json(state_path)
        if saved is not None:
            rng.bit_generator.state = saved["rng"]
            index = int(saved["index"])
            log.info("resumed %s at proposal %d", name, index)
            for row in ctx.session.store.evaluations("candidate"):
                if "index" in row.proposal:
                    feed.add(int(row.proposal["index"]), row)
        _sequence_batches(ctx, propose, state_path, rng, index, feed)
        return
    # One worker: from the seed every time; a resume's first proposals are answered by the store's replay.
    while not ctx.session.exhausted():
        feed.before(index)
        config, proposal = propose(rng, index)
        if config is None:
            break
        proposal["index"] = index
        try:
            feed.add(index, ctx.session.evaluate(config, proposal))
        except BudgetExhausted:
            break
        index += 1


# --------------------------------------------------------------------------------------------------
# Batches for parallel workers (ctx.parallel): as many proposals out as workers and budget allow
# --------------------------------------------------------------------------------------------------
def _sequence_batches(ctx: StrategyContext, propose: Proposer, state_path: Path, rng: np.random.Generator,
                      index: int, feed: Any) -> None:
    """``run_sequence`` with several evaluations in flight: proposals go out in index order, so the configs
    evaluated are the ones a single worker would evaluate (``ParallelEvaluations.can_submit``; the bounds see
    the outcomes ``LaggedFeed`` allows, waiting for one when needed)."""
    par = ctx.parallel
    pending: set[int] = set()

    def take(tag: Any, outcome: Any) -> None:
        if isinstance(tag, int):
            pending.discard(tag)
            feed.add(tag, outcome)

    for config, proposal in par.resume_pending():
        tag = int(proposal["index"]) if "index" in proposal else None
        if tag is not None:
            pending.add(tag)
        answered = par.submit(config, proposal, tag=tag)
        if answered is not None:
            take(tag, answered)
    proposing = True
    while True:
        while proposing and par.can_submit():
            while feed.needed(index) in pending:
                for tag, outcome in par.wait():
                    take(tag, outcome)
            feed.before(index, lost=lambda i: i not in pending)
            config, proposal = propose(rng, index)
            if config is None:
                proposing = False
                break
            proposal["index"] = index
            pending.add(index)
            answered = par.submit(config, proposal, tag=index)  # noted in flight (or answered) before the state moves
            if answered is not None:
                take(index, answered)
            index += 1
            atomic_write_text(state_path, json.dumps({"index": index, "rng": rng.bit_generator.state}))
        if not par.inflight:
            break
        for tag, outcome in par.wait():
            take(tag, outcome)


def _optuna_batches(ctx: StrategyContext, study: Any, dists: dict[str, Any], config_of: Callable[[Any], Any]) -> None:
    """Optuna's ask/tell with a trial per free worker; each is told when its result comes back."""
    par = ctx.parallel
    par.resume_pending()  # RUNNING trials were enqueued again above; this drops work lost twice
    while True:
        while par.can_submit():
            asked = study.ask(dists)
            outcome = par.submit(config_of(asked.params), {"trial": asked.number, "params": dict(asked.params)},
                                 tag=asked.number)
            if outcome is not None:
                study.tell(asked.number, outcome.verdict.reward)
        if not par.inflight:
            break
        for number, outcome in par.wait():
            study.tell(number, outcome.verdict.reward)
