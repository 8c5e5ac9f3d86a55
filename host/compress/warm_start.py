"""Which already-fine-tuned candidate a new one may start from (issue 28, "reuse what was learned").

A candidate fine-tunes from its *ancestor* instead of from the baseline when pruning the ancestor further gives the
candidate's shape: the ancestor is no more compressed than the candidate in any layer (fewer or equal units
removed, no more weights zeroed), dense (low-rank factors are not pruned again), and made the same way (unit
importance, distillation, no QAT, whose weights are snapped to the int8 grid). Then the ancestor's kept units are
pruned down to the candidate's count, its zeroed weights — the smallest — are zeroed again first by the
candidate's larger sparsity, and its masks compose. Closeness is the per-layer config distance.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from edgeprune.host.compress.config import CompressionConfig

T = TypeVar("T")


def composes(ancestor: CompressionConfig, candidate: CompressionConfig) -> bool:
    """Can ``candidate`` be made by compressing ``ancestor``'s result further (see the module docstring)?

    Parameters
    ----------
    ancestor, candidate:
        The two configs; the ancestor's layers are those of the same model.
    """
    if ancestor.digest() == candidate.digest():
        return False
    if (ancestor.importance, ancestor.distill) != (candidate.importance, candidate.distill):
        return False
    if ancestor.qat or candidate.qat:
        return False
    names = {lc.name for lc in ancestor.layers} | {lc.name for lc in candidate.layers}
    for name in names:
        a, c = ancestor.layer(name), candidate.layer(name)
        if a.rank_frac is not None or a.prune > c.prune or a.sparsity > c.sparsity:
            return False
    return True


def distance(ancestor: CompressionConfig, candidate: CompressionConfig) -> float:
    """Per-layer config distance: the sum over layers of the pruned- and zeroed-fraction differences."""
    names = {lc.name for lc in ancestor.layers} | {lc.name for lc in candidate.layers}
    total = 0.0
    for name in names:
        a, c = ancestor.layer(name), candidate.layer(name)
        total += abs(c.prune - a.prune) + abs(c.sparsity - a.sparsity)
    return total


def closest(candidate: CompressionConfig, ancestors: Iterable[tuple[CompressionConfig, T]]) -> T | None:
    """The payload of the composable ancestor nearest to ``candidate`` (ties: the first given), or ``None``.

    Parameters
    ----------
    candidate:
        The config about to be fine-tuned.
    ancestors:
        ``(config, payload)`` of the already-fine-tuned candidates (same task and baseline).
    """
    best: tuple[float, Any] | None = None
    for config, payload in ancestors:
        if not composes(config, candidate):
            continue
        d = distance(config, candidate)
        if best is None or d < best[0]:
            best = (d, payload)
    return None if best is None else best[1]


def relative_prune(base_units: int, start_units: int, kept: int) -> float:
    """The fraction of a start model's ``start_units`` to remove so that ``kept`` remain (``kept_count`` rounding).

    ``base_units`` is the baseline's width of the layer (for the error message only).
    """
    if not 1 <= kept <= start_units:
        raise ValueError(f"cannot keep {kept} of {start_units} units (baseline {base_units})")
    return 1.0 - kept / start_units
