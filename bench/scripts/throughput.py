"""Issue 17's figures: evaluations per minute with 1, 2 and 4 local workers and on a local Ray head, and where
one evaluation's time goes.

Usage:
  python bench/scripts/throughput.py                      # weather GRU, qemu:m4, random, budget 6, seed 0
  python bench/scripts/throughput.py --workers 1 2 --no-ray --budget 4

Every run is a fresh search (evaluation cache off, so every candidate is measured; the trained baseline
is the cached one, as a user's second run). Throughput = device evaluations / the time from the first
candidate's start to the last one's end (the search phase); the whole run's wall time (start-up, the
baseline, workers starting, the report) is shown beside it. Stage times are the evaluator's own per-stage
timings (``EvalResult.timings``), averaged over the candidates of each run. The load average of this
shared machine is noted before and after each run. Results go to bench/results/throughput.json and to
BENCHMARKS.md, section "Parallel evaluation (issue 17)".
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_common import commit, replace_section

from edgeprune.host.report import generate_report
from edgeprune.host.search.options import SearchOptions
from edgeprune.host.search.run import run_search
from edgeprune.host.search.store import RunStore

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
RUNS = ROOT / "runs" / "bench" / "throughput"
SECTION = "## Parallel evaluation (issue 17)"
#: Stage names as the evaluator records them; "measure" is the device time less the model's load.
STAGES = ("compress+finetune", "export", "quality", "model-load", "measure", "deploy-build")
log = logging.getLogger("throughput")


def _stages(timings: dict[str, float]) -> dict[str, float]:
    out = {k: float(timings[k]) for k in STAGES if k in timings}
    if "export-reused" in timings:
        out["export"] = float(timings["export-reused"])
    if "device" in timings:
        out["measure"] = float(timings["device"]) - float(timings.get("model-load", 0.0))
    return out


def summarise(run_dir: Path, wall_s: float, label: str, load_before: float, load_after: float) -> dict[str, Any]:
    with RunStore(run_dir) as store:
        rows = [r for r in store.evaluations("candidate") if r.counted]
    start = min(r.started for r in rows)
    end = max(r.finished for r in rows)
    phase = end - start
    stages: dict[str, list[float]] = {}
    for r in rows:
        for k, v in _stages(r.result.timings).items():
            stages.setdefault(k, []).append(v)
    return {
        "label": label,
        "evaluations": len(rows),
        "errors": sum(r.result.error is not None for r in rows),
        "search_phase_s": round(phase, 1),
        "wall_s": round(wall_s, 1),
        "evals_per_min": round(60.0 * len(rows) / phase, 2) if phase > 0 else None,
        "stage_mean_s": {k: round(statistics.mean(v), 2) for k, v in stages.items()},
        "eval_mean_s": round(statistics.mean(r.finished - r.started for r in rows), 1),
        "digests": sorted(r.digest for r in rows),
        "rewards": {r.digest: r.reward for r in rows},
        "quality": {r.digest: r.result.value("quality") for r in rows},
        "load_before": round(load_before, 2),
        "load_after": round(load_after, 2),
    }


def one_run(label: str, opts: dict[str, Any]) -> dict[str, Any]:
    out = RUNS / label
    if out.exists():
        shutil.rmtree(out)
    load_before = os.getloadavg()[0]
    log.info("%s: starting (load %.2f)", label, load_before)
    t0 = time.monotonic()
    # Exports of its own: an export left by an earlier row would be reused and make this row look faster.
    run_search(SearchOptions(out=str(out), evaluator_options={"artifacts_dir": str(out / "artifacts")}, **opts),
               write_report=generate_report)
    wall = time.monotonic() - t0
    summary = summarise(out, wall, label, load_before, os.getloadavg()[0])
    log.info("%s: %s evaluations/min (%s)", label, summary["evals_per_min"], summary)
    return summary


def ray_run(opts: dict[str, Any], slots: int) -> dict[str, Any]:
    # Deferred: Ray is an optional extra (pip install edgeprune[ray]); only the Ray rows need it.
    import ray

    core = opts["device"].partition(":")[2] or "m4"
    temp = tempfile.mkdtemp(prefix="ep-ray-")  # Ray's socket paths must be short
    ray.init(num_cpus=slots, resources={f"edgeprune_{core}": slots}, include_dashboard=False,
             logging_level=logging.WARNING, _temp_dir=temp)
    try:
        return one_run(f"ray{slots}", opts | {"ray_address": "auto", "workers": slots})
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def markdown(results: list[dict[str, Any]], args: argparse.Namespace, cmd: str, measured: tuple[str, str]) -> str:
    one = next((r for r in results if r["label"] == "w1"), None)
    lines = [
        SECTION,
        "",
        f"Command: `{cmd}` · date {measured[0]} · commit {measured[1]} · "
        f"{os.cpu_count()} cores (shared with other jobs: load average per run below).",
        "",
        f"Weather GRU, `{args.device}`, strategy `{args.strategy}`, budget {args.budget}, seed {args.seed}, "
        "evaluation cache off (every candidate measured), cached FP32 baseline. Evaluations/min = device "
        "evaluations / the search phase (first candidate's start to last one's end); wall = the whole run "
        "(start-up, baseline, workers starting, test scoring, report).",
        "",
        "| engine | evaluations | search phase s | evaluations/min | × 1 worker | wall s | mean s per evaluation | "
        "same configs as 1 worker | load avg before → after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = f"{r['evals_per_min'] / one['evals_per_min']:.2f}" if one and r["evals_per_min"] else "-"
        same = "-" if one is None or r is one else ("yes" if r["digests"] == one["digests"] else "no")
        if same == "yes" and one is not None:
            if "quality" in r and "quality" in one:
                same += ", same TFLM quality" if r["quality"] == one["quality"] else ", quality differs"
            gap = max(abs(r["rewards"][d] - one["rewards"][d]) for d in one["digests"])
            same += ", same rewards" if gap == 0 else f", rewards within {gap:.1g}"
        name = {"w1": "1 worker (no pool)"}.get(r["label"], r["label"].replace("w", "local pool, ", 1) + " workers"
                                                 if r["label"].startswith("w") else f"Ray local head, {r['label'][3:]} slots")
        lines.append(f"| {name} | {r['evaluations']} ({r['errors']} failed) | {r['search_phase_s']} | "
                     f"{r['evals_per_min']} | {ratio} | {r['wall_s']} | {r['eval_mean_s']} | {same} | "
                     f"{r['load_before']} → {r['load_after']} |")
    lines += ["", "Where one evaluation's time goes (mean seconds per candidate, the evaluator's stage timings):", "",
              "| engine | " + " | ".join(STAGES) + " |", "|---|" + "---|" * len(STAGES)]
    for r in results:
        lines.append(f"| {r['label']} | " + " | ".join(str(r["stage_mean_s"].get(s, "-")) for s in STAGES) + " |")
    lines += ["", "compress+finetune: pruning and fine-tuning (torch, one thread per worker); export: int8 conversion "
              "and TFLM verification; quality: the validation split in the TFLM interpreter; model-load: sending the "
              "model over the emulated link; measure: timed inferences and the output check on the device; "
              "deploy-build: flash/RAM (derived from the baseline's deploy build after the first)."]
    reused = [r["label"] for r in results if r["stage_mean_s"].get("export", 99.0) < 1.0]
    if one is not None and reused and one["stage_mean_s"].get("export", 0.0) >= 1.0:
        lines += ["", f"Rows {', '.join(reused)} reused exports an earlier row had written (export ≈ 0 s instead of "
                  f"{one['stage_mean_s']['export']:.0f} s): their throughput is flattered by that much per evaluation."]
    if one is not None and one["stage_mean_s"]:
        total = sum(one["stage_mean_s"].values())
        share = 100.0 * one["stage_mean_s"].get("compress+finetune", 0.0) / total if total else float("nan")
        lines += ["", f"What limits it: with one worker, compress+finetune is {share:.0f} % of an evaluation's stage "
                  "time, and it is CPU-bound (torch, one thread per worker): workers scale with free cores, not with "
                  "emulators (QEMU is busy only during model-load and measure). On this 2-core machine more than 2 "
                  "workers only queue for the CPU, and every figure here shares the cores with other jobs (load "
                  "average above): a stage's mean time grows with the number of workers because each one gets a "
                  "smaller share of the CPU. Each local worker also pays a start-up (process spawn, task load, QEMU "
                  "boot), counted in the wall time, not in the search phase."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--ray-slots", type=int, default=2)
    ap.add_argument("--budget", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--strategy", default="random")
    ap.add_argument("--device", default="qemu:m4")
    ap.add_argument("--max-acc-drop", type=float, default=100.0,
                    help="high by default, so every candidate goes to the device (none is screened on the host)")
    ap.add_argument("--no-write", action="store_true", help="print, do not touch BENCHMARKS.md")
    ap.add_argument("--from-json", action="store_true", help="only render bench/results/throughput.json again")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    opts = dict(task="weather-gru", device=args.device, strategy=args.strategy, budget=args.budget, seed=args.seed,
                use_cache=False, max_acc_drop=args.max_acc_drop)
    saved = RESULTS / "throughput.json"
    cmd = "python bench/scripts/throughput.py " + " ".join(sys.argv[1:])
    measured = (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), commit())
    if args.from_json:
        data = json.loads(saved.read_text())
        results, cmd = data["results"], data.get("command", cmd)
        measured = (data.get("date", "see bench/results/throughput.json"), data.get("commit", "unknown"))
    else:
        results = []
        RESULTS.mkdir(parents=True, exist_ok=True)
        runs: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            (f"w{n}", functools.partial(one_run, f"w{n}", opts | {"workers": n})) for n in args.workers]
        if not args.no_ray:
            runs.append((f"ray{args.ray_slots}", functools.partial(ray_run, opts, args.ray_slots)))
        for _, run in runs:
            results.append(run())
            # Kept after every run: a long benchmark interrupted later still leaves its figures.
            saved.write_text(json.dumps({"commit": measured[1], "date": measured[0], "command": cmd,
                                         "results": results}, indent=2))
    text = markdown(results, args, cmd.strip(), measured)
    print(text)
    if not args.no_write:
        replace_section(ROOT / "BENCHMARKS.md", SECTION, text)


if __name__ == "__main__":
    main()
