"""Per-layer precision in the config (issue 30): the field, the refusal of precisions the device cannot run (one
line naming the layer, at construction, so before any fine-tuning), the opt-in search-space knob, and the digest of
configs that do not use it."""

from __future__ import annotations

import pytest

from edgeprune.export.precision_float import LAYER_PRECISIONS as EXPORT_PRECISIONS
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


@pytest.mark.parametrize("layers", [
    (("gru0", "16x8"),),
    (("gru0", "16x8"), ("gru1", "16x8"), ("head", "int4")),
    (("lstm0", "16x8"), ("head", None)),
    (("gru0", "int4"), ("gru1", "16x8"), ("head", "16x8")),
    (("conv0", "16x8"), ("conv1", None), ("head", "16x8")),
    (("conv0", "int4"), ("conv1", "16x8"), ("head", "16x8")),
    (("conv0", "16x8"),),
])
def test_a_16x8_cell_or_convolution_beside_another_precision_is_accepted(layers):
    """The exporter stitches a 16x8 cell or convolution into an int8/int4 model (export.precision_stitch), so the
    config takes it; layers not listed stay int8."""
    cfg = CompressionConfig(layers=tuple(LayerConfig(n, precision=p) for n, p in layers))
    names = {n for n, _ in layers} | {"head"}
    cfg.validate_for(sorted(names))
    assert CompressionConfig.from_json(cfg.to_json()) == cfg
    assert [cfg.layer(n).precision for n, _ in layers] == [p for _, p in layers]


@pytest.mark.parametrize("names", [GRU, ("lstm0", "head"), ("conv0", "conv1", "head")])
def test_every_layer_at_16x8_is_accepted_for_a_recurrent_model_or_cnn(names):
    cfg = CompressionConfig(layers=tuple(LayerConfig(n, precision="16x8") for n in names))
    cfg.validate_for(names)
    assert CompressionConfig.from_json(cfg.to_json()) == cfg


def test_from_json_refuses_too():
    text = '{"layers": [{"name": "gru0", "precision": "int3"}], "quantize": "int8"}'
    with pytest.raises(ConfigError, match="gru0.precision must be one of"):
        CompressionConfig.from_json(text)


@pytest.mark.parametrize("layer", ["gru0", "head", "fc0", "conv1", "lstm2"])
def test_allowed_precisions(layer):
    assert allowed_precisions(layer) == PRECISIONS == ("int8", "int4", "16x8", "float32")


def test_the_search_can_decode_a_16x8_recurrent_layer():
    """The precision knob of gru0 offers 16x8 (its third choice), so a search vector decodes to gru0 at 16x8 beside
    int8 layers, and that config encodes back to the same choice."""
    knobs = vector_knobs(GRU, precision=True)
    k = next(i for i, kn in enumerate(knobs) if kn.name == "gru0.precision")
    assert knobs[k].choices == ("int8", "int4", "16x8", "float32")
    vec = to_vector(CompressionConfig(layers=(LayerConfig("gru0"),)), GRU, precision=True)
    vec[k] = 0.6
    cfg = from_vector(vec, GRU, precision=True)
    assert [cfg.layer(n).precision for n in GRU] == ["16x8", None, None]
    assert 0.5 <= to_vector(cfg, GRU, precision=True)[k] < 0.75


@pytest.mark.parametrize("names", [GRU, ("lstm0", "lstm1", "head"), ("fc0", "fc1", "fc2"), ("conv0", "conv1", "head")])
def test_float32_is_a_per_layer_precision_of_every_family(names):
    """One layer of each family at float32 beside int8/int4 layers: accepted, round-trips, a search vector decodes to
    it (the knob's last choice), and QAT may be on (the float layer simply gets no fake quantisation)."""
    cfg = CompressionConfig(layers=(LayerConfig(names[1], precision="float32"), LayerConfig(names[2], precision="int4")),
                            finetune_steps=5, qat=True)
    cfg.validate_for(names)
    assert CompressionConfig.from_json(cfg.to_json()) == cfg
    knobs = vector_knobs(names, precision=True)
    k = next(i for i, kn in enumerate(knobs) if kn.name == f"{names[0]}.precision")
    vec = to_vector(CompressionConfig(), names, precision=True)
    vec[k] = 0.99
    assert from_vector(vec, names, precision=True).layer(names[0]).precision == "float32"


@pytest.mark.parametrize("layers,first", [
    ((("gru0", "16x8"), ("gru1", "float32")), "gru1"),
    ((("conv0", "float32"), ("conv1", "16x8")), "conv0"),
])
def test_float32_beside_a_16x8_cell_or_convolution_is_refused_in_one_line(layers, first):
    with pytest.raises(ConfigError) as exc:
        CompressionConfig(layers=tuple(LayerConfig(n, precision=p) for n, p in layers))
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"{first}.precision='float32'"), msg


def test_a_search_vector_never_puts_float32_beside_a_16x8_cell():
    knobs = vector_knobs(GRU, precision=True)
    vec = to_vector(CompressionConfig(), GRU, precision=True)
    vec[next(i for i, kn in enumerate(knobs) if kn.name == "gru0.precision")] = 0.6  # 16x8
    vec[next(i for i, kn in enumerate(knobs) if kn.name == "gru1.precision")] = 0.99  # float32
    cfg = from_vector(vec, GRU, precision=True)
    assert [cfg.layer(n).precision for n in GRU] == ["16x8", None, None]


def test_precision_needs_an_int8_model():
    with pytest.raises(ConfigError, match="fc0.precision needs quantize='int8'"):
        CompressionConfig(layers=(LayerConfig("fc0", precision="int4"),), quantize="float32")


def test_unset_and_int8_keep_the_digest_of_configs_without_the_field():
    plain = CompressionConfig(layers=(LayerConfig("gru0", prune=0.25),))
    assert CompressionConfig(layers=(LayerConfig("gru0", prune=0.25, precision="int8"),)).digest() == plain.digest()
    assert "precision" not in plain.to_json()
    mixed = CompressionConfig(layers=(LayerConfig("gru0", prune=0.25, precision="int4"),))
    assert mixed.digest() != plain.digest()
    assert CompressionConfig(layers=(LayerConfig("gru0", precision="float32"),)).digest() != plain.digest()
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
    with pytest.raises(ConfigError, match="conv1.precision must be one of"):
        CompressionConfig(layers=(LayerConfig("conv1", precision="int2"),), finetune_steps=10**6, qat=True)
