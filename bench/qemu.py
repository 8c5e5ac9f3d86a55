"""Run the firmware in qemu-system-arm and expose its UART like a board's serial port.

``with QemuBoard("m4") as board: Device.open(board.url, 5)`` -- QEMU runs with ``-icount shift=0`` (one
instruction = 1 ns of virtual time, so SysTick counts instructions deterministically), its UART on a
loopback TCP server (``socket://127.0.0.1:PORT``) or a pty (``/dev/pts/N``). Every instance lives in its
own process group and is killed and reaped on close, on error, on Ctrl-C and at interpreter exit.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import hashlib
import logging
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from edgeprune.bench import protocol as P
from edgeprune.bench.firmware_build import build, env_build_dir
from edgeprune.bench.link import Device, FrameError, LinkTimeout
from edgeprune.bench.paths import project_root

log = logging.getLogger(__name__)


class QemuError(RuntimeError):
    """QEMU could not be started, or the firmware did not answer HELLO in time."""


@dataclass(frozen=True)
class Machine:
    """How to emulate one target.

    :param env: PlatformIO env whose ELF runs here
    :param machine: QEMU ``-machine``
    :param extra: further QEMU arguments
    :param min_qemu: oldest QEMU major version that has ``machine`` (the system QEMU is used when it is new
        enough, else the project-local one ``make setup`` unpacks, see :func:`qemu_binary`)
    :param serial_index: which ``-serial`` the firmware's link UART takes (QEMU hands out the board's UARTs in
        order: the NUCLEO-F411RE image talks on USART2, the second of the F405's)
    :param cpu: the Cortex-M core (``m0`` ... ``m33``) a deploy library for this target is built for
    """

    env: str
    machine: str
    extra: tuple[str, ...] = ()
    min_qemu: int = 0
    serial_index: int = 0
    cpu: str = ""


MACHINES: dict[str, Machine] = {
    # QEMU-only enlargement of the nRF51's 256K flash / 16K RAM, so that real models fit (see docs).
    "m0": Machine("qemu-m0", "microbit", ("-global", "nrf51-soc.flash-size=0x80000",
                                          "-global", "nrf51-soc.sram-size=0x80000"), cpu="m0"),
    "m3": Machine("qemu-m3", "mps2-an385", cpu="m3"),
    "m4": Machine("qemu-m4", "mps2-an386", cpu="m4"),
    "m7": Machine("qemu-m7", "mps2-an500", cpu="m7"),
    "m33": Machine("qemu-m33", "mps2-an505", cpu="m33"),
    # The STM32 board images run on QEMU's emulation of their SoC (firmware/port/stm32.c, bare build).
    "b-l475e-iot01a": Machine("qemu-b-l475e-iot01a", "b-l475e-iot01a", min_qemu=9, cpu="m4"),
    "netduinoplus2": Machine("qemu-netduinoplus2", "netduinoplus2", serial_index=1, cpu="m4"),
}
#: Emulated STM32 boards (their images are the board envs' images; README "Real boards").
STM32_TWINS = ("b-l475e-iot01a", "netduinoplus2")
#: The board an emulated STM32 twin's HELLO names -> its key in MACHINES.
TWIN_OF_BOARD = {"b-l475e-iot01a": "b-l475e-iot01a", "nucleo-f411re": "netduinoplus2"}
#: Where ``make setup`` (tools/provision_qemu10.sh) unpacks Debian's newer QEMU when the system's lacks a machine.
LOCAL_QEMU = Path(".tools") / "qemu10"

_live: weakref.WeakSet[QemuBoard] = weakref.WeakSet()


def _kill_all() -> None:
    for board in list(_live):
        board.close()


atexit.register(_kill_all)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Boards whose QEMU machine has a LAN9118 the firmware can run the link over (serial="eth").
ETH_CORES = ("m3", "m4", "m7", "m33")


def default_elf(core: str) -> Path:
    """``.pio/build/qemu-<core>/firmware.elf`` (under ``$PLATFORMIO_BUILD_DIR`` when set), built first if missing
    or older than any firmware source (an ELF left by an earlier checkout would otherwise refuse ops the runtime
    has since learned). Two processes needing it at once build it once (``firmware_build.build_lock``)."""
    env = MACHINES[core].env
    elf = env_build_dir(env) / "firmware.elf"
    if not elf.is_file() or _firmware_newer_than(elf):
        elf = build(env).elf
        elf.touch()  # PlatformIO leaves an up-to-date ELF alone; mark it checked against today's sources
    return elf


def _firmware_newer_than(elf: Path) -> bool:
    built = elf.stat().st_mtime
    root = project_root()
    for top in (root / "platformio.ini", root / "firmware"):
        paths = [top] if top.is_file() else top.rglob("*")
        for p in paths:
            if "tests" in p.parts or not p.is_file():
                continue
            if p.suffix in (".c", ".h", ".S", ".py", ".json", ".ld", ".ini") and p.stat().st_mtime > built:
                return True
    return False


ICOUNT = ["-icount", "shift=0"]


@dataclass(frozen=True)
class QemuBinary:
    """One qemu-system-arm and how to run it.

    :param path: the executable
    :param version: ``(major, minor, patch)`` from ``--version``
    :param env: environment variables it needs (the unpacked one loads its own modules, not the system's)
    :param args: arguments it needs (the unpacked one: ``-audio none``, so no audio module is probed)
    """

    path: str
    version: tuple[int, int, int]
    env: tuple[tuple[str, str], ...] = ()
    args: tuple[str, ...] = ()

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def _qemu_version(path: str, env: dict[str, str] | None = None) -> tuple[int, int, int] | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=15, check=False,
                             env=env).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"version (\d+)\.(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


@functools.lru_cache(maxsize=1)
def system_qemu() -> QemuBinary | None:
    """The qemu-system-arm on PATH (the one every mps2/microbit count comes from), or None."""
    exe = shutil.which("qemu-system-arm")
    version = _qemu_version(exe) if exe else None
    return QemuBinary(exe, version) if exe and version else None


@functools.lru_cache(maxsize=1)
def local_qemu() -> QemuBinary | None:
    """The project-local QEMU ``make setup`` unpacked into ``.tools/qemu10``, or None."""
    root = project_root() / LOCAL_QEMU
    exe = root / "usr" / "bin" / "qemu-system-arm"
    if not exe.is_file():
        return None
    env = {"QEMU_MODULE_DIR": str(root / "usr" / "lib" / "x86_64-linux-gnu" / "qemu")}
    version = _qemu_version(str(exe), {**os.environ, **env})
    return QemuBinary(str(exe), version, tuple(env.items()), ("-audio", "none")) if version else None


def qemu_binary(machine: Machine) -> QemuBinary:
    """The qemu-system-arm that runs ``machine``: the system one when new enough, else the project-local one.

    Raises :class:`QemuError` with the one reason when neither is (so a test that needs the machine fails saying so).
    """
    system = system_qemu()
    if system is not None and system.version[0] >= machine.min_qemu:
        return system
    local = local_qemu()
    if local is not None and local.version[0] >= machine.min_qemu:
        return local
    have = f"the system's is {system.version_text}" if system else "none is installed"
    raise QemuError(f"QEMU >= {machine.min_qemu} is needed for machine {machine.machine} and {have}: run `make setup` "
                    f"(it unpacks Debian's qemu-system-arm 10 into {LOCAL_QEMU}), or install QEMU >= {machine.min_qemu}")


def _die_with_parent() -> None:
    """Runs in the child before exec: ask Linux to SIGKILL QEMU when the launching process dies.

    Why: a ``kill -9`` of the search cannot run atexit handlers, and QEMU lives in its own session
    (so Ctrl-C in the terminal doesn't reach it); without this it would be orphaned.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig, sigkill = 1, 9
        libc.prctl(pr_set_pdeathsig, sigkill, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: atexit/close() still clean up normal exits
        pass


class QemuBoard:
    """One emulated board running the firmware.

    :param core: ``"m0" | "m3" | "m4" | "m7" | "m33"``, or an emulated STM32 board (``STM32_TWINS``)
    :param elf: firmware image (default: the env's ``firmware.elf``, built on demand)
    :param serial: how the host reaches the firmware's link: ``"tcp"`` (UART0, ``url`` is
        ``socket://127.0.0.1:PORT``), ``"pty"`` (UART0, ``url`` is ``/dev/pts/N``), ``"eth"`` (the board's
        LAN9118 over UDP, ``url`` is ``ethudp://...``; mps2 cores only, ~50x faster model loads) or
        ``"auto"``: ``"eth"`` where the machine has the NIC, else ``"tcp"``
    :param boot_timeout_s: deadline for QEMU to start and the firmware to answer HELLO
    :param wait_hello: check HELLO during start (the connection is closed again afterwards)
    :param extra_args: further QEMU arguments, appended (e.g. ``-d`` execution tracing for a profile)
    """

    def __init__(self, core: str, elf: str | Path | None = None, serial: str = "auto",
                 boot_timeout_s: float = 20.0, wait_hello: bool = True, extra_args: tuple[str, ...] = ()):
        if core not in MACHINES:
            raise QemuError(f"unknown core {core!r}; choose one of {sorted(MACHINES)}")
        if serial == "auto":
            serial = "eth" if core in ETH_CORES else "tcp"
        if serial not in ("tcp", "pty", "eth"):
            raise QemuError(f"serial must be 'auto', 'tcp', 'pty' or 'eth', not {serial!r}")
        if serial == "eth" and core not in ETH_CORES:
            raise QemuError(f"QEMU's {MACHINES[core].machine} has no Ethernet; use serial='tcp' for {core}")
        self.core = core
        self.machine = MACHINES[core]
        self.elf = Path(elf) if elf is not None else None
        self.serial = serial
        self.boot_timeout_s = boot_timeout_s
        self.wait_hello = wait_hello
        self.extra_args = tuple(extra_args)
        self.url = ""
        self.qemu: QemuBinary | None = None
        self.boot_s: float | None = None
        self.hello = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: tempfile._TemporaryFileWrapper[bytes] | None = None
        self._lock = threading.Lock()

    # ---- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> QemuBoard:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def command(self) -> list[str]:
        if shutil.which("qemu-system-arm") is None and self.machine.min_qemu == 0:
            raise QemuError("qemu-system-arm not found: apt-get install qemu-system-arm")
        self.qemu = qemu_binary(self.machine)
        net: list[str] = []
        if self.serial == "tcp":
            self._port = free_port()
            chardev = f"tcp:127.0.0.1:{self._port},server=on,wait=on,nodelay=on"
        elif self.serial == "pty":
            chardev = "pty"
        else:
            # QEMU sends each frame from the NIC to udp=, and receives frames for it on localaddr=.
            self._port = free_port(socket.SOCK_DGRAM)
            self._host_port = self._port
            while self._host_port == self._port:  # the kernel may hand the same free port out twice
                self._host_port = free_port(socket.SOCK_DGRAM)
            chardev = "null"
            net = ["-nic", f"socket,udp=127.0.0.1:{self._host_port},localaddr=127.0.0.1:{self._port}"]
        assert self.elf is not None
        serials = ["-serial", "null"] * self.machine.serial_index + ["-serial", chardev]
        return [self.qemu.path, "-machine", self.machine.machine, *self.machine.extra, *ICOUNT, *net,
                "-nographic", *self.qemu.args, "-monitor", "none", *serials, "-kernel", str(self.elf),
                *self.extra_args]

    def start(self) -> QemuBoard:
        """Launch QEMU and wait (``boot_timeout_s``) until the UART is reachable and answers HELLO."""
        if self.elf is None:
            self.elf = default_elf(self.core)
        if not self.elf.is_file():
            raise QemuError(f"firmware {self.elf} does not exist; build it with `pio run -e {self.machine.env}`")
        t0 = time.monotonic()
        deadline = t0 + self.boot_timeout_s
        cmd = self.command()
        self._log = tempfile.NamedTemporaryFile(prefix="qemu-", suffix=".log")
        # A new session = a new process group, so close() can kill QEMU and anything it spawned.
        env = {**os.environ, **dict(self.qemu.env)} if self.qemu is not None and self.qemu.env else None
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=_die_with_parent, env=env)
        _live.add(self)
        try:
            self.url = self._wait_endpoint(deadline)
            if self.wait_hello:
                self._wait_hello(deadline)
        except BaseException:  # also KeyboardInterrupt: never leave an emulator behind
            self.close()
            raise
        self.boot_s = time.monotonic() - t0
        log.info("QEMU %s (%s) up at %s in %.2f s", self.core, self.machine.machine, self.url, self.boot_s)
        return self

    def _output(self) -> str:
        if self._log is None:
            return ""
        try:
            return Path(self._log.name).read_text(errors="replace")
        except OSError:
            return ""

    def _check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise QemuError(f"qemu-system-arm exited with {self.proc.returncode}: {self._output().strip()[-500:]}")

    def _wait_endpoint(self, deadline: float) -> str:
        while time.monotonic() < deadline:
            self._check_alive()
            if self.serial == "eth":
                # Nothing to wait for: a HELLO sent before the firmware enabled the NIC is dropped and retried.
                return f"ethudp://127.0.0.1:{self._port}?bind={self._host_port}"
            if self.serial == "tcp":
                # QEMU prints this once its server socket listens (wait=on holds the guest until we connect).
                if "waiting for connection" in self._output():
                    return f"socket://127.0.0.1:{self._port}"
            else:
                m = re.search(r"char device redirected to (/dev/pts/\d+)", self._output())
                if m:
                    return m.group(1)
            time.sleep(0.02)
        raise QemuError(f"QEMU did not open its serial port within {self.boot_timeout_s:g} s: {self._output()[-300:]}")

    def _wait_hello(self, deadline: float) -> None:
        last: Exception | None = None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                per_try = 0.3 if self.serial == "eth" else 1.0
                with Device.open(self.url, timeout_s=max(0.1, min(per_try, deadline - time.monotonic()))) as dev:
                    self.hello = dev.hello()
                    return
            except (LinkTimeout, FrameError, OSError) as exc:
                last = exc
                time.sleep(0.05)
        raise QemuError(f"firmware in QEMU {self.core} sent no HELLO within {self.boot_timeout_s:g} s ({last})")

    def restart(self) -> QemuBoard:
        """Kill and relaunch (a fresh power-on); ``url`` may change."""
        self.close()
        return self.start()

    def close(self) -> None:
        with self._lock:
            proc, self.proc = self.proc, None
            if proc is not None and proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if proc is not None:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    log.error("QEMU pid %d did not exit after SIGKILL", proc.pid)
            if self._log is not None:
                self._log.close()
                self._log = None
            _live.discard(self)

    def __del__(self) -> None:
        if hasattr(self, "_lock"):  # __init__ may have refused its arguments before creating anything
            self.close()


def link_throughput(core: str, serial: str = "auto", size: int = 256 * 1024, elf: str | Path | None = None) -> float:
    """Model-load rate over the link of an emulated board, in bytes/s (LOAD_BEGIN + LOAD_CHUNKs, timed on the host).

    Random bytes are sent and LOAD_END is never issued, so any firmware with ``max_model >= size`` serves.

    :param core: ``"m0" | "m3" | "m4" | "m7" | "m33"``
    :param serial: wire, as for :class:`QemuBoard`
    :param size: bytes to send (capped at the firmware's ``max_model``)
    :param elf: firmware image (default: the env's ``firmware.elf``)
    """
    with QemuBoard(core, elf=elf, serial=serial) as board, Device.open(board.url, 10.0) as dev:
        n = min(size, dev.hello().max_model)
        if n <= 0:
            raise QemuError(f"firmware {board.elf} accepts no model over the link (a deploy build?)")
        data = os.urandom(n)
        t0 = time.monotonic()
        dev.request(P.MSG_LOAD_BEGIN, P.LOAD_BEGIN.pack(size=n, sha256=hashlib.sha256(data).digest()))
        for off in range(0, n, P.MAX_CHUNK):
            dev.request(P.MSG_LOAD_CHUNK, struct.pack("<I", off) + data[off : off + P.MAX_CHUNK])
        return n / (time.monotonic() - t0)

