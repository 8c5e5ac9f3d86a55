"""Flash verification: after an upload the board must report the expected build id.

The board is the simulated device on a pty. ``pio`` is replaced by a small script on PATH that plays
the uploader (it "flashes" by writing the build id the simulated board then reports, or fails), so
the retry and verification logic of ``bench.flash.flash`` runs for real around it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from doubles.sim_device import SimConfig, SimDevice

from edgeprune.bench.flash import FlashError, flash, verify_build


def test_verify_accepts_the_expected_build() -> None:
    with SimDevice(SimConfig(build_id="abc1234-cfg0001")) as sim:
        hello = verify_build(sim.port, "abc1234-cfg0001", timeout_s=2.0)
        assert hello.build_id == "abc1234-cfg0001"


def test_old_firmware_still_running_is_an_error() -> None:
    with SimDevice(SimConfig(build_id="old0000-cfg0001")) as sim:
        with pytest.raises(FlashError) as err:
            verify_build(sim.port, "new1111-cfg0001", timeout_s=2.0)
    assert err.value.stage == "verify"
    assert "old0000-cfg0001" in str(err.value) and "old firmware still running" in str(err.value)


def test_no_answer_is_a_connect_error(tmp_path: Path) -> None:
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        with pytest.raises(FlashError) as err:
            verify_build(os.ttyname(slave), "x", timeout_s=0.2, connect_attempts=2, settle_s=0.05)
        assert err.value.stage == "connect"
    finally:
        os.close(master)
        os.close(slave)


def _fake_pio(bin_dir: Path, build_file: Path, plan: list[str]) -> Path:
    """A ``pio`` that follows ``plan`` one attempt at a time: 'fail', 'noop' (exit 0, nothing written) or a build id."""
    plan_file = bin_dir / "plan.txt"
    plan_file.write_text("\n".join(plan) + "\n")
    script = bin_dir / "pio"
    script.write_text(f"""#!/bin/sh
echo "$@" >> {bin_dir}/calls.txt
step=$(head -n 1 {plan_file}); sed -i 1d {plan_file}
case "$step" in
  fail) echo "Error: unable to connect to target" >&2; exit 1 ;;
  noop) echo "Uploading... done (but nothing was written)"; exit 0 ;;
  *) printf '%s' "$step" > {build_file}; echo "upload ok"; exit 0 ;;
esac
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "platformio.ini").write_text("[env:sim]\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir, proj, tmp_path / "build_id.txt"


def test_flash_retries_a_failed_upload_then_verifies(project) -> None:
    bin_dir, proj, build_file = project
    _fake_pio(bin_dir, build_file, ["fail", "new1111-cfg0001"])
    with SimDevice(SimConfig(build_id="old0000-cfg0001", build_id_file=build_file)) as sim:
        res = flash("sim", sim.port, retries=2, expect_build_id="new1111-cfg0001", project_dir=proj,
                    timeout_s=30, hello_timeout_s=2.0)
    assert res.attempts == 2 and res.build_id == "new1111-cfg0001"
    calls = (bin_dir / "calls.txt").read_text().splitlines()
    assert calls[0] == f"run -e sim -t upload --upload-port {sim.port}"


def test_flash_that_leaves_old_firmware_fails_after_bounded_retries(project) -> None:
    bin_dir, proj, build_file = project
    _fake_pio(bin_dir, build_file, ["noop", "noop", "noop", "new1111-cfg0001"])
    with SimDevice(SimConfig(build_id="old0000-cfg0001", build_id_file=build_file)) as sim:
        with pytest.raises(FlashError) as err:
            flash("sim", sim.port, retries=1, expect_build_id="new1111-cfg0001", project_dir=proj,
                  timeout_s=30, hello_timeout_s=2.0)
    assert err.value.stage == "verify" and err.value.attempts == 2
    assert len((bin_dir / "calls.txt").read_text().splitlines()) == 2  # retries are bounded


def test_flash_upload_error_is_reported_with_the_log(project) -> None:
    bin_dir, proj, build_file = project
    _fake_pio(bin_dir, build_file, ["fail", "fail"])
    with SimDevice(SimConfig()) as sim, pytest.raises(FlashError) as err:
        flash("sim", sim.port, retries=1, project_dir=proj, timeout_s=30, expect_build_id="x")
    assert err.value.stage == "upload" and "unable to connect" in err.value.log_tail
    assert err.value.attempts == 2


def test_flash_to_a_missing_port_fails_before_building(project) -> None:
    bin_dir, proj, build_file = project
    _fake_pio(bin_dir, build_file, [])
    with pytest.raises(FlashError) as err:
        flash("sim", "/dev/ttyACM-not-there", project_dir=proj, timeout_s=30)
    assert err.value.stage == "connect" and "does not exist" in str(err.value)
    assert not (bin_dir / "calls.txt").exists()
