"""The STM32 board port (firmware/port/stm32.c, bare build) executing on QEMU's emulation of the boards' SoCs:
the B-L475E-IOT01A image on ``b-l475e-iot01a`` (QEMU >= 9: the system's or ``make setup``'s .tools/qemu10) and
the NUCLEO-F411RE image on ``netduinoplus2`` (STM32F405, the v1 USART; the system QEMU 7.2).

Their clock setup, UART driver, vector table, linker script and counter fallback run here; outputs must be byte-equal
to TFLM and the instruction counts agree with ``qemu:m4`` (the same runtime on mps2-an386). A machine without the
newer QEMU fails these tests with that one reason (they are not skipped).
"""

from __future__ import annotations

import importlib
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from edgeprune.bench import protocol as P
from edgeprune.bench.link import Device, DeviceError
from edgeprune.bench.qemu import MACHINES, QemuBoard, QemuError, qemu_binary
from edgeprune.bench.reference import ad01_path
from edgeprune.bench.targets import Target

from .test_qemu_faults import _hellos_for

pytestmark = pytest.mark.qemu

#: twin -> (board HELLO names, core clock HELLO reports). The L475's 80 MHz is what the port's PLL setup asks of
#: QEMU's RCC model (the reset clock is MSI 4 MHz); QEMU 7.2 models no F4 RCC and clocks the F405 at 168 MHz.
TWINS = {"b-l475e-iot01a": ("b-l475e-iot01a", 80_000_000), "netduinoplus2": ("nucleo-f411re", 168_000_000)}


@pytest.fixture(scope="module")
def twin_elf():
    """Each twin's serial-loading image, built once for the module (PlatformIO, the project-local platform)."""
    from edgeprune.bench.firmware_build import build

    cache: dict[str, Path] = {}

    def get(twin: str) -> Path:
        if twin not in cache:
            cache[twin] = build(MACHINES[twin].env).elf
        return cache[twin]

    return get


def need_emulator(twin: str) -> None:
    """Fail (not skip) with the one reason when no QEMU here emulates ``twin``."""
    try:
        qemu_binary(MACHINES[twin])
    except QemuError as exc:
        pytest.fail(str(exc))


@pytest.mark.parametrize("twin", sorted(TWINS))
def test_twin_boots_reports_clock_and_counter_and_moves_its_uart_rate(twin, twin_elf):
    need_emulator(twin)
    board_name, clock = TWINS[twin]
    # A pty, as a board's /dev/ttyACM0: the host's SET_BAUD negotiation runs through the port's BRR arithmetic.
    with QemuBoard(twin, elf=twin_elf(twin), serial="pty", boot_timeout_s=60.0) as board, Device.open(board.url, 5.0) as dev:
        hello = dev.hello()
        assert (hello.board, hello.core, hello.clock_hz) == (board_name, "m4", clock)
        # DWT CYCCNT does not count under QEMU: SysTick at the core clock, timed in instructions at boot.
        assert hello.counter == "icount" and hello.counter_scale == round(1e12 / clock) / 1000
        assert hello.has_runtime and not hello.baked_model
        rate = dev.negotiate_baud()
        # 80 MHz / 2 Mbaud is an exact divider; the F411 image's APB1 clock (as its RCC reads back) reaches less.
        assert rate == 2_000_000 if twin == "b-l475e-iot01a" else rate > 115_200
        assert dev.hello().build_id == hello.build_id  # still talking, at the new rate
        with pytest.raises(DeviceError) as refused:  # beyond any divider of these clocks: refused, at the old rate
            dev.request(P.MSG_SET_BAUD, P.SET_BAUD.pack(rate=50_000_000))
        assert refused.value.status == P.ST_BAD_ARG
        assert dev.hello().build_id == hello.build_id
        assert board.boot_s is not None and board.boot_s < 30.0


@pytest.fixture(scope="module")
def m4_ad01():
    from edgeprune.bench.model_bench import bench_model

    return bench_model(ad01_path(), "qemu:m4", repeats=3, warmup=1, agreement=0, timeout_s=120.0)


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.parametrize("twin", sorted(TWINS))
def test_ad01_on_twin_is_tflm_exact_and_counts_as_qemu_m4(twin, m4_ad01):
    from edgeprune.bench.model_bench import bench_model

    need_emulator(twin)
    m = bench_model(ad01_path(), f"qemu:{twin}", repeats=3, warmup=1, agreement=2, timeout_s=120.0)
    # 277 KB does not fit the board's RAM: the deploy build of its image (model in flash) was measured.
    assert m.model.get("deploy_build") and m.target["board"] == TWINS[twin][0]
    assert m.agreement is not None and m.agreement.byte_equal_rate.value == 1.0, m.agreement
    count, ref = m.figures["count"], m4_ad01.figures["count"]
    assert count.source == ref.source == "qemu" and count.unit == "instructions"
    # The same kernels: the counts differ by the two counters' resolution and the ports' own code, no more.
    assert abs(count.value - ref.value) <= m.target["resolution"] + m4_ad01.target["resolution"] + 50, \
        (count.value, ref.value)


def _search_modules():
    tests_dir = str(Path(__file__).resolve().parents[1])
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    return importlib.import_module("search.qemu_setup")


