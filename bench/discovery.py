"""Which boards are attached: pyserial's port list plus each firmware's HELLO.

Importable without torch/TensorFlow (``edgeprune doctor`` uses it). Probing sends one HELLO frame
with a short timeout; ports that are not edgeprune firmware simply do not answer (``hello=None``
with the reason in ``error``). Nordic PPK2 power profilers are recognised by their USB product name
and never probed, since a HELLO frame is not a PPK2 command.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PPK2_PRODUCT = "PPK2"
PPK2_VID_PID = (0x1915, 0xC00A)  # Nordic Semiconductor PPK2


@dataclass(frozen=True)
class DeviceInfo:
    """One serial port and what answered on it.

    :param port: device path or URL (``/dev/ttyACM0``, ``socket://127.0.0.1:5555``)
    :param description: pyserial's description ("n/a" when unknown)
    :param vid: USB vendor id, or ``None`` for non-USB ports
    :param pid: USB product id
    :param serial_number: USB serial number
    :param manufacturer: USB manufacturer string
    :param product: USB product string
    :param kind: ``"edgeprune"`` (answered HELLO), ``"ppk2"``, or ``"unknown"``
    :param hello: the firmware's HELLO reply when it answered
    :param error: why probing failed or was skipped
    """

    port: str
    description: str = "n/a"
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    kind: str = "unknown"
    hello: Any = None
    error: str | None = None

    def usb_id(self) -> str:
        return f"{self.vid:04x}:{self.pid:04x}" if self.vid is not None and self.pid is not None else "-"


def probe(port: str, timeout_s: float = 0.5) -> tuple[Any, str | None]:
    """Send HELLO on ``port``; returns ``(hello, None)`` or ``(None, reason)``. Never raises for I/O."""
    from edgeprune.bench import link

    errors: tuple[type[BaseException], ...] = (OSError, link.LinkTimeout, link.FrameError, link.DeviceError)
    try:
        dev = link.Device.open(port, timeout_s=timeout_s)
    except errors as exc:
        return None, f"cannot open: {exc}"
    try:
        return dev.hello(), None
    except errors as exc:
        return None, f"no HELLO within {timeout_s:g} s ({type(exc).__name__})"
    finally:
        dev.close()


def list_devices(*, probe_hello: bool = True, hello_timeout_s: float = 0.5, usb_only: bool = True,
                 extra_ports: list[str] | None = None) -> list[DeviceInfo]:
    """Serial ports with their USB identity and, when ``probe_hello``, the firmware's HELLO.

    :param probe_hello: send HELLO to each candidate port (skipped for PPK2s)
    :param hello_timeout_s: per-port timeout for the HELLO answer
    :param usb_only: probe only USB ports (legacy ``/dev/ttyS*`` rarely hold a board and can be slow)
    :param extra_ports: ports pyserial does not list (ptys, ``socket://`` URLs) to probe as well
    """
    from serial.tools import list_ports

    found: list[DeviceInfo] = []
    for p in sorted(list_ports.comports(), key=lambda p: p.device):
        info = DeviceInfo(
            port=p.device,
            description=p.description or "n/a",
            vid=p.vid,
            pid=p.pid,
            serial_number=p.serial_number,
            manufacturer=p.manufacturer,
            product=p.product,
        )
        if p.product == PPK2_PRODUCT or (p.vid, p.pid) == PPK2_VID_PID:
            found.append(_with(info, kind="ppk2", error="power profiler, not probed"))
            continue
        if usb_only and p.vid is None:
            continue
        found.append(info)
    for port in extra_ports or []:
        found.append(DeviceInfo(port=port, description="given explicitly"))
    if not probe_hello:
        return found
    out: list[DeviceInfo] = []
    for info in found:
        if info.kind == "ppk2":
            out.append(info)
            continue
        hello, err = probe(info.port, hello_timeout_s)
        out.append(_with(info, kind="edgeprune" if hello is not None else "unknown", hello=hello, error=err))
        log.debug("probed %s: %s", info.port, "HELLO" if hello is not None else err)
    return out


def _with(info: DeviceInfo, **changes: Any) -> DeviceInfo:
    from dataclasses import replace

    return replace(info, **changes)


class TargetSpecError(ValueError):
    """A ``--device`` value that is neither ``qemu:<core>`` nor a port."""


@contextlib.contextmanager
def open_target(spec: str, *, timeout_s: float = 10.0, elf: str | Path | None = None) -> Iterator[Any]:
    """An open ``Device`` for ``qemu:<core>`` (QEMU launched, killed on exit) or a port/URL.

    :param spec: ``qemu:m4``, ``/dev/ttyACM0``, ``socket://127.0.0.1:PORT`` or a USB serial number
    :param timeout_s: per-request reply deadline
    :param elf: firmware image for QEMU (default: the core's built firmware)
    """
    from edgeprune.bench.link import Device

    if spec.startswith("qemu:"):
        from edgeprune.bench.qemu import MACHINES, QemuBoard

        core = spec.split(":", 1)[1]
        if core not in MACHINES:
            raise TargetSpecError(f"unknown QEMU core {core!r}; use one of {', '.join(sorted(MACHINES))}")
        # A loaded host (2 cores shared) can take longer than QEMU's default boot deadline.
        boot = max(20.0, timeout_s)
        with QemuBoard(core, elf=elf, boot_timeout_s=boot) as board, Device.open(board.url, timeout_s=timeout_s) as dev:
            yield dev
        return
    if not spec:
        raise TargetSpecError("empty --device; give qemu:<core> or a serial port")
    with Device.open(spec, timeout_s=timeout_s) as dev:
        yield dev
