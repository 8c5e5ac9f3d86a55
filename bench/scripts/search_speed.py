"""Issue 28's targets: what a search costs in time, old code against new on the same machine and load.

Usage:
  python bench/scripts/search_speed.py demo --seeds 0 1 2            # `make demo`'s search (`--workers auto`)
  python bench/scripts/search_speed.py budget100 --seeds 0            # the same with --budget 100
  python bench/scripts/search_speed.py strategies --seeds 0 1 2       # 6 strategies x seeds at budget 20
  python bench/scripts/search_speed.py byo-gru --seeds 0              # a 2 x 64 GRU regressor (52 steps), random
  python bench/scripts/search_speed.py threads                        # ms per fine-tuning step, 1 vs 2 torch threads
  ... --tree PATH --label old   # run the searches of another checkout (e.g. a frozen `git worktree` of an older
                                # commit) instead of this one; results are kept per label
  ... --summary                 # print the table of every finished run, no new search
  ... --search-args=--no-bounds --label nob   # an ablation: more search options for every run of the label (note the =)

Every search is `edgeprune search` in a subprocess, as a user runs it: wall time and the CPU seconds of the whole
process tree (search, workers, emulators; `getrusage(RUSAGE_CHILDREN)`) are recorded, the CPU seconds being the
figure a shared machine's load disturbs least. Each label has its own cache folder (runs/search_speed/cache-<label>)
holding a copy of the trained baselines only, so a search measures every candidate (and its int8 baseline) afresh
and only baseline training is skipped ("cached baselines"); the evaluation cache an earlier run of the label left is
removed before each run (two seeds, or a budget-100 run after a demo run, start with the same proposals). Run old and
new back to back for a comparison.

The BYO regressor: a 2 x 64 GRU trained here on a synthetic 3-feature series (52 steps) and searched with the
default limit (1 % of the baseline's RMSE) and `--strategy random --budget 1`: the target is a feasible device
point within the first 5 proposals.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.bench.paths import cache_dir
from edgeprune.host.report.headline import headline
from edgeprune.host.report.load import load_run
from edgeprune.host.search.space import ConfigSpace
from edgeprune.host.search.store import RunStore
from edgeprune.host.search.timing import TIME_META, account
from edgeprune.host.tasks import get_task
from edgeprune.host.tasks.gru_train import make_gru_net

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / "runs" / "search_speed"
STRATEGIES = ("ppo", "dqn", "tpe", "cmaes", "random", "uniform")
#: Longest one search may take before it is stopped (a loaded machine is slow; budget 100 is long).
SEARCH_TIMEOUT_S = 3 * 3600


def _cache(label: str) -> Path:
    """The label's cache folder, with the trained baselines of the user's cache copied in."""
    path = RUNS / f"cache-{label}"
    if not (path / "baselines").is_dir():
        path.mkdir(parents=True, exist_ok=True)
        if (cache_dir() / "baselines").is_dir():
            shutil.copytree(cache_dir() / "baselines", path / "baselines")
    return path


def _env(label: str, tree: Path) -> dict[str, str]:
    env = dict(os.environ, EDGEPRUNE_CACHE=str(_cache(label)))
    if tree.resolve() != ROOT:
        # The package of another checkout: a folder named edgeprune whose parts are that checkout's.
        pkg = RUNS / f"pkg-{label}" / "edgeprune"
        pkg.mkdir(parents=True, exist_ok=True)
        for part in ("bench", "export", "host"):
            link = pkg / part
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(tree.resolve() / part)
        env["PYTHONPATH"] = str(pkg.parent)
        env["EDGEPRUNE_ROOT"] = str(tree.resolve())
    return env


def make_byo_gru(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """A 2 x 64 GRU regressor over 52 steps of a synthetic 3-feature series, in the bring-your-own format."""
    # Deferred (torch, 1-2 s): only the byo-gru case builds a model here; the others search in child processes.
    import torch

    model_path, data_path = folder / "gru2x64.pt", folder / "series.npz"
    if model_path.is_file() and data_path.is_file():
        return model_path, data_path
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n, steps, features = 3000, 52, 3
    t = np.arange(n + steps + 1, dtype=np.float64)
    series = np.stack([np.sin(t / 7.0) + 0.5 * np.sin(t / 23.0), np.cos(t / 11.0), np.sin(t / 5.0) * np.cos(t / 31.0)],
                      axis=1) + 0.1 * rng.normal(size=(len(t), features))
    x = np.stack([series[i:i + steps] for i in range(n)]).astype(np.float32)
    y = (series[steps:steps + n, 0] + 0.5 * series[steps:steps + n, 2]).astype(np.float32)
    torch.manual_seed(seed)
    net = make_gru_net(features, 64, 2, 1)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x[: int(0.7 * n)]), torch.from_numpy(y[: int(0.7 * n)])
    for _ in range(400):
        idx = torch.randint(0, len(xt), (64,))
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(net(xt[idx]).squeeze(-1), yt[idx])
        loss.backward()
        opt.step()
    config = {"input_size": features, "hidden_sizes": [64, 64], "num_outputs": 1, "seq_len": steps, "kind": "regressor"}
    torch.save({"config": config, "state_dict": net.state_dict()}, model_path)
    np.savez(data_path, X=x, y=y)
    return model_path, data_path


def _args(case: str, seed: int, strategy: str | None) -> list[str]:
    if case == "demo":
        return ["--workers", "auto", "--seed", str(seed)]
    if case == "budget100":
        return ["--workers", "auto", "--seed", str(seed), "--budget", "100"]
    if case == "strategies":
        return ["--workers", "auto", "--seed", str(seed), "--budget", "20", "--strategy", str(strategy)]
    model, data = make_byo_gru(RUNS / "byo-gru")
    return ["--model", str(model), "--data", str(data), "--strategy", "random", "--budget", "1", "--seed", str(seed),
            "--workers", "auto"]


def run_one(label: str, tree: Path, case: str, seed: int, strategy: str | None = None,
            extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """One search (or its stored record when it already finished): wall, CPU seconds and what it found.

    :param extra: more ``edgeprune search`` options (an ablation, e.g. ``--no-bounds``), recorded with the result
    """
    name = f"{label}-{case}" + (f"-{strategy}" if strategy else "") + f"-s{seed}"
    out = RUNS / name
    record_path = RUNS / f"{name}.json"
    if record_path.is_file():
        return dict(json.loads(record_path.read_text()))
    if out.exists():
        shutil.rmtree(out)  # a run that did not finish: start it again
    env = _env(label, tree)
    for stale in Path(env["EDGEPRUNE_CACHE"]).glob("eval_cache.sqlite*"):
        stale.unlink()  # an earlier run's measured candidates: this run would answer repeats from them
    cmd = [str(Path(sys.executable).parent / "edgeprune"), "search", "--out", str(out), *_args(case, seed, strategy), *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    with open(RUNS / f"{name}.log", "w") as log_file:
        proc = subprocess.run(cmd, cwd=str(tree), env=env, stdout=log_file, stderr=subprocess.STDOUT,
                              timeout=SEARCH_TIMEOUT_S, check=False)
    wall = time.time() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    record = {"label": label, "case": case, "seed": seed, "strategy": strategy or ("random" if case == "byo-gru" else "ppo"), "rc": proc.returncode,
              "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "load": os.getloadavg()[0],
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "search_args": list(extra),
              **summarise(out)}
    record_path.write_text(json.dumps(record, indent=1))
    return record


def summarise(run_dir: Path) -> dict[str, Any]:
    """What a finished run found and where its time went."""
    if not (run_dir / "evaluations.sqlite").is_file():
        return {"error": "no store"}
    with RunStore(run_dir) as store:
        rows = store.evaluations("candidate")
        acc = account(store.evaluations(), store.get_meta(TIME_META))
    first5 = rows[:5]
    out: dict[str, Any] = {
        "candidates": len(rows),
        "device": sum(1 for r in rows if r.counted),
        "host_screened": sum(1 for r in rows if r.origin == "host"),
        "stopped": sum(1 for r in rows if r.origin == "stopped"),
        "feasible_in_first5": any(r.counted and r.feasible for r in first5),
        "stages_s": {k: round(v, 1) for k, v in acc.stages.items()},
    }
    try:
        head = headline(load_run(run_dir))
    except (OSError, ValueError, KeyError) as exc:
        out["headline_error"] = str(exc)
        return out
    if head is not None:
        out.update({"best_seq": head.seq, "instr_ratio": round(head.latency_ratio, 2),
                    "flash_ratio": round(head.flash_ratio, 2), "val_drop": round(head.drop, 3),
                    "test": head.test_quality})
    return out


def threads_case(rounds: int = 3, steps: int = 20) -> dict[str, Any]:
    """Seconds per Adam step with 1 and 2 torch threads, interleaved (the machine's load moves both alike): the
    2 x 256 weather GRU (what baseline training runs) and a 17 + 30-unit candidate (what a worker fine-tunes)."""
    # Deferred (they load torch): only the threads case fine-tunes in this process; the others search in children.
    from edgeprune.host.compress.compressor import compress
    from edgeprune.host.compress.finetuning import finetune

    task = get_task("weather-gru")
    space = ConfigSpace(task, finetune_steps=0)
    cut = space.canonical(space.cls.from_continuous([0.934, 0.883, 0.0, 1.0], space.names))  # 17 + 30 units
    models = {"baseline 2x256": task.baseline(), "candidate 17+30": compress(task, cut).model}
    out: dict[str, Any] = {"load": os.getloadavg()[0]}
    for name, model in models.items():
        times: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(rounds):
            for threads in (1, 2):
                m = copy.deepcopy(model)
                started = time.perf_counter()
                finetune(m, task, steps, threads=threads)
                times[threads].append((time.perf_counter() - started) / steps)
        out[name] = {f"{t} thread(s) ms/step": round(1000 * min(v), 1) for t, v in times.items()}
    return out


def table(records: list[dict[str, Any]]) -> str:
    """A markdown table of the records."""
    head = ("| label | case | strategy | seed | wall s | CPU s | load | device / candidates | host-screened | stopped "
            "| best: ×fewer instr | ×less flash | val drop | feasible in first 5 |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in records:
        lines.append(
            f"| {r['label']} | {r['case']} | {r.get('strategy', '')} | {r['seed']} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} "
            f"| {r.get('load', 0):.1f} | {r.get('device', '-')} / {r.get('candidates', '-')} | {r.get('host_screened', '-')} "
            f"| {r.get('stopped', '-')} | {r.get('instr_ratio', '-')} | {r.get('flash_ratio', '-')} "
            f"| {r.get('val_drop', '-')} | {r.get('feasible_in_first5', '-')} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", choices=("demo", "budget100", "strategies", "byo-gru", "threads"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--tree", type=Path, default=ROOT, help="checkout whose code runs the searches")
    parser.add_argument("--label", default="new", help="name of this code's results (e.g. old, new)")
    parser.add_argument("--summary", action="store_true", help="print the finished runs' table only")
    parser.add_argument("--search-args", default="", help="more `edgeprune search` options for every run of this "
                        "label, one string (an ablation: '--no-bounds --no-multi-fidelity')")
    args = parser.parse_args()
    RUNS.mkdir(parents=True, exist_ok=True)
    if args.case == "threads":
        print(json.dumps(threads_case(), indent=1))
        return 0
    if args.summary:
        records = [json.loads(p.read_text()) for p in sorted(RUNS.glob(f"*-{args.case}-*.json"))]
        print(table(records))
        return 0
    records = []
    for seed in args.seeds:
        for strategy in (STRATEGIES if args.case == "strategies" else (None,)):
            records.append(run_one(args.label, args.tree, args.case, seed, strategy,
                                   tuple(shlex.split(args.search_args))))
            print(table(records[-1:]).splitlines()[-1], flush=True)
    print(table(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
