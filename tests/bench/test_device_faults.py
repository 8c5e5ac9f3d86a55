"""Device faults injected into the simulated board: each is detected within a bounded time, retried a bounded
number of times, and comes back as a ``DeviceFault`` of its kind (issue 16, deliverable 2)."""

from __future__ import annotations

import time

import pytest
from doubles.sim_device import SimConfig, SimDevice

from edgeprune.bench.link import FAULT_KINDS, Device, DeviceFault, fault_kind
from edgeprune.bench.targets import MAX_ATTEMPTS, Target

LINK_S = 1.0  # per-request deadline
SLOW_S = 1.5  # INFER deadline: how long a hang mid-inference goes unnoticed
# Worst case per attempt: a slow deadline, the HELLO probe (2 s), the reopen pause; plus margin for a loaded host.
BOUND_S = MAX_ATTEMPTS * (SLOW_S + 2.0 + 0.5 + LINK_S) + 5.0
MODEL = bytes(range(256)) * 8


def job(device: Device) -> list[int]:
    device.load_model(MODEL)
    return device.infer(2, fetch_outputs=False).counts


FAULTS = {
    "hang": lambda sim, tmp: setattr(sim.faults, "hang_on_infer", True),
    "reset": lambda sim, tmp: setattr(sim.faults, "reset_on_infer", True),
    "corrupt": lambda sim, tmp: setattr(sim.faults, "corrupt_replies", 10_000),
    "dropped": lambda sim, tmp: setattr(sim.faults, "drop_infer_replies", True),
    "wrong-build": lambda sim, tmp: (tmp / "build_id").write_text("sim-other-build"),
    "gone": lambda sim, tmp: setattr(sim.faults, "unplug_on_infer", True),
}
EXPECTED = {"dropped": "corrupt"}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_fault_is_detected_retried_and_typed(tmp_path, fault):
    cfg = SimConfig(build_id_file=tmp_path / "build_id")
    with SimDevice(cfg) as sim:
        target = Target(sim.port, link_timeout_s=LINK_S, slow_timeout_s=SLOW_S)
        try:
            assert target.run(job) == [10_000, 10_000]  # healthy first: the session's build is fixed here
            FAULTS[fault](sim, tmp_path)
            started = time.monotonic()
            with pytest.raises(DeviceFault) as info:
                target.run(job)
            elapsed = time.monotonic() - started
        finally:
            target.close()
    kind = EXPECTED.get(fault, fault)
    assert info.value.kind == kind, [(e.kind, e.detail) for e in target.faults]
    assert info.value.attempts == MAX_ATTEMPTS
    assert [e.kind for e in target.faults] == [kind] * MAX_ATTEMPTS
    assert elapsed < BOUND_S, f"{fault}: {elapsed:.1f} s"
    # What the evaluator stores, and what the search and the report read back.
    assert fault_kind(f"{type(info.value).__name__}: {info.value}") == kind
    assert kind in FAULT_KINDS


def test_a_transient_fault_is_retried_and_the_job_succeeds():
    with SimDevice() as sim:
        target = Target(sim.port, link_timeout_s=LINK_S, slow_timeout_s=SLOW_S)
        try:
            target.run(job)
            sim.faults.drop_replies = 1  # one lost reply, then the board is fine
            assert target.run(job) == [10_000, 10_000]
        finally:
            target.close()
    assert [e.kind for e in target.faults] == ["corrupt"]
    assert target.faults[0].detected_s < SLOW_S + 2.0 + 1.0


def test_a_refusal_is_an_answer_not_a_fault():
    from edgeprune.bench.link import DeviceError

    with SimDevice(SimConfig(max_model=1024)) as sim:
        target = Target(sim.port, link_timeout_s=LINK_S)
        try:
            with pytest.raises(DeviceError):
                target.run(job)
        finally:
            target.close()
    assert target.faults == []


def test_fault_kind_reads_only_device_faults():
    assert fault_kind("DeviceFault: hang: no reply (2 attempts in 5.0 s)") == "hang"
    assert fault_kind("ExportError: hang: no") is None
    assert fault_kind("DeviceFault: melted: x") is None
    assert fault_kind(None) is None
