"""The canonical stacked-GRU model: explicit per-gate projections so layers can be pruned and factorised.

``nn.GRU`` ties every layer to one hidden size and one dense matrix per direction; compression needs
per-layer hidden sizes and optionally low-rank projections, and export needs a single time step
(the streaming cell the firmware runs ``T`` times). ``StackedGRU`` is that representation; it computes
exactly what ``nn.GRU`` computes (same gate equations, PyTorch's gate order r, z, n).
"""

from __future__ import annotations

import torch
from torch import nn

from edgeprune.host.models.layers import LinearLike

GATES = ("r", "z", "n")


class GRULayer(nn.Module):
    """One GRU layer with separate input and recurrent projections per gate.

    ``r = σ(Wx_r x + Wh_r h)``, ``z = σ(Wx_z x + Wh_z h)``, ``n = tanh(Wx_n x + r ⊙ (Wh_n h))``,
    ``h' = n + z ⊙ (h − n)`` (= ``(1−z)⊙n + z⊙h``, written so no constant ``1`` enters the graph).
    Biases live in the projections (``b_i*`` in ``x_proj``, ``b_h*`` in ``h_proj``) as in ``nn.GRU``.

    Parameters
    ----------
    input_size, hidden_size:
        Feature width of ``x`` and of the hidden state.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.x_proj = nn.ModuleList([nn.Linear(input_size, hidden_size) for _ in GATES])
        self.h_proj = nn.ModuleList([nn.Linear(hidden_size, hidden_size) for _ in GATES])

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
        w_ih = getattr(gru, f"weight_ih_l{layer}").detach()
        w_hh = getattr(gru, f"weight_hh_l{layer}").detach()
        b_ih = getattr(gru, f"bias_ih_l{layer}").detach()
        b_hh = getattr(gru, f"bias_hh_l{layer}").detach()
        hidden = gru.hidden_size
        out = cls(w_ih.shape[1], hidden)
        for g in range(3):
            sl = slice(g * hidden, (g + 1) * hidden)
            x_lin = out.x_proj[g]
            h_lin = out.h_proj[g]
            assert isinstance(x_lin, nn.Linear) and isinstance(h_lin, nn.Linear)
            with torch.no_grad():
                x_lin.weight.copy_(w_ih[sl])
                x_lin.bias.copy_(b_ih[sl])
                h_lin.weight.copy_(w_hh[sl])
                h_lin.bias.copy_(b_hh[sl])
        return out


class StackedGRU(nn.Module):
    """Stacked GRU plus a readout applied to the last layer's final hidden state.

    Parameters
    ----------
    input_size:
        Features per time step ``F``.
    hidden_sizes:
        Hidden width of each layer (they may differ after structured pruning).
    num_outputs:
        Classes (classifier) or targets (regressor) of the readout.
    seq_len:
        Window length ``T`` the model was trained on (export unrolls the cell this many times).

    ``forward(x[B, T, F]) → y[B, num_outputs]``; ``step(x_t, hs) → (y, hs')`` is one streaming step.
    """

    def __init__(self, input_size: int, hidden_sizes: list[int], num_outputs: int, seq_len: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.seq_len = seq_len
        self.num_outputs = num_outputs
        sizes = [input_size, *hidden_sizes]
        self.layers = nn.ModuleList([GRULayer(sizes[i], sizes[i + 1]) for i in range(len(hidden_sizes))])
        self.head: LinearLike = nn.Linear(hidden_sizes[-1], num_outputs)

    @property
    def hidden_sizes(self) -> list[int]:
        return [int(layer.hidden_size) for layer in self.layers]  # type: ignore[arg-type]

    def init_state(self, batch: int) -> list[torch.Tensor]:
        return [torch.zeros(batch, h) for h in self.hidden_sizes]

    def step(self, x_t: torch.Tensor, hs: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        new: list[torch.Tensor] = []
        inp = x_t
        for layer, h in zip(self.layers, hs, strict=True):
            inp = layer.step(inp, h)  # type: ignore[operator]
            new.append(inp)
        return self.head(inp), new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hs = self.init_state(x.shape[0])
        y = None
        for t in range(x.shape[1]):
            y, hs = self.step(x[:, t], hs)
        assert y is not None
        return y

    @classmethod
    def from_torch_gru(cls, gru: nn.GRU, head: nn.Linear, seq_len: int) -> StackedGRU:
        """Build from a trained ``nn.GRU`` (batch_first, unidirectional) and its ``nn.Linear`` readout."""
        model = cls(gru.input_size, [gru.hidden_size] * gru.num_layers, head.out_features, seq_len)
        model.layers = nn.ModuleList([GRULayer.from_torch_gru(gru, i) for i in range(gru.num_layers)])
        model.head = head
        return model


class GRUStep(nn.Module):
    """Export wrapper: one time step, ``(x_t, h_0, …, h_{L-1}) → (y, h_0', …, h_{L-1}')``.

    The firmware runs this graph ``T`` times, feeding each ``h_i'`` back as ``h_i`` (see
    ``edgeprune.export.qmath.requantize`` for how the int8 state crosses steps).
    """

    def __init__(self, model: StackedGRU) -> None:
        super().__init__()
        self.model = model

    def forward(self, x_t: torch.Tensor, *hs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y, new = self.model.step(x_t, list(hs))
        return (y, *new)
