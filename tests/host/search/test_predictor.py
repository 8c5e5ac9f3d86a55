"""The k-NN predictor's features see each layer's precision, so candidates that differ only there are apart."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from edgeprune.host.compress.config import CompressionConfig, LayerConfig
from edgeprune.host.search.predictor import features, held_out
from edgeprune.host.search.types import LATENCY_COUNT, QUALITY

NAMES = ("gru0", "gru1", "head")


def _cfg(prune: float, precision: dict[str, str] | None = None) -> CompressionConfig:
    precision = precision or {}
    return CompressionConfig(layers=tuple(LayerConfig(n, prune=prune if n != "head" else 0.0,
                                                      precision=precision.get(n)) for n in NAMES))


def test_precision_moves_the_features_and_int8_keeps_them():
    base = features(_cfg(0.5))
    assert np.array_equal(base, features(_cfg(0.5, {"gru0": "int8"})))
    for p in ("int4", "16x8", "float32"):
        other = features(_cfg(0.5, {"gru0": p}))
        assert other.shape == base.shape and not np.array_equal(other, base), p


class _Result:
    def __init__(self, config: CompressionConfig, quality: float, count: float) -> None:
        self.config_json, self.error = config.to_json(), None
        self._v = {QUALITY: quality, LATENCY_COUNT: count}

    def value(self, key: str) -> float:
        return self._v.get(key, math.nan)


def test_held_out_error_falls_when_precision_explains_the_cost(monkeypatch):
    """Instruction counts that depend only on gru0's precision: with precision in the features the leave-one-out
    error is a fraction of what it is without (every precision looking alike)."""
    from edgeprune.host.search import predictor

    rows = []
    cost = {"int8": 1e6, "int4": 1.6e6, "16x8": 2.0e6, "float32": 6.0e6}
    for i, p in enumerate(["int8", "int4", "16x8", "float32"] * 3):
        cfg = _cfg(0.1 * (i % 3), {"gru0": p})
        rows.append(SimpleNamespace(kind="candidate", origin="device", digest=cfg.digest(),
                                    result=_Result(cfg, 0.6, cost[p])))
    res = held_out(rows, lambda q: 0.0)
    monkeypatch.setattr(predictor, "WIDTHS", dict.fromkeys(predictor.WIDTHS, (0.25, 0.25)))
    blind = held_out(rows, lambda q: 0.0)
    assert res.n_cost == blind.n_cost == 12
    assert res.mae_cost_pct < 10.0 and blind.mae_cost_pct > 5 * res.mae_cost_pct, (res, blind)
