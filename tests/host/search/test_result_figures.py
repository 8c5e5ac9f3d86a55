"""What a device measurement records (``result_figures.device_figures``): an int8 model whose outputs differ from
TFLM in any byte is a failed candidate; a float32 model is allowed rounding within ``FLOAT_AGREEMENT_TOL``, and
the quality's detail says how many validation inputs agreed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from edgeprune.host.search.result_figures import FLOAT_AGREEMENT_TOL, device_figures
from edgeprune.host.search.types import ENERGY_UJ, LATENCY_COUNT, QUALITY, EvalResult


def _measurement(rate: float, max_diff: float, n: int = 4) -> SimpleNamespace:
    count = SimpleNamespace(value=12_345.0, unit="instructions", source="qemu", detail="")
    energy = SimpleNamespace(value=float("nan"), unit="uJ", source="model", detail="")
    agreement = SimpleNamespace(byte_equal_rate=SimpleNamespace(value=rate), n=n, max_abs_diff=max_diff,
                                mismatches=list(range(round((1 - rate) * n))))
    return SimpleNamespace(figures={"count": count, "energy_model": energy}, agreement=agreement)


QUALITY_VAL = SimpleNamespace(value=0.75, metric="accuracy")


@pytest.mark.parametrize(("float_model", "max_diff", "fails"), [
    (False, 1.0, True),  # int8: one differing byte is a firmware bug
    (True, FLOAT_AGREEMENT_TOL / 2, False),  # float32: summation order may round the last bits
    (True, FLOAT_AGREEMENT_TOL * 10, True),
])
def test_outputs_that_differ_from_tflm(float_model, max_diff, fails):
    result = EvalResult("{}", "d")
    device_figures(result, _measurement(0.75, max_diff), QUALITY_VAL, float_model)
    assert (result.error is not None) == fails
    if fails:
        assert "differ from TFLM on 1/4 inputs" in result.error
    detail = result.figures[QUALITY].detail
    assert "byte-equal to TFLM on 3/4 validation inputs" in detail
    assert ("float32: others within" in detail) == (not fails)


def test_agreeing_outputs_record_the_device_figures():
    result = EvalResult("{}", "d")
    device_figures(result, _measurement(1.0, 0.0), QUALITY_VAL, False)
    assert result.error is None
    assert result.figures[QUALITY].value == 0.75 and result.figures[QUALITY].source == "qemu"
    assert result.figures[LATENCY_COUNT].value == 12_345.0
    assert ENERGY_UJ not in result.figures  # a NaN energy is no figure
