from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeprune.host.compress.compress_errors import ConfigError
from edgeprune.host.compress.config import (
    DISCRETE_RATIOS,
    MAX_PRUNE,
    CompressionConfig,
    LayerConfig,
    from_vector,
    layer_names_of,
    to_vector,
    vector_knobs,
)

GRU_NAMES = ("gru0", "gru1", "head")
MLP_NAMES = ("fc0", "fc1", "fc2")


def sample_config() -> CompressionConfig:
    return CompressionConfig(
        layers=(LayerConfig("gru0", prune=0.25, sparsity=0.1), LayerConfig("gru1", rank_frac=0.5),
                LayerConfig("head", sparsity=0.3)),
        quantize="int8", finetune_steps=20, distill=True, importance="taylor", qat=True, seed=3,
    )


def test_json_round_trip_and_hash() -> None:
    cfg = sample_config()
    back = CompressionConfig.from_json(cfg.to_json())
    assert back == cfg and hash(back) == hash(cfg) and back.digest() == cfg.digest()
    assert {cfg, back} == {cfg}
    assert json.loads(cfg.to_json())["layers"][1]["rank_frac"] == 0.5


def test_digest_is_stable_across_processes_and_float_noise() -> None:
    cfg = CompressionConfig(layers=(LayerConfig("gru0", prune=0.1 * 3),))
    same = CompressionConfig(layers=(LayerConfig("gru0", prune=0.3),))
    assert cfg.digest() == same.digest()
    code = ("from edgeprune.host.compress.config import CompressionConfig, LayerConfig;"
            "print(CompressionConfig(layers=(LayerConfig('gru0', prune=0.3),)).digest())")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert other.stdout.strip() == cfg.digest()
    assert len(cfg.digest()) == 64
    # Any field change changes the digest.
    for changed in (cfg.with_globals(seed=1), cfg.with_globals(quantize="float32"), cfg.with_globals(distill=True),
                    CompressionConfig(layers=(LayerConfig("gru0", prune=0.3, sparsity=0.01),))):
        assert changed.digest() != cfg.digest()


@given(
    prune=st.floats(0, 0.99), sparsity=st.floats(0, 0.99), rank=st.none() | st.floats(0.01, 1.0),
    steps=st.integers(0, 1000), distill=st.booleans(), importance=st.sampled_from(["l2", "taylor", "activation"]),
)
@settings(max_examples=40, deadline=None)
def test_round_trip_property(prune, sparsity, rank, steps, distill, importance) -> None:
    cfg = CompressionConfig(layers=(LayerConfig("fc0", prune=prune, sparsity=sparsity, rank_frac=rank),),
                            finetune_steps=steps, distill=distill, importance=importance)
    back = CompressionConfig.from_json(cfg.to_json())
    assert back == cfg and back.digest() == cfg.digest()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: LayerConfig("gru0", prune=1.0), "prune"),
        (lambda: LayerConfig("gru0", sparsity=-0.1), "sparsity"),
        (lambda: LayerConfig("gru0", rank_frac=0.0), "rank_frac"),
        (lambda: LayerConfig("attn0"), "layer name"),
        (lambda: LayerConfig("head", prune=0.2), "readout"),
        (lambda: CompressionConfig(layers=(LayerConfig("gru0", quantize="float32"),)), "one precision per model"),
        (lambda: CompressionConfig(quantize="int4"), "quantize"),
        (lambda: CompressionConfig(importance="random"), "importance"),
        (lambda: CompressionConfig(qat=True), "qat"),
        (lambda: CompressionConfig(layers=(LayerConfig("fc0"), LayerConfig("fc0"))), "twice"),
        (lambda: CompressionConfig.from_json('{"quantise": "int8"}'), "unknown config keys"),
        (lambda: CompressionConfig.from_json("{not json"), "not valid JSON"),
    ],
)
def test_validation_errors(make, match) -> None:
    with pytest.raises(ConfigError, match=match):
        make()


def test_validate_for_model_names() -> None:
    cfg = CompressionConfig(layers=(LayerConfig("fc2", prune=0.5),))
    with pytest.raises(ConfigError, match="readout"):
        cfg.validate_for(MLP_NAMES)
    with pytest.raises(ConfigError, match="lacks"):
        CompressionConfig(layers=(LayerConfig("gru2"),)).validate_for(GRU_NAMES)
    CompressionConfig(layers=(LayerConfig("fc1", prune=0.5),)).validate_for(MLP_NAMES)