@pytest.mark.slow
@pytest.mark.tf
def test_two_candidate_search_through_the_l475_twin_and_its_gru_on_the_f411_twin(tmp_path, monkeypatch):
    from edgeprune.bench.measure import measure
    from edgeprune.bench.targets import open_device
    from edgeprune.host.search.options import SearchOptions
    from edgeprune.host.search.run import run_search
    from edgeprune.host.search.store import RunStore

    need_emulator("b-l475e-iot01a")
    need_emulator("netduinoplus2")
    monkeypatch.setenv("EDGEPRUNE_CACHE", str(tmp_path / "cache"))
    setup = _search_modules()
    task = setup.small_weather_task()
    artifacts = tmp_path / "artifacts"
    opts = SearchOptions(device="qemu:b-l475e-iot01a", strategy="random", budget=2, out=str(tmp_path / "run"),
                         host_energy=False, max_acc_drop=50.0, finetune_steps=0, max_finetune_steps=5, repeats=3,
                         evaluator_options=setup.evaluator_options(artifacts_dir=str(artifacts)))
    res = run_search(opts, task=task, cache=None)
    with RunStore.open_existing(res.run_dir) as store:
        ident = store.get_meta("identity")
        rows = [e for e in store.evaluations() if e.origin != "host"]
    assert ident["target"] == "qemu:b-l475e-iot01a"
    measured = [e for e in rows if e.result.error is None and "latency_count" in e.result.figures]
    assert len(measured) >= 2, [(e.kind, e.result.error) for e in rows]  # the baseline and >= 1 candidate
    for e in measured:
        figs = e.result.figures
        assert figs["latency_count"].source == "qemu" and figs["latency_count"].unit == "instructions"
        assert "byte-equal to TFLM on 2/2" in figs["quality"].detail, figs["quality"].detail

    # One of the search's GRUs (LOADed over the USART like every candidate) on the F411 image and on qemu:m4.
    exported = sorted(artifacts.rglob("model.tflite"))
    assert exported, f"no exported model under {artifacts}"
    from edgeprune.bench.manifest import read_manifest

    model = exported[0]
    tflite = model.read_bytes()
    manifest = read_manifest(model.parent / "manifest.json")
    x = task.agreement_inputs(3, "val")
    results = {}
    for spec in ("qemu:netduinoplus2", "qemu:m4"):
        with open_device(spec, timeout_s=60.0) as dev:
            results[spec] = measure(dev, tflite, manifest.to_dict(), x[0], warmup=1, repeats=3,
                                    agreement_inputs=list(x))
    for spec, m in results.items():
        assert m.agreement is not None and m.agreement.byte_equal_rate.value == 1.0, (spec, m.agreement)
    f4, m4 = results["qemu:netduinoplus2"], results["qemu:m4"]
    assert m4.model["steps"] == f4.model["steps"] > 1  # a streaming GRU: one invoke per step
    assert abs(f4.figures["count"].value - m4.figures["count"].value) <= \
        f4.target["resolution"] + m4.target["resolution"] + 50


def test_l475_twin_killed_mid_run_is_noticed_restarted_and_the_job_retried(twin_elf):
    need_emulator("b-l475e-iot01a")
    target = Target("qemu:b-l475e-iot01a", elf=twin_elf("b-l475e-iot01a"), link_timeout_s=60.0, boot_timeout_s=60.0)
    try:
        target.open()
        assert target.board is not None and target.board.proc is not None
        first_pid = target.board.proc.pid
        killed: list[float] = []

        def strike() -> None:
            time.sleep(0.3)
            killed.append(time.monotonic())
            os.kill(first_pid, signal.SIGKILL)

        threading.Thread(target=strike, daemon=True).start()
        started = time.monotonic()
        assert target.run(_hellos_for(1.0)) > 0  # the retry on a fresh emulator succeeds
        assert [e.kind for e in target.faults] == ["gone"] and target.restarts == 1
        # seen by polling the process, long before the 60 s link deadline
        assert started + target.faults[0].detected_s - killed[0] < 5.0
        assert target.board.proc.pid != first_pid and target.hello.board == "b-l475e-iot01a"
    finally:
        target.close()


def test_without_a_new_enough_qemu_the_twin_fails_with_the_one_reason(monkeypatch):
    import edgeprune.bench.qemu as q

    old = q.QemuBinary("/usr/bin/qemu-system-arm", (7, 2, 22))
    monkeypatch.setattr(q, "system_qemu", lambda: old)
    monkeypatch.setattr(q, "local_qemu", lambda: None)
    assert q.qemu_binary(MACHINES["netduinoplus2"]) is old  # 7.2 has netduinoplus2
    with pytest.raises(QemuError, match=r"QEMU >= 9 is needed for machine b-l475e-iot01a and the system's is "
                                        r"7\.2\.22: run `make setup`"):
        q.qemu_binary(MACHINES["b-l475e-iot01a"])
    with pytest.raises(QemuError, match="make setup"):
        QemuBoard("b-l475e-iot01a", elf=__file__).start()  # refused before anything is launched


def test_flash_boots_the_l475_image_and_doctor_names_the_f411_twin(twin_elf):
    from edgeprune.bench.flash import FlashError, flash_qemu
    from edgeprune.host.doctor import check_stm32_emulator, check_target

    need_emulator("b-l475e-iot01a")
    res = flash_qemu("b-l475e-iot01a", elf=twin_elf("b-l475e-iot01a"))
    try:
        assert res.env == "qemu:b-l475e-iot01a" and res.hello.board == "b-l475e-iot01a" and res.build_id
    finally:
        res.board.close()
    with pytest.raises(FlashError):
        flash_qemu("b-l475e-iot01a", elf=twin_elf("b-l475e-iot01a"), expect_build_id="not-this-build")
    emulator = check_stm32_emulator()
    assert emulator.ok and re.search(r"QEMU (9|[1-9][0-9])\.", emulator.detail), emulator.detail
    target = check_target("qemu:netduinoplus2", timeout_s=10.0)
    assert target.ok and "nucleo-f411re (m4)" in target.detail and "counter icount" in target.detail
