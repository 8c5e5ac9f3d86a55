"""Human-readable rows of a baseline's metrics JSON (the CLI renders them as a table)."""

from __future__ import annotations

from typing import Any

from edgeprune.host.tasks.intervals import IntervalError, bootstrap


def _interval(q: dict[str, Any]) -> str:
    """`` [lo, hi] 95 % CI`` from the stored per-window samples (empty for metrics written before them)."""
    samples = q.get("samples")
    if not samples:
        return ""
    try:
        iv = bootstrap(samples, q["metric"])
    except IntervalError:
        return ""
    digits = 1 if q["metric"] == "return" else 3
    return f" [{iv.lo:.{digits}f}, {iv.hi:.{digits}f}] 95 % CI"


def _quality(q: dict[str, Any]) -> str:
    ci = _interval(q)
    if q["metric"] == "return":
        d = q["details"]
        return f"{q['value']:.1f}{ci} ± {q['std']:.1f} std over {d['episodes']} episodes (min {d['min']:.0f})"
    if q["metric"] == "accuracy":
        d = q["details"]
        refs = f"majority-class '{d['majority_class']}' {d['majority_accuracy']:.3f}"
        if "persistence_accuracy" in d:
            refs += f", persistence {d['persistence_accuracy']:.3f}"
        split_kind = d.get("split_kind")
        leak = " — shuffled windows LEAK across splits" if split_kind == "shuffled" else ""
        return f"{q['value']:.3f}{ci} (macro-F1 {d['macro_f1']:.3f}; {refs}; n={d['n']}{leak})"
    return f"{q['value']:.4g}{ci} (train-mean RMSE {q['details']['train_mean_rmse']:.4g}, n={q['details']['n']})"


def _si(n: float) -> str:
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.1f} k"


def summary_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("task", metrics["task"]),
        ("model", str(metrics["model"])),
        ("parameters", f"{metrics['params']:,}"),
        ("MACs / inference", f"{metrics['macs']:,}"),
        ("FLOPs / inference (2×MACs)", f"{metrics['flops']:,} ({_si(metrics['flops'])})"),
    ]
    for split in ("val", "test"):
        rows.append((f"{split} {metrics['metric']}", _quality(metrics["quality"][split])))
    training = metrics.get("training", {})
    if "train_seconds" in training:
        rows.append(("training time", f"{training['train_seconds']:.1f} s"))
    if "epochs" in training:
        rows.append(("epochs (best)", f"{training['epochs']} ({training['best_epoch']})"))
    if "timesteps" in training:
        rows.append(("env steps", f"{training['timesteps']:,}"))
    rows.append(("cache key", metrics["key"]))
    return rows
