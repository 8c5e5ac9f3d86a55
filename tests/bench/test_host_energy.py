"""CodeCarbon host energy: positive, labelled 'host', never mistaken for device energy."""

from __future__ import annotations

import pytest

from edgeprune.bench.power.host import host_energy, host_energy_tflite
from edgeprune.bench.reference import ad01_path

AD01 = ad01_path()  # shipped in bench/reference/, SHA-256 checked


def test_codecarbon_host_energy_is_positive_and_tagged_host() -> None:
    acc = []
    res = host_energy(lambda: acc.append(sum(range(2000))), 50, min_duration_s=1.0)
    assert res.inferences >= 50 and len(acc) == res.inferences
    assert res.per_inference.source == "host" and res.per_inference.unit == "uJ"
    assert res.per_inference.value > 0
    assert res.total.value == pytest.approx(res.per_inference.value * res.inferences)
    assert "host energy" in res.per_inference.detail


@pytest.mark.slow
@pytest.mark.tf
def test_codecarbon_host_energy_of_tflite_model() -> None:
    if not AD01.exists():
        pytest.fail(f"reference model missing: {AD01}")
    res = host_energy_tflite(AD01.read_bytes(), n=20, min_duration_s=1.0)
    assert res.per_inference.source == "host" and res.per_inference.value > 0


def test_a_sequence_inference_runs_every_step(monkeypatch) -> None:
    from edgeprune.bench.power import host as host_mod

    calls = {"step": 0}
    monkeypatch.setattr(host_mod, "tflite_runner", lambda _b: lambda: calls.__setitem__("step", calls["step"] + 1))
    res = host_mod.host_energy_tflite(b"", n=3, steps=30, min_duration_s=0.0)
    assert res.inferences >= 3
    assert calls["step"] == 30 * res.inferences
