"""Which boards are attached: pyserial's port list plus each firmware's HELLO.

Importable without torch/TensorFlow (``edgeprune doctor`` uses it). Probing sends one HELLO frame
with a short timeout; ports that are not edgeprune firmware simply do not answer (``hello=None``
with the reason in ``error``). Nordic PPK2 power profilers are recognised by their USB product name
and never probed, since a HELLO frame is not a PPK2 command.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from serial.tools import list_ports

from edgeprune.bench.targets import TargetError, open_device, probe, spec_for_port

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

    def spec(self) -> str:
        """What to pass as ``--device``: ``serial:<USB serial number>`` when the port has one, else the path."""
        return spec_for_port(self.port, self.serial_number)

    def usb_id(self) -> str:
        return f"{self.vid:04x}:{self.pid:04x}" if self.vid is not None and self.pid is not None else "-"


def list_devices(*, probe_hello: bool = True, hello_timeout_s: float = 0.5, usb_only: bool = True,
                 extra_ports: list[str] | None = None) -> list[DeviceInfo]:
    """Serial ports with their USB identity and, when ``probe_hello``, the firmware's HELLO.

    :param probe_hello: send HELLO to each candidate port (skipped for PPK2s)
    :param hello_timeout_s: per-port timeout for the HELLO answer
    :param usb_only: probe only USB ports (legacy ``/dev/ttyS*`` rarely hold a board and can be slow)
    :param extra_ports: target specs pyserial does not list (ptys, ``socket://`` URLs, ``qemu:<core>``,
        which is launched for the probe) to probe as well
    """
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
    return replace(info, **changes)


# Kept for callers of the old names: targets are parsed and opened in bench.targets now.
TargetSpecError = TargetError
open_target = open_device
