"""Issue 12's targets for the search, measured by running real searches (QEMU, real firmware).

Usage:
  python bench/scripts/search_targets.py default              # target 1: what `make demo` runs, wall time
  python bench/scripts/search_targets.py budget100            # target 2: the same with --budget 100, whole front
  python bench/scripts/search_targets.py strategies [--seeds 3] [--budget 10]   # target 3: hypervolume per strategy
  python bench/scripts/search_targets.py cartpole-m0          # target 4: CartPole DQN on qemu:m0
  python bench/scripts/search_targets.py weather-lstm         # issue 19: the weather task with an LSTM, ≥ 5×
  python bench/scripts/search_targets.py digits-cnn           # issue 19: the digits ConvNet, ≥ 5×
  python bench/scripts/search_targets.py all
  ... --reuse                                                 # re-summarise finished runs, no new search
  ... --workers 1                                             # one evaluation at a time (default: auto, as make demo)

Each run goes to runs/bench/<target>/... with the evaluation cache answering for the int8 baseline only
(``BaselineOnlyCache``: a cached candidate would be free for a later strategy, which is not a fair
comparison); the baseline comes from the cache as on a user's second run. Results are written to bench/results/search_<target>.json and into BENCHMARKS.md
(section "Search targets (issue 12)"), with the command, date and commit, met or not.

Instruction counts are QEMU's (-icount), compared only with QEMU counts of the int8 baseline on the
same core; flash is the PlatformIO deploy build's .text+.data. Quality: validation (what selected the
point) and test (scored once after the search).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_common import BaselineOnlyCache, RunNotFinished, commit, replace_section, search_or_reuse

from edgeprune.host.report import generate_report
from edgeprune.host.report.headline import headline
from edgeprune.host.report.load import load_run
from edgeprune.host.search.types import FLASH_BYTES, LATENCY_COUNT, QUALITY

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
RUNS = ROOT / "runs" / "bench"
FIGURES = ROOT / "docs" / "figures"
STRATEGIES = ("ppo", "dqn", "tpe", "cmaes", "random", "uniform")
SECTION = "Search targets (issue 12)"
log = logging.getLogger("search_targets")


REUSE = False
WORKERS: int | str = "auto"


def _search(name: str, **opts: Any) -> tuple[Path, float]:
    opts.setdefault("workers", WORKERS)
    cache = BaselineOnlyCache()
    try:
        run_dir, wall = search_or_reuse(RUNS / name, REUSE, cache=cache, use_cache=True, **opts)
    finally:
        cache.close()
    if REUSE:
        generate_report([run_dir])
    return run_dir, wall


def front_rows(run_dir: Path) -> list[dict[str, Any]]:
    run = load_run(run_dir)
    base = run.baseline.result if run.baseline is not None else None
    ref = run.reference_quality
    rows = []
    for p in run.front:
        r = p.evaluation.result
        test = run.test_quality.get(p.evaluation.digest)
        rows.append({
            "seq": p.evaluation.seq,
            "layers": r.layers,
            "instructions": r.value(LATENCY_COUNT),
            "flash_bytes": r.value(FLASH_BYTES),
            "val": r.value(QUALITY),
            "test": None if test is None else test["value"],
            "instr_ratio": base.value(LATENCY_COUNT) / r.value(LATENCY_COUNT) if base else math.nan,
            "flash_ratio": base.value(FLASH_BYTES) / r.value(FLASH_BYTES) if base else math.nan,
            "drop_vs_fp32": None if ref is None else 100.0 * (ref - r.value(QUALITY)) if run.higher_is_better
            else 100.0 * (r.value(QUALITY) - ref) / abs(ref),
        })
    return rows


def hypervolume(run_dir: Path) -> tuple[float, dict[str, Any]]:
    """Hypervolume (moocore) of the run's front in (instructions/base, flash/base, 1 − val accuracy),
    all minimised; reference point (1, 1, 1 − persistence-free floor) stated in the result."""
    # Deferred: only the strategies target computes hypervolumes.
    import moocore

    run = load_run(run_dir)
    assert run.baseline is not None
    base = run.baseline.result
    ref_err = 1.0 - 0.5  # validation accuracy 0.5: below the persistence predictor (0.577), so every useful point counts
    pts = []
    for p in run.front:
        r = p.evaluation.result
        pts.append([r.value(LATENCY_COUNT) / base.value(LATENCY_COUNT), r.value(FLASH_BYTES) / base.value(FLASH_BYTES),
                    1.0 - r.value(QUALITY)])
    ref = np.array([1.0, 1.0, ref_err])
    arr = np.array([q for q in pts if all(a < b for a, b in zip(q, ref, strict=True))])
    hv = float(moocore.hypervolume(arr, ref=ref)) if len(arr) else 0.0
    return hv, {"reference_point": ref.tolist(), "axes": ["instructions / int8 baseline", "flash / int8 baseline",
                                                          "1 − validation accuracy"]}


def target_default(args: argparse.Namespace) -> dict[str, Any]:
    run_dir, wall = _search("default", budget=args.budget or 20)
    head = headline(load_run(run_dir))
    met = head is not None and head.latency_ratio >= 10 and head.flash_ratio >= 10 and head.drop <= 1.0 and wall <= 600
    return {"wall_s": round(wall, 1), "headline": None if head is None else head.__dict__, "front": front_rows(run_dir),
            "met": met, "goal": "≥10× instructions and ≥10× flash vs int8 baseline at ≤1 pp val drop vs FP32, ≤10 min"}


def target_budget100(args: argparse.Namespace) -> dict[str, Any]:
    run_dir, wall = _search("budget100", budget=100)
    head = headline(load_run(run_dir))
    met = head is not None and head.latency_ratio >= 20 and head.drop <= 1.0
    return {"wall_s": round(wall, 1), "headline": None if head is None else head.__dict__, "front": front_rows(run_dir),
            "met": met, "goal": "≥20× instructions at ≤1 pp val drop vs FP32"}


def target_strategies(args: argparse.Namespace) -> dict[str, Any]:
    budget = args.budget or 10
    table: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    fronts: dict[str, list[list[tuple[float, float]]]] = {}
    for strategy in args.strategies:
        hvs, walls, heads = [], [], []
        for seed in range(args.seeds):
            try:
                run_dir, wall = _search(f"strategies/{strategy}-s{seed}", strategy=strategy, seed=seed, budget=budget)
            except RunNotFinished as exc:  # --reuse: reported as not run
                log.warning("%s", exc)
                continue
            hv, meta = hypervolume(run_dir)
            run = load_run(run_dir)
            head = headline(run)
            hvs.append(hv)
            walls.append(wall)
            heads.append(None if head is None else head.__dict__)
            fronts.setdefault(strategy, []).append(
                [(p.evaluation.result.value(LATENCY_COUNT), p.evaluation.result.value(QUALITY)) for p in run.front])
            log.info("%s seed %d: hypervolume %.4f (%.0f s)", strategy, seed, hv, wall)
        if not hvs:
            continue
        table[strategy] = {"hv": hvs, "mean": statistics.mean(hvs), "std": statistics.pstdev(hvs),
                           "wall_s": [round(w, 1) for w in walls], "best": heads}
    winner = max(table, key=lambda s: table[s]["mean"]) if table else None
    figure = _strategies_plot(FIGURES / "search_strategies.png", table, fronts, budget)
    return {"budget": budget, "seeds": args.seeds, "hypervolume": table, "winner": winner, **meta, "met": True,
            "figure": str(figure.relative_to(ROOT)),
            "goal": "every strategy at the same device budget, ≥3 seeds; report which wins"}


def _strategies_plot(path: Path, table: dict[str, Any], fronts: dict[str, list[list[tuple[float, float]]]],
                     budget: int) -> Path:
    """Hypervolume per strategy (mean ± std over seeds) beside every run's front (instructions vs val accuracy)."""
    # Deferred (matplotlib, ~0.5 s): only the strategies target draws a figure.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (bar, scatter) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = list(table)
    bar.bar(names, [table[n]["mean"] for n in names], yerr=[table[n]["std"] for n in names], capsize=4, color="#4c72b0")
    bar.set_ylabel("hypervolume (higher is better)")
    bar.set_title(f"front hypervolume, budget {budget}, mean ± std over seeds")
    for i, name in enumerate(names):
        colour = plt.get_cmap("tab10")(i)
        for k, front in enumerate(fronts.get(name, [])):
            pts = sorted(front)
            if pts:
                # Markers only: a front in (instructions, flash, accuracy) is not a curve in two of them.
                scatter.plot([x for x, _ in pts], [y for _, y in pts], "o", color=colour, alpha=0.7, ms=5,
                             label=name if k == 0 else None)
    scatter.set_xscale("log")
    scatter.set_xlabel("QEMU M4 instructions per inference (log)")
    scatter.set_ylabel("validation accuracy (int8, device)")
    scatter.set_title("every run's front points (all seeds)")
    scatter.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def target_cartpole(args: argparse.Namespace) -> dict[str, Any]:
    run_dir, wall = _search("cartpole-m0", task="cartpole-dqn", device="qemu:m0", budget=args.budget or 20,
                            max_acc_drop=5.0)
    rows = front_rows(run_dir)
    ok = [r for r in rows if r["instructions"] <= 5000 and (r["test"] or 0) >= 475]
    return {"wall_s": round(wall, 1), "front": rows, "met": bool(ok),
            "goal": "a front point with mean test return ≥ 475 over 100 episodes at ≤ 5,000 instructions/action (M0)"}


