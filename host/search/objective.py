"""Hard constraints, the reward and the observation features, all relative to the measured baseline.

Kept apart from the evaluator on purpose: a cached measurement is valid for any run on the same
target, while feasibility and reward depend on this run's limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from edgeprune.host.search.types import (
    ENERGY_UJ,
    FLASH_BYTES,
    LATENCY_COUNT,
    MACS,
    PARAMS,
    QUALITY,
    RAM_BYTES,
    SPARSITY,
    EvalResult,
)

# What ``--max-acc-drop`` means per metric (see ``Objective.drop``).
_DROP_UNITS = {"accuracy": "pp accuracy", "rmse": "% of baseline RMSE", "return": "% of baseline return"}


def drop_unit(metric: str | None) -> str:
    """The unit of a quality drop for ``metric`` (``None``: not known yet, e.g. a BYO GRU before loading)."""
    if metric is None:
        return "(pp of accuracy for a classifier, % of baseline RMSE for a regressor)"
    return _DROP_UNITS.get(metric, f"% of baseline {metric}")


#: ``--max-acc-drop``'s default, the one definition the CLI, ``SearchOptions`` and ``Constraints`` share.
DEFAULT_MAX_ACC_DROP = 1.0
INFEASIBLE_REWARD = -1.0
#: Largest reward for quality above the reference, in units of ``max_acc_drop``.
QUALITY_GAIN_CAP = 0.25
REWARD_MODES = ("measured", "proxy")
OBS_FEATURES = (
    "quality_rel",
    "drop_over_limit",
    "params_ratio",
    "macs_ratio",
    "flash_ratio",
    "ram_ratio",
    "latency_ratio",
    "energy_ratio",
    "feasible",
)


@dataclass(frozen=True)
class Constraints:
    """Hard limits a candidate must meet to be feasible.

    Parameters
    ----------
    max_acc_drop:
        Largest allowed quality drop vs the baseline, in percentage points for ``accuracy``
        (0.5 = half a point), in percent of the baseline for ``return`` and ``rmse``.
    flash_kb, ram_kb:
        Limits on the deploy build's flash and RAM in KiB (``None``: the target's own capacity only).
    """

    max_acc_drop: float = DEFAULT_MAX_ACC_DROP
    flash_kb: float | None = None
    ram_kb: float | None = None


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the measured savings in the reward (they need not sum to one).

    Parameters
    ----------
    latency, energy, flash, ram:
        Weight of ``1 - measured / baseline`` for each figure.
    quality:
        Weight of the quality term ``-drop / max_acc_drop``.
    """

    latency: float = 0.4
    energy: float = 0.2
    flash: float = 0.2
    ram: float = 0.2
    quality: float = 1.0


@dataclass(frozen=True)
class Verdict:
    """A candidate judged against the baseline and the constraints.

    Parameters
    ----------
    feasible:
        All hard constraints met and the candidate measured without error.
    reason:
        Empty when feasible, else every violated constraint, ``"; "``-separated.
    reward:
        See ``Objective.reward``.
    drop:
        Quality drop (percentage points or percent, see ``Constraints.max_acc_drop``).
    features:
        The observation features, named as in ``OBS_FEATURES``.
    """

    feasible: bool
    reason: str
    reward: float
    drop: float
    features: dict[str, float] = field(default_factory=dict)

    def observation(self) -> np.ndarray:
        return np.array([self.features.get(k, 0.0) for k in OBS_FEATURES], dtype=np.float32)


def _ratio(value: float, base: float) -> float:
    if not math.isfinite(value) or not math.isfinite(base) or base <= 0:
        return 1.0
    return value / base


def _density(result: EvalResult) -> float:
    sparsity = result.value(SPARSITY)
    return 1.0 - sparsity if math.isfinite(sparsity) and 0.0 <= sparsity < 1.0 else 1.0


def study_flops_ratio(result: EvalResult, base: EvalResult) -> float:
    """FLOPs relative to ``base`` as the published studies count them: dense MACs × the fraction of
    nonzero weights (a 62.7 %-sparse model "costs" 37.3 % of its FLOPs), whatever the kernels execute."""
    return _ratio(result.value(MACS) * _density(result), base.value(MACS) * _density(base))


def study_params_ratio(result: EvalResult, base: EvalResult) -> float:
    """Parameters relative to ``base``, counting nonzero weights only (the studies' convention)."""
    return _ratio(result.value(PARAMS) * _density(result), base.value(PARAMS) * _density(base))


