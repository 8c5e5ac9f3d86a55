"""A serial port reachable as ``socket://127.0.0.1:PORT``: bytes forwarded to and from a tty path.

Lets a test reach a pty-based double (the simulated board) through pyserial's ``socket://`` URL
handler, the same way a serial-over-TCP server or QEMU's ``-serial tcp:`` is reached.
"""

from __future__ import annotations

import os
import select
import socket
import threading
from typing import Self


class TcpBridge:
    """Accepts TCP clients one at a time on loopback and relays their bytes to ``tty_path`` and back.

    :param tty_path: the tty to relay to (e.g. ``SimDevice.port``)
    """

    def __init__(self, tty_path: str) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.url = f"socket://127.0.0.1:{self._listener.getsockname()[1]}"
        self._tty = os.open(tty_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="tcp-bridge", daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                self._relay(conn)

    def _relay(self, conn: socket.socket) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([conn, self._tty], [], [], 0.05)
            if conn in ready:
                data = conn.recv(4096)
                if not data:
                    return  # client closed; wait for the next one
                os.write(self._tty, data)
            if self._tty in ready:
                try:
                    data = os.read(self._tty, 4096)
                except BlockingIOError:
                    continue
                conn.sendall(data)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._listener.close()
        os.close(self._tty)
