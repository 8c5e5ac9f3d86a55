"""What a search is asked to do: ``SearchOptions`` with their defaults (shared by the CLI, which reads its option
defaults from here), and the two things a worker needs to rebuild a search from them (``load_task``,
``board_link_options``). Below the run loop (``run_loop.py``) and the worker pools (``pool.py``), which both import it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgeprune.bench.targets import DEFAULT_TARGET, TargetSpec, split_specs
from edgeprune.host.compress.compress_errors import ConfigError
from edgeprune.host.search.objective import DEFAULT_MAX_ACC_DROP
from edgeprune.host.tasks import get_task
from edgeprune.host.tasks.intervals import DEFAULT_LEVEL

# Sized so the default search (weather GRU, QEMU Cortex-M4, PPO) ends within 10 minutes on 2 cores:
# measured 8 evaluations in 1 min 31 s (`edgeprune search --budget 8`, cached baseline, this 2-core
# machine); 20 leaves room for a loaded machine while giving PPO more than a handful of episodes.
DEFAULT_BUDGET = 20
#: Strategies whose proposals follow a seeded sequence: their bounds learn in proposal order, not on arrival
#: (``bounds.LaggedFeed``), so one worker and two evaluate the same configs.
SEQUENCE_STRATEGIES = ("random", "uniform")
#: Fine-tuning sized to how much a candidate removed (``ConfigSpace``/``auto_finetune_steps``), early-
#: stopped on validation: a fixed 20 steps could not heal a 10× cut.
DEFAULT_FINETUNE_STEPS: int | str = "auto"


def parse_finetune_steps(text: str | int | None) -> int | str:
    """``None`` → the default, ``"auto"`` → ``"auto"``, a non-negative integer → itself."""
    if text is None:
        return DEFAULT_FINETUNE_STEPS
    if isinstance(text, int) or str(text).strip().isdigit():
        return int(text)
    if str(text).strip() == "auto":
        return "auto"
    raise ConfigError(f"--finetune-steps must be a non-negative number or 'auto', got {text!r}")


@dataclass
class SearchOptions:
    """What to search, where to measure, and the limits.

    Parameters
    ----------
    device:
        ``qemu[:m0|m3|m4|m7|m33]``, a serial port (``/dev/ttyACM0``, ``/dev/pts/N``) or ``socket://host:port``.
    task:
        Task name (``weather-gru``, ``cartpole-dqn``) or spec understood by ``get_task``.
    model, env_id, data:
        Bring-your-own model file with its Gymnasium env id or data file (instead of ``task``).
        ``prepare_options`` makes the paths absolute, so a run resumes from any directory.
    model_sha256, data_sha256:
        SHA-256 of ``model``/``data`` when the run started; ``--resume`` refuses files that changed.
    strategy:
        ``ppo``, ``dqn``, ``tpe``, ``cmaes``, ``random`` or ``uniform``.
    budget:
        Device evaluations (cache hits are free).
    max_acc_drop:
        Allowed quality drop (percentage points for accuracy; percent of baseline for return/RMSE).
    interval_level:
        Two-sided level of every quality interval and of the paired drops the confirmation judges (0.5-1).
    flash_kb, ram_kb:
        Hard limits on the deploy build's flash and RAM.
    seed:
        Seeds the strategy and the configs.
    out:
        Run directory (default ``runs/<task>-<strategy>-<time>``).
    finetune_steps:
        Fine-tuning steps per candidate: an int, or ``"auto"`` (default: sized to the fraction of
        weights removed, early-stopped on validation; see ``edgeprune.host.search.space``).
    max_finetune_steps:
        Upper bound of the fine-tuning coordinate for TPE / CMA-ES / random (ignored with ``"auto"``).
    distill:
        Fine-tune with distillation from the uncompressed model (default on).
    reward:
        ``"measured"`` (default) or ``"proxy"`` (the studies' FLOPs/parameter reward; candidates are
        still measured on the device and stored).
    prune_scale:
        ``"log"`` (default: prune coordinates on a log scale of the kept fraction) or ``"linear"``
        (the studies' mapping).
    horizon:
        Candidates per RL episode.
    repeats:
        Timed inferences per candidate on the device.
    host_energy:
        Also measure host energy with CodeCarbon (source ``host``).
    use_cache:
        Consult and fill the global evaluation cache.
    deploy_best:
        Deploy-build the best candidate for the report when the evaluator did not already.
    evaluator_options:
        Extra keyword arguments for ``HardwareEvaluator`` (e.g. ``agreement_n``).
    workers:
        Evaluations at once on this machine (``edgeprune.host.search.parallel``): an int, or ``"auto"``
        (min(cores, boards); the cores for QEMU). 1 (default): the search's own evaluator, one at a time.
        ``device`` may list several boards, comma-separated: one worker each.
    ray_address:
        Run the evaluations as Ray actors on this cluster (``auto``: the one ``ray start`` made here);
        ``None``: no Ray.
    multi_fidelity:
        Check each candidate after a third of its fine-tuning and stop it there when it cannot pass
        (``edgeprune.host.search.fidelity``); ``False``: every candidate is fine-tuned in full.
    bounded:
        Start every strategy's proposals within per-layer bounds from the baseline's sensitivity and move them
        with the evidence (``edgeprune.host.search.bounds``); ``False``: the whole space from the start.
    warm_start:
        Fine-tune a candidate that further compresses an already fine-tuned one from the closest such model kept in
        the artifacts cache, instead of from the baseline (``edgeprune.host.search.ancestors``; measured to converge
        faster, BENCHMARKS.md issue 28 "Warm starts"). Off by default: a warm-started candidate's checkpoint is
        picked on validation a second time, and the one multi-seed check so far named a warm-started best point that
        lost 6.88 pp on test (BENCHMARKS.md, "Warm starts"); kept models also outlive the run, so with it a run's
        candidates depend on earlier runs of the same task. ``True`` (``--warm-start``) opts in.
    qat_steps:
        ``--strategy greedy``: fine-tune each precision trial this many steps through fake quantisation at its
        precisions (``CompressionConfig.qat``, distilled from the baseline); 0 (default): post-training trials.
    greedy_batch:
        ``--strategy greedy``: layers lowered together per precision trial (the study's batches of layers; 1: one layer
        at a time, largest first).
    stochastic_rounding:
        Candidates fine-tuned with fake quantisation round their weights stochastically while training
        (``CompressionConfig.stochastic_rounding``); needs fine-tuning with QAT (greedy: ``qat_steps > 0``). Default off.
    mixed_precision:
        ``tpe``/``cmaes``/``random``: the config vector also chooses each layer's precision among those the device
        runs it at (``allowed_precisions``: int8, int4 weights, 16x8, float32), so the strategy searches per-layer
        precision beside pruning (issue 30). ``ppo``: the int8 half of its action's ``a3`` picks one of four
        precision levels (``space.PRECISION_LEVELS``: hidden 16x8, int8, hidden int4, all int4). ``greedy`` searches
        precision by itself; ppo-discrete, DQN and uniform have no action for it and refuse it. Default off: every
        layer int8.
    """

    device: str = DEFAULT_TARGET
    task: str = "weather-gru"
    model: str | None = None
    env_id: str | None = None
    data: str | None = None
    model_sha256: str | None = None
    data_sha256: str | None = None
    strategy: str = "ppo"
    budget: int = DEFAULT_BUDGET
    max_acc_drop: float = DEFAULT_MAX_ACC_DROP
    interval_level: float = DEFAULT_LEVEL
    flash_kb: float | None = None
    ram_kb: float | None = None
    seed: int = 0
    out: str | None = None
    finetune_steps: int | str = DEFAULT_FINETUNE_STEPS
    distill: bool = True
    prune_scale: str = "log"
    reward: str = "measured"
    max_finetune_steps: int = 60
    horizon: int = 4
    repeats: int = 3
    host_energy: bool = True
    use_cache: bool = True
    deploy_best: bool = True
    evaluator_options: dict[str, Any] = field(default_factory=dict)
    workers: int | str = 1
    ray_address: str | None = None
    multi_fidelity: bool = True
    bounded: bool = True
    warm_start: bool = False
    qat_steps: int = 0
    stochastic_rounding: bool = False
    greedy_batch: int = 1
    mixed_precision: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def load_task(options: SearchOptions, progress: Callable[[str, float], None] | None = None) -> Any:
    """The task named by the options (trains and caches the baseline on first use)."""
    if options.model is not None:
        return get_task(None, model=options.model, data=options.data, env=options.env_id, progress=progress)
    return get_task(options.task, progress=progress)


#: Deadline of each request on a real board's link, instead of the evaluator's default minute: a healthy board
#: answers every request but INFER and LOAD_END within milliseconds (the longest frame takes 0.09 s at
#: 115,200 baud), so 10 s of silence is a hang, not a slow board. INFER's deadline is derived from the
#: inferences timed so far (``bench.link.BOARD_INFER_DEADLINE``: 50x the slowest per run, floor 10 s), the
#: first one (the baseline's warm-up) aside, which keeps the minute. An emulator keeps the defaults: its death
#: is seen at once (its process is polled) and QEMU's speed depends on the host's load.
BOARD_LINK_TIMEOUT_S = 10.0


def board_link_options(device: str) -> dict[str, Any]:
    """Evaluator options for the link of ``device`` (the first of a comma-separated list): shorter deadlines on
    a board, so a hung board costs seconds rather than minutes; nothing for an emulator."""
    if TargetSpec.parse(split_specs(device)[0]).is_qemu:
        return {}
    return {"link_timeout_s": BOARD_LINK_TIMEOUT_S}