class Objective:
    """Judges candidates against a measured baseline.

    Parameters
    ----------
    baseline:
        The uncompressed model measured on the same target.
    metric:
        ``"accuracy"``, ``"rmse"`` or ``"return"``.
    higher_is_better:
        Quality direction.
    constraints, weights:
        See ``Constraints`` and ``RewardWeights``.
    reward_mode:
        ``"measured"`` (default: the device's latency, energy, flash and RAM) or ``"proxy"`` (the
        published studies' reward: FLOPs and parameter reductions; every candidate is still measured
        and stored, so the two can be compared on the same device).
    reference_quality:
        The quality every drop is measured from: the FP32 baseline's validation score (what a user
        means by "≤ 1 pp below my model"). Default: the measured int8 baseline's quality.

    The reward of a feasible candidate is
    ``w_q · (−max(drop / max_acc_drop, −QUALITY_GAIN_CAP)) + Σ_k w_k · (1 − m_k / m_k,baseline)`` over
    k ∈ {latency, energy, flash, ram}; an infeasible one gets
    ``−1 − Σ relative overshoots`` (at most −1, at least −4).
    """

    def __init__(
        self,
        baseline: EvalResult,
        metric: str,
        higher_is_better: bool,
        constraints: Constraints,
        weights: RewardWeights | None = None,
        reference_quality: float | None = None,
        reward_mode: str = "measured",
    ) -> None:
        if reward_mode not in REWARD_MODES:
            raise ValueError(f"reward must be one of {', '.join(REWARD_MODES)}, got {reward_mode!r}")
        self.reward_mode = reward_mode
        self.baseline = baseline
        self.reference_quality = (
            float(reference_quality) if reference_quality is not None else baseline.value(QUALITY)
        )
        self.metric = metric
        self.higher_is_better = higher_is_better
        self.constraints = constraints
        self.weights = weights or RewardWeights()

    def drop(self, quality: float) -> float:
        """Quality lost vs the reference (positive = worse) in the unit of ``max_acc_drop``."""
        base = self.reference_quality
        if not math.isfinite(quality):
            return math.inf
        if self.metric == "accuracy":
            lost = base - quality if self.higher_is_better else quality - base
            return 100.0 * lost
        scale = abs(base) if abs(base) > 1e-12 else 1.0
        lost = base - quality if self.higher_is_better else quality - base
        return 100.0 * lost / scale

    def screened(self, result: EvalResult) -> Verdict:
        """The verdict of a candidate dropped on the host (its int8 validation quality already breaks
        the limit); it keeps the infeasible reward of ``judge`` with a reason that says so."""
        verdict = self.judge(result)
        return Verdict(
            False, f"{verdict.reason} (int8 in TFLM, bit-exact with the device; not sent to the device)",
            verdict.reward, verdict.drop, verdict.features,
        )

    def judge(self, result: EvalResult) -> Verdict:
        base = self.baseline
        feats = {
            "quality_rel": _ratio(result.value(QUALITY), base.value(QUALITY))
            if self.higher_is_better
            else _ratio(base.value(QUALITY), result.value(QUALITY)),
            "params_ratio": _ratio(result.value(PARAMS), base.value(PARAMS)),
            "macs_ratio": _ratio(result.value(MACS), base.value(MACS)),
            "flash_ratio": _ratio(result.value(FLASH_BYTES), base.value(FLASH_BYTES)),
            "ram_ratio": _ratio(result.value(RAM_BYTES), base.value(RAM_BYTES)),
            "latency_ratio": _ratio(result.value(LATENCY_COUNT), base.value(LATENCY_COUNT)),
            "energy_ratio": _ratio(result.value(ENERGY_UJ), base.value(ENERGY_UJ)),
        }
        if result.error is not None:
            feats["drop_over_limit"] = 1.0
            feats["feasible"] = 0.0
            return Verdict(False, f"failed: {result.error}", INFEASIBLE_REWARD - 1.0, math.inf, feats)

        drop = self.drop(result.value(QUALITY))
        limit = max(self.constraints.max_acc_drop, 1e-9)
        feats["drop_over_limit"] = float(np.clip(drop / limit, -5.0, 5.0))
        reasons: list[str] = []
        overshoot = 0.0
        if drop > self.constraints.max_acc_drop:
            reasons.append(f"quality drop {drop:.2f} > {self.constraints.max_acc_drop:g} {drop_unit(self.metric)}")
            overshoot += (drop - self.constraints.max_acc_drop) / limit
        for name, limit_kb, label in (
            (FLASH_BYTES, self.constraints.flash_kb, "flash"),
            (RAM_BYTES, self.constraints.ram_kb, "RAM"),
        ):
            if limit_kb is None:
                continue
            used = result.value(name)
            if not math.isfinite(used):
                reasons.append(f"{label} not measured")
                overshoot += 1.0
            elif used > limit_kb * 1024:
                reasons.append(f"{label} {used / 1024:.1f} KiB > {limit_kb:g} KiB")
                overshoot += used / (limit_kb * 1024) - 1.0
        feasible = not reasons
        feats["feasible"] = 1.0 if feasible else 0.0
        if not feasible:
            return Verdict(False, "; ".join(reasons), INFEASIBLE_REWARD - min(overshoot, 3.0), drop, feats)
        w = self.weights
        # Beating the reference earns little (a quarter of the limit at most): on a small validation
        # split a gain is mostly noise, and the search is for cost at a bounded loss, not for accuracy.
        reward = w.quality * -max(feats["drop_over_limit"], -QUALITY_GAIN_CAP)
        if self.reward_mode == "proxy":
            # The studies' reward: FLOPs and parameter reductions, blind to what was measured. Like
            # the studies, it counts nonzero weights only (``study_flops_ratio``), so unstructured
            # sparsity earns reward the dense device kernels never pay back.
            reward += 0.7 * (1.0 - study_flops_ratio(result, base)) + 0.3 * (1.0 - study_params_ratio(result, base))
            return Verdict(True, "", float(reward), drop, feats)
        reward += w.latency * (1.0 - feats["latency_ratio"])
        reward += w.energy * (1.0 - feats["energy_ratio"])
        reward += w.flash * (1.0 - feats["flash_ratio"])
        reward += w.ram * (1.0 - feats["ram_ratio"])
        return Verdict(True, "", float(reward), drop, feats)
