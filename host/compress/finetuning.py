"""Bounded fine-tuning after compression: Adam on the task's training arrays, optional distillation."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from edgeprune.host.compress.compress_errors import ConfigError
from edgeprune.host.compress.data import TrainData, distill_loss, supervised_loss
from edgeprune.host.compress.qat import bake_weights, fake_quant
from edgeprune.host.compress.sparsity import Masks, apply_masks
from edgeprune.host.models import StackedLSTM, StackedRNN

log = logging.getLogger(__name__)

#: Held-out-free loss check: this many fixed training samples measure before/after loss.
EVAL_SAMPLES = 512


@dataclass
class FinetuneResult:
    """What fine-tuning did.

    Parameters
    ----------
    steps:
        Optimiser steps taken.
    initial_loss, final_loss:
        Training objective on a fixed sample of the training data before and after.
    losses:
        Mini-batch objective at every step.
    val_scores:
        ``(step, score)`` pairs of the ``validate`` callable (higher is better); empty without one.
    best_step:
        The step whose weights were kept (0 = the compressed model before any update), or None
        when no validation ran (then the last step's weights are kept).
    stopped_at:
        The rung step at which ``on_rung`` ended the fine-tuning (``None``: it ran its course).
    """

    steps: int
    initial_loss: float
    final_loss: float
    losses: list[float] = field(default_factory=list)
    val_scores: list[tuple[int, float]] = field(default_factory=list)
    best_step: int | None = None
    stopped_at: int | None = None


def _plain_linear(p: nn.Module) -> bool:
    # fake_quant swaps a Linear's forward for a quantising one; those must run module by module.
    return isinstance(p, nn.Linear) and p.bias is not None and "forward" not in p.__dict__


def _fusable(layer: nn.Module) -> bool:
    return all(_plain_linear(p) for p in [*layer.x_proj, *layer.h_proj])  # type: ignore[misc]


def _fused_layer(layer: nn.Module, inp: torch.Tensor) -> torch.Tensor | None:
    """All ``T`` steps of one GRU or LSTM layer in PyTorch's own recurrent kernel (``torch._VF.gru`` /
    ``lstm``), or None when its projections are not plain dense ``Linear`` s. Why: the per-step Python
    loop is most of a fine-tuning step's time; the fused kernel measured 1.5–2.2× faster per Adam step
    (weather GRU, batch 128, one thread: 17+30 units 45 → 21 ms, 140+200 units 243 → 159 ms). Its
    equations are ours (GRU: ``n = tanh(W_n x + b_n + r ⊙ (U_n h + c_n))``, ``h' = (1 − z) ⊙ n + z ⊙ h``;
    LSTM: gates i, f, g, o as ``nn.LSTM``); gradients reach the same parameters."""
    if not _fusable(layer):
        return None
    projs = [*layer.x_proj, *layer.h_proj]  # type: ignore[misc]
    gates = len(projs) // 2
    w_ih = torch.cat([p.weight for p in projs[:gates]])
    b_ih = torch.cat([p.bias for p in projs[:gates]])
    w_hh = torch.cat([p.weight for p in projs[gates:]])
    b_hh = torch.cat([p.bias for p in projs[gates:]])
    h0 = inp.new_zeros(1, inp.shape[0], w_hh.shape[1])
    params = [w_ih, w_hh, b_ih, b_hh]
    if gates == 4:
        out = torch._VF.lstm(inp, (h0, h0), params, True, 1, 0.0, True, False, True)[0]  # type: ignore[attr-defined]
    else:
        out = torch._VF.gru(inp, h0, params, True, 1, 0.0, True, False, True)[0]  # type: ignore[attr-defined]
    return out  # type: ignore[no-any-return]


def sequence_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` for training, reordered for speed: a ``StackedGRU``/``StackedLSTM`` runs layer by layer,
    in PyTorch's fused kernel where the layer's projections are dense (``_fused_layer``), otherwise (GRU)
    with its input projections for all ``T`` steps in one matrix product and its three dense recurrent
    projections fused into one per step. Same parameters and the same equations as
    the model's ``forward`` (the export graph is untouched), so gradients and masks apply unchanged.
    """
    if not isinstance(model, StackedRNN) or any("step" in layer.__dict__ for layer in model.layers):
        # fake_quant patches each layer's step to quantise its state: only the model's own loop runs it.
        return model(x)
    if isinstance(model, StackedLSTM) and not all(_fusable(layer) for layer in model.layers):
        return model(x)  # a low-rank LSTM layer has no reordered loop here: the model's own
    inp = x
    h = x.new_zeros(0)
    for layer in model.layers:
        fused = _fused_layer(layer, inp)
        if fused is not None:
            inp, h = fused, fused[:, -1]
            continue
        xr, xz, xn = (proj(inp) for proj in layer.x_proj)  # type: ignore[union-attr]
        hp = list(layer.h_proj)  # type: ignore[arg-type]
        dense = all(isinstance(p, nn.Linear) for p in hp)
        if dense:
            w = torch.cat([p.weight for p in hp], dim=0)
            b = torch.cat([p.bias for p in hp], dim=0)
        h = x.new_zeros(x.shape[0], int(layer.hidden_size))  # type: ignore[arg-type]
        outs = []
        for t in range(x.shape[1]):
            if dense:
                hr, hz, hn = torch.addmm(b, h, w.t()).chunk(3, dim=1)
            else:
                hr, hz, hn = (p(h) for p in hp)
            r = torch.sigmoid(xr[:, t] + hr)
            z = torch.sigmoid(xz[:, t] + hz)
            n = torch.tanh(xn[:, t] + r * hn)
            h = n + z * (h - n)
            outs.append(h)
        inp = torch.stack(outs, dim=1)
    return model.head(h)  # type: ignore[no-any-return]


