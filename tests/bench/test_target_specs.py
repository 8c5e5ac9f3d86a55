"""Every target-spec form through every command that takes one.

QEMU forms run the real firmware in qemu-system-arm. Serial forms reach the simulated board on a pty:
by path (``/dev/pts/N``, what ``/dev/ttyACM0`` is to a board), by USB serial number (the OS's USB
enumeration is replaced by one entry naming that pty, since a pty has no USB identity) and by
``socket://`` (a TCP relay to the pty). ``search`` is exercised through its evaluator's device
lifecycle (open, HELLO, restart, close) and its start-up check: a whole search per form would
compress and export models for minutes without touching the spec any further.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from doubles.sim_device import SimConfig, SimDevice
from doubles.tcp_bridge import TcpBridge

from edgeprune.bench.reference import ad01_path
from edgeprune.bench.targets import Target, TargetError, TargetSpec
from edgeprune.host.cli import main

SIM_SERIAL = "EPSIM0000000001"
SIM_BUILD = "sim-spec-0000001"
QEMU_FORMS = ["qemu", "qemu:m4"]
SERIAL_FORMS = ["pty-path", "usb-serial", "socket-url"]
WIDE = {"COLUMNS": "400"}  # rich tables must not fold the cells the assertions look for


@pytest.fixture
def sim_board(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimDevice]:
    """The simulated board, listed by the OS as a USB port with serial number ``SIM_SERIAL``."""
    from serial.tools import list_ports

    cfg = SimConfig(build_id=SIM_BUILD, board="sim-spec", io_inputs=[640 * 4], io_outputs=[640 * 4],
                    base_count=1_000_000)
    with SimDevice(cfg) as sim:
        entry = SimpleNamespace(device=sim.port, description="simulated board", vid=0x0483, pid=0x374B,
                                serial_number=SIM_SERIAL, manufacturer="edgeprune tests", product="sim")
        monkeypatch.setattr(list_ports, "comports", lambda *a, **k: [entry])
        yield sim


@pytest.fixture
def serial_spec(request: pytest.FixtureRequest, sim_board: SimDevice) -> Iterator[str]:
    form = request.param
    if form == "pty-path":
        yield sim_board.port
    elif form == "usb-serial":
        yield f"serial:{SIM_SERIAL}"
    else:
        with TcpBridge(sim_board.port) as bridge:
            yield bridge.url


def _bench(spec: str) -> object:
    return CliRunner(env=WIDE).invoke(main, ["bench", str(ad01_path()), "--device", spec, "--repeats", "3",
                                             "--warmup", "0", "--agreement", "1", "--timeout", "60"])


@pytest.fixture
def fake_pio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose ``pio`` records its arguments and "uploads" successfully (the sim keeps its build)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pio"
    script.write_text(f'#!/bin/sh\necho "$@" >> {bin_dir}/calls.txt\necho "upload ok"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "platformio.ini").write_text("[env:sim]\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("EDGEPRUNE_ROOT", str(proj))
    return bin_dir / "calls.txt"


# ---- serial forms against the simulated board -----------------------------------------------------


@pytest.mark.parametrize("serial_spec", SERIAL_FORMS, indirect=True)
def test_bench_takes_every_serial_form(serial_spec: str) -> None:
    result = _bench(serial_spec)
    assert result.exit_code == 0, result.output
    assert "1,000,000 instructions" in result.output and "sim-spec" in result.output


@pytest.mark.parametrize("serial_spec", SERIAL_FORMS, indirect=True)
def test_bench_list_probes_every_serial_form(serial_spec: str, sim_board: SimDevice) -> None:
    result = CliRunner(env=WIDE).invoke(main, ["bench", "--list", "--device", serial_spec])
    assert result.exit_code == 0, result.output
    # The listed USB port says what to pass as --device; the given spec answered HELLO too.
    assert f"serial:{SIM_SERIAL}" in result.output
    assert result.output.count(SIM_BUILD) >= 2, result.output


@pytest.mark.parametrize("serial_spec", SERIAL_FORMS, indirect=True)
def test_flash_takes_every_serial_form(serial_spec: str, sim_board: SimDevice, fake_pio: Path) -> None:
    result = CliRunner().invoke(main, ["flash", "--env", "sim", "--device", serial_spec,
                                       "--expect-build-id", SIM_BUILD, "--timeout", "30"])
    assert result.exit_code == 0, result.output
    assert f"build {SIM_BUILD} verified by HELLO" in result.output
    # The uploader gets a port it can open, never a USB serial number.
    want = serial_spec if serial_spec.startswith("socket://") else sim_board.port
    assert fake_pio.read_text().split() == ["run", "-e", "sim", "-t", "upload", "--upload-port", want]


@pytest.mark.parametrize("serial_spec", SERIAL_FORMS, indirect=True)
def test_doctor_opens_every_serial_form(serial_spec: str) -> None:
    result = CliRunner(env=WIDE).invoke(main, ["doctor", "--device", serial_spec])
    assert "HELLO: sim-spec (m4)" in result.output and SIM_BUILD in result.output, result.output


@pytest.mark.parametrize("serial_spec", SERIAL_FORMS, indirect=True)
def test_search_evaluator_opens_restarts_and_closes_every_serial_form(serial_spec: str) -> None:
    from edgeprune.host.search.evaluator import HardwareEvaluator

    TargetSpec.parse(serial_spec).check()  # what `edgeprune search` checks before training a baseline
    task = SimpleNamespace(content_hash=lambda: "task-hash")
    with HardwareEvaluator(task, serial_spec, host_energy=False) as ev:
        ident = ev.identity()
        assert ident.build_id == SIM_BUILD and ident.target == "serial:sim-spec:m4"
        ev._restart()
        assert ev.restarts == 1 and ev.hello.build_id == SIM_BUILD
    assert ev.device is None


# ---- QEMU forms, for real -------------------------------------------------------------------------


@pytest.mark.qemu
@pytest.mark.parametrize("spec", QEMU_FORMS)
def test_bench_takes_every_qemu_form(spec: str) -> None:
    result = _bench(spec)
    assert result.exit_code == 0, result.output
    assert "instructions" in result.output and "mps2-an386" in result.output
    assert "100.0% of 1" in result.output  # device output byte-equal to TFLM


@pytest.mark.qemu
@pytest.mark.parametrize("spec", QEMU_FORMS)
def test_bench_list_launches_every_qemu_form(spec: str) -> None:
    result = CliRunner(env=WIDE).invoke(main, ["bench", "--list", "--device", spec])
    assert result.exit_code == 0, result.output
    assert spec in result.output and "edgeprune (mps2-an386)" in result.output


@pytest.mark.qemu
@pytest.mark.parametrize("spec", QEMU_FORMS)
def test_flash_takes_every_qemu_form(spec: str) -> None:
    result = CliRunner().invoke(main, ["flash", "--device", spec])
    assert result.exit_code == 0, result.output
    assert "flashed qemu:m4" in result.output and "verified by HELLO" in result.output


@pytest.mark.qemu
@pytest.mark.parametrize("spec", QEMU_FORMS)
def test_doctor_opens_every_qemu_form(spec: str) -> None:
    result = CliRunner(env=WIDE).invoke(main, ["doctor", "--device", spec])
    assert "target qemu:m4" in result.output and "HELLO: mps2-an386 (m4)" in result.output, result.output


@pytest.mark.qemu
@pytest.mark.parametrize("spec", QEMU_FORMS)
def test_search_evaluator_opens_restarts_and_closes_every_qemu_form(spec: str, tmp_path: Path) -> None:
    from edgeprune.host.search.evaluator import HardwareEvaluator

    pidfile = tmp_path / ".qemu.pid"
    task = SimpleNamespace(content_hash=lambda: "task-hash")
    with HardwareEvaluator(task, spec, host_energy=False, pidfile=pidfile) as ev:
        assert ev.identity().target == "qemu:m4"
        first = int(pidfile.read_text())
        ev._restart()
        assert ev.restarts == 1 and int(pidfile.read_text()) != first
        proc = ev.board.proc
    assert proc.poll() is not None and not pidfile.exists()


# ---- a USB serial number that is not attached ---------------------------------------------------------


@pytest.mark.parametrize("command", [
    ["bench", str(ad01_path()), "--device", "serial:NOTATTACHED42"],
    ["flash", "--env", "nucleo_l4r5zi", "--device", "serial:NOTATTACHED42"],
    ["search", "--device", "serial:NOTATTACHED42"],
])
def test_an_unattached_usb_serial_number_is_one_line(command: list[str], tmp_path: Path) -> None:
    if command[0] == "search":
        command = [*command, "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "no attached board has USB serial number 'NOTATTACHED42'" in lines[0], result.output
    assert "edgeprune bench --list" in lines[0]
    assert not (tmp_path / "run").exists()


def test_doctor_reports_an_unattached_usb_serial_number() -> None:
    result = CliRunner(env=WIDE).invoke(main, ["doctor", "--device", "serial:NOTATTACHED42"])
    assert result.exit_code == 1
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error: target")]
    assert len(errors) == 1 and "no attached board has USB serial number 'NOTATTACHED42'" in errors[0]


# ---- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind", "core", "port", "usb"), [
    ("qemu", "qemu", "m4", "", ""),
    ("qemu:m0", "qemu", "m0", "", ""),
    ("qemu:m33", "qemu", "m33", "", ""),
    ("/dev/ttyACM0", "serial", "", "/dev/ttyACM0", ""),
    ("/dev/pts/7", "serial", "", "/dev/pts/7", ""),
    ("serial:066DFF515150898367034443", "serial", "", "", "066DFF515150898367034443"),
    ("serial:/dev/ttyUSB1", "serial", "", "/dev/ttyUSB1", ""),
    ("socket://127.0.0.1:5555", "serial", "", "socket://127.0.0.1:5555", ""),
    (" qemu:m7 ", "qemu", "m7", "", ""),
])
def test_every_form_parses(text: str, kind: str, core: str, port: str, usb: str) -> None:
    spec = TargetSpec.parse(text)
    assert (spec.kind, spec.core, spec.port, spec.usb_serial) == (kind, core, port, usb)
    assert TargetSpec.parse(str(spec)) == spec


@pytest.mark.parametrize(("text", "why"), [
    ("qemu:m9", "unknown QEMU core"),
    ("ttyUSB0", "expected qemu"),
    ("", "expected qemu"),
    ("serial:", "USB serial number"),
])
def test_bad_forms_are_refused_in_one_line(text: str, why: str) -> None:
    with pytest.raises(TargetError, match=why) as err:
        TargetSpec.parse(text)
    assert "\n" not in str(err.value)


def test_a_bare_usb_serial_number_still_works_with_a_deprecation(sim_board: SimDevice, caplog) -> None:
    spec = TargetSpec.parse(SIM_SERIAL)
    assert spec.usb_serial == SIM_SERIAL and "deprecated" in caplog.text
    with Target(spec, link_timeout_s=2.0) as target:
        assert target.hello is not None and target.hello.build_id == SIM_BUILD
