"""The report's per-candidate model load time (issue 16: what the link speed costs, "skipped" when the board
already held the model)."""

from __future__ import annotations

from types import SimpleNamespace

from edgeprune.host.report.html import _load_time


def _ev(timings):
    return SimpleNamespace(result=SimpleNamespace(timings=timings))


def test_load_time_column():
    assert _load_time(_ev({"model-load": 27.456, "device": 40.0})) == "27.46"
    assert _load_time(_ev({"model-load": 0.0})) == "skipped (held)"
    assert _load_time(_ev({"device": 3.0})) == "—"  # measured before load times were kept, or a deploy build
    assert _load_time(_ev({})) == "—"
