"""Issue 25's benchmark: the named best point under today's rule and the confirmation rule, on the same runs.

Usage:
  python bench/scripts/accuracy_rule.py run default --seeds 0 1 2 3 4     # search (default settings), then analyse
  python bench/scripts/accuracy_rule.py run budget100 --seeds 0 1 2
  python bench/scripts/accuracy_rule.py analyse --group "before (e13b298)" RUN... --group "after" RUN... [--write]

Both rules name a point of the same search (``edgeprune.host.search.confirm``): *point* is the rule the
search used to apply (the front point with the largest min(instruction ratio, flash ratio) whose
validation drop vs FP32 is within the limit); *shrunk* is the rule now in force (the drop shrunk towards
the run's own size/drop trend by its paired standard error must be within the limit). Selection reads
validation only; this script then scores each named point once on the test split, after the search, with
the drop against the FP32 model paired on the same test windows and its 95 % bootstrap interval.

Results go to bench/results/accuracy_rule.json and BENCHMARKS.md ("Accuracy you can trust (issue 25)").
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from bench_common import commit, mean_std, replace_section, search_or_reuse

from edgeprune.bench.manifest import read_manifest
from edgeprune.export.verify import predict_fn
from edgeprune.host.search.confirm import Confirmation, confirm
from edgeprune.host.search.front import unique_candidates
from edgeprune.host.search.store import RunStore, StoredEvaluation
from edgeprune.host.search.types import QUALITY
from edgeprune.host.tasks.intervals import paired_drop
from edgeprune.host.tasks.registry import get_task

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
RUNS = ROOT / "runs" / "bench" / "accuracy"
SECTION = "## Accuracy you can trust (issue 25)"
TARGETS = {"default": {"budget": 20, "ratio": 20.0}, "budget100": {"budget": 100, "ratio": 30.0}}
log = logging.getLogger("accuracy_rule")


def _samples(task: Any, ev: StoredEvaluation, split: str) -> list[float] | None:
    """Per-window samples of a stored candidate's export on ``split`` (TFLM, bit-exact with the device)."""
    stored = ev.result.samples.get(split)
    if stored:
        return list(stored)
    folder = Path(ev.result.artifacts.get("dir", ""))
    if not ev.result.artifacts.get("dir") or not (folder / "model.tflite").is_file():
        return None
    manifest = read_manifest(folder / "manifest.json")
    quality = task.evaluate(predict_fn((folder / "model.tflite").read_bytes(), manifest), split=split)
    return None if quality.samples is None else list(quality.samples)


def analyse_run(run_dir: Path) -> dict[str, Any]:
    """Both rules' named points of one finished run, with validation and test drops and their intervals."""
    with RunStore.open_existing(run_dir) as store:
        options = dict(store.get_meta("options") or {})
        evaluations = store.evaluations()
        baseline = store.baseline()
    spec = {k: options[k] for k in ("model", "data", "env") if options.get(k)}
    task = get_task({"name": options.get("task", "weather-gru"), **spec} if spec else options.get("task", "weather-gru"))
    metric, hib = task.metric, bool(task.higher_is_better)
    limit = float(options.get("max_acc_drop", 1.0))
    fp32 = task.baseline()
    ref_val = task.evaluate_model(fp32, "val").samples
    task.test_sealed = True  # the rules read validation only
    val: dict[str, list[float]] = {}
    for ev in unique_candidates(evaluations):
        if ev.result.error is None and math.isfinite(ev.result.value(QUALITY)):
            got = _samples(task, ev, "val")
            if got:
                val[ev.digest] = got
    conf: Confirmation = confirm(evaluations, baseline, val, ref_val, metric, hib, limit)
    task.test_sealed = False
    ref_test = task.evaluate_model(fp32, "test").samples
    by_digest = {ev.digest: ev for ev in unique_candidates(evaluations)}
    points = []
    for p in conf.evidence():
        ev = by_digest[p.digest]
        test = _samples(task, ev, "test")
        tdrop = paired_drop(test, ref_test, metric, hib) if test else None
        points.append({"seq": p.seq, "ratio": p.ratio, "layers": ev.result.layers,
                       "instr_ratio": ratio_of(baseline, ev, "latency_count"),
                       "flash_ratio": ratio_of(baseline, ev, "flash_bytes"),
                       "val_drop": p.drop, "trend": p.trend, "shrunk": p.shrunk, "confirmed": p.confirmed,
                       "test_drop": None if tdrop is None else tdrop.to_dict(),
                       "named": {"shrunk": p.digest == conf.named, "point": p.digest == conf.point_rule_named}})
    return {"run": Path(run_dir).name, "seed": options.get("seed"), "limit": limit, "trend": conf.trend,
            "points": points, "named": {"shrunk": _named(points, "shrunk"), "point": _named(points, "point")}}


def ratio_of(base: StoredEvaluation | None, ev: StoredEvaluation, name: str) -> float:
    if base is None:
        return math.nan
    b, v = base.result.value(name), ev.result.value(name)
    return b / v if v > 0 else math.nan


def _named(points: list[dict[str, Any]], rule: str) -> dict[str, Any] | None:
    return next((p for p in points if p["named"][rule]), None)


