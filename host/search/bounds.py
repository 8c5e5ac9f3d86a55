"""Proposals that can pass (issue 28, item 4): per-layer bounds on how hard each knob may cut.

Every destructive knob of every layer (``<layer>.prune``, ``<layer>.sparsity``, ``<layer>.rank``) has an
*intensity* in [0, 1] — the prune coordinate on the log scale of the kept fraction (``space.MIN_KEEP``), the
sparsity over ``MAX_SPARSITY``, the rank cut over ``1 − MIN_RANK_FRAC`` — and a *cap*. A search starts with
the caps its baseline's sensitivity allows (``sensitivity.py``: each knob alone, measured once per baseline
and cached) and moves outward as evidence comes in: a candidate that passes lifts the caps of the knobs it
used to ``EXPAND`` beyond what it used; one rejected for its quality lowers the caps of the knobs it pushed
(those at more than half of their cap) by ``SHRINK``, never below ``CAP_FLOOR``.

Strategies see the same space as before: a vector strategy's (random, TPE, CMA-ES) or PPO's coordinate is
scaled into the cap (``scale``), so its whole range stays usable; configs built otherwise (uniform's retain
rates, DQN's discrete actions) are clipped to the caps (``clip``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from edgeprune.host.compress.config import MAX_PRUNE, MAX_SPARSITY, MIN_RANK_FRAC, CompressionConfig
from edgeprune.host.search.space import MIN_KEEP, RANK_NONE
from edgeprune.host.search.types import STOPPED_REASON

#: Lowest cap: a search can always reach a cut this hard on every knob.
CAP_FLOOR = 0.25
#: A passing candidate lifts the caps of the knobs it used to its intensity plus this.
EXPAND = 0.25
#: A quality rejection multiplies the caps of the knobs it pushed by this.
SHRINK = 0.8
KINDS = ("prune", "sparsity", "rank")


def _min_keep() -> float:
    return MIN_KEEP


def intensity(kind: str, value: float | None) -> float:
    """A knob's setting as an intensity in [0, 1] (0: untouched)."""
    if kind == "prune":
        keep = max(1.0 - float(value or 0.0), _min_keep())
        return min(1.0, max(0.0, math.log(keep) / math.log(_min_keep())))
    if kind == "sparsity":
        return min(1.0, max(0.0, float(value or 0.0) / MAX_SPARSITY))
    if value is None:
        return 0.0
    return min(1.0, max(0.0, (1.0 - float(value)) / (1.0 - MIN_RANK_FRAC)))


def setting(kind: str, level: float) -> float | None:
    """The knob setting of intensity ``level`` (the inverse of ``intensity``; ``None``: no factorisation)."""
    level = min(1.0, max(0.0, float(level)))
    if kind == "prune":
        return min(1.0 - _min_keep() ** level, MAX_PRUNE) if level > 0 else 0.0
    if kind == "sparsity":
        return level * MAX_SPARSITY
    rank = 1.0 - level * (1.0 - MIN_RANK_FRAC)
    return None if rank >= RANK_NONE else rank


