"""``edgeprune search``."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click
from rich.console import Console

from edgeprune.host.cli.friendly_errors import friendly_errors
from edgeprune.host.report import generate_report
from edgeprune.host.report.console import ProgressDisplay, final_table
from edgeprune.host.search.interrupts import SearchInterrupted, interrupt_handler
from edgeprune.host.search.options import SearchOptions, parse_finetune_steps
from edgeprune.host.search.parallel import parse_workers
from edgeprune.host.search.run import run_search
from edgeprune.host.search.strategies import STRATEGIES

#: Every option's default is the library's (``SearchOptions``); tests/host/cli/test_option_defaults.py compares them.
DEFAULTS = SearchOptions()


@click.command("search")
@click.option("--device", default=DEFAULTS.device, show_default=True,
              help="qemu[:m0|m3|m4|m7|m33], a serial port (/dev/ttyACM0, /dev/pts/N), serial:<USB serial number> "
                   "or socket://HOST:PORT. Several boards, comma-separated: one worker each.")
@click.option("--workers", default=str(DEFAULTS.workers), show_default=True,
              help="Evaluations at once on this machine: N (each its own QEMU, or one board each) or 'auto' "
                   "(min(cores, boards)).")
@click.option("--ray-address", default=None,
              help="Run evaluations on this Ray cluster ('auto': the local `ray start`); needs edgeprune[ray].")
@click.option("--task", default=None, help="weather-gru (default) | weather-lstm | digits-cnn | cartpole-dqn | dqn:<env id>.")
@click.option("--model", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Bring your own model file (with --env or --data) instead of --task.")
@click.option("--env", "env_id", default=None, help="Gymnasium env id for a --model policy.")
@click.option("--data", type=click.Path(exists=True, dir_okay=False), default=None, help="Data file for a --model GRU.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default=DEFAULTS.strategy, show_default=True)
@click.option("--budget", type=click.IntRange(1), default=None,
              help=f"Device evaluations (cache hits are free). Default {DEFAULTS.budget}. The time per evaluation depends on the "
                   "model and the machine; the search prints an estimate after the first one.")
@click.option("--max-acc-drop", type=float, default=DEFAULTS.max_acc_drop, show_default=True,
              help="Allowed quality drop, ≥ 0: 2 means 2 pp of accuracy, or 2 % of the baseline's RMSE or return.")
@click.option("--interval-level", type=float, default=DEFAULTS.interval_level, show_default=True,
              help="Level of every quality interval (bootstrap over windows or episodes), between 0.5 and 1.")
@click.option("--wide", is_flag=True, help="Final table with every column and a source in every cell (~250 columns).")
@click.option("--flash-kb", type=float, default=None, help="Flash limit of the deploy build, KiB.")
@click.option("--ram-kb", type=float, default=None, help="RAM limit of the deploy build, KiB.")
@click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True)
@click.option("--reward", type=click.Choice(["measured", "proxy"]), default=DEFAULTS.reward, show_default=True,
              help="measured: the device's instructions/cycles, energy, flash, RAM; proxy: the published studies' "
                   "FLOPs and parameter reductions (every candidate is still measured and stored).")
@click.option("--finetune-steps", type=str, default=None,
              help="Fine-tuning steps per candidate: a number, or 'auto' (default: sized to how much was removed, "
                   "early-stopped on validation).")
@click.option("--qat-steps", type=int, default=DEFAULTS.qat_steps, show_default=True,
              help="--strategy greedy: fine-tune each precision trial this many steps with fake quantisation at its "
                   "precisions (0: post-training).")
@click.option("--greedy-batch", type=int, default=DEFAULTS.greedy_batch, show_default=True,
              help="--strategy greedy: layers lowered together per precision trial.")
@click.option("--stochastic-rounding", is_flag=True,
              help="Round weights stochastically while fine-tuning with fake quantisation (off by default).")
@click.option("--mixed-precision", is_flag=True,
              help="tpe/cmaes/random: also choose each layer's precision (int8, int4 weights, 16x8, float32, where "
                   "the device runs it); ppo: a precision level per proposal (hidden 16x8 / int8 / hidden int4 / "
                   "all int4); greedy searches precision by itself.")
@click.option("--multi-fidelity/--no-multi-fidelity", default=DEFAULTS.multi_fidelity, show_default=True,
              help="Stop a candidate after a third of its fine-tuning when it cannot pass (recorded as stopped).")
@click.option("--bounds/--no-bounds", "bounded", default=DEFAULTS.bounded, show_default=True,
              help="Start proposals within per-layer bounds from the baseline's sensitivity, widened by evidence.")
@click.option("--warm-start/--no-warm-start", default=DEFAULTS.warm_start, show_default=True,
              help="Fine-tune from the closest kept fine-tuned ancestor (cached across runs; faster per candidate, "
                   "off by default until its test drop is measured not to suffer).")
@click.option("--no-host-energy", is_flag=True, help="Skip CodeCarbon host energy.")
@click.option("--no-cache", is_flag=True, help="Measure every config even if a earlier run measured it.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Run directory (default runs/<task>-<strategy>-<time>).")
@click.option("--resume", type=click.Path(exists=True, file_okay=False), default=None,
              help="Continue an interrupted run directory (its stored options are used).")
@friendly_errors
def command(device: str, task: str, model: str | None, env_id: str | None, data: str | None, strategy: str,
            budget: int | None, max_acc_drop: float, flash_kb: float | None, ram_kb: float | None, seed: int,
            finetune_steps: str | None, no_host_energy: bool, no_cache: bool, out: str | None,
            resume: str | None, reward: str, workers: str, ray_address: str | None, interval_level: float,
            wide: bool, qat_steps: int, stochastic_rounding: bool, greedy_batch: int, mixed_precision: bool,
            multi_fidelity: bool, bounded: bool, warm_start: bool) -> None:
    """Search compression configs for a model, measuring every candidate on the device.

    With no options: the weather GRU on QEMU Cortex-M4 with PPO, energy from the cited model plus
    CodeCarbon, a budget that ends in about 10 minutes. Ends with the Pareto-front table (every
    figure with its source) and the path of report.html.

    \b
    Examples:
      edgeprune search
      edgeprune search --task cartpole-dqn --strategy tpe --budget 20 --flash-kb 64
      edgeprune search --device /dev/ttyACM0 --max-acc-drop 1 --ram-kb 32
      edgeprune search --strategy random --workers 2
      edgeprune search --device /dev/ttyACM0,/dev/ttyACM1 --strategy tpe
      edgeprune search --resume runs/weather-gru-ppo-20250101-120000
    """
    if model is not None and task is not None:
        raise click.UsageError("give either --task or --model (with --data or --env), not both")
    if model is None and (data is not None or env_id is not None):
        raise click.UsageError("--data and --env describe a --model; give the model file too")
    # TensorFlow's C++ start-up chatter would bury the progress display; errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    options = SearchOptions(
        device=device, task=task or DEFAULTS.task, model=model, env_id=env_id, data=data, strategy=strategy,
        budget=budget if budget is not None else DEFAULTS.budget, max_acc_drop=max_acc_drop,
        interval_level=interval_level, flash_kb=flash_kb,
        ram_kb=ram_kb, seed=seed, out=out,
        finetune_steps=parse_finetune_steps(finetune_steps), reward=reward,
        host_energy=not no_host_energy, use_cache=not no_cache,
        workers=parse_workers(workers), ray_address=ray_address, qat_steps=qat_steps,
        stochastic_rounding=stochastic_rounding, greedy_batch=greedy_batch, mixed_precision=mixed_precision,
        multi_fidelity=multi_fidelity,
        bounded=bounded, warm_start=warm_start,
    )
    # Ctrl-C and SIGTERM unwind the same way: emulators and workers stopped, the run directory kept, and one
    # line saying how to resume; a second signal does not cut that clean-up short.
    handler = interrupt_handler()
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    console = Console() if sys.stdout.isatty() else Console(width=220)
    display = ProgressDisplay(console)
    try:
        try:
            result = run_search(
                None if resume else options,
                resume=Path(resume) if resume else None,
                on_begin=display.begin,
                on_task_progress=display.task_progress,
                on_start=display.start,
                on_outcome=display.update,
                write_report=generate_report,
            )
        finally:
            display.stop()
    except KeyboardInterrupt as exc:  # before run_search claimed a run directory
        how = "SIGTERM" if type(exc).__name__ == "Terminated" else "Ctrl-C"
        click.echo(str(SearchInterrupted(None, how)), err=True)
        sys.exit(128 + (signal.SIGTERM if how == "SIGTERM" else signal.SIGINT))
    except SearchInterrupted as exc:
        click.echo(str(exc), err=True)
        sys.exit(128 + (signal.SIGTERM if exc.how == "SIGTERM" else signal.SIGINT))
    final_table(result, console, wide=wide)
