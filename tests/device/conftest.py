"""Fixtures for the device tests: firmware builds (cached per session) and QEMU boards."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgeprune.host.paths import project_root

CORES = ["m0", "m3", "m4", "m7", "m33"]


def need_tools() -> None:
    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing {missing}: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm")


@pytest.fixture(scope="session")
def link_firmware():
    """Link-only firmware per core (no runtime), so protocol tests do not depend on the runtime's state."""
    from edgeprune.bench.firmware_build import build

    need_tools()
    cache: dict[str, object] = {}

    def get(core: str):
        if core not in cache:
            cache[core] = build(core, build_dir=project_root() / ".pio" / "build-link", no_runtime=True)
        return cache[core]

    return get


@pytest.fixture(scope="session")
def full_firmware():
    """The real firmware (with firmware/runtime) per core, in the default build dir."""
    from edgeprune.bench.firmware_build import build

    need_tools()
    cache: dict[str, object] = {}

    def get(core: str):
        if core not in cache:
            cache[core] = build(core)
        return cache[core]

    return get


def golden_path() -> Path:
    return project_root() / "firmware" / "tests" / "golden_frames.json"
