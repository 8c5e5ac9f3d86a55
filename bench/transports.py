"""Byte transports for the device link: pyserial ports by path, by USB serial number, or by URL.

Everything returned is a pyserial ``SerialBase`` (``read``/``write``/``in_waiting``/``close``), so the link
code is the same for a real board (``/dev/ttyACM0``), a QEMU pty (``/dev/pts/N``) and QEMU's TCP serial
(``socket://127.0.0.1:PORT``).
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)

DEFAULT_BAUD = 115200
# Reads poll in short slices so a caller's deadline is honoured to within this many seconds.
POLL_S = 0.02


class PortNotFound(OSError):
    """No serial port matches the given path, URL or USB serial number."""


def resolve(port: str) -> str:
    """Map a USB serial number (e.g. an ST-LINK's ``066DFF...``) to its device path; paths and URLs pass."""
    if "://" in port or port.startswith("/") or os.path.exists(port) or port.upper().startswith("COM"):
        return port
    from serial.tools import list_ports

    matches = [p.device for p in list_ports.comports() if p.serial_number and p.serial_number.lower() == port.lower()]
    if not matches:
        raise PortNotFound(f"no serial port with USB serial number {port!r}; list ports with `edgeprune devices`")
    if len(matches) > 1:
        log.warning("USB serial %s matches %s; using %s", port, matches, matches[0])
    return matches[0]


def open_port(port: str, timeout_s: float, baudrate: int = DEFAULT_BAUD):
    """Open ``port`` (path, ``socket://host:port`` URL or USB serial number) with explicit timeouts.

    :param port: ``/dev/ttyACM0``, ``/dev/pts/3``, ``socket://127.0.0.1:4444`` or a USB serial number
    :param timeout_s: write timeout; reads use short polls and the caller's own deadline
    :param baudrate: UART speed (ignored by sockets and ptys)
    """
    import serial  # imported late: keeps `edgeprune --help` fast

    path = resolve(port)
    try:
        if "://" in path:
            ser = serial.serial_for_url(path, timeout=POLL_S, write_timeout=timeout_s)
            sock = getattr(ser, "_socket", None)
            if sock is not None:
                # Request/reply traffic of small frames: Nagle + delayed ACK would add ~40 ms per exchange.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            if not os.path.exists(path):
                raise PortNotFound(f"serial port {path} does not exist; is the board plugged in / QEMU running?")
            ser = serial.Serial(path, baudrate=baudrate, timeout=POLL_S, write_timeout=timeout_s)
    except serial.SerialException as exc:
        raise PortNotFound(f"cannot open {path}: {exc}") from exc
    log.debug("opened %s", path)
    return ser
