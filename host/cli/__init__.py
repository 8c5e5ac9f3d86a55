"""The ``edgeprune`` command line: parsing only; every command calls a library function.

Each subcommand lives in its own module (``host/cli/<name>_cmd.py``) next to nothing but its options. A command's
module (and the library it calls) is imported only when that command runs; ``edgeprune --help`` lists the commands
from ``SUBCOMMANDS`` without importing them (tests/host/cli/test_cli.py checks the summaries match).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os

import click
from rich.logging import RichHandler

from edgeprune.host import __version__
from edgeprune.host.cli import native_stderr

#: Command -> its one-line summary, shown by ``edgeprune --help`` without importing the command's module.
SUBCOMMANDS = {
    "train": "Train (or reuse from the cache) a task's baseline and print its metrics.",
    "search": "Search compression configs for a model, measuring every candidate on the device.",
    "export": "Export a model to an int8 .tflite checked in TFLM, plus model_data.c/.h and manifest.json.",
    "flash": "Flash firmware with `pio run -t upload`, then check the board's HELLO reports the new build.",
    "bench": "Measure an int8 .tflite on a device; every number is printed with its source.",
    "report": "Regenerate front.json/csv, plots, the best export and report.html of search runs.",
    "doctor": "Report the toolchain, attached serial devices and the fallbacks a search would use.",
}


def _is_library_error(exc: BaseException) -> bool:
    """Typed errors raised on purpose by edgeprune's modules (ExportError, LinkTimeout, TaskError, …)."""
    return any(cls.__module__.startswith("edgeprune.") for cls in type(exc).__mro__ if cls is not object)


class OneLineUsageError(click.ClickException):
    """A bad option or argument, said in one line (Click's own adds the usage and a hint: four lines)."""

    exit_code = 2


class _LazyGroup(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        # A library error already says what went wrong and what to do: one line, exit 1.
        # Anything else is a bug and keeps its traceback.
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            where = f"edgeprune {exc.ctx.info_name}" if exc.ctx is not None and exc.ctx.parent is not None else "edgeprune"
            raise OneLineUsageError(f"{exc.format_message()} (see `{where} --help`)") from exc
        except click.ClickException:
            raise
        except Exception as exc:
            if _is_library_error(exc):
                raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
            raise

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in SUBCOMMANDS if importlib.util.find_spec(f"{__name__}.{name}_cmd") is not None]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.list_commands(ctx):
            return None
        module = importlib.import_module(f"edgeprune.host.cli.{cmd_name}_cmd")
        return module.command  # type: ignore[no-any-return]


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgeprune")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def main(verbose: int) -> None:
    """edgeprune: compress GRU forecasters and DQN policies for Cortex-M, measured on the device.

    \b
    Example:
      edgeprune doctor
      edgeprune search --device qemu:m4 --task weather-gru --budget 12
    """
    # TensorFlow's C++ runtime logs (oneDNN notices, a failed cuInit on CPU-only hosts) go straight to
    # stderr before Python logging exists; they must be silenced before anything imports TensorFlow.
    if verbose < 2:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
        native_stderr.install()
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(show_path=False)])
