"""bench/scripts/studies.py --quick: each study runs end to end on QEMU and writes its section and PNG
where it is told to (a temporary BENCHMARKS.md and figure folder), never into the repository's.

This tests the script, not the figures: budgets are tiny, so the numbers mean nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "bench" / "scripts" / "studies.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(study: str, tmp: Path, *extra: str) -> tuple[str, dict]:
    bench = tmp / "BENCHMARKS.md"
    bench.write_text("# Benchmarks\n\n## Something else\n\nkept\n")
    repo_png = ROOT / "docs" / "figures" / f"study_{study}.png"
    repo_png_mtime = repo_png.stat().st_mtime if repo_png.exists() else None
    cmd = [sys.executable, str(SCRIPT), study, "--quick", "--benchmarks", str(bench), "--figures", str(tmp / "fig"),
           "--runs", str(tmp / "runs"), "--results", str(tmp / "res"), *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = bench.read_text()
    assert "## Something else\n\nkept" in text, "the other sections must be kept"
    head = f"## Studies (issue 14): {study}"
    assert text.count(head) == 1
    # The section's command names the temporary file: had it gone to the repository's BENCHMARKS.md, it would be there.
    assert str(tmp) not in (ROOT / "BENCHMARKS.md").read_text()
    png = tmp / "fig" / f"study_{study}.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert (repo_png.stat().st_mtime if repo_png.exists() else None) == repo_png_mtime
    result = json.loads((tmp / "res" / f"study_{study}.json").read_text())
    section = text[text.index(head):]
    assert "- **met: " in section and "- command: `python bench/scripts/studies.py " + study in section
    return section, result


@pytest.mark.slow
def test_m0dqn_quick(tmp_path: Path) -> None:
    section, result = _run("m0dqn", tmp_path)
    rows = result["rows"]
    assert {"fp32 1", "ptq 1", "units 1", "units 0.95"} <= set(rows)
    # Every row was measured on the M0: instructions per action from QEMU, the float model dearer than int8.
    assert all(r["instructions"] > 1000 for r in rows.values())
    assert rows["fp32 1"]["instructions"] > rows["ptq 1"]["instructions"]
    assert "| units | 0.95 |" in section


@pytest.mark.slow
def test_discrete_quick(tmp_path: Path) -> None:
    section, result = _run("discrete", tmp_path)
    stage2 = result["stage2"]
    assert {"FP32", "P50", "Q", "P30+Q"} <= set(stage2)
    # N = 2 CodeCarbon runs per fixed config; unstructured sparsity saves the dense int8 kernels nothing. (Not
    # "the same count": this per-channel P30+Q export has a row requantisation the fused GRU's short chain cannot
    # apply, so it runs op by op — 32.25 M vs Q's 27.31 M instructions at d371e4a, a gap the runtime README names.)
    assert all(len(r["host"]) == 2 for r in stage2.values() if r["error"] is None)
    assert stage2["P30+Q"]["instructions"] >= 0.99 * stage2["Q"]["instructions"]
    assert "Stage 2:" in section and "| P30+Q |" in section


@pytest.mark.slow
def test_layerwise_quick(tmp_path: Path) -> None:
    section, result = _run("layerwise", tmp_path, "--methods", "uniform")
    assert set(result["table"]) == {"uniform|proxy", "uniform|measured"}
    assert "Baseline FP32" in result["refs"]
    assert "| uniform | proxy |" in section and "| uniform | measured |" in section


def test_measured_reward_runs_are_shared_only_when_their_options_match(tmp_path: Path) -> None:
    """`--measured-runs`: a finished `search_targets.py strategies` run stands in for the study's own
    measured-reward search only when task, device, strategy, seed, budget and workers all match."""
    import argparse

    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import studies
    finally:
        sys.path.remove(str(SCRIPT.parent))
    from edgeprune.host.search.store import RunStore

    shared = tmp_path / "strategies"
    opts = {"task": "weather-gru", "device": "qemu:m4", "strategy": "tpe", "seed": 1, "budget": 10,
            "reward": "measured", "workers": "auto", "finetune_steps": "auto", "started": 1000.0}
    with RunStore(shared / "tpe-s1") as store:
        store.set_meta("options", opts)
        store.set_meta("finished", 1600.0)
    with RunStore(shared / "tpe-s2") as store:  # never finished: a kill mid-run
        store.set_meta("options", {**opts, "seed": 2})
    args = argparse.Namespace(measured_runs=shared, budget=10, workers="auto")

    def share(**kw):
        return studies._shared_run(**({"args": args, "strategy": "tpe", "reward": "measured", "task": "weather-gru",
                                       "device": "qemu:m4", "seed": 1} | kw))

    assert share() == (shared / "tpe-s1", 600.0)
    assert share(reward="proxy") is None
    assert share(seed=2) is None and share(seed=0) is None
    assert share(device="qemu:m7") is None
    args.budget = 8
    assert share() is None
    args.budget, args.workers = 10, 1
    assert share() is None
    args.measured_runs = None
    args.workers = "auto"
    assert share() is None


def test_reuse_never_searches_or_deletes_an_unfinished_run(tmp_path: Path) -> None:
    """`--reuse` summarises: a run without a `finished` stamp (killed, or still going) raises RunNotFinished and
    stays on disk as it was, instead of being replaced by a new search."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from bench_common import RunNotFinished, search_or_reuse
    finally:
        sys.path.remove(str(SCRIPT.parent))
    from edgeprune.host.search.store import RunStore

    with pytest.raises(RunNotFinished):
        search_or_reuse(tmp_path / "absent", reuse=True)
    out = tmp_path / "going"
    with RunStore(out) as store:
        store.set_meta("options", {"started": 5.0})
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(RunNotFinished):
        search_or_reuse(out, reuse=True)
    assert sorted(p.name for p in out.iterdir()) == before
    with RunStore(out) as store:
        store.set_meta("finished", 65.0)
    assert search_or_reuse(out, reuse=True) == (out, 60.0)


def test_resume_keeps_finished_searches_and_searches_the_rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--resume`: a killed study restarts without repeating its finished runs; without it every run is
    searched again (and a finished one replaced)."""
    import argparse

    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import studies
    finally:
        sys.path.remove(str(SCRIPT.parent))
    from edgeprune.host.search.store import RunStore

    with RunStore(tmp_path / "layerwise" / "tpe-proxy-s0") as store:
        store.set_meta("options", {"started": 1.0})
        store.set_meta("finished", 2.0)
    with RunStore(tmp_path / "layerwise" / "tpe-proxy-s1") as store:  # killed mid-run
        store.set_meta("options", {"started": 1.0})
    calls: list[tuple[str, bool]] = []
    monkeypatch.setattr(studies, "search_or_reuse", lambda out, reuse, **kw: calls.append((out.name, reuse)) or (out, 0.0))

    def run(**kw):
        calls.clear()
        args = argparse.Namespace(**({"seeds": 3, "runs": tmp_path, "reuse": False, "resume": False, "measured_runs": None,
                                      "budget": 10, "workers": "auto", "quick": False} | kw))
        studies.search_runs(args, "layerwise", "tpe", "proxy", "weather-gru", "qemu:m4", cache=None)
        return list(calls)

    assert run(resume=True) == [("tpe-proxy-s0", True), ("tpe-proxy-s1", False), ("tpe-proxy-s2", False)]
    assert run() == [("tpe-proxy-s0", False), ("tpe-proxy-s1", False), ("tpe-proxy-s2", False)]
    assert run(reuse=True) == [("tpe-proxy-s0", True)]
