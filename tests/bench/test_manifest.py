"""The typed manifest: lossless round trip, the one reader/writer, and a refused newer format."""

from __future__ import annotations

import json

import pytest

from edgeprune.bench.manifest import (
    FORMAT_VERSION,
    IoSpec,
    Manifest,
    ManifestError,
    SequenceSpec,
    read_manifest,
    write_manifest,
)


def _io(name: str, pos: int, shape: list[int], scale: float | None = 0.05, zp: int | None = 3) -> dict:
    return {"name": name, "position": pos, "tensor": 10 + pos, "shape": shape,
            "dtype": "int8" if scale is not None else "float32", "scale": scale, "zero_point": zp}


def gru_manifest() -> dict:
    """Shaped like export.manifest_build.build() output plus the fields task_export/policy_distill add."""
    return {
        "format": FORMAT_VERSION, "name": "model", "source": "torch", "kind": "gru", "quantize": "int8",
        "input_names": ["x_t", "h_0"], "output_names": ["y", "h_0_next"],
        "inputs": [_io("x_t", 0, [1, 4]), _io("h_0", 1, [1, 8])],
        "outputs": [_io("y", 0, [1, 3]), _io("h_0_next", 1, [1, 8])],
        "sequence": {"steps": 30, "stream_input": 0, "output": 0, "recurrent": [[1, 1]]},
        "input_norm": {"input": "x_t", "mean": [0.0] * 4, "std": [1.0] * 4, "fine": 0},
        "ops": {"FULLY_CONNECTED": 7}, "op_sequence": ["FULLY_CONNECTED"], "subgraphs": 1, "tensors": [],
        "arena_bytes": 34432, "arena_note": "smallest arena ...",
        "sizes": {"tflite_bytes": 1000}, "weight_bytes": 900, "parity": {"max_abs": 0.0},
        "hashes": {"tflite_sha256": "ab" * 32, "onnx_sha256": "cd" * 32},
        "tools": {"edgeprune": "0.1.0"}, "output_centered": None,
        "quality": {"metric": "accuracy", "float": 0.48, "exported": 0.48},
    }


def test_round_trip_is_lossless_and_typed():
    d = gru_manifest()
    m = Manifest.from_dict(d)
    assert m.to_dict() == d and list(m.to_dict()) == list(d)
    assert m.sequence == SequenceSpec(30, 0, 0, ((1, 1),))
    assert m.inputs[1] == IoSpec("h_0", 1, 11, (1, 8), "int8", 0.05, 3)
    assert (m.steps, m.stream_input, m.output_index, m.recurrent_inputs) == (30, 0, 0, {1})
    assert m.tflite_sha256 == "ab" * 32 and m.extra["quality"]["float"] == 0.48


def test_a_bare_manifest_stays_bare():
    d = {"inputs": [_io("serving_default_x:0", 0, [1, 640], None, None)], "outputs": [_io("y", 0, [1, 640])]}
    m = Manifest.from_dict(d)
    assert m.format == 0 and m.sequence is None and m.steps == 1 and m.arena_bytes == 0
    assert m.to_dict() == d


def test_the_one_writer_and_reader(tmp_path):
    path = write_manifest(tmp_path / "manifest.json", gru_manifest())
    assert json.loads(path.read_text()) == gru_manifest()
    assert read_manifest(path).to_dict() == gru_manifest()
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_newer_or_broken_manifests_are_refused(tmp_path):
    newer = {**gru_manifest(), "format": FORMAT_VERSION + 1}
    with pytest.raises(ManifestError, match="newer"):
        Manifest.from_dict(newer)
    with pytest.raises(ManifestError, match="sequence block"):
        Manifest.from_dict({"format": 1, "sequence": {"stream_input": 0}})
    assert Manifest.from_dict({"sequence": {"steps": 5}}).to_dict() == {
        "sequence": {"steps": 5, "stream_input": 0, "output": 0, "recurrent": []}}  # what a deploy build reads
    bad = gru_manifest()
    bad["inputs"][0] = {"name": "x"}
    with pytest.raises(ManifestError, match="I/O entry 0"):
        Manifest.from_dict(bad)
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(ManifestError, match="cannot read"):
        read_manifest(tmp_path / "m.json")
