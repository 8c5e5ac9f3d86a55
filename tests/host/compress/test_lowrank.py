from __future__ import annotations

import pytest
import torch
from torch import nn

from edgeprune.host.compress.compress_errors import ConfigError
from edgeprune.host.compress.lowrank import factorise, factorise_linear, rank_for, saves_work
from edgeprune.host.models import LowRankLinear


def test_full_rank_linear_reproduces_outputs() -> None:
    torch.manual_seed(0)
    for shape in ((16, 12), (5, 40), (32, 32)):
        lin = nn.Linear(*shape)
        lr = factorise_linear(lin, min(shape))
        x = torch.randn(10, shape[0])
        with torch.no_grad():
            assert (lr(x) - lin(x)).abs().max() < 1e-5


def test_full_rank_gru_and_mlp_reproduce_outputs(gru, mlp) -> None:
    names = {"gru0": 1.0, "gru1": 1.0, "head": 1.0}
    out, ranks = factorise(gru, names, only_if_smaller=False)
    assert ranks == {"gru0": [3, 3, 3, 8, 8, 8], "gru1": [6, 6, 6, 6, 6, 6], "head": [4]}
    assert all(isinstance(p, LowRankLinear) for layer in out.layers for p in [*layer.x_proj, *layer.h_proj])
    x = torch.randn(6, 5, 3)
    with torch.no_grad():
        assert (out(x) - gru(x)).abs().max() < 1e-5
    mout, _ = factorise(mlp, {"fc0": 1.0, "fc1": 1.0, "fc2": 1.0}, only_if_smaller=False)
    xm = torch.randn(6, 4)
    with torch.no_grad():
        assert (mout(xm) - mlp(xm)).abs().max() < 1e-5


def test_truncation_error_is_the_discarded_spectrum() -> None:
    # Eckart–Young: the best rank-k error in Frobenius norm is sqrt(sum of the discarded σ²).
    torch.manual_seed(0)
    lin = nn.Linear(20, 16)
    s = torch.linalg.svdvals(lin.weight.detach().double())
    lr = factorise_linear(lin, 5)
    err = torch.linalg.norm(lr.dense_weight().double() - lin.weight.double())
    assert torch.isclose(err, s[5:].pow(2).sum().sqrt(), rtol=1e-5)
    assert lr.first.weight.shape == (5, 20) and lr.second.weight.shape == (16, 5)
    assert torch.equal(lr.second.bias, lin.bias)


def test_applied_only_where_it_saves_work(gru) -> None:
    assert saves_work(8, 8, 3) and not saves_work(8, 8, 4)  # 8·8/(8+8) = 4
    assert rank_for(8, 3, 0.5) == 2 and rank_for(256, 256, 0.25) == 64 and rank_for(4, 4, 0.01) == 1
    out, ranks = factorise(gru, {"gru0": 0.25, "gru1": 1.0})
    # gru0: x_proj 8×3 → rank 1 (1·11 < 24), h_proj 8×8 → rank 2; gru1 full rank saves nothing.
    assert ranks == {"gru0": [1, 1, 1, 2, 2, 2], "gru1": [None] * 6}
    assert isinstance(out.layers[1].h_proj[0], nn.Linear)
    assert out.layers[0].h_proj[2].rank == 2


def test_bad_rank_rejected() -> None:
    with pytest.raises(ConfigError, match="rank"):
        factorise_linear(nn.Linear(4, 4), 5)
