"""Build the firmware with PlatformIO and read its memory footprint from the ELF.

``build("qemu-m4")`` runs ``pio run -e qemu-m4`` (offline for the QEMU envs, see tools/provision_scons.py);
``build(env, baked_model_dir=...)`` is the deploy build with the exporter's ``model_data.c/.h`` compiled in,
in a separate build dir so it never clobbers the serial-loading firmware.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from edgeprune.host.paths import project_root

log = logging.getLogger(__name__)

# Memory limits per env: (flash bytes, RAM bytes) of what the linker script gives the firmware.
ENV_LIMITS: dict[str, tuple[int, int]] = {
    "qemu-m0": (512 * 1024, 512 * 1024),
    "qemu-m3": (4 * 1024 * 1024, 4 * 1024 * 1024),
    "qemu-m4": (4 * 1024 * 1024, 4 * 1024 * 1024),
    "qemu-m7": (4 * 1024 * 1024, 4 * 1024 * 1024),
    "qemu-m33": (4 * 1024 * 1024, 4 * 1024 * 1024),
    "nucleo_l4r5zi": (2 * 1024 * 1024, 640 * 1024),
    "nucleo_g0b1re": (512 * 1024, 144 * 1024),
    "nucleo_h743zi": (2 * 1024 * 1024, 512 * 1024),  # AXI SRAM; the linker script of the platform decides
}
CORE_ENVS = {"m0": "qemu-m0", "m3": "qemu-m3", "m4": "qemu-m4", "m7": "qemu-m7", "m33": "qemu-m33"}
# Stack headroom the linker script reserves beyond .bss/.noinit (ep_cortexm.ld asserts it).
STACK_RESERVE = 16 * 1024


class BuildError(RuntimeError):
    """``pio run`` failed or the image does not fit; ``stage`` is "pio", "elf" or "limits"."""

    def __init__(self, stage: str, message: str):
        super().__init__(f"[{stage}] {message}")
        self.stage = stage


@dataclass(frozen=True)
class BuildResult:
    """One built firmware image.

    :param env: PlatformIO environment
    :param elf: path of firmware.elf
    :param text: bytes of code + read-only data in flash (.isr_vector, .text, .rodata, .ARM.*)
    :param data: bytes of initialised RAM data (stored in flash too)
    :param bss: bytes of zeroed + uninitialised RAM (.bss, .noinit)
    :param flash_bytes: text + data
    :param ram_bytes: data + bss (the stack comes on top)
    :param limits: ``(flash, ram)`` the env allows
    :param build_id: the id HELLO will report
    """

    env: str
    elf: Path
    text: int
    data: int
    bss: int
    flash_bytes: int
    ram_bytes: int
    limits: tuple[int, int]
    build_id: str


def _pio() -> list[str]:
    exe = Path(sys.executable).with_name("pio")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("pio") or shutil.which("platformio")
    if found is None:
        raise BuildError("pio", "PlatformIO not found: pip install platformio==6.2.0")
    return [found]


def elf_sizes(elf: Path) -> tuple[int, int, int]:
    """``(text, data, bss)`` from the ELF's allocated sections (the same split as ``arm-none-eabi-size``)."""
    from elftools.elf.elffile import ELFFile  # imported late: only needed when sizing

    text = data = bss = 0
    SHF_ALLOC, SHF_WRITE = 0x2, 0x1
    try:
        with open(elf, "rb") as fh:
            for sec in ELFFile(fh).iter_sections():
                flags = sec["sh_flags"]
                if not flags & SHF_ALLOC:
                    continue
                if sec["sh_type"] == "SHT_NOBITS":
                    bss += sec["sh_size"]
                elif flags & SHF_WRITE:
                    data += sec["sh_size"]
                else:
                    text += sec["sh_size"]
    except (OSError, ValueError) as exc:
        raise BuildError("elf", f"cannot read {elf}: {exc}") from exc
    return text, data, bss


def build(env: str, baked_model_dir: str | Path | None = None, build_dir: str | Path | None = None,
          *, timeout_s: float = 600.0, no_runtime: bool = False) -> BuildResult:
    """Build ``env`` and return its sizes, checked against the env's memory limits.

    :param env: PlatformIO env (``qemu-m4``, ``nucleo_l4r5zi``, ...) or a core name (``m4``)
    :param baked_model_dir: folder with the exporter's ``model_data.c/.h``: deploy build with the model inside
    :param build_dir: PlatformIO build dir (default ``.pio/build`` or ``.pio/build-baked/<model>`` when baked)
    :param timeout_s: limit for the whole ``pio run``
    :param no_runtime: link-only firmware (protocol bring-up without firmware/runtime)
    """
    env = CORE_ENVS.get(env, env)
    root = project_root()
    environ = dict(os.environ)
    environ.pop("EP_BAKED_MODEL_DIR", None)
    if baked_model_dir is not None:
        baked = Path(baked_model_dir).resolve()
        if not (baked / "model_data.c").is_file():
            raise BuildError("pio", f"{baked} has no model_data.c; export the model first")
        environ["EP_BAKED_MODEL_DIR"] = str(baked)
        if build_dir is None:
            build_dir = root / ".pio" / "build-baked" / baked.name
    if no_runtime:
        environ["EP_NO_RUNTIME"] = "1"
    if build_dir is not None:
        environ["PLATFORMIO_BUILD_DIR"] = str(Path(build_dir).resolve())
    cmd = [*_pio(), "run", "-e", env, "-d", str(root)]
    log.info("building %s: %s", env, " ".join(cmd))
    try:
        proc = subprocess.run(cmd, cwd=root, env=environ, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BuildError("pio", f"pio run -e {env} took longer than {timeout_s:g} s") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise BuildError("pio", f"pio run -e {env} failed (exit {proc.returncode}):\n{tail}")
    out = Path(build_dir).resolve() / env if build_dir is not None else root / ".pio" / "build" / env
    elf = out / "firmware.elf"
    if not elf.is_file():
        raise BuildError("elf", f"pio run succeeded but {elf} is missing")
    text, data, bss = elf_sizes(elf)
    limits = ENV_LIMITS.get(env, (0, 0))
    result = BuildResult(env, elf, text, data, bss, text + data, data + bss, limits,
                         (out / "build_id.txt").read_text().strip() if (out / "build_id.txt").is_file() else "")
    check_limits(result)
    return result


def check_limits(result: BuildResult) -> None:
    flash, ram = result.limits
    if flash and result.flash_bytes > flash:
        raise BuildError("limits", f"{result.env}: image needs {result.flash_bytes} B flash, the board has {flash} B")
    if ram and result.ram_bytes + STACK_RESERVE > ram:
        raise BuildError("limits", f"{result.env}: {result.ram_bytes} B RAM + {STACK_RESERVE} B stack exceed {ram} B; "
                                   "lower custom_ep_model_max / custom_ep_arena in platformio.ini")
