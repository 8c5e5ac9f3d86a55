"""``policy_distill``: the int8-aware student keeps its teacher's greedy actions (fast, synthetic teacher).

The ≥ 99 % bound on the real cartpole-dqn baseline, measured through TFLM, is in ``test_dqn.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from export_helpers import policy_mlp

from edgeprune.bench.errors import ExportError
from edgeprune.export.policy_distill import DistillConfig, distill_policy

torch.set_num_threads(1)


def _states(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(scale=[1.0, 1.0, 0.1, 1.0], size=(n, 4)).astype(np.float32)


def test_student_outputs_clipped_advantages_with_the_teachers_greedy_action() -> None:
    teacher = policy_mlp().eval()
    cfg = DistillConfig(epochs=8, gain=5.0)
    student = distill_policy(teacher, _states(2048, 1), _states(512, 2), cfg)
    held_out = torch.from_numpy(_states(2000, 3))
    with torch.no_grad():
        q, y = teacher(held_out), student(held_out)
    assert y.shape == q.shape
    # The student learns the clipped, scaled advantage, not Q: after the export's centring its outputs
    # track clip(gain·(Q − mean Q)) and stay near ±1 (that keeps the int8 output scale fine).
    centred = y - y.mean(dim=1, keepdim=True)
    target = torch.clamp(cfg.gain * (q - q.mean(dim=1, keepdim=True)), -1.0, 1.0)
    assert float(centred.abs().quantile(0.99)) < 2.5
    assert float((torch.clamp(centred, -1.0, 1.0) - target).abs().mean()) < 0.4
    agreement = float((y.argmax(1) == q.argmax(1)).float().mean())
    assert agreement >= 0.95, agreement


def test_distill_rejects_non_mlp_teacher() -> None:
    with pytest.raises(ExportError, match="only MLP"):
        distill_policy(torch.nn.Linear(4, 2), _states(512, 0), _states(64, 1))
