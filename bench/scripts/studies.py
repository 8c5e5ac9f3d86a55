"""Issue 14: the published studies reproduced on a device, proxy reward vs measured reward.

Usage (each regenerates one BENCHMARKS.md section and one PNG under docs/figures/):
  python bench/scripts/studies.py m0dqn                       # CartPole DQN on qemu:m0, retain-rate sweep
  python bench/scripts/studies.py discrete [--seeds 1] [--budget 8] [--n 10]
  python bench/scripts/studies.py layerwise [--seeds 3] [--budget 8] [--methods uniform tpe cmaes ppo]
  ... --quick                        # tiny budget, 1 seed, N = 2, few episodes (what the test runs)
  ... --reuse                        # summarise finished searches under --runs instead of searching again
  ... --resume                       # keep finished searches, search the missing or unfinished ones
  ... --benchmarks F --figures D --runs D --results D   # where the section, PNG, runs and JSON go

Every candidate is measured on the device (QEMU, -icount: instructions, a lower bound on cycles), whatever
reward chose it. Searches use the evaluation cache for the baseline only, so every run spends its whole
device budget on its own candidates. Energy: ``model`` = instructions × the core's cited pJ/cycle
(bench/energy_table.json, a lower bound); ``host`` = CodeCarbon on this computer running TFLite.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench_common import ROOT, BaselineOnlyCache, commit, mean_std, pm, replace_section, search_or_reuse

from edgeprune.bench.manifest import read_manifest
from edgeprune.bench.power.host import host_energy_tflite
from edgeprune.host.compress.config import CompressionConfig, LayerConfig
from edgeprune.host.report.describe import describe_config
from edgeprune.host.report.load import load_run
from edgeprune.host.search.evaluator import HardwareEvaluator
from edgeprune.host.search.front import unique_candidates
from edgeprune.host.search.objective import study_flops_ratio
from edgeprune.host.search.space import ConfigSpace, auto_finetune_steps
from edgeprune.host.search.store import RunStore
from edgeprune.host.search.types import (
    ENERGY_UJ,
    FLASH_BYTES,
    HOST_ENERGY_UJ,
    LATENCY_COUNT,
    MACS,
    PARAMS,
    QUALITY,
    RAM_BYTES,
    SPARSITY,
    EvalResult,
)
from edgeprune.host.tasks import get_task

SECTION = "Studies (issue 14)"
METHODS = ("uniform", "tpe", "cmaes", "ppo")
RETAIN_RATES = (1.0, 0.95, 0.9, 0.8, 0.6, 0.4)
log = logging.getLogger("studies")


# -- measuring ---------------------------------------------------------------------------------------
def evaluator(task: Any, device: str, work: Path, host_energy: bool) -> Any:
    work.mkdir(parents=True, exist_ok=True)
    return HardwareEvaluator(task, device, host_energy=host_energy, pidfile=work / ".qemu.pid",
                             deploy_dir=work / ".deploy-build")


def measure_configs(task: Any, device: str, configs: dict[str, Any], work: Path,
                    host_energy: bool = False) -> dict[str, dict[str, Any]]:
    """Each config measured once on the device (counts under -icount are deterministic) and scored on
    the test split (TFLM, bit-exact with the device): label → ``{"result", "test"}``."""
    out: dict[str, dict[str, Any]] = {}
    ev = evaluator(task, device, work, host_energy)
    try:
        for label, cfg in configs.items():
            t0 = time.monotonic()
            result = ev.evaluate(cfg)
            test = None if result.error is not None else ev.test_quality(result)
            log.info("%s: %s in %.0f s", label, result.error or f"{result.value(LATENCY_COUNT):,.0f} instructions",
                     time.monotonic() - t0)
            out[label] = {"result": result, "test": test}
    finally:
        ev.close()
    return out


def host_runs(result: EvalResult, n: int, inferences: int) -> list[dict[str, float]]:
    """``n`` CodeCarbon runs of the candidate's .tflite on this host: energy (µJ) and latency (ms) per inference."""
    folder = Path(result.artifacts["dir"])
    tflite = (folder / "model.tflite").read_bytes()
    steps = read_manifest(folder / "manifest.json").steps
    runs = []
    for _ in range(n):
        he = host_energy_tflite(tflite, inferences, steps=steps)
        runs.append({"energy_uj": he.per_inference.value, "latency_ms": 1e3 * he.duration_s / he.inferences,
                     "detail": he.per_inference.detail})
    return runs


