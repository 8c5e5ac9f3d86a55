"""Issue 28, item 3: does fine-tuning a candidate from its closest already-fine-tuned ancestor converge faster than
fine-tuning it from the baseline?

Usage:
  python bench/scripts/warm_start_speed.py --runs runs/search_speed/new-demo-s0 runs/search_speed/new-demo-s1 --per-run 4

The (ancestor, candidate) pairs are the ones a search meets: in each given run's order, every fine-tuned candidate
with a composable earlier candidate (``host/compress/warm_start.py``: no more compressed in any layer, dense) gets the
closest one; the first ``--per-run`` such pairs of each run are measured. For each pair the ancestor is compressed and
fine-tuned as a search does (its own ``finetune_steps``), then the candidate is compressed and fine-tuned twice with
the same seed and step budget: from the baseline ("cold") and by pruning the ancestor's fine-tuned model further
("warm"). Fine-tuning validates every ``min(25, steps // 5)`` steps and keeps the best weights, so the figures read
from its validation curve are: the score at step 0, after a third of the steps (where the multi-fidelity rung
looks) and at the end (best kept), the steps run (early stopping), and the first validated step at which each
start reaches the cold run's final best. Scores are the task's validation metric in float (fine-tuning's own
check), not the int8 TFLM score.

The task's baseline comes from the cache (``EDGEPRUNE_CACHE``, default the user's): run it where the demo's baseline
is cached. Results: ``runs/warm_start/results.json`` and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.host.compress.compressor import compress
from edgeprune.host.compress.config import CompressionConfig
from edgeprune.host.compress.warm_start import closest, distance
from edgeprune.host.search.store import RunStore
from edgeprune.host.tasks import get_task

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "runs" / "warm_start"


def pairs_of(run_dir: Path, limit: int) -> list[tuple[CompressionConfig, CompressionConfig]]:
    """The first ``limit`` (ancestor, candidate) pairs a search over ``run_dir``'s proposals would have met."""
    with RunStore.open_existing(run_dir) as store:
        rows = store.evaluations("candidate")
    seen: list[CompressionConfig] = []
    pairs: list[tuple[CompressionConfig, CompressionConfig]] = []
    for row in rows:
        config = CompressionConfig.from_json(row.result.config_json)
        if config.finetune_steps <= 0 or any(c.digest() == config.digest() for c in seen):
            continue
        ancestor = closest(config, [(c, c) for c in seen])
        if ancestor is not None and len(pairs) < limit:
            pairs.append((ancestor, config))
        seen.append(config)
    return pairs


def curve(compressed: Any) -> dict[str, Any]:
    """What fine-tuning's validation curve says about one start."""
    ft = compressed.report["finetune"] or {}
    scores = [(int(s), float(v)) for s, v in ft.get("val_scores", [])]
    return {"val_scores": scores, "steps_run": ft.get("stopped_at") or ft.get("steps"),
            "best_step": ft.get("best_step"), "seconds": round(float(compressed.report["finetune_seconds"]), 2)}


def best_until(scores: list[tuple[int, float]], step: int) -> float:
    """The best validation score seen at or before ``step`` (what fine-tuning would keep had it stopped there)."""
    seen = [v for s, v in scores if s <= step]
    return max(seen) if seen else float("nan")


def first_reaching(scores: list[tuple[int, float]], target: float) -> int | None:
    """The first validated step whose score reaches ``target``."""
    return next((s for s, v in scores if v >= target - 1e-12), None)


def measure(task: Any, ancestor: CompressionConfig, candidate: CompressionConfig,
            ancestors: dict[str, Any]) -> dict[str, Any]:
    """Cold and warm fine-tuning of ``candidate`` (the ancestor's fine-tuned model is made once per ancestor)."""
    key = ancestor.digest()
    if key not in ancestors:
        ancestors[key] = compress(task, ancestor).model
    cold = curve(compress(task, candidate))
    warm = curve(compress(task, candidate, start=(ancestors[key], ancestor)))
    steps = int(candidate.finetune_steps)
    rung = steps // 3
    target = best_until(cold["val_scores"], steps)
    row: dict[str, Any] = {"ancestor": ancestor.to_json(), "candidate": candidate.to_json(), "steps": steps,
                           "distance": round(distance(ancestor, candidate), 3)}
    for name, c in (("cold", cold), ("warm", warm)):
        row[name] = c | {"at_0": best_until(c["val_scores"], 0), "at_rung": best_until(c["val_scores"], rung),
                         "final": best_until(c["val_scores"], steps),
                         "reaches_cold_final_at": first_reaching(c["val_scores"], target)}
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", type=Path, required=True, help="search run directories to take pairs from")
    parser.add_argument("--per-run", type=int, default=4, help="pairs measured per run (default 4)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    results_path = OUT / "results.json"
    rows: list[dict[str, Any]] = []
    ancestors: dict[str, Any] = {}
    started = time.time()
    for run_dir in args.runs:
        with RunStore.open_existing(run_dir) as store:
            task_name = (store.get_meta("options") or {}).get("task") or "weather-gru"
        task = get_task(task_name)
        for ancestor, candidate in pairs_of(run_dir, args.per_run):
            row = measure(task, ancestor, candidate, ancestors) | {"run": str(run_dir), "task": task_name,
                                                                    "metric": task.metric}
            rows.append(row)
            results_path.write_text(json.dumps(rows, indent=1))
            c, w = row["cold"], row["warm"]
            print(f"{Path(run_dir).name} d={row['distance']:.2f} steps={row['steps']}: "
                  f"step0 {c['at_0']:.4f}/{w['at_0']:.4f}  rung {c['at_rung']:.4f}/{w['at_rung']:.4f}  "
                  f"final {c['final']:.4f}/{w['final']:.4f}  ran {c['steps_run']}/{w['steps_run']} steps "
                  f"{c['seconds']}/{w['seconds']} s  reaches cold final at {c['reaches_cold_final_at']}/"
                  f"{w['reaches_cold_final_at']} (cold/warm)", flush=True)
    diff = np.array([r["warm"]["final"] - r["cold"]["final"] for r in rows])
    rung = np.array([r["warm"]["at_rung"] - r["cold"]["at_rung"] for r in rows])
    secs = np.array([[r["cold"]["seconds"], r["warm"]["seconds"]] for r in rows])
    print(f"{len(rows)} pairs in {time.time() - started:.0f} s; warm - cold validation score: final mean "
          f"{diff.mean():+.4f} (wins {int((diff > 0).sum())}, ties {int((diff == 0).sum())}, losses "
          f"{int((diff < 0).sum())}), at the rung mean {rung.mean():+.4f}; fine-tune seconds cold {secs[:, 0].sum():.0f} "
          f"vs warm {secs[:, 1].sum():.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