@dataclass
class LayerBounds:
    """The caps of one search, per ``<layer>.<kind>``.

    Parameters
    ----------
    caps:
        ``"<layer>.<kind>"`` → cap in [``CAP_FLOOR``, 1]; knobs not listed are uncapped.
    """

    caps: dict[str, float] = field(default_factory=dict)

    def cap(self, layer: str, kind: str) -> float:
        """The cap of ``layer``'s ``kind`` knob (1.0 when not bounded)."""
        return self.caps.get(f"{layer}.{kind}", 1.0)

    def scale(self, layer: str, kind: str, coordinate: float) -> float:
        """A strategy's coordinate in [0, 1] → an intensity within the cap."""
        return min(1.0, max(0.0, float(coordinate))) * self.cap(layer, kind)

    def clip(self, config: Any) -> Any:
        """``config`` with every knob cut back to its cap."""
        layers = []
        for lc in config.layers:
            prune, sparsity, rank = lc.prune, lc.sparsity, lc.rank_frac
            if intensity("prune", prune) > self.cap(lc.name, "prune") + 1e-9:
                prune = float(setting("prune", self.cap(lc.name, "prune")) or 0.0)
            if intensity("sparsity", sparsity) > self.cap(lc.name, "sparsity") + 1e-9:
                sparsity = float(setting("sparsity", self.cap(lc.name, "sparsity")) or 0.0)
            if intensity("rank", rank) > self.cap(lc.name, "rank") + 1e-9:
                rank = setting("rank", self.cap(lc.name, "rank"))
            layers.append(replace(lc, prune=prune, sparsity=sparsity, rank_frac=rank))
        return replace(config, layers=tuple(layers))

    def observe(self, config: Any, passed: bool | None) -> None:
        """Move the caps on one judged candidate: ``passed`` True (feasible), False (rejected for its quality),
        ``None`` (rejected for anything else: no evidence about quality, nothing moves)."""
        if passed is None:
            return
        for lc in config.layers:
            for kind, value in (("prune", lc.prune), ("sparsity", lc.sparsity), ("rank", lc.rank_frac)):
                key = f"{lc.name}.{kind}"
                if key not in self.caps:
                    continue
                used, cap = intensity(kind, value), self.caps[key]
                if passed and used > 0:
                    self.caps[key] = max(cap, min(1.0, used + EXPAND))
                elif not passed and used > 0.5 * cap:
                    self.caps[key] = max(CAP_FLOOR, cap * SHRINK)

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in sorted(self.caps.items())}


def quality_verdict(judged: Any) -> bool | None:
    """What a judged candidate (an ``Outcome`` or a stored row) says about quality: True (feasible), False (its
    quality broke the limit, on the host, at a rung or on the device), ``None`` (failed, or rejected for flash or
    RAM only)."""
    verdict = getattr(judged, "verdict", judged)
    if verdict.feasible:
        return True
    if judged.result.error is not None:
        return None
    reason = verdict.reason or ""
    return False if ("quality drop" in reason or STOPPED_REASON in reason) else None


def observe(bounds: LayerBounds | None, judged: Any) -> None:
    """Feed one judged candidate (an ``Outcome`` or a stored row) to ``bounds`` (nothing without bounds)."""
    if bounds is None:
        return
    bounds.observe(CompressionConfig.from_json(judged.result.config_json), quality_verdict(judged))


class LaggedFeed:
    """Feeds a seeded proposal sequence's outcomes to the bounds in proposal order, ``LAG`` proposals behind.

    Why a lag: with several workers, proposal ``i`` goes out while ``i − 1`` may still be measured; feeding only
    outcomes up to ``i − 1 − LAG`` makes the bounds (so the configs) of proposal ``i`` the same with one worker
    or two, as random and uniform promise. More workers wait for the outcome they need before proposing.

    Parameters
    ----------
    bounds:
        The space's ``LayerBounds`` (``None``: the feed does nothing).
    """

    LAG = 1

    def __init__(self, bounds: LayerBounds | None) -> None:
        self.bounds = bounds
        self.known: dict[int, Any] = {}
        self.fed = 0

    def add(self, index: int, judged: Any) -> None:
        """The outcome of proposal ``index``."""
        self.known[int(index)] = judged

    def needed(self, index: int) -> int | None:
        """The earliest proposal whose outcome must be known before proposal ``index`` is made (else ``None``)."""
        if self.bounds is None or self.fed > index - 1 - self.LAG:
            return None
        return self.fed if self.fed not in self.known else None

    def before(self, index: int, lost: Any = None) -> None:
        """Feed what proposal ``index`` may see; ``lost(i)`` says an unknown outcome will never come (skipped)."""
        if self.bounds is None:
            return
        while self.fed <= index - 1 - self.LAG:
            judged = self.known.pop(self.fed, None)
            if judged is None and not (lost is not None and lost(self.fed)):
                return
            if judged is not None:
                observe(self.bounds, judged)
            self.fed += 1
