"""A device simulated on the far side of a pseudo-terminal, for tests that need a real serial path.

The host opens ``.port`` (``/dev/pts/N``) with pyserial exactly as it would open ``/dev/ttyACM0``;
the subclass's ``_run`` loop serves the other end on ``self._master`` until ``self._stop`` is set.
"""

from __future__ import annotations

import os
import threading
import tty
from typing import Self


class PtyPeer:
    """Owns the pty pair and the serving thread; subclasses implement ``_run``.

    Parameters
    ----------
    name:
        Thread name (shows in debuggers and thread dumps).
    """

    def __init__(self, name: str) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
