"""The canonical stacked-LSTM model, the GRU's sibling: per-gate projections, a streaming cell for export.

Same reasons as ``StackedGRU`` (per-layer widths after pruning, low-rank projections, one exported time
step the firmware runs ``T`` times); it computes exactly what ``nn.LSTM`` computes, with PyTorch's gate
order i, f, g, o. The cell carries two states per layer, ``h`` (the unit output) and ``c`` (the cell).
"""

from __future__ import annotations

import torch
from torch import nn

from edgeprune.host.models.rnn import RecurrentLayer, StackedRNN

GATES = ("i", "f", "g", "o")


class LSTMLayer(RecurrentLayer):
    """One LSTM layer with separate input and recurrent projections per gate.

    ``i = σ(Wx_i x + Wh_i h)``, ``f = σ(Wx_f x + Wh_f h)``, ``g = tanh(Wx_g x + Wh_g h)``,
    ``o = σ(Wx_o x + Wh_o h)``; ``c' = f ⊙ c + i ⊙ g``, ``h' = o ⊙ tanh(c')``. Biases live in the
    projections as in ``nn.LSTM``.

    Parameters
    ----------
    input_size, hidden_size:
        Feature width of ``x`` and of the states ``h`` and ``c``.
    """

    GATES = GATES
    STATES = ("h", "c")

    def step(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xi, xf, xg, xo = (p(x) for p in self.x_proj)
        hi, hf, hg, ho = (p(h) for p in self.h_proj)
        i = torch.sigmoid(xi + hi)
        f = torch.sigmoid(xf + hf)
        g = torch.tanh(xg + hg)
        o = torch.sigmoid(xo + ho)
        c_next = f * c + i * g
        return o * torch.tanh(c_next), c_next


class StackedLSTM(StackedRNN):
    """Stacked LSTM plus a readout applied to the last layer's final ``h``.

    Parameters as ``StackedRNN`` (input size, hidden sizes, outputs, ``seq_len``);
    ``step(x_t, [h_0, c_0, h_1, c_1, …]) → (y, states')``.
    """

    LAYER = LSTMLayer
    PREFIX = "lstm"

    @classmethod
    def from_torch_lstm(cls, lstm: nn.LSTM, head: nn.Linear, seq_len: int) -> StackedLSTM:
        """Build from a trained ``nn.LSTM`` (batch_first, unidirectional) and its ``nn.Linear`` readout."""
        return cls.from_torch(lstm, head, seq_len)
