"""``edgeprune train``: build a task's baseline (or load a bring-your-own model) into the cache."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgeprune.host.cli.friendly_errors import friendly_errors
from edgeprune.host.tasks import TaskError, get_task
from edgeprune.host.tasks.summary import summary_rows
from edgeprune.host.tasks.training_config import config_for


@click.command("train")
@click.argument("task", required=False)
@click.option("--model", type=click.Path(path_type=Path), help="Bring your own: SB3 DQN .zip or GRU .pt.")
@click.option("--data", type=click.Path(path_type=Path), help="Bring your own GRU: data .npz (X, y[, *_idx]).")
@click.option("--env", "env_id", help="Gymnasium env id for a --model .zip.")
@click.option("--seed", type=int, default=None,
              help="Training seed of a built-in task (changes the cache key); a --model is evaluated, not trained.")
@click.option("--timesteps", type=int, default=None, help="DQN env-step budget (changes the cache key).")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None, help="Cache root (default $EDGEPRUNE_CACHE).")
@friendly_errors
def command(
    task: str | None,
    model: Path | None,
    data: Path | None,
    env_id: str | None,
    seed: int | None,
    timesteps: int | None,
    cache_dir: Path | None,
) -> None:
    """Train (or reuse from the cache) a task's baseline and print its metrics.

    A supplied --model is not trained: it is loaded, checked and evaluated as given.

    \b
    TASK: weather-gru | weather-lstm | digits-cnn | cartpole-dqn | dqn:<gymnasium env id>
    Examples:
      edgeprune train weather-gru
      edgeprune train dqn:Acrobot-v1 --timesteps 100000
      edgeprune train --model policy.zip --env CartPole-v1
      edgeprune train --model gru.pt --data data.npz
    """
    try:
        train_config = config_for(task, seed=seed, timesteps=timesteps)
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(), transient=True
        ) as bar:
            handle = bar.add_task(f"{task or 'byo'}: preparing", total=1.0)

            def progress(description: str, fraction: float) -> None:
                bar.update(handle, description=f"{task or 'byo'}: {description}", completed=fraction)

            built = get_task(task, cache_dir, model=model, data=data, env=env_id, train_config=train_config, progress=progress)
            metrics = built.baseline_metrics()
    except TaskError as exc:
        raise click.ClickException(str(exc)) from exc
    supplied = model is not None
    title = f"{'supplied model (evaluated, not trained)' if supplied else 'baseline'} {built.name}"
    table = Table(title=title, show_header=False)
    for label, value in summary_rows(metrics):
        if supplied and label == "training time":
            label, value = "training", "none: the supplied model was evaluated as given"
        table.add_row(label, value)
    console = Console()
    console.print(table)
    console.print(f"cache: {built.cache_path}")
