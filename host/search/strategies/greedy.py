"""Greedy per-layer precision search over batches of layers (issue 30), after the tinyML DQN study's mixed-precision
search: every layer starts at int8; the layers, largest weight count first, are visited in batches of ``BATCH``;
each batch tries the next lower weight precision its layers can run at on the device (int8 -> int4, see
``allowed_precisions``), and keeps it when the candidate is feasible under the run's accuracy rule and limits,
otherwise goes back. Each trial is one evaluation (ceil(L / BATCH) for L layers) and changes nothing but precision,
so those candidates show what int4 weights alone buy on the run's target. The rest of the budget sweeps one retain
rate for every layer (the ``uniform`` strategy's order) at the precisions kept.

With ``--qat-steps N`` each trial is fine-tuned through fake quantisation at its precisions (``--stochastic-rounding``:
the study's stochastic rounding while training). Not reproduced: the study's fixed-point formats with free
integer/fraction bits; the device runs TFLite's int8/int4/16x8 quantisation only.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from edgeprune.host.compress.config import allowed_precisions
from edgeprune.host.search.session import BudgetExhausted
from edgeprune.host.search.strategies.common import StrategyContext
from edgeprune.host.search.strategies.uniform import sweep_rates

log = logging.getLogger(__name__)

#: Layers lowered together per trial unless the run sets ``--greedy-batch``.
BATCH = 1
#: Lower precisions in the order tried (the first one a layer allows).
LADDER = ("int4",)


def layer_order(names: tuple[str, ...], params: dict[str, Any] | None, widths: dict[str, int] | None) -> list[str]:
    """``names`` by weight count, largest first (as given where the counts are unknown).

    :param names: config layer names
    :param params: ``ConfigSpace.params`` (``sizes`` of an MLP, ``input``/``outputs``) or ``None``
    :param widths: ``ConfigSpace.widths`` (units per layer) or ``None``
    """
    counts: dict[str, float] = {}
    sizes = list((params or {}).get("sizes") or [])
    if (params or {}).get("kind") == "mlp" and len(sizes) == len(names) + 1:
        counts = {n: sizes[i] * sizes[i + 1] for i, n in enumerate(names)}
    elif widths:
        prev = float((params or {}).get("input") or 0)
        for n in names:
            w = float(widths.get(n, (params or {}).get("outputs") or 0))
            counts[n] = w * (prev + (w if n != "head" else 0))
            prev = w
    return sorted(names, key=lambda n: -counts.get(n, 0.0))


def trials(names: list[str], batch: int = BATCH) -> list[dict[str, str]]:
    """The lowered precision of each batch of layers (layers with no lower precision left out; empty batches
    dropped).

    :param names: layers in visiting order
    :param batch: layers per trial
    """
    out = []
    for i in range(0, len(names), batch):
        lowered = {}
        for n in names[i:i + batch]:
            lower = [p for p in LADDER if p in allowed_precisions(n)]
            if lower:
                lowered[n] = lower[0]
        if lowered:
            out.append(lowered)
    return out


def _evaluate(ctx: StrategyContext, config: Any, proposal: dict[str, Any]) -> Any:
    if ctx.parallel is None:
        return ctx.session.evaluate(config, proposal)
    answered = ctx.parallel.submit(config, proposal, tag=proposal["index"])
    while answered is None:
        for tag, outcome in ctx.parallel.wait():
            if tag == proposal["index"]:
                answered = outcome
    return answered


def with_precision(config: Any, names: tuple[str, ...], precision: dict[str, str]) -> Any:
    """``config`` with every layer of ``names`` at ``precision`` (int8 where not named).

    :param config: a ``CompressionConfig``
    :param names: the model's layer names
    :param precision: layer -> precision
    """
    layers = tuple(replace(config.layer(n), precision=precision.get(n)) for n in names)
    return replace(config, layers=layers)


def trial_config(space: Any, precision: dict[str, str]) -> Any:
    """The config of one precision trial: the baseline at ``precision``, post-training, or with ``space.qat_steps``
    fine-tuned through fake quantisation at those precisions (distilled from the baseline when the space distils;
    stochastic rounding when the space asks for it).

    :param space: the run's ``ConfigSpace``
    :param precision: layer -> precision
    """
    config = with_precision(space.identity(), space.names, precision)
    if space.qat_steps <= 0:
        return config
    return replace(config, finetune_steps=space.qat_steps, qat=True, distill=space.distill,
                   stochastic_rounding=space.stochastic_rounding)


def run(ctx: StrategyContext) -> None:
    space = ctx.space
    kept: dict[str, str] = {}
    index = 0
    try:
        for lowered in trials(layer_order(space.names, space.params, space.widths), getattr(space, "greedy_batch", BATCH)):
            if ctx.session.exhausted():
                return
            chosen = {**kept, **lowered}
            outcome = _evaluate(ctx, trial_config(space, chosen),
                                {"index": index, "greedy": dict(lowered)})
            index += 1
            if outcome.verdict.feasible:
                kept = chosen
            log.info("greedy %s -> %s", lowered, "kept" if outcome.verdict.feasible else outcome.verdict.reason)
        log.info("greedy precision: %s", kept or "all int8")
        for rate in sweep_rates(ctx.session.remaining):
            if ctx.session.exhausted():
                return
            _evaluate(ctx, with_precision(space.retain(rate), space.names, kept),
                      {"index": index, "retain_rate": rate, "greedy_precision": dict(kept)})
            index += 1
    except BudgetExhausted:
        return