def test_score(ev: Any, run: Any, stored: Any) -> float | None:
    """Test quality of a stored search candidate: the run's own score (front points), else scored now."""
    got = run.test_quality.get(stored.digest)
    if got is not None:
        return float(got["value"])
    if stored.result.error is not None or "dir" not in stored.result.artifacts:
        return None
    try:
        return float(ev.test_quality(stored.result).value)
    except FileNotFoundError:
        return None


def point(r: EvalResult, base: EvalResult | None, test: float | None = None) -> dict[str, Any]:
    """One measured candidate as a table row; ratios are against ``base`` (the int8 baseline)."""
    sparsity = r.value(SPARSITY)
    density = 1.0 - sparsity if math.isfinite(sparsity) else 1.0
    row = {
        "config": describe_config(r.config_json, r.layers), "error": r.error,
        "val": r.value(QUALITY), "test": test, "sparsity": sparsity, "params": r.value(PARAMS), "macs": r.value(MACS),
        "study_mflops": 2e-6 * r.value(MACS) * density, "instructions": r.value(LATENCY_COUNT),
        "flash": r.value(FLASH_BYTES), "ram": r.value(RAM_BYTES), "energy_model_uj": r.value(ENERGY_UJ),
        "host_energy_uj": r.value(HOST_ENERGY_UJ), "quantize": json.loads(r.config_json).get("quantize"),
    }
    if base is not None:
        row["flops_x"] = 1.0 / study_flops_ratio(r, base)
        row["instr_x"] = base.value(LATENCY_COUNT) / r.value(LATENCY_COUNT)
    return row


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Non-dominated (instructions ↓, quality ↑) points, by instructions."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(p for p in points if all(map(math.isfinite, p))):
        if not front or y > front[-1][1]:
            front.append((x, y))
    return front


def _plt() -> Any:
    # Deferred (matplotlib, ~0.5 s): only the studies that draw a figure need it.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# -- the sections --------------------------------------------------------------------------------------
def search_runs(args: argparse.Namespace, study: str, strategy: str, reward: str, task: str, device: str,
                cache: BaselineOnlyCache) -> list[tuple[Path, float]]:
    runs = []
    for seed in range(args.seeds):
        shared = _shared_run(args, strategy, reward, task, device, seed)
        if shared is not None:
            runs.append(shared)
            continue
        out = args.runs / study / f"{strategy}-{reward}-s{seed}"
        finished = _finished(out)
        if args.reuse and not finished:
            # --reuse summarises; a run that did not finish is reported as not run instead of being started.
            log.warning("%s did not finish: left out of the summary", out)
            continue
        # --resume keeps what finished and searches the rest (a killed study loses only its unfinished runs).
        runs.append(search_or_reuse(out, args.reuse or (args.resume and finished), cache=cache, task=task, device=device, strategy=strategy,
                                    reward=reward, seed=seed, budget=args.budget, use_cache=True, workers=args.workers,
                                    host_energy=not args.quick, finetune_steps=0 if args.quick else "auto"))
    return runs


def _shared_run(args: argparse.Namespace, strategy: str, reward: str, task: str, device: str,
                seed: int) -> tuple[Path, float] | None:
    """A finished measured-reward run of ``search_targets.py strategies`` (``--measured-runs``) with this
    study's task, device, strategy, seed, budget and worker count, instead of a second identical search."""
    if args.measured_runs is None or reward != "measured":
        return None

    out = args.measured_runs / f"{strategy}-s{seed}"
    if not _finished(out):
        return None
    with RunStore(out) as store:
        opts, finished = store.get_meta("options") or {}, store.get_meta("finished")
    want = {"task": task, "device": device, "strategy": strategy, "seed": seed, "budget": args.budget,
            "reward": "measured", "workers": args.workers, "finetune_steps": "auto"}
    differs = {k: (opts.get(k), v) for k, v in want.items() if opts.get(k) != v}
    if differs:
        log.warning("%s not shared (its options differ: %s)", out, differs)
        return None
    log.info("measured-reward %s seed %d: the finished run %s", strategy, seed, out)
    return out, float(finished) - float(opts["started"])


def _finished(run_dir: Path) -> bool:
    if not (run_dir / "evaluations.sqlite").is_file():
        return False
    with RunStore(run_dir) as store:
        return store.get_meta("finished") is not None


def chosen(ev: Any, run_dir: Path) -> dict[str, Any] | None:
    """The candidate the run's own reward chose (highest reward among the feasible), as a row."""
    run = load_run(run_dir)
    base = run.baseline.result if run.baseline is not None else None
    if run.best is None:
        return None
    row = point(run.best.result, base, test_score(ev, run, run.best))
    row["seq"], row["reward"] = run.best.seq, run.best.reward
    return row


