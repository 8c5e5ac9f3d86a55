"""One way to name, open and look after a measurement target, shared by every command.

A target spec is what ``--device`` (``search``, ``bench``, ``doctor``) and ``--port``/``--device``
(``flash``) take:

============================  =================================================================
``qemu``                      the emulated Cortex-M4 (``qemu:m4``), launched here
``qemu:m0|m3|m4|m7|m33``      an emulated board of that core, launched here
``qemu:b-l475e-iot01a``       the B-L475E-IOT01A's image on QEMU's emulation of its STM32L475 (QEMU >= 9)
``qemu:netduinoplus2``        the NUCLEO-F411RE's image on QEMU's netduinoplus2 (STM32F405, same F4 peripherals)
``/dev/ttyACM0``              a board's serial port (also ``/dev/ttyUSB0``, ``/dev/pts/N``, ``COM3``)
``serial:<USB serial number>``  the board whose USB serial number this is (several boards attached)
``socket://host:port``        a serial port over TCP (also ``rfc2217://``, ``loop://``, ``ethudp://``)
============================  =================================================================

:class:`Target` owns the lifecycle: it starts QEMU when the spec names it (ending an emulator a killed
earlier run left behind), opens the link, checks the firmware answers HELLO, restarts a hung board,
and cleans everything up on close.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil

from edgeprune.bench import protocol as P
from edgeprune.bench.link import (
    BOARD_INFER_DEADLINE,
    BuildMismatch,
    Device,
    DeviceError,
    DeviceFault,
    DeviceGone,
    FrameError,
    Hello,
    LinkTimeout,
)
from edgeprune.bench.qemu import MACHINES, QemuBoard, QemuError
from edgeprune.bench.transports import LIST_COMMAND, PortNotFound, PortUnusable, check_port, resolve

log = logging.getLogger(__name__)

QEMU_CORES: tuple[str, ...] = tuple(MACHINES)
DEFAULT_QEMU_CORE = "m4"
#: The target of every command given no ``--device`` (the CLI's default and ``SearchOptions.device``).
DEFAULT_TARGET = f"qemu:{DEFAULT_QEMU_CORE}"
URL_SCHEMES = ("socket://", "rfc2217://", "loop://", "ethudp://")
FORMS = f"qemu, qemu:<{'|'.join(QEMU_CORES)}>, /dev/ttyACM0, /dev/pts/N, serial:<USB serial number>, socket://host:port"
# (the STM32 twins among QEMU_CORES: bench.qemu.STM32_TWINS)
# A bare word of this shape naming an attached board was accepted before ``serial:`` existed (deprecated).
_LEGACY_SERIAL = re.compile(r"^[0-9A-Za-z]{6,}$")


def split_specs(text: str) -> list[str]:
    """``--device a,b,c`` → ``["a", "b", "c"]``: the one reading of a list of target specs (one board per worker)."""
    return [d.strip() for d in str(text).split(",") if d.strip()]


class TargetError(ValueError):
    """A target spec names no usable target; the message is one line that says what to write instead."""


@dataclass(frozen=True)
class TargetSpec:
    """A parsed target spec (see the module doc for the forms).

    :param kind: ``"qemu"`` (an emulated board started here) or ``"serial"`` (a port, URL or USB serial number)
    :param core: QEMU target (``m0``..``m33``, or an emulated STM32 board of ``bench.qemu.STM32_TWINS``); empty
        for serial targets until HELLO says
    :param port: serial device path or URL (serial only; empty when ``usb_serial`` names the board)
    :param usb_serial: USB serial number resolved to a port when opened (serial only)
    """

    kind: str
    core: str = ""
    port: str = ""
    usb_serial: str = ""

    @classmethod
    def parse(cls, text: str | TargetSpec) -> TargetSpec:
        """Parse ``text``; raises :class:`TargetError` for anything that is not one of the forms."""
        if isinstance(text, TargetSpec):
            return text
        t = text.strip()
        if t == "qemu" or t.startswith("qemu:"):
            core = t.partition(":")[2] or DEFAULT_QEMU_CORE
            if core not in QEMU_CORES:
                raise TargetError(f"unknown QEMU core {core!r}; use qemu:{'|'.join(QEMU_CORES)}")
            return cls("qemu", core=core)
        if t.startswith("serial:"):
            rest = t.partition(":")[2].strip()
            if not rest:
                raise TargetError("serial: needs the board's USB serial number, e.g. serial:066DFF515150898367034443")
            if rest.startswith("/") or rest.startswith(URL_SCHEMES):
                return cls("serial", port=rest)
            return cls("serial", usb_serial=rest)
        if t.startswith("/") or t.startswith(URL_SCHEMES) or re.match(r"^COM\d+$", t, flags=re.I):
            return cls("serial", port=t)
        if t and os.path.exists(t):
            return cls("serial", port=t)
        if t and _LEGACY_SERIAL.match(t) and _attached_usb_serial(t):
            log.warning("--device %s: a bare USB serial number is deprecated; write serial:%s", t, t)
            return cls("serial", usb_serial=t)
        raise TargetError(f"--device {t!r}: expected qemu[:{'|'.join(QEMU_CORES)}], a serial port such as "
                          f"/dev/ttyACM0, serial:<USB serial number> or socket://host:port")

    def __str__(self) -> str:
        if self.kind == "qemu":
            return f"qemu:{self.core}"
        return f"serial:{self.usb_serial}" if self.usb_serial else self.port

    @property
    def is_qemu(self) -> bool:
        return self.kind == "qemu"

    def resolve_port(self) -> str:
        """The device path or URL to open: a USB serial number is looked up among attached ports."""
        if self.kind != "serial":
            raise TargetError(f"{self} is an emulator, not a port")
        if not self.usb_serial:
            return self.port
        try:
            return resolve(self.usb_serial)
        except PortNotFound as exc:
            raise TargetError(str(exc)) from exc

    def check(self) -> None:
        """Fail now, in one line, for a serial target that is not there (before any slow work)."""
        if self.kind != "serial":
            return
        path = self.resolve_port()
        if "://" in path:
            return
        if not os.path.exists(path):
            raise TargetError(f"serial port {path} does not exist; plug the board in, or list boards with "
                              f"`{LIST_COMMAND}`")
        try:
            check_port(path)  # permission, another program on it, not a tty: now, not after the baseline
        except PortUnusable as exc:
            raise TargetError(str(exc)) from exc


def _attached_usb_serial(word: str) -> bool:
    """Whether ``word`` is the USB serial number of an attached port (a bare word is otherwise a typo)."""
    try:
        resolve(word)
    except PortNotFound:
        return False
    return True


def spec_for_port(port: str, serial_number: str | None) -> str:
    """The spec a user should pass for a listed port: ``serial:<SN>`` survives re-plugging, a path may not."""
    return f"serial:{serial_number}" if serial_number else port


LINK_ERRORS: tuple[type[BaseException], ...] = (OSError, LinkTimeout, FrameError, DeviceError)
#: Attempts per job in :meth:`Target.run` (the first, then one after a restart).
MAX_ATTEMPTS = 2
# HELLO deadline when asking a silent device whether it is still alive (and how it is).
PROBE_TIMEOUT_S = 2.0
# Refusals that mean the board rebooted under us (its model and load state are gone).
_RESET_STATUSES = (P.ST_NO_MODEL, P.ST_NO_LOAD)
_FAULT_ERRORS: tuple[type[BaseException], ...] = (OSError, LinkTimeout, FrameError, DeviceGone, BuildMismatch,
                                                  DeviceError, QemuError)
T = TypeVar("T")


@dataclass(frozen=True)
class FaultEvent:
    """One device fault seen by :meth:`Target.run` (recovered from or not).

    :param kind: one of ``bench.link.FAULT_KINDS``
    :param detail: what was seen
    :param attempt: 1-based attempt it ended
    :param detected_s: seconds from the attempt's start to the fault's detection
    """

    kind: str
    detail: str
    attempt: int
    detected_s: float


class Target:
    """An open target: the emulator (if any), the link, and the firmware's HELLO.

    :param spec: a target spec string or :class:`TargetSpec`
    :param link_timeout_s: deadline of each request on the link
    :param elf: firmware image QEMU runs (default: the core's serial-loading build)
    :param wire: QEMU wire, as ``QemuBoard(serial=...)``: ``"auto"``, ``"eth"``, ``"tcp"`` or ``"pty"``
    :param boot_timeout_s: deadline for QEMU to boot and answer HELLO
    :param pidfile: where the QEMU pid is noted; QEMU runs in its own process group, so a run killed
        with SIGKILL leaves it behind, and the next :meth:`open` with the same pidfile ends that one
        emulator (checked by pid, command name and start time) before starting its own
    :param slow_timeout_s: deadline of an INFER (LOAD_END: half of it), i.e. how long a hang mid-inference
        goes unnoticed. ``None``: on a board (not an emulator), derived from the inferences timed so far
        (``bench.link.BOARD_INFER_DEADLINE``), the link's default minute until the first is; on an emulator,
        that minute (its death is seen at once anyway: the process is polled)
    :param negotiate_baud: move a serial board's link to the fastest rate both ends manage (``Device.negotiate_baud``)
    """

    def __init__(self, spec: str | TargetSpec, *, link_timeout_s: float = 10.0, elf: str | Path | None = None,
                 wire: str = "auto", boot_timeout_s: float = 20.0, pidfile: Path | None = None,
                 slow_timeout_s: float | None = None, negotiate_baud: bool = True) -> None:
        self.spec = TargetSpec.parse(spec)
        self.link_timeout_s = float(link_timeout_s)
        self.elf = elf
        self.wire = wire
        self.boot_timeout_s = float(boot_timeout_s)
        self.pidfile = Path(pidfile) if pidfile is not None else None
        self.slow_timeout_s = slow_timeout_s
        self.board: QemuBoard | None = None
        self.device: Device | None = None
        self.hello: Hello | None = None
        self.url = ""
        self.restarts = 0
        self.negotiate_baud = negotiate_baud
        #: The link rate negotiated with a serial board (None: the port's default, or not a UART).
        self.baud: int | None = None
        #: The build the first HELLO reported; another build later is a fault (results would mix builds).
        self.expected_build: str | None = None
        #: Slowest inference timed on this target (``Device.slowest_run_s``), kept across reconnects.
        self.slowest_run_s: float | None = None
        #: Every fault :meth:`run` saw, in order.
        self.faults: list[FaultEvent] = []

    def open(self) -> Device:
        """The open link (opened, and QEMU started, on first use); HELLO has answered."""
        if self.device is not None:
            return self.device
        if self.spec.is_qemu:
            if self.board is None:
                end_stale_qemu(self.pidfile)
                board = QemuBoard(self.spec.core, elf=self.elf, serial=self.wire, boot_timeout_s=self.boot_timeout_s)
                board.start()
                self.board = board
                self._note_pid()
            url = self.board.url
        else:
            url = self.spec.resolve_port()
        device = Device.open(url, timeout_s=self.link_timeout_s)
        try:
            hello = self._hello_at_a_known_rate(device)
            if self.negotiate_baud and self.board is None and "://" not in url:  # a UART has a rate; a socket none
                self.baud = device.negotiate_baud() or None
        except BaseException:
            device.close()
            raise
        if self.board is not None:
            device.watchdog = self._watchdog
        if self.slow_timeout_s is not None:
            device.slow_timeout_s = self.slow_timeout_s
        elif self.board is None:
            # A board's hang is seen only as silence (an emulator's death is seen at once, its process is
            # polled): INFER's deadline follows the inferences timed so far instead of a fixed minute.
            device.infer_deadline = BOARD_INFER_DEADLINE
            device.slowest_run_s = self.slowest_run_s
        self.device, self.hello, self.url = device, hello, url
        if self.expected_build is None:
            self.expected_build = hello.build_id
        log.info("device %s: core %s, build %s, counter %s", url, hello.core, hello.build_id, hello.counter)
        return device

    def _hello_at_a_known_rate(self, device: Device) -> Hello:
        """HELLO at the port's default rate, else at the rate negotiated earlier (a board that did not reset
        keeps it across the host's reconnects)."""
        try:
            return device.hello()
        except (LinkTimeout, FrameError):
            if not self.baud or getattr(device.port, "baudrate", self.baud) == self.baud:
                raise
        device.port.baudrate = self.baud
        return device.hello()

    def restart(self) -> Device:
        """Power-cycle an emulator (a board: reopen its port after a pause) and open again."""
        self.restarts += 1
        self._close_link()
        if self.board is not None:
            self.board.restart()
            self._note_pid()
        else:
            time.sleep(0.5)  # a board that reset re-enumerates its USB port
        return self.open()

    def run(self, job: Callable[[Device], T], *, attempts: int = MAX_ATTEMPTS) -> T:
        """``job(device)`` with faults detected, classified and retried after a restart, at most ``attempts`` times.

        Before each attempt HELLO must name the build the session started with. Silence, garbage, a
        reboot, another build or a vanished device (an emulator's process is polled while reads wait)
        restart the device and try again; when every attempt failed, :class:`DeviceFault` says which kind,
        and the device is left closed so the next job starts on a fresh one. A refusal that is not a
        reboot (``DeviceError``) is the device's answer and propagates at once.
        """
        started = time.monotonic()
        event: FaultEvent | None = None
        for attempt in range(1, attempts + 1):
            t0 = time.monotonic()
            try:
                device = self.open()
                # A retried board is reset by software first: a crash after that reports another reset
                # reason, which tells a reboot from a lost reply. An emulator was restarted instead.
                hello = device.hello() if attempt == 1 or self.board is not None else device.reset()
                if self.expected_build is not None and hello.build_id != self.expected_build:
                    raise BuildMismatch(f"HELLO names build {hello.build_id}, this session measures with "
                                        f"{self.expected_build}")
                self.hello = hello
                return job(device)
            except _FAULT_ERRORS as exc:
                if isinstance(exc, DeviceError) and exc.status not in _RESET_STATUSES:
                    raise
                kind, detail = self._classify(exc)
                event = FaultEvent(kind, detail, attempt, round(time.monotonic() - t0, 3))
                self.faults.append(event)
                log.warning("device fault (%s) on attempt %d/%d after %.1f s: %s", kind, attempt, attempts,
                            event.detected_s, detail)
                self._recover()
        assert event is not None
        raise DeviceFault(event.kind, event.detail, attempts, time.monotonic() - started)

    def _watchdog(self) -> None:
        reason = self._gone_reason()
        if reason is not None:
            raise DeviceGone(reason)

    def _gone_reason(self) -> str | None:
        """Why the device is not there any more (an emulator exited or stopped, a port vanished), else None."""
        if self.board is not None:
            proc = getattr(self.board, "proc", None)
            if proc is None:
                return "the emulator is not running"
            code = proc.poll()
            if code is not None:
                return f"the emulator exited (code {code})"
            try:
                if psutil.Process(proc.pid).status() == psutil.STATUS_STOPPED:
                    return "the emulator is stopped (SIGSTOP)"
            except psutil.Error:
                return "the emulator's process is gone"
            return None
        if self.url and "://" not in self.url and not os.path.exists(self.url):
            return f"serial port {self.url} vanished (unplugged?)"
        return None

    def _classify(self, exc: BaseException) -> tuple[str, str]:
        """The fault kind of ``exc`` and one line of detail; a silent device is asked HELLO to tell them apart."""
        gone = self._gone_reason()
        if gone is not None:
            return "gone", gone
        if isinstance(exc, DeviceGone | QemuError):
            return "gone", str(exc)
        if isinstance(exc, BuildMismatch):
            return "wrong-build", str(exc)
        if isinstance(exc, DeviceError):
            return "reset", f"the board lost its model ({exc.name}): it reset during the job"
        if isinstance(exc, FrameError):
            return "corrupt", str(exc)
        if not isinstance(exc, LinkTimeout):
            return "gone", f"{type(exc).__name__}: {exc}"
        device = self.device
        if device is None:  # the open's own HELLO timed out
            return ("corrupt", str(exc)) if "garbage" in str(exc) else ("hang", str(exc))
        dropped = device.dropped_bytes
        before = self.hello
        try:
            hello = device.hello(timeout_s=PROBE_TIMEOUT_S)
        except (LinkTimeout, FrameError, DeviceError, OSError):
            if device.dropped_bytes > 0:
                return "corrupt", f"only garbage arrives ({device.dropped_bytes:,} undecodable bytes): {exc}"
            return "hang", f"{exc}; no HELLO within {PROBE_TIMEOUT_S:g} s either"
        if self.expected_build is not None and hello.build_id != self.expected_build:
            return "wrong-build", f"HELLO names build {hello.build_id}, expected {self.expected_build}"
        if before is not None and hello.reset_reason != before.reset_reason:
            return "reset", f"the board rebooted ({hello.reset_reason}) during the job"
        if device.dropped_bytes > dropped or device.dropped_bytes > 0:
            return "corrupt", f"a reply arrived damaged ({device.dropped_bytes:,} undecodable bytes)"
        return "corrupt", f"a reply was lost (the board still answers HELLO): {exc}"

    def _recover(self) -> None:
        """Drop the link and the emulator (the next :meth:`open` starts afresh); a board's port is reopened."""
        self.restarts += 1
        self._close_link()
        if self.board is not None:
            self.close()
        else:
            time.sleep(0.5)  # a board that reset re-enumerates its USB port

    def _close_link(self) -> None:
        if self.device is not None:
            self.slowest_run_s = self.device.slowest_run_s  # kept across reconnects and restarts
            try:
                self.device.close()
            finally:
                self.device = None

    def close(self) -> None:
        """Close the link and stop QEMU (safe to call twice)."""
        self._close_link()
        if self.board is not None:
            try:
                self.board.close()
            finally:
                self.board = None
                if self.pidfile is not None:
                    self.pidfile.unlink(missing_ok=True)

    def _note_pid(self) -> None:
        proc = getattr(self.board, "proc", None)
        if self.pidfile is not None and proc is not None:
            self.pidfile.write_text(str(proc.pid))

    def __enter__(self) -> Target:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def end_stale_qemu(pidfile: Path | None) -> None:
    """End the QEMU an interrupted run noted in ``pidfile`` (only if it is still that emulator)."""
    if pidfile is None or not pidfile.is_file():
        return
    try:
        pid = int(pidfile.read_text().strip())
        proc = psutil.Process(pid)
        noted = pidfile.stat().st_mtime
        # Same name and started before the note was written: the emulator we started, not a reused pid.
        if "qemu-system-arm" in " ".join(proc.cmdline()[:1]) and proc.create_time() <= noted + 1.0:
            log.warning("ending QEMU pid %d left behind by an interrupted run", pid)
            proc.kill()
            proc.wait(timeout=10)
    except (ValueError, psutil.Error):
        pass
    pidfile.unlink(missing_ok=True)


@contextlib.contextmanager
def open_device(spec: str | TargetSpec, *, timeout_s: float = 10.0, elf: str | Path | None = None) -> Iterator[Device]:
    """An open ``Device`` for ``spec`` (QEMU launched and killed on exit); HELLO has answered.

    :param spec: any target spec (see the module doc)
    :param timeout_s: per-request reply deadline
    :param elf: firmware image for QEMU (default: the core's built firmware)
    """
    # A loaded host (2 cores shared) can take longer than QEMU's default boot deadline.
    with Target(spec, link_timeout_s=timeout_s, elf=elf, boot_timeout_s=max(20.0, timeout_s)) as target:
        assert target.device is not None
        yield target.device


def probe(spec: str | TargetSpec, timeout_s: float = 0.5) -> tuple[Any, str | None]:
    """Send HELLO to ``spec``; returns ``(hello, None)`` or ``(None, reason)``. Never raises for I/O."""
    try:
        parsed = TargetSpec.parse(spec)
        if parsed.is_qemu:
            with Target(parsed, link_timeout_s=max(timeout_s, 5.0)) as target:
                return target.hello, None
        device = Device.open(parsed.resolve_port(), timeout_s=timeout_s)
    except (TargetError, QemuError, *LINK_ERRORS) as exc:
        return None, f"cannot open: {exc}"
    try:
        return device.hello(), None
    except LINK_ERRORS as exc:
        return None, f"no HELLO within {timeout_s:g} s ({type(exc).__name__})"
    finally:
        device.close()


__all__ = [
    "DEFAULT_QEMU_CORE",
    "FORMS",
    "MAX_ATTEMPTS",
    "FaultEvent",
    "QEMU_CORES",
    "Target",
    "TargetError",
    "TargetSpec",
    "end_stale_qemu",
    "open_device",
    "probe",
    "spec_for_port",
]
