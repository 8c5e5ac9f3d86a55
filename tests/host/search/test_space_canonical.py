"""ConfigSpace: log-scale prune coordinates, fine-tuning sized to the cut, and one digest per model."""

from __future__ import annotations

import pytest

from edgeprune.host.compress.config import MAX_PRUNE
from edgeprune.host.compress.structured import kept_count
from edgeprune.host.models import MLP, StackedGRU
from edgeprune.host.search.space import MIN_KEEP, ConfigSpace, auto_finetune_steps


@pytest.fixture(scope="module")
def gru():
    return StackedGRU(4, [256, 256], 5, 30)


def test_log_scale_spends_the_coordinate_on_decades(gru) -> None:
    sp = ConfigSpace(gru)
    assert sp.prune_rate(0.0) == 0.0
    assert sp.prune_rate(1.0) == pytest.approx(1 - MIN_KEEP)
    assert sp.prune_rate(0.5) == pytest.approx(1 - MIN_KEEP**0.5)
    lin = ConfigSpace(gru, prune_scale="linear")
    assert lin.prune_rate(0.5) == 0.5
    # A centred coordinate removes most of each layer on the log scale, half of it on the linear one.
    assert sp.continuous([0.5, 0.5, 0, 1]).layer("gru0").prune > 0.8
    assert lin.continuous([0.5, 0.5, 0, 1]).layer("gru0").prune == 0.5


def test_same_model_same_digest(gru) -> None:
    sp = ConfigSpace(gru, prune_scale="linear")
    a = sp.continuous([0.410, 0.5, 0.0, 1.0])
    b = sp.continuous([0.4115, 0.5, 0.0, 1.0])  # PPO's jitter: the same 151 kept units
    assert kept_count(256, 0.410) == kept_count(256, 0.4115)
    assert a.digest() == b.digest()
    c = sp.continuous([0.45, 0.5, 0.0, 1.0])
    assert c.digest() != a.digest()
    # The snapped rate builds exactly the model the raw rate would.
    assert kept_count(256, a.layer("gru0").prune) == kept_count(256, 0.410)
    assert sp.continuous([0.0, 0.0, 0.004, 1.0]).layer("head").sparsity == 0.0


def test_cap_and_canonical_agree(gru) -> None:
    sp = ConfigSpace(gru)
    cfg = sp.continuous([1.0, 1.0, 0.0, 1.0])
    assert cfg.layer("gru0").prune <= MAX_PRUNE
    assert kept_count(256, cfg.layer("gru0").prune) >= 8


def test_auto_finetune_grows_with_the_cut(gru) -> None:
    sp = ConfigSpace(gru, finetune_steps="auto")
    light = sp.continuous([0.05, 0.05, 0.0, 1.0])
    deep = sp.continuous([0.9, 0.9, 0.0, 1.0])
    assert 0 < light.finetune_steps < deep.finetune_steps <= auto_finetune_steps(1.0)
    assert sp.continuous([0.0, 0.0, 0.0, 1.0]).finetune_steps == 0  # nothing removed: nothing to heal
    assert sp.removed_fraction(deep) > 0.95
    with pytest.raises(ValueError, match="auto"):
        ConfigSpace(gru, finetune_steps="lots")


def test_vector_uses_the_same_scale(gru) -> None:
    sp = ConfigSpace(gru, finetune_steps="auto")
    lo, hi = sp.vector_bounds()
    names = sp.vector_names()
    for i, n in enumerate(names):
        if n.endswith(".prune"):
            assert (lo[i], hi[i]) == (0.0, 1.0)
    vec = [(a + b) / 2 for a, b in zip(lo, hi, strict=True)]
    cfg = sp.vector(vec)
    assert cfg.layer("gru0").prune == pytest.approx(1 - kept_count(256, 1 - MIN_KEEP**0.5) / 256, abs=1e-6)


def test_mlp_widths_are_known() -> None:
    sp = ConfigSpace(MLP([4, 64, 64, 2]), finetune_steps="auto")
    assert sp.widths == {"fc0": 64, "fc1": 64}
    cfg = sp.discrete(5)  # ratio 0.5, float32
    assert cfg.layer("fc0").prune == 0.5 and cfg.finetune_steps > 0