def all_points(run_dir: Path) -> list[tuple[float, float]]:
    run = load_run(run_dir)
    return [(e.result.value(LATENCY_COUNT), e.result.value(QUALITY)) for e in unique_candidates(run.candidates())
            if e.result.error is None and e.origin != "host"]


def fronts_plot(path: Path, title: str, groups: dict[str, list[Path]], marks: dict[str, list[dict[str, Any]]],
                refs: dict[str, dict[str, Any]]) -> None:
    """Validation accuracy vs measured instructions: each reward's candidates and front, the chosen points."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    colours = {"proxy": "tab:red", "measured": "tab:blue"}
    for reward, dirs in groups.items():
        pts = [p for d in dirs for p in all_points(d)]
        c = colours.get(reward, "grey")
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=12, alpha=0.35, color=c)
        front = pareto(pts)
        if front:
            ax.step([p[0] for p in front], [p[1] for p in front], where="post", color=c, lw=2,
                    label=f"{reward}-rewarded front ({len(pts)} candidates)")
        for row in marks.get(reward, []):
            ax.scatter([row["instructions"]], [row["val"]], s=80, marker="*", color=c, edgecolor="k", zorder=5)
    for label, row in refs.items():
        ax.scatter([row["instructions"]], [row["val"]], s=60, marker="s", color="k", zorder=5)
        ax.annotate(label, (row["instructions"], row["val"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("QEMU instructions per inference (measured, -icount)")
    ax.set_ylabel("validation accuracy")
    ax.set_title(title + "\n(★ = the point each run's own reward chose)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def _weather_refs(args: argparse.Namespace, task: Any, work: Path) -> dict[str, dict[str, Any]]:
    cfgs = {"Baseline FP32": CompressionConfig.identity(task, quantize="float32"),
            "int8 (PTQ, uncompressed)": CompressionConfig.identity(task)}
    got = measure_configs(task, args.device, cfgs, work, host_energy=not args.quick)
    base = got["int8 (PTQ, uncompressed)"]["result"]
    return {k: point(v["result"], base, None if v["test"] is None else float(v["test"].value)) for k, v in got.items()}


def _diffs(rows: list[dict[str, Any]]) -> list[str]:
    """Where a proxy-rewarded choice's promise (study FLOPs) and the device (instructions) part ways."""
    out = []
    for r in rows:
        if r.get("flops_x") is None or not math.isfinite(r.get("instr_x", math.nan)):
            continue
        gap = r["flops_x"] / r["instr_x"]
        out.append(f"{r['label']} ({r['config']}): the proxy counted {1 / r['flops_x']:.2f}× the int8 baseline's FLOPs "
                   f"(sparsity {100 * r['sparsity']:.1f} %), the device measured {1 / r['instr_x']:.2f}× its "
                   "instructions" + (f" — the proxy promised {gap:.2f}× more saving than the device delivered" if gap > 1.05
                                     else f" — the device saved {1 / gap:.2f}× more than the proxy counted" if gap < 0.95
                                     else " — they agree within 5 %"))
    return out


def study_layerwise(args: argparse.Namespace) -> dict[str, Any]:
    task = get_task("weather-gru")
    work = args.runs / "layerwise"
    refs = _weather_refs(args, task, work / "fixed")
    cache = BaselineOnlyCache()
    ev = evaluator(task, args.device, work / "fixed", False)
    table: dict[str, Any] = {}
    groups: dict[str, list[Path]] = {"proxy": [], "measured": []}
    marks: dict[str, list[dict[str, Any]]] = {"proxy": [], "measured": []}
    walls: list[float] = []
    ran: list[str] = []
    try:
        for method in args.methods:
            for reward in ("proxy", "measured"):
                runs = search_runs(args, "layerwise", method, reward, "weather-gru", args.device, cache)
                if runs:
                    ran.append(f"{method}|{reward}")
                rows = []
                for seed, (run_dir, wall) in enumerate(runs):
                    walls.append(wall)
                    groups[reward].append(run_dir)
                    row = chosen(ev, run_dir)
                    if row is not None:
                        row["label"], row["seed"] = f"{method} ({reward}, seed {seed})", seed
                        rows.append(row)
                        marks[reward].append(row)
                table[f"{method}|{reward}"] = rows
    finally:
        ev.close()
        cache.close()
    path = args.figures / "study_layerwise.png"
    fronts_plot(path, f"Layer-wise study on weather-gru, {args.device}: proxy vs measured reward "
                f"(budget {args.budget}, {args.seeds} seed(s))", groups, marks, refs)
    # Verdict: does rewarding the device choose cheaper points on the device than rewarding the proxy?
    verdicts = {}
    for method in args.methods:
        p = mean_std(r["instructions"] for r in table[f"{method}|proxy"])[0]
        m = mean_std(r["instructions"] for r in table[f"{method}|measured"])[0]
        verdicts[method] = None if math.isnan(p) or math.isnan(m) else "same" if m == p else m < p
    known = [v is True for v in verdicts.values() if v is not None]
    return {"table": table, "refs": refs, "figure": _shown(path), "walls": walls, "verdicts": verdicts, "ran": ran,
            "met": bool(known) and all(known) and args.seeds >= 3,
            "goal": "at the same device budget and ≥ 3 seeds, the measured-rewarded choice of every method costs fewer "
                    "device instructions than the proxy-rewarded one (mean over seeds)",
            "budget": args.budget, "seeds": args.seeds,
            "diffs": _diffs([r for k, rows in table.items() if k.endswith("|proxy") for r in rows])}


