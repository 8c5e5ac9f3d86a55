"""What a run checks before it measures anything: limits that mean something, the model and data files it was
started with (unchanged on resume), and a flash limit the firmware alone does not already exceed."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.run_dir import RunDirError
from edgeprune.host.search.types import FLASH_BYTES, MODEL_BYTES
from edgeprune.host.tasks.cache import file_sha256
from edgeprune.host.tasks.intervals import IntervalError, check_level
from edgeprune.host.tasks.registry import byo_kind

#: Strategies ``--mixed-precision`` applies to: the config vector's (``vector_knobs``: a precision per layer) and
#: PPO's continuous action (``space.PRECISION_LEVELS``: its int8 half split into four precision levels).
MIXED_PRECISION_STRATEGIES = ("ppo", "tpe", "cmaes", "random")


class LimitError(ValueError):
    """A limit that no candidate can meet or that means something else than the user thinks."""


def byo_task_name(model: str) -> str:
    """What a bring-your-own run records as its task, so the stored options never contradict each other."""
    return byo_kind(model)


def _finite(value: float) -> bool:
    return value == value and value not in (float("inf"), float("-inf"))


def prepare_options(options: SearchOptions) -> SearchOptions:
    """The options a new run stores: limits checked, model/data paths absolute with their SHA-256.

    Raises ``LimitError`` for a limit that is negative, zero or not a number: a negative quality
    drop would demand an improvement, and a zero-size memory limit can never be met.
    """
    try:
        check_level(options.interval_level)
    except IntervalError as exc:
        raise LimitError(f"--interval-level: {exc}") from exc
    if not _finite(options.max_acc_drop) or options.max_acc_drop < 0:
        raise LimitError(f"--max-acc-drop {options.max_acc_drop:g}: give the allowed quality loss as a number ≥ 0 "
                         "(2 = 2 pp of accuracy, or 2 % of the baseline's RMSE/return)")
    if isinstance(options.qat_steps, bool) or not isinstance(options.qat_steps, int) or options.qat_steps < 0:
        raise LimitError(f"--qat-steps {options.qat_steps!r}: give a number of fine-tuning steps >= 0")
    if isinstance(options.greedy_batch, bool) or not isinstance(options.greedy_batch, int) or options.greedy_batch < 1:
        raise LimitError(f"--greedy-batch {options.greedy_batch!r}: give the layers per greedy trial, an int >= 1")
    if options.greedy_batch != 1 and options.strategy != "greedy":
        raise LimitError("--greedy-batch sizes the greedy strategy's precision trials: use it with --strategy greedy")
    if options.qat_steps and options.strategy != "greedy":
        raise LimitError("--qat-steps fine-tunes the greedy strategy's precision trials: use it with --strategy greedy "
                         "(the other strategies propose qat and fine-tuning steps themselves)")
    if options.mixed_precision and options.strategy not in MIXED_PRECISION_STRATEGIES:
        raise LimitError(f"--mixed-precision lets {'/'.join(MIXED_PRECISION_STRATEGIES)} choose layer precisions; "
                         f"--strategy {options.strategy} "
                         + ("searches precision by itself: drop the flag" if options.strategy == "greedy"
                            else "has no action for it: use --strategy ppo, tpe, cmaes, random or greedy"))
    if options.stochastic_rounding and (options.finetune_steps == 0 if options.strategy != "greedy"
                                        else options.qat_steps == 0):
        raise LimitError("--stochastic-rounding rounds weights while fine-tuning with fake quantisation: "
                         + ("add --qat-steps N" if options.strategy == "greedy" else "drop --finetune-steps 0"))
    for flag, value in (("--flash-kb", options.flash_kb), ("--ram-kb", options.ram_kb)):
        if value is not None and (not _finite(value) or value <= 0):
            raise LimitError(f"{flag} {value:g}: give the board's limit in KiB, a number > 0")
    changes: dict[str, Any] = {}
    for key in ("model", "data"):
        value = getattr(options, key)
        if value is None:
            continue
        path = Path(value).expanduser().resolve()
        if not path.is_file():
            raise RunDirError(f"--{key} {value}: no such file")
        changes[key] = str(path)
        changes[f"{key}_sha256"] = file_sha256(path)
    if options.model is not None:
        changes["task"] = byo_task_name(options.model)
    return dataclasses.replace(options, **changes)


def check_inputs_unchanged(options: SearchOptions, run_dir: Path) -> None:
    """Refuse to resume when the run's model or data file is gone or no longer what was measured."""
    for key in ("model", "data"):
        value, want = getattr(options, key), getattr(options, f"{key}_sha256")
        if value is None:
            continue
        path = Path(value)
        if not path.is_file():
            raise RunDirError(f"{run_dir} was started with --{key} {value}, which no longer exists; "
                              "put the file back or start a new run")
        if want is not None and file_sha256(path) != want:
            raise RunDirError(f"--{key} {value} changed since {run_dir} started (sha256 {want[:12]}… then, "
                              f"{file_sha256(path)[:12]}… now); restore it or start a new run with the new file")


def check_baseline_limits(baseline: Any, options: SearchOptions) -> None:
    """Refuse a flash/RAM limit below what the firmware needs without any model: no candidate can meet it."""
    flash, model = baseline.figures.get(FLASH_BYTES), baseline.figures.get(MODEL_BYTES)
    if options.flash_kb is None or flash is None or model is None or not flash.detail.startswith(("deploy build", "derived")):
        return
    firmware = flash.value - model.value
    if options.flash_kb * 1024 < firmware:
        raise LimitError(f"--flash-kb {options.flash_kb:g}: the firmware without any model already takes "
                         f"{firmware / 1024:.1f} KiB of flash (the baseline {flash.value / 1024:.1f} KiB); "
                         f"give at least {firmware / 1024:.0f} KiB plus room for a model")
