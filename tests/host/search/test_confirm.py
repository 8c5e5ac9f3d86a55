"""The confirmation rule names one best point and discounts drops the run's own evidence calls luck."""

from __future__ import annotations

import math

import numpy as np

from edgeprune.host.search.confirm import Confirmation, confirm, fit_trend, shrink, verdict_text
from edgeprune.host.search.store import StoredEvaluation
from edgeprune.host.search.types import (
    ENERGY_UJ,
    FLASH_BYTES,
    LATENCY_COUNT,
    MACS,
    QUALITY,
    EvalResult,
    FigureRecord,
)

N = 189
RNG = np.random.default_rng(0)
REF = (RNG.random(N) < 0.62).astype(float)


def _flip(ref: np.ndarray, lose: int, gain: int, seed: int) -> np.ndarray:
    """A candidate that gets ``lose`` of FP32's right windows wrong and ``gain`` of its wrong ones right."""
    rng = np.random.default_rng(seed)
    out = ref.copy()
    right, wrong = np.flatnonzero(ref == 1), np.flatnonzero(ref == 0)
    out[rng.choice(right, lose, replace=False)] = 0
    out[rng.choice(wrong, gain, replace=False)] = 1
    return out


def _ev(seq: int, macs: float, samples: np.ndarray, feasible: bool = True, kind: str = "candidate") -> StoredEvaluation:
    figs = {
        QUALITY: FigureRecord(float(samples.mean()), "accuracy", "tflm"),
        MACS: FigureRecord(macs, "MACs", "proxy"),
        LATENCY_COUNT: FigureRecord(2.0 * macs, "instructions", "qemu"),
        FLASH_BYTES: FigureRecord(macs + 4000, "bytes", "build"),
        ENERGY_UJ: FigureRecord(macs / 1e3, "uJ", "model"),
    }
    res = EvalResult("{}", f"d{seq:03d}", figs, samples={"val": samples.tolist()})
    return StoredEvaluation(seq, kind, "test", "device", True, feasible, "" if feasible else "quality drop",
                            0.0, res, {}, 0.0, 0.0)


def _run(lucky_gain: int) -> tuple[list[StoredEvaluation], StoredEvaluation]:
    base = _ev(1, 1e6, REF, kind="baseline")
    evs = [base]
    # Many small candidates (30x fewer MACs) that lose ~5 pp on average: the trend for that size.
    for i in range(12):
        evs.append(_ev(10 + i, 1e6 / 30, _flip(REF, 20, 10 + (i % 3), seed=i), feasible=False))
    # A modest point (3x fewer MACs) that agrees with FP32 on all but 4 windows.
    evs.append(_ev(40, 1e6 / 3, _flip(REF, 2, 2, seed=40)))
    # The lucky one: as small as the others but 1 window *ahead* of FP32 on validation.
    evs.append(_ev(41, 1e6 / 30, _flip(REF, lucky_gain - 1, lucky_gain, seed=41)))
    return evs, base


def test_a_lucky_small_point_is_not_confirmed_and_the_agreeing_one_is_named() -> None:
    evs, base = _run(lucky_gain=20)
    out = confirm(evs, base, {e.digest: e.result.samples["val"] for e in evs[1:]}, REF.tolist(), "accuracy", True, 1.0)
    by_seq = {p.seq: p for p in out.evidence()}
    lucky, modest = by_seq[41], by_seq[40]
    assert lucky.drop["value"] < 0 < lucky.shrunk  # looked better than FP32; its size says it is not
    assert not lucky.confirmed and modest.confirmed
    assert out.named == "d040"
    assert out.point_rule_named == "d041"  # what the previous rule would have named
    assert abs(modest.shrunk - modest.drop["value"]) < 0.5  # few disagreements: keeps its own figure
    assert Confirmation.from_dict(out.to_dict()).named == "d040"


def test_no_shrinkage_when_candidates_of_a_size_truly_differ() -> None:
    x = np.r_[np.zeros(10), np.ones(10)]
    d = np.r_[np.linspace(-10, 10, 10), np.linspace(-10, 10, 10)]
    a, b, tau = fit_trend(x, d, np.full(20, 0.5))
    assert tau > 5
    assert shrink(-5.0, 0.5, a + b, tau) == pytest_approx(-5.0, 0.1)


def pytest_approx(value: float, tol: float):  # noqa: ANN201 - tiny local helper
    import pytest

    return pytest.approx(value, abs=tol)


def test_every_front_point_gets_a_verdict_in_words() -> None:
    evs, base = _run(lucky_gain=20)
    out = confirm(evs, base, {e.digest: e.result.samples["val"] for e in evs[1:]}, REF.tolist(), "accuracy", True, 1.0)
    texts = [verdict_text(p, 1.0, "pp") for p in out.evidence()]
    assert texts and all("95 % interval" in t and "limit" in t for t in texts)
    lucky = next(p for p in out.evidence() if p.seq == 41)
    assert "not distinguishable from no drop" in verdict_text(lucky, 1.0, "pp")


def test_without_samples_nothing_is_named() -> None:
    evs, base = _run(lucky_gain=20)
    out = confirm(evs, base, {}, REF.tolist(), "accuracy", True, 1.0)
    assert out.named is None and not out.points and math.isfinite(out.limit)


def test_a_few_collapsed_candidates_do_not_set_the_trend_or_its_spread() -> None:
    """Drops of ~2 pp with 2 pp noise, plus three candidates that collapsed (30-40 pp): still shrunk hard."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 3, 30)
    d = 2.0 + rng.normal(0, 2.0, 30)
    d[:3] = [30.0, 35.0, 40.0]
    a, b, tau = fit_trend(x, d, np.full(30, 2.0))
    assert abs(a + b * 1.5 - 2.0) < 1.5 and tau < 2.0
    assert shrink(-0.5, 2.0, a + b * 1.5, tau) > 0.5  # a lucky -0.5 pp is pulled most of the way back