def study_discrete(args: argparse.Namespace) -> dict[str, Any]:
    task = get_task("weather-gru")
    work = args.runs / "discrete"
    cache = BaselineOnlyCache()
    ev = evaluator(task, args.device, work / "fixed", False)
    stage1: dict[str, list[dict[str, Any]]] = {}
    groups: dict[str, list[Path]] = {}
    agent_cfgs: dict[str, Any] = {}
    try:
        for reward in ("proxy", "measured"):
            runs = search_runs(args, "discrete", "ppo-discrete", reward, "weather-gru", args.device, cache)
            groups[reward] = [d for d, _ in runs]
            stage1[reward] = []
            for seed, (run_dir, _) in enumerate(runs):
                row = chosen(ev, run_dir)
                if row is None:
                    continue
                row["label"], row["seed"] = f"ppo-discrete ({reward}, seed {seed})", seed
                stage1[reward].append(row)
                if reward not in agent_cfgs:
                    best = load_run(run_dir).best
                    agent_cfgs[reward] = CompressionConfig.from_json(best.result.config_json)
    finally:
        ev.close()
        cache.close()
    names = CompressionConfig.identity(task).layers

    def unstructured(sparsity: float, quantize: str) -> Any:
        return CompressionConfig(layers=tuple(LayerConfig(lc.name, sparsity=sparsity) for lc in names), quantize=quantize)

    configs = {"FP32": unstructured(0.0, "float32"), "P50": unstructured(0.5, "float32"), "Q": unstructured(0.0, "int8"),
               "P30+Q": unstructured(0.3, "int8")}
    configs.update({f"agent best ({k})": v for k, v in agent_cfgs.items()})
    got = measure_configs(task, args.device, configs, work / "fixed")
    base = got["Q"]["result"]
    stage2 = {}
    for label, g in got.items():
        r = g["result"]
        row = point(r, base, None if g["test"] is None else float(g["test"].value))
        row["host"] = [] if r.error else host_runs(r, args.n, 10 if args.quick else 50)
        row["label"] = label
        stage2[label] = row
    fp = stage2["FP32"]

    def delta(row: dict[str, Any], key: str) -> float:
        if key in ("energy_uj", "latency_ms"):
            a, b = mean_std(h[key] for h in row["host"])[0], mean_std(h[key] for h in fp["host"])[0]
        else:
            a, b = row[key], fp[key]
        return 100.0 * (a - b) / b if b and math.isfinite(a) and math.isfinite(b) else math.nan

    for row in stage2.values():
        row["d_host_energy"], row["d_host_latency"] = delta(row, "energy_uj"), delta(row, "latency_ms")
        row["d_instructions"], row["d_energy_model"] = delta(row, "instructions"), delta(row, "energy_model_uj")
    path = args.figures / "study_discrete.png"
    fronts_plot(path, f"Discrete study (ppo-discrete, 16 actions) on weather-gru, {args.device}: proxy vs measured "
                f"reward (budget {args.budget})", groups, stage1, {k: v for k, v in stage2.items()
                                                                  if not k.startswith("agent")})
    p50, pq = stage2["P50"], stage2["P30+Q"]
    device_holds = abs(p50["d_instructions"]) < 1.0 and pq["d_energy_model"] <= -3.7
    return {"stage1": stage1, "stage2": stage2, "figure": _shown(path), "budget": args.budget, "seeds": args.seeds,
            "n": args.n, "met": device_holds,
            "goal": "the published finding holds on the device: P50 saves nothing (instructions within 1 % of FP32) "
                    "and P30+Q saves ≥ 3.7 % energy vs FP32 (modelled from measured instructions)",
            "diffs": _diffs(stage1.get("proxy", []))}


