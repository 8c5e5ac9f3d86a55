"""Why candidates were rejected, in words a user can act on: limits with their units, rejections
grouped by reason with what to try, and the baseline judged against the run's own limits."""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from typing import Any

from edgeprune.host.search.front import unique_candidates
from edgeprune.host.search.objective import DEFAULT_MAX_ACC_DROP, Constraints, Objective, drop_unit
from edgeprune.host.search.types import FLASH_BYTES, RAM_BYTES, STOPPED_REASON, UNMEASURED_ORIGINS

# Tasks whose metric is known before the task is loaded.
_TASK_METRICS = {"weather-gru": "accuracy", "weather-lstm": "accuracy", "digits-cnn": "accuracy", "cartpole-dqn": "return", "byo-dqn": "return"}


def metric_of(task: str) -> str | None:
    """The metric of a task name before the task is loaded, when the name alone decides it."""
    if task.startswith("dqn:"):
        return "return"
    return _TASK_METRICS.get(task)


def limit_text(max_drop: float, metric: str | None) -> str:
    """``"2 pp accuracy"``, ``"2 % of baseline RMSE"``."""
    return f"{max_drop:g} {drop_unit(metric)}"


# A drop without its unit, before the next reason, a parenthesised remark or the end.
_BARE_DROP = re.compile(r"quality drop (\S+) > ([^\s;]+)(?=;| \(|$)")


def with_units(reason: str, metric: str | None) -> str:
    """A stored verdict reason with the drop's unit spelled out (``quality drop 3.10 > 2 pp accuracy``)."""
    return _BARE_DROP.sub(lambda m: f"quality drop {m.group(1)} > {m.group(2)} {drop_unit(metric)}", reason)


def reason_parts(reason: str) -> list[str]:
    """The violated limits of a verdict reason, without a closing remark such as ``(... not sent ...)``."""
    return re.sub(r" \([^()]*\)$", "", reason).split("; ")


def _category(part: str) -> str:
    if part.startswith("failed: "):
        return "failed: " + part[len("failed: "):].split(":", 1)[0]
    if part.startswith(STOPPED_REASON):
        return STOPPED_REASON
    m = re.match(r"[A-Za-z ]+?(?= \d| inf| >|$)", part)
    return m.group(0).strip() if m else part


def _objective(run: Any) -> Objective | None:
    if run.baseline is None:
        return None
    o = run.options
    constraints = Constraints(float(o.get("max_acc_drop", DEFAULT_MAX_ACC_DROP)), o.get("flash_kb"), o.get("ram_kb"))
    return Objective(run.baseline.result, run.metric, run.higher_is_better, constraints,
                     reference_quality=getattr(run, "reference_quality", None))


def baseline_verdict(run: Any) -> Any:
    """The stored baseline, marked infeasible (with why) when it breaks the run's flash/RAM limits."""
    obj = _objective(run)
    if obj is None:
        return run.baseline
    verdict = obj.judge(run.baseline.result)
    if verdict.feasible:
        return run.baseline
    return dataclasses.replace(run.baseline, feasible=False, reason=f"over the limits: {verdict.reason}")


def rejection_summary(run: Any) -> list[str]:
    """Lines saying how many candidates each limit rejected, the closest miss, and what to try."""
    obj = _objective(run)
    cands = unique_candidates(run.evaluations)
    rejected = [e for e in cands if not e.feasible]
    if obj is None or not rejected:
        return []
    counts: Counter[str] = Counter()
    for ev in rejected:
        for part in reason_parts(ev.reason):
            counts[_category(part)] += 1
    measured = [e for e in rejected if e.result.error is None]
    o, unit = run.options, drop_unit(run.metric)
    lines = [f"Rejected {len(rejected)} of {len(cands)} candidates:"]
    unused = _unused_budget(run)
    for cat, n in counts.most_common():
        if cat == "quality drop":
            over = [e for e in measured if any(_category(p) == "quality drop" for p in reason_parts(e.reason))]
            best = min((obj.drop(e.result.value("quality")) for e in over), default=math.inf)
            # A larger budget only helps a run that spent its budget; one that stopped on its streak of host
            # rejections with budget left needs a looser limit or more fine-tuning.
            more = " or spend a larger --budget" if unused == 0 else ""
            lines.append(
                f"  {n} × quality drop over {limit_text(float(o.get('max_acc_drop', DEFAULT_MAX_ACC_DROP)), run.metric)} "
                f"(smallest seen {best:.2f} {unit}): allow more with --max-acc-drop, or fine-tune more "
                f"(--finetune-steps, now {o.get('finetune_steps', '?')}){more}")
        elif cat in ("flash", "RAM"):
            key, flag = (FLASH_BYTES, "--flash-kb") if cat == "flash" else (RAM_BYTES, "--ram-kb")
            limit = o.get("flash_kb" if cat == "flash" else "ram_kb")
            best = min((e.result.value(key) for e in measured if math.isfinite(e.result.value(key))), default=math.nan)
            lines.append(f"  {n} × {cat} over {limit:g} KiB (smallest seen {best / 1024:.1f} KiB): raise {flag}, "
                         "or let the search prune harder with a looser --max-acc-drop")
        elif cat == STOPPED_REASON:
            lines.append(f"  {n} × stopped early at a fine-tuning rung: the int8 drop in TFLM after a third of the "
                         "fine-tuning was beyond what the rest could recover (not sent to the device)")
        elif cat.startswith("failed"):
            lines.append(f"  {n} × {cat}: the messages are in report.html (and with -v as they happen)")
        else:
            lines.append(f"  {n} × {cat}")
    streak = host_rejection_streak(run)
    if unused and streak:
        lines.append(f"  the search stopped after {streak} candidates in a row were rejected on the host (int8 quality "
                     f"in TFLM), with {unused} of {o.get('budget', '?')} device evaluations unused")
    return lines


def _unused_budget(run: Any) -> int:
    """Device evaluations a run left unspent (0 when its budget is unknown)."""
    budget = run.options.get("budget")
    if not isinstance(budget, int):
        return 0
    used = sum(1 for e in run.evaluations if e.kind == "candidate" and e.counted)
    return max(0, budget - used)


def host_rejection_streak(run: Any) -> int:
    """Host-screened candidates since the last device evaluation, counted as the search counts its streak
    (answers from the store or the cache neither add to it nor end it)."""
    streak = 0
    for e in run.evaluations:
        if e.kind != "candidate":
            continue
        streak = streak + 1 if e.origin in UNMEASURED_ORIGINS else 0 if e.counted else streak
    return streak
