"""The canonical stacked-GRU model: explicit per-gate projections so layers can be pruned and factorised.

``nn.GRU`` ties every layer to one hidden size and one dense matrix per direction; compression needs
per-layer hidden sizes and optionally low-rank projections, and export needs a single time step
(the streaming cell the firmware runs ``T`` times). ``StackedGRU`` is that representation; it computes
exactly what ``nn.GRU`` computes (same gate equations, PyTorch's gate order r, z, n).
"""

from __future__ import annotations

import torch
from torch import nn

from edgeprune.host.models.rnn import RecurrentLayer, RecurrentStep, StackedRNN

GATES = ("r", "z", "n")


class GRULayer(RecurrentLayer):
    """One GRU layer with separate input and recurrent projections per gate.

    ``r = σ(Wx_r x + Wh_r h)``, ``z = σ(Wx_z x + Wh_z h)``, ``n = tanh(Wx_n x + r ⊙ (Wh_n h))``,
    ``h' = n + z ⊙ (h − n)`` (= ``(1−z)⊙n + z⊙h``, written so no constant ``1`` enters the graph).
    Biases live in the projections (``b_i*`` in ``x_proj``, ``b_h*`` in ``h_proj``) as in ``nn.GRU``.

    Parameters
    ----------
    input_size, hidden_size:
        Feature width of ``x`` and of the hidden state.
    """

    GATES = GATES
    STATES = ("h",)

    def step(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        xr, xz, xn = (p(x) for p in self.x_proj)
        hr, hz, hn = (p(h) for p in self.h_proj)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return n + z * (h - n)

    @classmethod
    def from_torch_gru(cls, gru: nn.GRU, layer: int) -> GRULayer:
        """Copy layer ``layer`` of a unidirectional ``nn.GRU`` (weights split per gate)."""
        return cls.from_torch(gru, layer)


class StackedGRU(StackedRNN):
    """Stacked GRU plus a readout applied to the last layer's final hidden state.

    Parameters as ``StackedRNN`` (input size, hidden sizes, outputs, ``seq_len``); ``step(x_t, hs) → (y, hs')``
    is one streaming step, one state ``h`` per layer.
    """

    LAYER = GRULayer
    PREFIX = "gru"

    @classmethod
    def from_torch_gru(cls, gru: nn.GRU, head: nn.Linear, seq_len: int) -> StackedGRU:
        """Build from a trained ``nn.GRU`` (batch_first, unidirectional) and its ``nn.Linear`` readout."""
        return cls.from_torch(gru, head, seq_len)


#: The export wrapper of a ``StackedGRU`` (the name the exporter has always used).
GRUStep = RecurrentStep
