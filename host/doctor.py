"""``edgeprune doctor``: what is installed, what is attached, and which fallbacks a search would use.

Each check returns a ``Check`` with the exact command that fixes it, so the CLI can print one line
per problem and exit non-zero when something *required* is missing.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from edgeprune.bench.discovery import DeviceInfo, list_devices
from edgeprune.bench.paths import project_root
from edgeprune.bench.qemu import MACHINES, QemuError, qemu_binary
from edgeprune.bench.targets import DEFAULT_TARGET, TargetSpec, probe

# PyPI distributions the toolchain imports, with whether a search cannot run without them.
PYTHON_STACK: tuple[tuple[str, bool], ...] = (
    ("torch", True),
    ("tensorflow", True),
    ("onnx", True),
    ("onnxruntime", True),
    ("onnx2tf", True),
    ("tflite-micro", True),
    ("stable-baselines3", True),
    ("gymnasium", True),
    ("optuna", True),
    ("platformio", True),
    ("pyserial", True),
    ("codecarbon", False),
    ("ppk2-api", False),
    ("pyelftools", True),
)

SETUP_FIX = "make setup   (or: make test / make demo, which run it)"


@dataclass
class Check:
    """One line of the doctor's report.

    Parameters
    ----------
    name: what was checked. ok: whether it passed. detail: version or finding.
    required: a failed required check makes ``doctor`` exit non-zero. fix: the command that fixes it.
    """

    name: str
    ok: bool
    detail: str
    required: bool = True
    fix: str = ""


@dataclass
class DoctorReport:
    """Everything ``doctor`` found. ``fallbacks`` says what ``edgeprune search`` would use by default."""

    checks: list[Check] = field(default_factory=list)
    ports: list[DeviceInfo] = field(default_factory=list)
    fallbacks: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks if c.required)


def _version_of(cmd: list[str], timeout_s: float = 10.0) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0] if first else None


def _tool_check(name: str, exe: str, path: str | None, fix: str) -> Check:
    found = shutil.which(exe, path=path)
    if not found:
        return Check(name, False, f"{exe} not found on PATH", fix=fix)
    version = _version_of([found, "--version"]) or "unknown version"
    return Check(name, True, f"{found}: {version}")


def _apt_fix(pkgs: str) -> str:
    sudo = "" if os.geteuid() == 0 else "sudo "
    return f"{sudo}apt-get install -y {pkgs}   (or: make setup)"


def default_search_path() -> str:
    """``$PATH`` plus this interpreter's bin directory, so the venv's ``pio`` is found unactivated."""
    return os.pathsep.join([os.environ.get("PATH", ""), str(Path(sys.executable).parent)])


def check_tools(path: str | None = None) -> list[Check]:
    """Cross compiler, QEMU and PlatformIO (looked up on ``path``, default ``default_search_path()``)."""
    path = path if path is not None else default_search_path()
    checks = [
        _tool_check(
            "cross compiler",
            "arm-none-eabi-gcc",
            path,
            _apt_fix("gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib"),
        ),
        _tool_check("QEMU", "qemu-system-arm", path, _apt_fix("qemu-system-arm")),
        _tool_check("PlatformIO", "pio", path, SETUP_FIX),
    ]
    checks.append(check_stm32_emulator())
    core = os.environ.get("PLATFORMIO_CORE_DIR")
    scons = (Path(core) if core else Path.home() / ".platformio") / "packages" / "tool-scons" / "package.json"
    checks.append(
        Check(
            "PlatformIO tool-scons (offline)",
            scons.exists(),
            str(scons) if scons.exists() else "missing: `pio run` would try to download it",
            fix=".venv/bin/python tools/provision_scons.py",
        )
    )
    return checks


def check_stm32_emulator() -> Check:
    """The QEMU that runs ``qemu:b-l475e-iot01a`` (>= 9: the system's when new enough, else ``make setup``'s
    project-local unpack), with its version; optional, the mps2 targets run on the system QEMU."""
    machine = MACHINES["b-l475e-iot01a"]
    name = f"QEMU >= {machine.min_qemu} (qemu:{machine.machine})"
    try:
        qemu = qemu_binary(machine)
    except QemuError as exc:
        return Check(name, False, str(exc), required=False, fix=SETUP_FIX)
    return Check(name, True, f"{qemu.path}: QEMU {qemu.version_text}")


def check_python_stack() -> list[Check]:
    """Versions of the Python packages, read from metadata (nothing heavy is imported)."""
    checks = []
    for dist, required in PYTHON_STACK:
        try:
            version = md.version(dist)
            ok = True
            if dist == "torch" and not version.startswith("2.13.0"):
                ok = False
                version += " (expected 2.13.0 CPU build)"
            checks.append(Check(f"python: {dist}", ok, version, required, SETUP_FIX))
        except md.PackageNotFoundError:
            checks.append(Check(f"python: {dist}", False, "not installed", required, SETUP_FIX))
    return checks


def decide_fallbacks(checks: list[Check], ports: list[DeviceInfo]) -> dict[str, str]:
    """What ``edgeprune search`` with no ``--device`` would measure on, and where energy comes from."""
    boards = [p for p in ports if p.kind != "ppk2"]
    ppk2 = [p for p in ports if p.kind == "ppk2"]
    qemu_ok = any(c.name == "QEMU" and c.ok for c in checks)
    if boards:
        device = f"serial board candidates: {', '.join(p.port for p in boards)} (pass --device PORT to use one); default stays QEMU"
    else:
        device = "no board attached"
    fallbacks = {
        "device": device,
        "default target": f"{DEFAULT_TARGET} (instruction counts under -icount, a lower bound on cycles)"
        if qemu_ok
        else "none: QEMU missing",
        "energy": (
            f"PPK2 on {ppk2[0].port} when a board is used; otherwise " if ppk2 else ""
        )
        + "MCU energy model (cycles × energy per cycle) + CodeCarbon host energy",
    }
    return fallbacks


def check_target(spec: str, timeout_s: float = 5.0) -> Check:
    """Open the target ``spec`` (starting QEMU for ``qemu[:core]``) and ask its firmware for HELLO."""
    try:
        name = str(TargetSpec.parse(spec))
    except ValueError as exc:  # TargetError
        return Check(f"target {spec}", False, str(exc), fix="edgeprune bench --list   (shows what to pass as --device)")
    hello, err = probe(name, timeout_s)
    if hello is None:
        return Check(f"target {name}", False, err or "no answer",
                     fix="flash the firmware (edgeprune flash) or pick another --device from `edgeprune bench --list`")
    return Check(f"target {name}", True, f"HELLO: {hello.board} ({hello.core}), build {hello.build_id}, "
                 f"counter {hello.counter}")


def run_doctor(path: str | None = None, device: str | None = None) -> DoctorReport:
    """Run every check; ``path`` overrides ``$PATH`` for tool lookup (tests use it for the missing path);
    ``device``, a target spec, is also opened and must answer HELLO."""
    checks = check_tools(path) + check_python_stack()
    pio_ini = project_root() / "platformio.ini"
    checks.append(Check("project platformio.ini", pio_ini.exists(), str(pio_ini), fix="run from a full edgeprune checkout"))
    # No HELLO probe: doctor must not write to ports it merely lists (`edgeprune bench --list` probes).
    ports = list_devices(probe_hello=False)
    if device is not None:
        checks.append(check_target(device))
    return DoctorReport(checks=checks, ports=ports, fallbacks=decide_fallbacks(checks, ports))