def _fmt_iv(d: dict[str, float] | None) -> str:
    if d is None:
        return "-"
    return f"{d['value']:+.2f} [{d['lo']:+.2f}, {d['hi']:+.2f}]"


def summarise(name: str, runs: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """A markdown block of both rules' named points over ``runs`` (one search per seed), and its figures."""
    target = TARGETS["budget100" if "100" in name else "default"]
    lines = [f"### {name}", ""]
    out: dict[str, Any] = {}
    for rule in ("point", "shrunk"):
        rows = [r["named"][rule] for r in runs]
        instr = [p["instr_ratio"] if p else 1.0 for p in rows]
        flash = [p["flash_ratio"] if p else 1.0 for p in rows]
        vdrop = [p["val_drop"]["value"] for p in rows if p]
        tdrop = [p["test_drop"]["value"] for p in rows if p and p["test_drop"]]
        mi, _ = mean_std(instr)
        mt, st = mean_std(tdrop)
        met = bool(tdrop) and len(tdrop) == len(rows) and mt <= 1.0 and mi >= target["ratio"]
        out[rule] = {"instr_mean": mi, "flash_mean": mean_std(flash)[0], "val_drop_mean": mean_std(vdrop)[0],
                     "test_drop_mean": mt, "test_drop_std": st, "met": met}
        label = "point rule (val drop within the limit)" if rule == "point" else \
            "confirmation rule (drop shrunk towards the run's trend within the limit)"
        lines += [f"**{label}** — mean over {len(rows)} seeds: {mi:.1f}× fewer instructions, "
                  f"{out[rule]['flash_mean']:.1f}× less flash, val drop {out[rule]['val_drop_mean']:+.2f} pp, "
                  f"test drop {mt:+.2f} ± {st:.2f} pp (std over seeds). Target test drop ≤ 1.0 pp at "
                  f"≥ {target['ratio']:g}× instructions: **{'met' if met else 'not met'}**", "",
                  "| seed | named | instr × | flash × | val drop (95 % CI) | shrunk | test drop (95 % CI) |",
                  "|---|---|---:|---:|---|---:|---|"]
        for r, p in zip(runs, rows, strict=True):
            if p is None:
                lines.append(f"| {r['seed']} | none confirmed (int8 baseline) | 1.0 | 1.0 | - | - | - |")
                continue
            lines.append(f"| {r['seed']} | #{p['seq']} | {p['instr_ratio']:.1f} | {p['flash_ratio']:.1f} | "
                         f"{_fmt_iv(p['val_drop'])} | {p['shrunk']:+.2f} | {_fmt_iv(p['test_drop'])} |")
        lines.append("")
    shift = [p["test_drop"]["value"] - p["val_drop"]["value"] for r in runs for p in r["points"] if p["test_drop"]]
    ms, ss = mean_std(shift)
    lines += [f"Every feasible candidate of these runs ({len(shift)}): test drop − val drop = {ms:+.2f} ± {ss:.2f} pp "
              "(mean ± std): how optimistic a validation drop is on average.", ""]
    out["val_to_test_shift"] = {"mean": ms, "std": ss, "n": len(shift)}
    return "\n".join(lines), out


def run_target(name: str, seeds: list[int], reuse: bool) -> list[Path]:
    dirs = []
    for seed in seeds:
        out = RUNS / f"{name}-s{seed}"
        run_dir, wall = search_or_reuse(out, reuse, budget=TARGETS[name]["budget"], seed=seed, workers="auto")
        log.info("%s seed %d: %.0f s", name, seed, wall)
        dirs.append(run_dir)
    return dirs


def main(argv: list[str] | None = None) -> int:

    # One thread: on a shared 2-core machine several threads per process thrash instead of helping.
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("target", choices=sorted(TARGETS))
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    r.add_argument("--reuse", action="store_true", help="analyse finished runs, search nothing")
    a = sub.add_parser("analyse", help="analyse finished runs; each --group NAME DIR... is one table block")
    a.add_argument("--group", nargs="+", action="append", required=True, metavar="NAME DIR")
    for p in (r, a):
        p.add_argument("--write", action="store_true", help="write BENCHMARKS.md and bench/results")
        p.add_argument("--note", default="", help="a paragraph put under the heading (what the groups are)")
    args = ap.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.cmd == "run":
        groups = [(args.target, run_target(args.target, args.seeds, args.reuse))]
    else:
        groups = [(g[0], [Path(d) for d in g[1:]]) for g in args.group]
    blocks, results = [SECTION, "", args.note, ""] if args.note else [SECTION, ""], {}
    for name, dirs in groups:
        runs = [analyse_run(d) for d in dirs]
        text, summary = summarise(name, runs)
        blocks.append(text)
        results[name] = {"runs": runs, "summary": summary}
    cmd = "python bench/scripts/accuracy_rule.py " + " ".join(sys.argv[1:] if argv is None else argv)
    blocks.append(f"- command: `{cmd}`\n- date: {started}, commit {commit()}\n")
    text = "\n".join(blocks)
    sys.stdout.write(text + "\n")
    if args.write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "accuracy_rule.json").write_text(json.dumps(results, indent=1))
        replace_section(ROOT / "BENCHMARKS.md", SECTION, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