def _task_target(task: str, what: str, args: argparse.Namespace) -> dict[str, Any]:
    """Issue 19's targets: ``task`` searched like the default run, ≥ 5× fewer instructions at ≤ 1 pp."""
    run_dir, wall = _search(task, task=task, budget=args.budget or 20)
    head = headline(load_run(run_dir))
    met = head is not None and head.latency_ratio >= 5 and head.drop <= 1.0
    return {"wall_s": round(wall, 1), "headline": None if head is None else head.__dict__, "front": front_rows(run_dir),
            "met": met, "goal": f"(issue 19) a pruned {what} with ≥5× fewer instructions than its int8 baseline "
                                "at ≤1 pp val drop vs FP32"}


def target_lstm(args: argparse.Namespace) -> dict[str, Any]:
    return _task_target("weather-lstm", "weather LSTM (2 × 256 baseline)", args)


def target_digits(args: argparse.Namespace) -> dict[str, Any]:
    return _task_target("digits-cnn", "digits CNN (16 + 32 channels)", args)


TARGETS = {"default": target_default, "budget100": target_budget100, "strategies": target_strategies,
           "cartpole-m0": target_cartpole, "weather-lstm": target_lstm, "digits-cnn": target_digits}


def write_benchmarks(name: str, result: dict[str, Any], command: str, note: str = "") -> None:
    path = ROOT / "BENCHMARKS.md"
    head = f"## {SECTION}: {name}"
    body = [head, "", f"- command: `{command}`{note}", f"- date: {time.strftime('%Y-%m-%d %H:%M')}, commit {commit()}",
            f"- goal: {result['goal']}", f"- **met: {'yes' if result['met'] else 'NO'}**"]
    if "wall_s" in result:
        load = os.getloadavg()[0]
        body.append(f"- wall time: {result['wall_s']:.0f} s (load average {load:.1f} on 2 cores when summarised)")
    if result.get("headline"):
        h = result["headline"]
        body.append(f"- best point #{h['seq']}: {h['latency_ratio']:.1f}× fewer {h['latency_unit']}, "
                    f"{h['flash_ratio']:.1f}× less flash than the int8 baseline (QEMU, deploy build); "
                    f"val {h['val_quality']:.4f} (FP32 {h['reference_val']:.4f}, drop {h['drop']:+.2f} pp); "
                    f"test {h['test_quality']:.4f} (scored once after the search)")
    if "front" in result:
        body += ["", "| # | instructions | ×fewer | flash B | ×less | val | test | drop vs FP32 (pp) | layers |",
                 "|---|---|---|---|---|---|---|---|---|"]
        for r in result["front"]:
            kept = ", ".join(f"{lay['name']}:{lay.get('kept_units', '')}" for lay in r["layers"] if "kept_units" in lay)
            body.append(f"| {r['seq']} | {r['instructions']:,.0f} | {r['instr_ratio']:.1f} | {r['flash_bytes']:,.0f} | "
                        f"{r['flash_ratio']:.1f} | {r['val']:.4f} | {r['test'] if r['test'] is None else round(r['test'], 4)} | "
                        f"{r['drop_vs_fp32']:+.2f} | {kept} |")
    if "hypervolume" in result:
        body += ["", f"Hypervolume (moocore) over axes {result.get('axes')}, reference point {result.get('reference_point')}; "
                 f"budget {result['budget']} device evaluations per run, {result['seeds']} seeds. Best point: the front "
                 "point with the largest min(instructions ratio, flash ratio) vs the int8 baseline (mean ± std over seeds; "
                 "val drop vs FP32, test scored once after the search):", "",
                 "| strategy | hypervolume | per seed | best ×fewer instr | best ×less flash | val drop (pp) | test | wall s |",
                 "|---|---|---|---|---|---|---|---|"]
        for s, v in result["hypervolume"].items():
            heads = [h for h in v.get("best", []) if h]

            def ms(key: str, fmt: str, heads: list[dict[str, Any]] = heads) -> str:
                xs = [float(h[key]) for h in heads if h.get(key) is not None]
                return "-" if not xs else f"{fmt.format(statistics.mean(xs))} ± {fmt.replace('+', '').format(statistics.pstdev(xs))}"

            body.append(f"| {s} ({len(v['hv'])} seeds) | {v['mean']:.4f} ± {v['std']:.4f} | {', '.join(f'{x:.4f}' for x in v['hv'])} | "
                        f"{ms('latency_ratio', '{:.1f}')} | {ms('flash_ratio', '{:.1f}')} | {ms('drop', '{:+.2f}')} | "
                        f"{ms('test_quality', '{:.3f}')} | {statistics.mean(v['wall_s']):.0f} |")
        body.append(f"\nWinner by mean hypervolume: **{result['winner']}**.")
        if result.get("figure"):
            body.append(f"\n![strategies]({result['figure']})")
    replace_section(path, head, "\n".join(body))


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", choices=[*TARGETS, "all"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=int, default=None)
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    ap.add_argument("--reuse", action="store_true",
                    help="summarise a finished run under runs/bench/ instead of searching again (wall time from its store)")
    ap.add_argument("--workers", default="auto",
                    help="evaluations at once, as `edgeprune search --workers` (default auto, what `make demo` uses)")
    args = ap.parse_args()
    global REUSE, WORKERS
    REUSE = args.reuse
    WORKERS = args.workers if args.workers == "auto" else int(args.workers)
    RESULTS.mkdir(parents=True, exist_ok=True)
    names = list(TARGETS) if args.target == "all" else [args.target]
    for name in names:
        result = TARGETS[name](args)
        (RESULTS / f"search_{name}.json").write_text(json.dumps(result, indent=2, default=str))
        argv = [a for a in sys.argv[1:] if a != "--reuse"]
        command = "python bench/scripts/search_targets.py " + " ".join(argv)
        write_benchmarks(name, result, command, " (summarised afterwards with `--reuse`)" if REUSE else "")
        print(json.dumps({k: v for k, v in result.items() if k != "front"}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