def _svd_config(task: Any, space: Any, rate: float) -> Any:
    """The retain rate spent on low rank instead of units: each hidden matrix keeps ≈ ``rate`` of its weights
    as a rank-k product ``k(m + n) ≈ rate · m n``, only where that rank saves work (else it stays dense).

    The readout stays dense: with two Q-values its only cheaper rank is 1, which makes them proportional
    (measured: return 11.6 of 500 in float, before any quantisation)."""
    model = task.baseline()
    sizes = list(model.sizes)
    layers = []
    for i in range(len(sizes) - 2):
        n, m = sizes[i], sizes[i + 1]
        k = math.floor(rate * m * n / (m + n))
        if k >= 1 and k * (m + n) < m * n:
            layers.append(LayerConfig(f"fc{i}", rank_frac=max(k / min(m, n), 0.01)))
    cfg = space.canonical(space.identity().with_globals(layers=tuple(layers)))
    steps = space.finetune_steps if space.finetune_steps != "auto" else auto_finetune_steps(1.0 - rate)
    return replace(cfg, finetune_steps=steps if layers else 0, distill=space.distill)


def study_m0dqn(args: argparse.Namespace) -> dict[str, Any]:
    task = get_task("cartpole-dqn")
    if args.episodes:
        task.eval_episodes = args.episodes
    space = ConfigSpace(task, finetune_steps=0 if args.quick else "auto", distill=not args.quick)
    rates = RETAIN_RATES[:2] if args.quick else RETAIN_RATES
    # "ptq": the uncompressed policy, plain int8 post-training quantisation (every ratio's base). "units" configs
    # carry distill, so the pipeline trains the exporter's int8-aware student of their shape (units 1 included).
    configs: dict[str, Any] = {"fp32 1": CompressionConfig.identity(task, quantize="float32"),
                               "ptq 1": CompressionConfig.identity(task)}
    for r in rates:
        configs[f"units {r:g}"] = space.retain(r)
        if r < 1.0:
            svd = _svd_config(task, space, r)
            if svd.layers:
                configs[f"svd {r:g}"] = svd
    got = measure_configs(task, "qemu:m0", configs, args.runs / "m0dqn")
    base = got["ptq 1"]["result"]
    rows = {}
    for label, g in got.items():
        kind, rate = label.split()
        row = point(g["result"], base)
        t = g["test"]
        row.update(label=label, kind=kind, rate=float(rate), test=None if t is None else float(t.value),
                   test_std=None if t is None else t.std, episodes=task.eval_episodes)
        rows[label] = row
    searcher = _searcher_best(args)
    path = args.figures / "study_m0dqn.png"
    _m0_plot(path, rows, searcher)
    at95 = [r for r in rows.values() if r["rate"] == 0.95 and r["kind"] != "fp32" and r["test"] is not None]
    best95 = max(at95, key=lambda r: r["instr_x"], default=None)
    met = best95 is not None and best95["instr_x"] >= 2.1 / 1.2 and best95["test"] >= 195
    return {"rows": rows, "searcher": searcher, "figure": _shown(path), "met": met, "episodes": task.eval_episodes,
            "goal": "at retain rate 0.95 the published 2.1 → 1.2 ms per action (1.75×) as ≥ 1.75× fewer QEMU "
                    "instructions than the uncompressed int8 policy, at a test return ≥ 195"}


def _searcher_best(args: argparse.Namespace) -> dict[str, Any] | None:
    """The best point of any finished CartPole search on qemu:m0 under runs/ (None when there is none)."""
    found = None
    for store in sorted((ROOT / "runs").rglob("evaluations.sqlite")):
        try:
            run = load_run(store.parent)
        except (OSError, ValueError, RuntimeError) as exc:
            log.info("skipping %s: %s", store.parent, exc)
            continue
        if run.options.get("task") != "cartpole-dqn" or run.options.get("device") != "qemu:m0":
            continue
        entry: dict[str, Any] = {"run": str(store.parent.relative_to(ROOT)), "point": None}
        if run.best is not None:
            test = run.test_quality.get(run.best.digest)
            entry["point"] = point(run.best.result, run.baseline.result if run.baseline else None,
                                   None if test is None else float(test["value"]))
        found = entry if found is None or entry["point"] is not None else found
    return found


