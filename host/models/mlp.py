"""The canonical MLP (DQN Q-network) representation: a list of linear-like layers with ReLU between."""

from __future__ import annotations

import torch
from torch import nn

from edgeprune.host.models.layers import LinearLike, in_features, out_features


class MLP(nn.Module):
    """``Linear → ReLU → … → Linear`` with no activation after the last layer (Q-values).

    Parameters
    ----------
    sizes:
        Widths ``[in, hidden_1, …, out]``, e.g. ``[4, 64, 64, 2]`` for the CartPole Q-network.
    """

    def __init__(self, sizes: list[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)])

    @property
    def sizes(self) -> list[int]:
        return [in_features(self.layers[0])] + [out_features(layer) for layer in self.layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i != last:
                x = torch.relu(x)
        return x

    @classmethod
    def from_sequential(cls, seq: nn.Sequential) -> MLP:
        """Build from an ``nn.Sequential`` of ``Linear``/``ReLU`` (stable-baselines3's ``q_net``)."""
        linears = [m for m in seq if isinstance(m, nn.Linear)]
        model = cls([linears[0].in_features] + [m.out_features for m in linears])
        model.layers = nn.ModuleList(linears)
        return model


def is_linear_like(m: nn.Module) -> bool:
    return isinstance(m, LinearLike)
