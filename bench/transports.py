"""Byte transports for the device link: pyserial ports by path, by USB serial number, or by URL.

Everything returned behaves like a pyserial ``SerialBase`` (``read``/``write``/``in_waiting``/``flush``/
``close``), so the link code is the same for a real board (``/dev/ttyACM0``), a QEMU pty (``/dev/pts/N``),
QEMU's TCP serial (``socket://127.0.0.1:PORT``) and the emulated mps2 boards' Ethernet
(``ethudp://127.0.0.1:QEMU_PORT?bind=HOST_PORT``, see :class:`EthPipe`).
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import struct
import time
from urllib.parse import parse_qs, urlparse

import serial
from serial.tools import list_ports

log = logging.getLogger(__name__)

DEFAULT_BAUD = 115200
# Reads poll in short slices so a caller's deadline is honoured to within this many seconds.
POLL_S = 0.02


# Where users find their boards' paths and USB serial numbers.
LIST_COMMAND = "edgeprune bench --list"


class PortNotFound(OSError):
    """No serial port matches the given path, URL or USB serial number."""


class PortUnusable(PortNotFound):
    """The port is there but cannot be used: permission denied, in use by another program, or not a serial port."""


def port_problem(path: str, exc: BaseException) -> str:
    """What to do about a port that would not open, in one line (``exc`` from the OS or pyserial)."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return (f"permission denied on {path}: add your user to the port's group (`sudo usermod -aG dialout "
                f"$USER`, then log in again) or fix the device's udev rule")
    if code in (errno.EBUSY, errno.EAGAIN) or "exclusively lock" in text:
        return (f"{path} is in use by another program (a serial monitor, screen, minicom or another edgeprune); "
                "close it and run again")
    if code == errno.ENOTTY or "Inappropriate ioctl" in text:
        return f"{path} is not a serial port; give the board's port (list boards with `{LIST_COMMAND}`)"
    return f"cannot open {path}: {text}"


def check_port(path: str) -> None:
    """Open ``path`` as the link will (read-write, exclusive) and close it again, so a port that cannot be
    used fails before any slow work. Raises :class:`PortUnusable`."""
    try:
        serial.Serial(path, baudrate=DEFAULT_BAUD, timeout=POLL_S, write_timeout=1.0, exclusive=True).close()
    except (serial.SerialException, OSError) as exc:
        raise PortUnusable(port_problem(path, exc)) from exc


def resolve(port: str) -> str:
    """Map a USB serial number (e.g. an ST-LINK's ``066DFF...``) to its device path; paths and URLs pass."""
    if "://" in port or port.startswith("/") or os.path.exists(port) or port.upper().startswith("COM"):
        return port
    matches = [p.device for p in list_ports.comports() if p.serial_number and p.serial_number.lower() == port.lower()]
    if not matches:
        raise PortNotFound(f"no attached board has USB serial number {port!r}; list boards with `{LIST_COMMAND}`")
    if len(matches) > 1:
        log.warning("USB serial %s matches %s; using %s", port, matches, matches[0])
    return matches[0]


# Mirrors firmware/port/ep_lan9118.h: raw Ethernet II frames, EtherType 0x88B5, payload [len u16][bytes].
ETH_TYPE = 0x88B5
ETH_MAX_DATA = 1400
_HOST_MAC = bytes.fromhex("024550000001")
_DEV_MAC = bytes.fromhex("024550000002")