def _m0_plot(path: Path, rows: dict[str, dict[str, Any]], searcher: dict[str, Any] | None) -> None:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"wspace": 0.45})
    a2 = a.twinx()
    for kind, colour in (("units", "tab:blue"), ("svd", "tab:green")):
        pts = sorted((r for r in rows.values() if r["kind"] == kind or (kind == "svd" and r["label"] == "units 1")),
                     key=lambda r: -r["rate"])
        pts = [r for r in pts if r["test"] is not None]
        if not pts:
            continue
        a.plot([r["rate"] for r in pts], [r["test"] for r in pts], "o-", color=colour, label=f"{kind}: test return")
        a2.plot([r["rate"] for r in pts], [r["instructions"] for r in pts], "s--", color=colour, alpha=0.6,
                label=f"{kind}: instructions/action")
        b.plot([r["instructions"] for r in pts], [r["test"] for r in pts], "o-", color=colour, label=kind)
        for r in pts:
            b.annotate(f"{r['rate']:g}", (r["instructions"], r["test"]), textcoords="offset points", xytext=(3, 3), fontsize=7)
    for key, marker in (("fp32 1", "s"), ("ptq 1", "D")):
        ref = rows.get(key)
        if ref is not None and ref["test"] is not None:
            b.scatter([ref["instructions"]], [ref["test"]], marker=marker, color="k", label=f"{key.split()[0]}, uncompressed")
    if searcher and searcher.get("point"):
        sp = searcher["point"]
        split = "test" if sp.get("test") is not None else "val"
        b.scatter([sp["instructions"]], [sp[split]], marker="*", s=120, color="tab:red", label=f"searcher's best ({split})")
    a.set_xlabel("retain rate")
    a.set_ylabel("mean test return")
    a2.set_ylabel("instructions per action (dashed)")
    a.invert_xaxis()
    a.legend(fontsize=7, loc="lower left")
    b.set_xscale("log")
    b.set_xlabel("QEMU instructions per action (Cortex-M0, -icount)")
    b.set_ylabel("mean test return")
    b.legend(fontsize=7)
    fig.suptitle("Cortex-M0 DQN study: CartPole on qemu:m0, int8", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


STUDIES = {"layerwise": study_layerwise, "discrete": study_discrete, "m0dqn": study_m0dqn}


# -- BENCHMARKS.md --------------------------------------------------------------------------------------
def _f(v: Any, fmt: str = "{:,.0f}") -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else fmt.format(v)


def _verdict(v: Any) -> str:
    return "same point" if v == "same" else {True: "yes", False: "no"}.get(v, "n/a")


def _layer_table(result: dict[str, Any]) -> list[str]:
    lines = ["| method | reward | val acc | test acc | sparsity | params | MACs | study FLOPs (M) | instructions | "
             "flash B | RAM B | energy, model (µJ, lower bound) | energy, host CodeCarbon (µJ) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, r in result["refs"].items():
        lines.append(f"| {label} | - | {_f(r['val'], '{:.4f}')} | {_f(r['test'], '{:.4f}')} | {_f(r['sparsity'], '{:.3f}')} | "
                     f"{_f(r['params'])} | {_f(r['macs'])} | {_f(r['study_mflops'], '{:.2f}')} | {_f(r['instructions'])} | "
                     f"{_f(r['flash'])} | {_f(r['ram'])} | {_f(r['energy_model_uj'], '{:.1f}')} | "
                     f"{_f(r['host_energy_uj'], '{:.1f}')} |")
    for key, rows in result["table"].items():
        method, reward = key.split("|")
        if not rows:
            what = "no feasible candidate" if key in result.get("ran", ()) else "not run (no finished run)"
            lines.append(f"| {method} | {reward} | {what} |" + " |" * 10)
            continue

        def c(k: str, fmt: str = "{:,.0f}", rows: list[dict[str, Any]] = rows) -> str:
            return pm((r[k] for r in rows if r[k] is not None), fmt)

        lines.append(f"| {method} | {reward} | {c('val', '{:.4f}')} | {c('test', '{:.4f}')} | {c('sparsity', '{:.3f}')} | "
                     f"{c('params')} | {c('macs')} | {c('study_mflops', '{:.2f}')} | {c('instructions')} | {c('flash')} | "
                     f"{c('ram')} | {c('energy_model_uj', '{:.1f}')} | {c('host_energy_uj', '{:.1f}')} |")
    return lines


def section(name: str, result: dict[str, Any], command: str) -> str:
    head = f"## {SECTION}: {name}"
    body = [head, "", f"- command: `{command}`", f"- date: {time.strftime('%Y-%m-%d %H:%M')} UTC, commit {commit()}",
            f"- goal: {result['goal']}", f"- **met: {'yes' if result['met'] else 'NO'}**",
            f"- figure: `{result['figure']}`"]
    if name == "layerwise":
        body += [f"- budget {result['budget']} device evaluations per run, {result['seeds']} seed(s) per method and reward; "
                 "mean ± std over seeds of the point each run's own reward chose; instructions are QEMU -icount on the "
                 "M4; flash/RAM from the deploy build (later candidates derived from the baseline's build, labelled in the "
                 "store); study FLOPs = 2 × MACs × nonzero fraction (the studies' count)",
                 "- published (layer-wise GRU study, host, on the uncorrected task): RL agent 65.85 % → 64.81 % accuracy "
                 "at 62.7 % sparsity, FLOPs 35.97 M → 13.42 M; TPE and CMA-ES stuck at 29.8 %", ""]
        body += _layer_table(result)
        body += ["", "Measured reward chose fewer instructions than proxy reward (mean over seeds): "
                 + ", ".join(f"{m} {_verdict(v)}" for m, v in result["verdicts"].items())]
    elif name == "discrete":
        body += [f"- stage 1: ppo-discrete (8 prune ratios × fp32/int8), budget {result['budget']}, {result['seeds']} seed(s) "
                 "per reward; stage 2: each fixed config measured once on the device (QEMU -icount counts are "
                 f"deterministic: the std over repeats is 0) and {result['n']} CodeCarbon runs on this shared 2-core host",
                 "- P50 / P30 = L1-magnitude unstructured sparsity on every layer (the study's pruning); "
                 "Δ columns are against FP32",
                 "- published (discrete study, host CodeCarbon): P30+Q −3.7 % energy, −4.3 % latency; pruning alone "
                 "saves nothing", "", "Stage 1 (the point each run's reward chose):", "",
                 "| reward | seed | config | val acc | test acc | study FLOPs (M) | ×FLOPs (proxy) | instructions | "
                 "×instructions (device) |", "|---|---|---|---|---|---|---|---|---|"]
        for reward, rows in result["stage1"].items():
            for r in rows:
                body.append(f"| {reward} | {r['seed']} | {r['config']} | {_f(r['val'], '{:.4f}')} | "
                            f"{_f(r['test'], '{:.4f}')} | {_f(r['study_mflops'], '{:.2f}')} | {_f(r['flops_x'], '{:.2f}')} | "
                            f"{_f(r['instructions'])} | {_f(r['instr_x'], '{:.2f}')} |")
        body += ["", "Stage 2:", "", "| config | val acc | test acc | instructions | Δ instr | energy, model µJ "
                 "(lower bound) | Δ | host energy µJ (CodeCarbon) | Δ | host latency ms | Δ |",
                 "|---|---|---|---|---|---|---|---|---|---|---|"]
        for label, r in result["stage2"].items():
            he = [h["energy_uj"] for h in r["host"]]
            hl = [h["latency_ms"] for h in r["host"]]
            body.append(f"| {label} | {_f(r['val'], '{:.4f}')} | {_f(r['test'], '{:.4f}')} | {_f(r['instructions'])} | "
                        f"{_f(r['d_instructions'], '{:+.1f} %')} | {_f(r['energy_model_uj'], '{:.1f}')} | "
                        f"{_f(r['d_energy_model'], '{:+.1f} %')} | {pm(he, '{:.1f}')} | {_f(r['d_host_energy'], '{:+.1f} %')} | "
                        f"{pm(hl, '{:.3f}')} | {_f(r['d_host_latency'], '{:+.1f} %')} |")
        detail = next((h["detail"] for r in result["stage2"].values() for h in r["host"]), "")
        body += ["", f"Host energy: {detail}."]
    else:
        body += [f"- test return: mean over {result['episodes']} test episodes (CartPole-v1, max 500); instructions "
                 "per action under QEMU -icount on the M0 (not cycles, not ms: the published 2.1 → 1.2 ms are silicon "
                 "time at 48 MHz, so only the ratio 1.75× is compared); ×fewer vs ptq (the uncompressed policy, plain int8 "
                 "PTQ); units = hidden units kept √r and the readout sparsified to r (`from_retain_rate`, fine-tuned with "
                 "distillation: the pipeline trains the exporter's int8-aware student of that shape), svd = each hidden "
                 "matrix as a rank-k product holding ≈ r of its weights where that saves work (plain int8 path, "
                 "distilled fine-tuning)",
                 "- published (Cortex-M0 DQN study): 2.1 → 1.2 ms per action at retain 0.95 (48 MHz M0), "
                 "CartPole-v0 reward 200", "",
                 "| variant | retain | config | params | MACs | val return | test return (mean ± std) | instructions/action | "
                 "×fewer | flash B | energy, model µJ (lower bound) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in result["rows"].values():
            body.append(f"| {r['kind']} | {r['rate']:g} | {r['config']} | {_f(r['params'])} | {_f(r['macs'])} | "
                        f"{_f(r['val'], '{:.1f}')} | {_f(r['test'], '{:.1f}')} ± {_f(r['test_std'], '{:.1f}')} | "
                        f"{_f(r['instructions'])} | {_f(r.get('instr_x'), '{:.2f}')} | {_f(r['flash'])} | "
                        f"{_f(r['energy_model_uj'], '{:.3f}')} |")
        s = result["searcher"]
        if s is None:
            body += ["", "Searcher's best: no finished CartPole search on qemu:m0 under runs/."]
        elif s["point"] is None:
            body += ["", f"Searcher's best: the run `{s['run']}` has no feasible candidate."]
        else:
            p = s["point"]
            body += ["", f"Searcher's best (`{s['run']}`): {p['config']}, {_f(p['instructions'])} instructions/action "
                     f"({_f(p.get('instr_x'), '{:.1f}')}× fewer than its int8 baseline), val {_f(p['val'], '{:.1f}')}, "
                     f"test {_f(p['test'], '{:.1f}')} (- = not scored on test by the run)."]
    if result.get("diffs"):
        body += ["", "Where the proxy-rewarded choices differ on the device from what the proxy promised:", ""]
        body += [f"- {d}" for d in result["diffs"]]
    return "\n".join(body)


def _shown(path: Path) -> str:
    """A path as results record it: relative to the repository when inside it (results are committed)."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quick", action="store_true", help="tiny budget, 1 seed, N = 2, few episodes (the test's form)")
    common.add_argument("--seeds", type=int, default=None, help="seeds per method and reward (layerwise 3, discrete 1)")
    common.add_argument("--budget", type=int, default=None, help="device evaluations per search run (default 8)")
    common.add_argument("--n", type=int, default=None, help="CodeCarbon runs per fixed config (discrete stage 2, default 10)")
    common.add_argument("--episodes", type=int, default=None, help="test/val episodes for CartPole (default the task's 100)")
    common.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    common.add_argument("--device", default="qemu:m4")
    common.add_argument("--workers", default="auto", type=lambda v: v if v == "auto" else int(v),
                        help="evaluations at once per search, as `edgeprune search --workers` (default auto)")
    common.add_argument("--measured-runs", type=Path, default=None,
                        help="take measured-reward searches from these finished runs (search_targets.py strategies "
                             "writes runs/bench/strategies/<strategy>-s<seed>) when their options match")
    common.add_argument("--reuse", action="store_true", help="summarise finished searches instead of searching again")
    common.add_argument("--resume", action="store_true",
                        help="keep finished searches and search only the missing or unfinished ones")
    common.add_argument("--benchmarks", type=Path, default=ROOT / "BENCHMARKS.md")
    common.add_argument("--figures", type=Path, default=ROOT / "docs" / "figures")
    common.add_argument("--runs", type=Path, default=ROOT / "runs" / "studies")
    common.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="study", required=True)
    for name in STUDIES:
        sub.add_parser(name, parents=[common])
    args = ap.parse_args(argv)
    defaults = {"seeds": 3 if args.study == "layerwise" else 1, "budget": 8, "n": 10, "episodes": None}
    quick = {"seeds": 1, "budget": 1, "n": 2, "episodes": 3}
    for key, value in (quick if args.quick else defaults).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for p in ("benchmarks", "figures", "runs", "results", "measured_runs"):
        if getattr(args, p) is not None:
            setattr(args, p, getattr(args, p).resolve())
    result = STUDIES[args.study](args)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"study_{args.study}.json").write_text(json.dumps(result, indent=2, default=str))
    command = "python bench/scripts/studies.py " + " ".join(argv if argv is not None else sys.argv[1:])
    block = section(args.study, result, command)
    replace_section(args.benchmarks, f"## {SECTION}: {args.study}", block)
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
