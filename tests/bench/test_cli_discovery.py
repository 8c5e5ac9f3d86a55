"""`edgeprune bench` / `edgeprune flash` and device discovery, against the simulated board on a pty."""

from __future__ import annotations

import json
import os
import tty
from pathlib import Path

import pytest
from click.testing import CliRunner
from doubles.sim_device import SimConfig, SimDevice

from edgeprune.bench.discovery import list_devices
from edgeprune.bench.reference import ad01_path
from edgeprune.host.cli import main

AD01 = ad01_path()  # shipped in bench/reference/, SHA-256 checked


def test_list_devices_reports_hello_of_firmware_and_nothing_for_a_silent_port() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    silent = os.ttyname(slave)
    try:
        with SimDevice(SimConfig(build_id="sim-list", board="sim-board")) as sim:
            found = {d.port: d for d in list_devices(extra_ports=[sim.port, silent], hello_timeout_s=0.3)}
        assert found[sim.port].kind == "edgeprune"
        assert found[sim.port].hello.build_id == "sim-list" and found[sim.port].hello.board == "sim-board"
        assert found[silent].kind == "unknown" and found[silent].hello is None
        assert "no HELLO" in (found[silent].error or "")
    finally:
        os.close(master)
        os.close(slave)


def test_list_devices_without_probing_is_cheap() -> None:
    devices = list_devices(probe_hello=False, extra_ports=["/dev/does-not-exist"])
    assert any(d.port == "/dev/does-not-exist" and d.hello is None for d in devices)


def test_bench_cli_on_a_serial_device_prints_sources_and_writes_json(tmp_path: Path) -> None:
    if not AD01.exists():
        pytest.fail(f"reference model missing: {AD01}")
    out = tmp_path / "m.json"
    with SimDevice(SimConfig(io_inputs=[640 * 4], io_outputs=[640 * 4], base_count=2_000_000)) as sim:
        result = CliRunner().invoke(main, ["bench", str(AD01), "--device", sim.port, "--repeats", "5",
                                           "--warmup", "1", "--agreement", "0", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "2,000,000" in result.output and "qemu" in result.output and "lower bound" in result.output
    data = json.loads(out.read_text())
    assert data["figures"]["count"]["value"] == 2_000_000 and data["figures"]["count"]["source"] == "qemu"
    assert data["model"]["bytes"] == AD01.stat().st_size
    assert not (tmp_path / "m.json.tmp").exists()


def test_bench_cli_reports_an_unreachable_device_in_one_line(tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(AD01.read_bytes())
    result = CliRunner().invoke(main, ["bench", str(model), "--device", "/dev/no-such-tty", "--agreement", "0"])
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_flash_cli_requires_a_port_for_a_board() -> None:
    result = CliRunner().invoke(main, ["flash", "--env", "nucleo_l4r5zi"])
    assert result.exit_code != 0 and "--port is required" in result.output


def test_bench_list_runs_without_a_model() -> None:
    result = CliRunner().invoke(main, ["bench", "--list"])
    assert result.exit_code == 0, result.output
    assert "qemu:m4" in result.output or "serial devices" in result.output


def test_a_manifest_of_another_model_is_refused(tmp_path: Path) -> None:
    from edgeprune.bench.errors import MeasureError
    from edgeprune.bench.manifest import load_manifest

    man = tmp_path / "manifest.json"
    man.write_text(json.dumps({"hashes": {"tflite_sha256": "0" * 64}, "inputs": [], "outputs": []}))
    with pytest.raises(MeasureError, match="another model"):
        load_manifest(tmp_path / "model.tflite", man, b"not this model")
    bare = load_manifest(AD01, None, AD01.read_bytes())  # no manifest beside it: read from the .tflite
    assert bare["inputs"][0]["dtype"] == "float32" and bare["inputs"][0]["shape"] == [1, 640]
