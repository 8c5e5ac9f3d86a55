"""Warm starts (issue 28, item 3): which fine-tuned ancestor a candidate may start from, and ``compress(start=...)``
making the candidate's exact shape from it, with the ancestor's zeroed weights kept zero and the baseline
untouched."""

from __future__ import annotations

import pytest
import torch

from edgeprune.host.compress.compress_errors import ConfigError
from edgeprune.host.compress.compressor import compress
from edgeprune.host.compress.config import CompressionConfig, LayerConfig
from edgeprune.host.compress.warm_start import closest, composes, distance


def _config(gru0: float, gru1: float, head_sparsity: float = 0.0, *, rank: float | None = None,
            steps: int = 0) -> CompressionConfig:
    return CompressionConfig(layers=(LayerConfig("gru0", prune=gru0, rank_frac=rank), LayerConfig("gru1", prune=gru1),
                                     LayerConfig("head", sparsity=head_sparsity)), finetune_steps=steps)


def test_an_ancestor_is_no_more_compressed_in_any_layer_and_dense():
    candidate = _config(0.5, 0.5, 0.5)
    assert composes(_config(0.25, 0.5, 0.25), candidate)
    assert not composes(_config(0.75, 0.25), candidate)  # gru0 removed more units than the candidate keeps
    assert not composes(_config(0.25, 0.25, 0.75), candidate)  # more of the head zeroed
    assert not composes(_config(0.25, 0.25, rank=0.5), candidate)  # low-rank factors are not pruned again
    assert not composes(candidate, candidate)  # itself is a cache hit, not an ancestor
    assert composes(_config(0.25, 0.25), _config(0.5, 0.5, rank=0.5))  # the candidate may factorise after


def test_the_closest_composable_ancestor_is_chosen():
    candidate = _config(0.5, 0.5, 0.5)
    far, near, blocked = _config(0.0, 0.0), _config(0.5, 0.25, 0.5), _config(0.5, 0.5, 0.75)
    assert distance(near, candidate) == 0.25 and distance(far, candidate) == 1.5
    assert closest(candidate, [(far, "far"), (blocked, "blocked"), (near, "near")]) == "near"
    assert closest(candidate, [(blocked, "blocked")]) is None


def test_a_warm_start_has_the_cold_shape_and_leaves_the_baseline_alone(gru, seq_data):
    ancestor_config = _config(0.25, 0.0, 0.5, steps=8)
    ancestor = compress(gru, ancestor_config, data=seq_data).model
    candidate = _config(0.5, 0.5, 0.75, steps=8)
    before = {k: v.clone() for k, v in gru.state_dict().items()}
    cold = compress(gru, candidate, data=seq_data)
    warm = compress(gru, candidate, data=seq_data, start=(ancestor, ancestor_config))
    assert warm.report["shape_after"] == cold.report["shape_after"] == [3, 4, 3, 4]
    assert warm.report["kept_units"] == cold.report["kept_units"] == {"gru0": 4, "gru1": 3}
    assert warm.report["shape_before"] == [3, 8, 6, 4]  # the baseline's, not the ancestor's
    assert warm.proxies.params == cold.proxies.params
    assert float((warm.model.head.weight == 0).float().mean()) >= 0.74
    assert all(torch.equal(before[k], v) for k, v in gru.state_dict().items())  # the baseline is not modified


def test_a_config_that_does_not_compose_is_refused(gru, seq_data):
    ancestor_config = _config(0.5, 0.0)
    ancestor = compress(gru, ancestor_config, data=seq_data).model
    with pytest.raises(ConfigError, match="not a further compression"):
        compress(gru, _config(0.25, 0.0), data=seq_data, start=(ancestor, ancestor_config))
