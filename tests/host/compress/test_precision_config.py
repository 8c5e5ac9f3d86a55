"""Per-layer precision in the config (issue 30): the field, the refusal of precisions the device cannot run (one
line naming the layer, at construction, so before any fine-tuning), the opt-in search-space knob, and the digest of
configs that do not use it."""

from __future__ import annotations

import pytest

from edgeprune.export.precision import PRECISIONS as EXPORT_PRECISIONS
from edgeprune.host.compress.compress_errors import ConfigError
from edgeprune.host.compress.config import (
    PRECISIONS,
    CompressionConfig,
    LayerConfig,
    allowed_precisions,
    from_vector,
    to_vector,
    vector_knobs,
)

GRU = ("gru0", "gru1", "head")


def test_precisions_agree_with_the_exporter():
    assert PRECISIONS == EXPORT_PRECISIONS


@pytest.mark.parametrize("layer,precision,words", [
    ("fc1", "int3", ["fc1", "int3"]),
    ("conv2", "int2", ["conv2", "int2"]),
])
def test_a_precision_the_device_cannot_run_is_refused_naming_the_layer(layer, precision, words):
    with pytest.raises(ConfigError) as exc:
        LayerConfig(layer, precision=precision)
    msg = str(exc.value)
    assert "\n" not in msg
    assert all(w in msg for w in words), msg


@pytest.mark.parametrize("layers,words", [
    ((("gru0", "16x8"),), ["gru0", "16x8", "every layer"]),
    ((("gru0", "16x8"), ("gru1", "16x8"), ("head", "int4")), ["gru0", "head at int4"]),
    ((("lstm0", "16x8"), ("head", None)), ["lstm0", "head at int8"]),
    ((("gru0", "int4"), ("gru1", "16x8"), ("head", "16x8")), ["gru1", "gru0 at int4"]),
    ((("conv0", "16x8"), ("conv1", None), ("head", "16x8")), ["conv0", "convolution", "conv1 at int8"]),
    ((("conv0", "int4"), ("conv1", "16x8"), ("head", "16x8")), ["conv1", "conv0 at int4"]),
    ((("conv0", "16x8"),), ["conv0", "every layer"]),
])
def test_a_16x8_recurrent_layer_beside_another_precision_is_refused_naming_it(layers, words):
    """The exporter writes a 16x8 cell only as the converter's whole-model 16x8: a mix is refused at construction."""
    with pytest.raises(ConfigError) as exc:
        CompressionConfig(layers=tuple(LayerConfig(n, precision=p) for n, p in layers))
    msg = str(exc.value)
    assert "\n" not in msg
    assert all(w in msg for w in words), msg


@pytest.mark.parametrize("names,unlisted", [(GRU, "gru2"), (("lstm0", "head"), "lstm1"),
                                           (("conv0", "conv1", "head"), "conv2")])
def test_every_layer_at_16x8_is_accepted_for_a_recurrent_model_or_cnn(names, unlisted):
    cfg = CompressionConfig(layers=tuple(LayerConfig(n, precision="16x8") for n in names))
    cfg.validate_for(names)
    assert CompressionConfig.from_json(cfg.to_json()) == cfg
    # a layer the config does not list stays int8: refused when the model's layers are known (before fine-tuning)
    with pytest.raises(ConfigError, match=rf"{names[0]}.precision='16x8'.*{unlisted}"):
        cfg.validate_for((*names[:-1], unlisted, "head"))


def test_from_json_refuses_too():
    text = '{"layers": [{"name": "gru0", "precision": "16x8"}], "quantize": "int8"}'
    with pytest.raises(ConfigError, match="gru0"):
        CompressionConfig.from_json(text)


@pytest.mark.parametrize("layer,allowed", [("gru0", ("int8", "int4")), ("head", PRECISIONS), ("fc0", PRECISIONS),
                                           ("conv1", ("int8", "int4")), ("lstm2", ("int8", "int4"))])
def test_allowed_precisions(layer, allowed):
    assert allowed_precisions(layer) == allowed


def test_precision_needs_an_int8_model():
    with pytest.raises(ConfigError, match="fc0.precision needs quantize='int8'"):
        CompressionConfig(layers=(LayerConfig("fc0", precision="int4"),), quantize="float32")


def test_unset_and_int8_keep_the_digest_of_configs_without_the_field():
    plain = CompressionConfig(layers=(LayerConfig("gru0", prune=0.25),))
    assert CompressionConfig(layers=(LayerConfig("gru0", prune=0.25, precision="int8"),)).digest() == plain.digest()
    assert "precision" not in plain.to_json()
    mixed = CompressionConfig(layers=(LayerConfig("gru0", prune=0.25, precision="int4"),))
    assert mixed.digest() != plain.digest()
    assert CompressionConfig.from_json(mixed.to_json()) == mixed


def test_search_space_knob_is_opt_in_and_round_trips():
    assert len(vector_knobs(GRU, precision=True)) == len(vector_knobs(GRU)) + len(GRU)
    cfg = CompressionConfig(layers=(LayerConfig("gru0", precision="int4"), LayerConfig("gru1"),
                                    LayerConfig("head", precision="16x8")))
    back = from_vector(to_vector(cfg, GRU, precision=True), GRU, precision=True)
    assert [back.layer(n).precision for n in GRU] == ["int4", None, "16x8"]
    # every vector decodes to a config the device can run
    for x in (0.0, 0.3, 0.6, 0.99):
        vec = [x] * len(vector_knobs(GRU, precision=True))
        c = from_vector(vec, GRU, precision=True)
        assert all(c.layer(n).precision in (None, *allowed_precisions(n)) for n in GRU)


def test_reports_name_each_layers_precision():
    from edgeprune.host.report.describe import describe_config, layer_rows

    cfg = CompressionConfig(layers=(LayerConfig("gru0", prune=0.5, precision="int4"), LayerConfig("gru1"),
                                    LayerConfig("head", precision="16x8"))).to_json()
    assert describe_config(cfg) == "gru0 −50 % units int4, head 16x8, int8"
    assert [r[0] for r in layer_rows(cfg)] == ["gru0 (int4)", "gru1", "head (16x8)"]


def test_stochastic_rounding_is_off_by_default_and_keeps_old_digests():
    base = CompressionConfig(layers=(LayerConfig("fc0", precision="int4"),), finetune_steps=10, qat=True)
    assert base.stochastic_rounding is False and "stochastic_rounding" not in base.to_dict()
    on = CompressionConfig.from_json(base.to_json().replace('"seed"', '"stochastic_rounding":true,"seed"'))
    assert on.stochastic_rounding is True and on.digest() != base.digest()
    assert CompressionConfig.from_json(on.to_json()) == on


@pytest.mark.parametrize("kwargs", [dict(), dict(qat=False, finetune_steps=10),
                                    dict(quantize="float32", finetune_steps=10)])
def test_stochastic_rounding_without_fake_quantised_fine_tuning_is_refused_in_one_line(kwargs):
    with pytest.raises(ConfigError) as exc:
        CompressionConfig(stochastic_rounding=True, **kwargs)
    assert "\n" not in str(exc.value) and ("stochastic_rounding" in str(exc.value) or "qat" in str(exc.value))


def test_a_bad_precision_is_refused_before_any_fine_tuning():
    """compress never starts: the refusal comes from the config itself (LayerConfig), with the layer named."""
    with pytest.raises(ConfigError, match="conv1.precision='16x8'"):
        CompressionConfig(layers=(LayerConfig("conv1", precision="16x8"),), finetune_steps=10**6, qat=True)
