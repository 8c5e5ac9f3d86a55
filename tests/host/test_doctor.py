"""``edgeprune doctor`` tells the truth with and without the cross toolchain."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner

from edgeprune.bench.discovery import DeviceInfo
from edgeprune.host.cli import main
from edgeprune.host.doctor import decide_fallbacks, run_doctor


def _fake_tool(folder: Path, name: str, version_line: str) -> None:
    exe = folder / name
    exe.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)


def test_missing_cross_compiler_and_qemu_fail_with_the_apt_fix(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["doctor", "--path", str(tmp_path)])
    assert result.exit_code == 1
    assert "arm-none-eabi-gcc not found" in result.output
    assert "apt-get install -y gcc-arm-none-eabi" in result.output
    assert "apt-get install -y qemu-system-arm" in result.output


def test_tools_on_path_are_reported_with_their_version(tmp_path: Path) -> None:
    _fake_tool(tmp_path, "arm-none-eabi-gcc", "arm-none-eabi-gcc (fake) 99.1")
    _fake_tool(tmp_path, "qemu-system-arm", "QEMU emulator version 99.2")
    _fake_tool(tmp_path, "pio", "PlatformIO Core, version 99.3")
    report = run_doctor(str(tmp_path))
    by_name = {c.name: c for c in report.checks}
    assert by_name["cross compiler"].ok and "99.1" in by_name["cross compiler"].detail
    assert by_name["QEMU"].ok and "99.2" in by_name["QEMU"].detail
    assert by_name["PlatformIO"].ok and "99.3" in by_name["PlatformIO"].detail


def test_real_machine_toolchain_is_complete() -> None:
    # `make test` installs the toolchain first, so on any machine that ran it doctor must pass.
    report = run_doctor()
    failed = [f"{c.name}: {c.detail}" for c in report.checks if c.required and not c.ok]
    assert failed == []
    assert report.fallbacks["default target"].startswith("qemu:m4")


def test_fallbacks_name_attached_boards_and_ppk2() -> None:
    ports = [
        DeviceInfo("/dev/ttyACM0", "STM32 STLink", 0x0483, 0x374B, "066DFF"),
        DeviceInfo("/dev/ttyACM1", "PPK2", 0x1915, 0xC00A, "C1234", kind="ppk2"),
    ]
    fb = decide_fallbacks([], ports)
    assert "/dev/ttyACM0" in fb["device"] and "/dev/ttyACM1" not in fb["device"]
    assert "PPK2 on /dev/ttyACM1" in fb["energy"]
    assert fb["default target"].startswith("none")
