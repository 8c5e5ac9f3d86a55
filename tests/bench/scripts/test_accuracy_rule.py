"""bench/scripts/accuracy_rule.py's summary: means over seeds, the target verdict, the val→test shift."""

from __future__ import annotations

import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[3] / "bench" / "scripts"


def _point(seq: int, ratio: float, val: float, test: float, point: bool, shrunk: bool) -> dict:
    iv = lambda v: {"value": v, "lo": v - 2, "hi": v + 2, "level": 0.95, "n": 189, "se": 1.0}  # noqa: E731
    return {"seq": seq, "ratio": ratio, "instr_ratio": ratio, "flash_ratio": ratio / 2, "layers": [],
            "val_drop": iv(val), "trend": 1.0, "shrunk": val + 1, "confirmed": shrunk, "test_drop": iv(test),
            "named": {"point": point, "shrunk": shrunk}}


def _run(seed: int, points: list[dict]) -> dict:
    named = {r: next((p for p in points if p["named"][r]), None) for r in ("point", "shrunk")}
    return {"run": f"r{seed}", "seed": seed, "limit": 1.0, "trend": {}, "points": points, "named": named}


def test_summary_means_targets_and_shift() -> None:
    sys.path.insert(0, str(SCRIPTS))
    import accuracy_rule

    runs = [
        _run(0, [_point(8, 28.0, -0.5, 1.6, True, False), _point(24, 10.0, 0.0, 0.0, False, True)]),
        _run(1, [_point(8, 21.0, 0.0, 0.5, True, True)]),
    ]
    text, out = accuracy_rule.summarise("default, before", runs)
    assert out["point"]["instr_mean"] == 24.5 and abs(out["point"]["test_drop_mean"] - 1.05) < 1e-9
    assert not out["point"]["met"]  # 1.05 pp > 1.0
    assert out["shrunk"]["test_drop_mean"] == 0.25 and not out["shrunk"]["met"]  # 15.5x < 20x
    assert abs(out["val_to_test_shift"]["mean"] - (2.1 + 0.0 + 0.5) / 3) < 1e-9
    assert "| 0 | #24 | 10.0 |" in text and "**not met**" in text
    runs[1]["named"]["shrunk"] = None
    text, out = accuracy_rule.summarise("default, before", runs)
    assert "none confirmed (int8 baseline)" in text
