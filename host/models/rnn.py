"""What the canonical recurrent models share: a stack of cells with per-gate projections and a readout.

``StackedGRU`` and ``StackedLSTM`` differ only in their cell (``GRULayer`` carries ``h``, ``LSTMLayer``
carries ``h`` and ``c``). Compression, fine-tuning and export work on this base: every cell owns
``x_proj`` and ``h_proj`` (one linear-like map per gate), so removing a unit is the same surgery for
both, and the exported graph is one time step whose state outputs the device feeds back ``T`` times.
"""

from __future__ import annotations

from typing import ClassVar, Self

import torch
from torch import nn

from edgeprune.host.models.layers import LinearLike


class RecurrentLayer(nn.Module):
    """A cell with per-gate input projections ``x_proj`` and recurrent projections ``h_proj``.

    Subclasses set ``GATES`` (names, PyTorch's order), ``STATES`` (state tensors carried per step,
    the first is the unit output ``h``) and implement ``step(x, *state) -> tuple`` of new states.

    Parameters
    ----------
    input_size, hidden_size:
        Feature width of ``x`` and of each state tensor.
    """

    GATES: ClassVar[tuple[str, ...]] = ()
    STATES: ClassVar[tuple[str, ...]] = ("h",)

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.x_proj = nn.ModuleList([nn.Linear(input_size, hidden_size) for _ in self.GATES])
        self.h_proj = nn.ModuleList([nn.Linear(hidden_size, hidden_size) for _ in self.GATES])

    @classmethod
    def from_torch(cls, rnn: nn.RNNBase, layer: int) -> Self:
        """Copy layer ``layer`` of a unidirectional ``nn.GRU``/``nn.LSTM`` (its stacked gate blocks split per gate)."""
        w_ih = getattr(rnn, f"weight_ih_l{layer}").detach()
        w_hh = getattr(rnn, f"weight_hh_l{layer}").detach()
        b_ih = getattr(rnn, f"bias_ih_l{layer}").detach()
        b_hh = getattr(rnn, f"bias_hh_l{layer}").detach()
        hidden = rnn.hidden_size
        out = cls(w_ih.shape[1], hidden)
        for g in range(len(cls.GATES)):
            sl = slice(g * hidden, (g + 1) * hidden)
            x_lin, h_lin = out.x_proj[g], out.h_proj[g]
            assert isinstance(x_lin, nn.Linear) and isinstance(h_lin, nn.Linear)
            with torch.no_grad():
                x_lin.weight.copy_(w_ih[sl])
                x_lin.bias.copy_(b_ih[sl])
                h_lin.weight.copy_(w_hh[sl])
                h_lin.bias.copy_(b_hh[sl])
        return out

    def states(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``step`` with its result always a tuple of the new states (``h`` first)."""
        out = self.step(x, *state)  # type: ignore[operator]
        return out if isinstance(out, tuple) else (out,)


class StackedRNN(nn.Module):
    """Stacked recurrent cells plus a readout applied to the last layer's final ``h``.

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

    ``forward(x[B, T, F]) → y[B, num_outputs]``; ``step(x_t, states) → (y, states')`` is one streaming
    step over the flat state list (``state_names``: ``h_0`` for a GRU layer, ``h_0, c_0`` for an LSTM one).
    """

    LAYER: ClassVar[type[RecurrentLayer]] = RecurrentLayer
    #: Config layer names are ``<PREFIX>0, <PREFIX>1, …`` then ``head``.
    PREFIX: ClassVar[str] = "rnn"

    def __init__(self, input_size: int, hidden_sizes: list[int], num_outputs: int, seq_len: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.seq_len = seq_len
        self.num_outputs = num_outputs
        sizes = [input_size, *hidden_sizes]
        self.layers = nn.ModuleList([self.LAYER(sizes[i], sizes[i + 1]) for i in range(len(hidden_sizes))])
        self.head: LinearLike = nn.Linear(hidden_sizes[-1], num_outputs)

    @property
    def hidden_sizes(self) -> list[int]:
        return [int(layer.hidden_size) for layer in self.layers]  # type: ignore[arg-type]

    @property
    def state_names(self) -> list[str]:
        """Names of the flat state list, layer by layer (``h_0``, ``c_0``, ``h_1`` …)."""
        return [f"{s}_{i}" for i in range(len(self.layers)) for s in self.LAYER.STATES]

    @property
    def state_sizes(self) -> list[int]:
        return [h for h in self.hidden_sizes for _ in self.LAYER.STATES]

    def init_state(self, batch: int) -> list[torch.Tensor]:
        return [torch.zeros(batch, h) for h in self.state_sizes]

    def layer_outputs(self, states: list[torch.Tensor]) -> list[torch.Tensor]:
        """The unit outputs ``h`` of every layer out of a flat state list."""
        return list(states[:: len(self.LAYER.STATES)])

    def step(self, x_t: torch.Tensor, states: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        per = len(self.LAYER.STATES)
        if len(states) != per * len(self.layers):
            raise ValueError(f"expected {per * len(self.layers)} state tensors ({self.state_names}), got {len(states)}")
        new: list[torch.Tensor] = []
        inp = x_t
        for i, layer in enumerate(self.layers):
            out = layer.states(inp, *states[i * per : (i + 1) * per])  # type: ignore[operator]
            new.extend(out)
            inp = out[0]
        return self.head(inp), new

    @classmethod
    def from_torch(cls, rnn: nn.RNNBase, head: nn.Linear, seq_len: int) -> Self:
        """Build from a trained ``nn.GRU``/``nn.LSTM`` (batch_first, unidirectional, with biases) and its
        ``nn.Linear`` readout; the conversion is exact."""
        if rnn.bidirectional or not rnn.bias or int(getattr(rnn, "proj_size", 0) or 0) > 0:
            raise ValueError("only unidirectional recurrent layers with biases and no projection convert")
        model = cls(rnn.input_size, [rnn.hidden_size] * rnn.num_layers, head.out_features, seq_len)
        model.layers = nn.ModuleList([cls.LAYER.from_torch(rnn, i) for i in range(rnn.num_layers)])
        model.head = head
        return model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = self.init_state(x.shape[0])
        y = None
        for t in range(x.shape[1]):
            y, states = self.step(x[:, t], states)
        assert y is not None
        return y


class RecurrentStep(nn.Module):
    """Export wrapper: one time step, ``(x_t, *states) → (y, *states')`` in ``state_names`` order.

    The firmware runs this graph ``T`` times, feeding each state output back as the matching input
    (see ``edgeprune.bench.qmath.requantize`` for how an int8 state crosses steps).
    """

    def __init__(self, model: StackedRNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, x_t: torch.Tensor, *states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y, new = self.model.step(x_t, list(states))
        return (y, *new)
