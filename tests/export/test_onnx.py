"""Stage 1: ONNX export, checker, onnxruntime parity with PyTorch on real inputs."""

from __future__ import annotations

import pytest
from export_helpers import compressed_gru, policy_mlp, synthetic_windows, trained_gru

from edgeprune.bench.errors import ExportError
from edgeprune.export import to_onnx
from edgeprune.export.graph import prepare, representative_samples

ELEMENTWISE = {"Gemm", "MatMul", "Add", "Sub", "Mul", "Sigmoid", "Tanh", "Relu"}


@pytest.mark.parametrize("make", [lambda: trained_gru([16, 8], steps=5), compressed_gru])
def test_gru_cell_onnx_matches_pytorch(make) -> None:
    graph = prepare(make())
    samples = representative_samples(graph, synthetic_windows(8), max_samples=96)
    result = to_onnx.to_onnx(graph, samples[::4])
    assert result.max_abs_diff <= to_onnx.PARITY_ATOL
    # Plain linear algebra only: no loops, gathers, splits or shape arithmetic for onnx2tf to mangle.
    assert set(result.ops) <= ELEMENTWISE, result.ops
    assert result.ops["Gemm"] + result.ops.get("MatMul", 0) >= 13


def test_mlp_onnx_matches_pytorch() -> None:
    graph = prepare(policy_mlp())
    import numpy as np

    samples = representative_samples(graph, np.random.default_rng(0).normal(size=(32, 4)).astype("float32"))
    result = to_onnx.to_onnx(graph, samples)
    assert result.max_abs_diff <= to_onnx.PARITY_ATOL
    assert result.ops == {"Gemm": 3, "Relu": 2}


def test_parity_failure_names_the_stage_and_output() -> None:
    """ONNX bytes of one model checked against another model must fail parity (the check can fail)."""
    a, b = prepare(trained_gru([16, 8], seed=1, steps=5)), prepare(trained_gru([16, 8], seed=2, steps=5))
    samples = representative_samples(a, synthetic_windows(4), max_samples=48)
    with pytest.raises(ExportError) as info:
        to_onnx.check_parity(a, to_onnx.export_onnx(b), samples)
    assert info.value.stage == "onnxruntime-parity"
    assert info.value.op in a.output_names