def test_layer_names_of_models(gru, mlp) -> None:
    assert layer_names_of(gru) == GRU_NAMES
    assert layer_names_of(mlp) == MLP_NAMES


def test_from_continuous() -> None:
    cfg = CompressionConfig.from_continuous([0.5, 0.25, 0.4, 0.7], GRU_NAMES)
    assert cfg.layer("gru0").prune == 0.5 and cfg.layer("gru1").prune == 0.25
    assert cfg.layer("head").prune == 0 and cfg.layer("head").sparsity == 0.4
    assert cfg.quantize == "int8"
    assert CompressionConfig.from_continuous([0, 0, 0, 0.49], GRU_NAMES).quantize == "float32"
    clipped = CompressionConfig.from_continuous([1.5, -1, 2, 1], GRU_NAMES, finetune_steps=5)
    assert clipped.layer("gru0").prune == MAX_PRUNE and clipped.layer("gru1").prune == 0
    assert clipped.layer("head").sparsity == 0.95 and clipped.finetune_steps == 5
    mlp_cfg = CompressionConfig.from_continuous([0.1, 0.2, 0.3, 0.0], MLP_NAMES)
    assert [mlp_cfg.layer(n).prune for n in MLP_NAMES] == [0.1, 0.2, 0]
    assert mlp_cfg.layer("fc2").sparsity == 0.3
    with pytest.raises(ConfigError, match="4 values"):
        CompressionConfig.from_continuous([0.1, 0.2], GRU_NAMES)


def test_from_discrete_covers_16_actions() -> None:
    seen = set()
    for a in range(16):
        cfg = CompressionConfig.from_discrete(a, GRU_NAMES)
        ratio = cfg.layer("gru0").prune
        assert ratio == cfg.layer("gru1").prune == cfg.layer("head").sparsity == DISCRETE_RATIOS[a % 8]
        assert cfg.quantize == ("int8" if a >= 8 else "float32")
        seen.add(cfg.digest())
    assert len(seen) == 16
    assert DISCRETE_RATIOS == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    for bad in (-1, 16, 3.0, True):
        with pytest.raises(ConfigError):
            CompressionConfig.from_discrete(bad, GRU_NAMES)


def test_from_retain_rate() -> None:
    full = CompressionConfig.from_retain_rate(1.0, MLP_NAMES)
    assert all(full.layer(n).is_identity for n in MLP_NAMES) and full.quantize == "int8"
    quarter = CompressionConfig.from_retain_rate(0.25, MLP_NAMES)
    assert quarter.layer("fc0").prune == quarter.layer("fc1").prune == 0.5  # keep √0.25 of units
    assert quarter.layer("fc2").sparsity == 0.75 and quarter.layer("fc2").prune == 0
    for bad in (0.0, 1.01, float("nan")):
        with pytest.raises(ConfigError):
            CompressionConfig.from_retain_rate(bad, MLP_NAMES)


def test_vector_encoding_round_trip_and_bounds() -> None:
    knobs = vector_knobs(GRU_NAMES, max_finetune_steps=100)
    names = [k.name for k in knobs]
    assert "head.prune" not in names and "gru0.prune" in names and names[-5:] == [
        "quantize", "finetune_steps", "distill", "importance", "qat"]
    cfg = sample_config()
    vec = to_vector(cfg, GRU_NAMES, max_finetune_steps=100)
    assert all(k.low <= v <= k.high for k, v in zip(knobs, vec, strict=True))
    assert from_vector(vec, GRU_NAMES, max_finetune_steps=100, seed=3) == cfg
    lows = from_vector([k.low for k in knobs], GRU_NAMES)
    assert lows.quantize == "float32" and lows.finetune_steps == 0 and not lows.qat
    highs = from_vector([k.high + 5 for k in knobs], GRU_NAMES, max_finetune_steps=100)  # clipped
    assert highs.layer("gru0").prune == MAX_PRUNE and highs.layer("gru0").rank_frac is None
    assert highs.qat and highs.finetune_steps == 100 and highs.importance == "activation"
    with pytest.raises(ConfigError, match="layout needs"):
        from_vector([0.0], GRU_NAMES)


def test_config_import_does_not_load_torch() -> None:
    code = "import sys, edgeprune.host.compress as c; c.CompressionConfig(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