class EthPipe:
    """The link's byte stream over QEMU's ``-netdev socket,udp=...`` (one UDP datagram per Ethernet frame).

    QEMU's CMSDK UART takes one byte per emulator main-loop round trip; the mps2 boards' LAN9118 takes a
    whole frame, so this carries the same COBS frames 50-100x faster. Loopback UDP does not lose datagrams
    under the link's request/reply flow (at most one request in flight); a loss would surface as LinkTimeout.

    :param host: QEMU's address (``127.0.0.1``)
    :param qemu_port: UDP port QEMU receives on (its ``localaddr``)
    :param bind_port: UDP port this end receives on (QEMU's ``udp=`` destination)
    :param timeout: read timeout in seconds (pyserial semantics: ``read`` returns what arrived by then)
    :param write_timeout: kept for pyserial compatibility; UDP sends do not block
    """

    def __init__(self, host: str, qemu_port: int, bind_port: int, timeout: float = POLL_S,
                 write_timeout: float | None = None):
        self.timeout = timeout
        self.write_timeout = write_timeout
        self._dest = (host, qemu_port)
        self._rx = bytearray()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self._sock.bind((host, bind_port))
        except OSError:
            self._sock.close()
            raise
        self._sock.setblocking(False)
        self.is_open = True

    def _drain(self, wait_s: float) -> None:
        ready, _, _ = select.select([self._sock], [], [], max(0.0, wait_s))
        while ready:
            try:
                frame = self._sock.recv(4096)
            except BlockingIOError:
                return
            if len(frame) >= 16 and struct.unpack_from(">H", frame, 12)[0] == ETH_TYPE:
                (n,) = struct.unpack_from("<H", frame, 14)
                self._rx += frame[16 : 16 + n]
            ready, _, _ = select.select([self._sock], [], [], 0)

    @property
    def in_waiting(self) -> int:
        self._drain(0)
        return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        deadline = time.monotonic() + (self.timeout or 0.0)
        while len(self._rx) < size:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._drain(left)
        self._drain(0)
        out = bytes(self._rx[:size])
        del self._rx[:size]
        return out

    def write(self, data: bytes) -> int:
        for off in range(0, len(data), ETH_MAX_DATA):
            chunk = data[off : off + ETH_MAX_DATA]
            head = _DEV_MAC + _HOST_MAC + struct.pack(">H", ETH_TYPE) + struct.pack("<H", len(chunk))
            self._sock.sendto(head + chunk, self._dest)
        return len(data)

    def flush(self) -> None:
        """Datagrams leave at ``write``; nothing is buffered here."""

    def reset_input_buffer(self) -> None:
        self._drain(0)
        self._rx.clear()

    def close(self) -> None:
        if self.is_open:
            self._sock.close()
            self.is_open = False


def open_eth(url: str, timeout_s: float) -> EthPipe:
    """Open ``ethudp://HOST:QEMU_PORT?bind=HOST_PORT`` (what :class:`edgeprune.bench.qemu.QemuBoard` prints)."""
    u = urlparse(url)
    bind = parse_qs(u.query).get("bind", [""])[0]
    if not u.hostname or not u.port or not bind.isdigit():
        raise PortNotFound(f"bad Ethernet link URL {url!r}; expected ethudp://127.0.0.1:QEMU_PORT?bind=HOST_PORT")
    try:
        return EthPipe(u.hostname, u.port, int(bind), timeout=POLL_S, write_timeout=timeout_s)
    except OSError as exc:
        raise PortNotFound(f"cannot bind UDP {u.hostname}:{bind} for {url}: {exc} (is another client open?)") from exc


def open_port(port: str, timeout_s: float, baudrate: int = DEFAULT_BAUD):
    """Open ``port`` (path, ``socket://host:port`` URL or USB serial number) with explicit timeouts.

    :param port: ``/dev/ttyACM0``, ``/dev/pts/3``, ``socket://127.0.0.1:4444`` or a USB serial number
    :param timeout_s: write timeout; reads use short polls and the caller's own deadline
    :param baudrate: UART speed (ignored by sockets and ptys)
    """
    if port.startswith("ethudp://"):
        return open_eth(port, timeout_s)
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
            # Exclusive (flock): two processes on one board would read each other's replies.
            ser = serial.Serial(path, baudrate=baudrate, timeout=POLL_S, write_timeout=timeout_s, exclusive=True)
    except (serial.SerialException, OSError) as exc:
        if isinstance(exc, PortNotFound):
            raise
        raise PortUnusable(port_problem(path, exc)) from exc
    log.debug("opened %s", path)
    return ser