def _objective(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, kind: str, teacher: nn.Module | None,
    alpha: float, temperature: float, t_out: torch.Tensor | None = None,
) -> torch.Tensor:
    out = sequence_forward(model, x)
    loss = supervised_loss(out, y, kind)
    if teacher is not None:
        if t_out is None:
            t_out = _teacher_outputs(teacher, x, chunk=max(1, len(x)))
        loss = alpha * distill_loss(out, t_out, kind, temperature) + (1 - alpha) * loss
    return loss


def _fingerprint(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            t = part.detach().contiguous().cpu()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(str(part).encode())
        h.update(b"\0")
    return h.hexdigest()


#: Teacher outputs already computed in this process, by (teacher, inputs, chunk) fingerprint.
_TEACHER_MEMO: OrderedDict[str, torch.Tensor] = OrderedDict()
_TEACHER_MEMO_SIZE = 4


def _teacher_outputs(teacher: nn.Module, x: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """The teacher's outputs on every training example, once: the inputs never change, and a 2×256
    GRU teacher per mini-batch would cost more than the small student it teaches.

    Remembered per process by the teacher's weights and the inputs: every candidate of a search distils from the
    same baseline on the same data, and recomputing them cost ~1 s of a ~10 s fine-tune (weather GRU). The
    remembered tensor is the one the same call computed, so results are bit-identical either way.
    """
    state = teacher.state_dict()
    key = _fingerprint(type(teacher).__qualname__, repr(teacher), chunk, x,
                       *(p for name in sorted(state) for p in (name, state[name])))
    hit = _TEACHER_MEMO.get(key)
    if hit is not None:
        _TEACHER_MEMO.move_to_end(key)
        return hit
    with torch.no_grad():
        out = torch.cat([teacher(x[i : i + chunk]) for i in range(0, len(x), chunk)], dim=0)
    _TEACHER_MEMO[key] = out
    while len(_TEACHER_MEMO) > _TEACHER_MEMO_SIZE:
        _TEACHER_MEMO.popitem(last=False)
    return out


def finetune(
    model: nn.Module,
    data: Any,
    steps: int,
    teacher: nn.Module | None = None,
    *,
    masks: Masks | None = None,
    qat: bool = False,
    precision: Mapping[str, str] | None = None,
    stochastic: bool = False,
    weights: str = "channel",
    int4_scales: str = "channel",
    lr: float = 3e-3,
    batch_size: int = 128,
    alpha: float = 0.5,
    temperature: float = 2.0,
    seed: int = 0,
    validate: Callable[[nn.Module], float] | None = None,
    validations: int = 5,
    validate_every: int = 25,
    patience: int = 4,
    threads: int = 1,
    rungs: Sequence[int] = (),
    on_rung: Callable[[nn.Module, int], bool] | None = None,
) -> FinetuneResult:
    """Train ``model`` in place for ``steps`` Adam steps and return the losses.

    ``data``: a task (``train_arrays()``, ``kind``), ``(X, y)`` / ``(X, y, kind)`` or ``TrainData``.
    The loss is cross-entropy (classifier) or MSE (regressor; policy: MSE to the teacher Q-values
    that a policy task's ``train_arrays`` returns for states from rollouts). With ``teacher`` the
    loss becomes ``alpha · distill + (1 − alpha) · task`` where distill is KL on softened logits
    (classifier, temperature ``temperature``) or MSE to the teacher's outputs/Q-values.
    ``masks`` (from ``magnitude_masks``) are re-applied after every step, so pruned weights stay 0.
    ``qat=True`` trains through fake quantisation and snaps the weights to their grid: int8, or the precision
    ``precision`` names for a layer (``int4``/``16x8``, see ``qat.fake_quant``), ``weights`` the int8 weight layout
    (``channel``/``tensor``), ``int4_scales`` that of int4 convolution filters, ``stochastic`` rounds the weights
    stochastically while training.
    ``validate`` (model → score on held-out data, higher is better) is called before the first step
    and then every ``min(validate_every, steps // validations)`` steps; the best-scoring weights are
    kept, and training stops early once ``patience`` validations in a row brought no improvement.
    Why: a long fine-tune sized for a deep cut must not overfit the ~1,000 training windows, and a
    compression candidate must not be made worse by the step meant to repair it.
    ``lr``/``batch_size`` defaults: measured on the weather GRU cut to 2×22 units (120× fewer weights),
    distilled from the 2×256 baseline: 3e-3 / 128 recovered the baseline's validation accuracy within
    ~300 steps, 1e-3 / 64 reached 0.545 in 400.
    ``threads``: torch intra-op threads while training (restored after). One, because the models are
    small and the machine is shared with the emulator: a 2×44 GRU step measured 65 ms with one thread
    and 700 ms with two on a loaded 2-core machine.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ConfigError(f"steps must be an int >= 0, got {steps!r}")
    if not 0.0 <= alpha <= 1.0 or temperature <= 0 or lr <= 0 or batch_size < 1:
        raise ConfigError("need 0 <= alpha <= 1, temperature > 0, lr > 0 and batch_size >= 1")
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        quant = {"precision": dict(precision or {}), "stochastic": stochastic, "weights": weights,
                 "int4_scales": int4_scales} if qat else None
        return _finetune(model, data, steps, teacher, masks, quant, lr, batch_size, alpha, temperature, seed,
                         validate, validations, validate_every, patience, tuple(rungs), on_rung)
    finally:
        torch.set_num_threads(before)


def _finetune(
    model: nn.Module, data: Any, steps: int, teacher: nn.Module | None, masks: Masks | None,
    quant: dict[str, Any] | None, lr: float, batch_size: int, alpha: float, temperature: float, seed: int,
    validate: Callable[[nn.Module], float] | None, validations: int, validate_every: int, patience: int,
    rungs: tuple[int, ...] = (), on_rung: Callable[[nn.Module, int], bool] | None = None,
) -> FinetuneResult:
    td = TrainData.from_source(data)
    kind = td.kind
    masks = masks or {}
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    ex, ey = td.sample(EVAL_SAMPLES, seed + 1)
    if teacher is not None:
        teacher = teacher.eval()
    apply_masks(model, masks)

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            return float(_objective(model, ex, ey, kind, teacher, alpha, temperature))

    initial = eval_loss()
    losses: list[float] = []
    val_scores: list[tuple[int, float]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    stopped_at: int | None = None

    def rung(step: int) -> bool:
        """Whether fine-tuning goes on past ``step`` (``on_rung`` on a copy of the weights it would keep)."""
        if on_rung is None or step not in rungs:
            return True
        kept = copy.deepcopy(model)
        if best is not None:
            kept.load_state_dict(best[2])
        with torch.random.fork_rng(devices=[]):  # the hook must not move the run's own generators
            return bool(on_rung(kept.eval(), step))

    def checkpoint(step: int) -> None:
        nonlocal best
        if validate is None:
            return
        model.eval()
        with torch.no_grad():
            score = float(validate(model))
        model.train()
        val_scores.append((step, score))
        if best is None or score > best[0]:
            best = (score, step, copy.deepcopy(model.state_dict()))

    if steps > 0:
        every = max(1, min(validate_every, steps // max(1, validations)))
        t_all = _teacher_outputs(teacher, td.x) if teacher is not None else None
        stale = 0
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        ctx = fake_quant(model, seed=seed, **quant) if quant is not None else contextlib.nullcontext()
        with ctx:
            checkpoint(0)
            for step in range(1, steps + 1):
                idx = torch.randint(0, len(td), (min(batch_size, len(td)),), generator=gen)
                opt.zero_grad()
                loss = _objective(model, td.x[idx], td.y[idx], kind, teacher, alpha, temperature,
                                  None if t_all is None else t_all[idx])
                loss.backward()
                opt.step()
                apply_masks(model, masks)
                losses.append(float(loss.detach()))
                if step % every == 0 or step == steps:
                    before = best[1] if best is not None else None
                    checkpoint(step)
                    stale = 0 if best is None or best[1] != before else stale + 1
                    if validate is not None and stale >= patience:
                        log.info("fine-tuning stopped early at step %d (best step %s)", step, best[1] if best else None)
                        break
                if not rung(step):
                    stopped_at = step
                    log.info("fine-tuning stopped at rung step %d of %d", step, steps)
                    break
            if best is not None:
                model.load_state_dict(best[2])
        if quant is not None:
            bake_weights(model, quant["precision"], quant["weights"], quant["int4_scales"])
    model.eval()
    final = eval_loss()
    best_step = None if best is None else best[1]
    log.info("fine-tuned %d steps: loss %.4g -> %.4g (kept step %s)", steps, initial, final, best_step)
    return FinetuneResult(len(losses), initial, final, losses, val_scores, best_step, stopped_at)
