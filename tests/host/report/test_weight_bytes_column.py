"""The wide results table shows each point's weight bytes at their stored widths (issue 30: int4 at half a byte)."""

from __future__ import annotations

from edgeprune.host.report.table import header, row
from edgeprune.host.search.store import StoredEvaluation
from edgeprune.host.search.types import LATENCY_COUNT, MACS, WEIGHT_BYTES, EvalResult, FigureRecord


def _ev(weight_bytes: float | None) -> StoredEvaluation:
    figures = {LATENCY_COUNT: FigureRecord(2_000_000, "instructions", "qemu", ""),
               MACS: FigureRecord(1_000_000, "MACs", "model", "")}
    if weight_bytes is not None:
        figures[WEIGHT_BYTES] = FigureRecord(weight_bytes, "bytes", "build", "")
    res = EvalResult(config_json="{}", digest="d" * 64, figures=figures)
    return StoredEvaluation(seq=3, kind="candidate", strategy="random", origin="device", counted=True, feasible=True,
                            reason="", reward=0.1, result=res, proposal={}, started=0.0, finished=0.0)


def test_weights_column_in_kib_with_its_source():
    cols = header("accuracy")
    i = cols.index("weights KiB")
    assert row("3", _ev(297_088.0))[i] == "290.1 [build]"  # the int4 weather GRU's weights
    assert row("3", _ev(None))[i] == "—"
    assert row("3", _ev(None))[cols.index("count/MAC")] == "2.00 [qemu]"
