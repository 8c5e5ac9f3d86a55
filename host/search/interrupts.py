"""Ctrl-C and SIGTERM during a search: one clean stop (emulators, workers, the store closed), then a resumable run."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be so the same clean-up runs (see ``interrupt_handler``)."""


class SearchInterrupted(Exception):
    """Ctrl-C or SIGTERM stopped a search; its run directory (if it got one) is kept and resumable.

    Parameters
    ----------
    run_dir:
        The run directory, or ``None`` when the search was stopped before it claimed one.
    how:
        ``"Ctrl-C"`` or ``"SIGTERM"``.
    """

    def __init__(self, run_dir: Path | None, how: str) -> None:
        self.run_dir = run_dir
        self.how = how
        if run_dir is None:
            text = f"interrupted ({how}) before the run directory was created; nothing was written"
        else:
            text = (f"interrupted ({how}); every evaluation stored so far is kept: continue with "
                    f"`edgeprune search --resume {run_dir}`")
        super().__init__(text)


def interrupt_handler() -> Callable[[int, Any], None]:
    """A SIGINT/SIGTERM handler: the first signal raises ``KeyboardInterrupt`` (``Terminated`` for SIGTERM)
    where the program is; later ones are ignored so the clean-up it starts (emulators, workers) is not cut."""
    fired: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if fired:
            log.warning("already stopping (closing the emulators and the store); `kill -9 %d` forces it, and the "
                        "run stays resumable", os.getpid())
            return
        fired.append(signum)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    return handler
