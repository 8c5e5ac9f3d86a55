"""Linear layers the compressor may produce: dense, or factorised into two thinner matrices."""

from __future__ import annotations

import torch
from torch import nn


class LowRankLinear(nn.Module):
    """``y = second(first(x))`` where ``first`` is ``in → rank`` (no bias) and ``second`` is ``rank → out``.

    Parameters
    ----------
    in_features, out_features:
        Shape of the dense matrix this factorisation replaces.
    rank:
        Inner dimension ``k``. It only saves work when ``k < in*out / (in+out)``.
    bias:
        Whether ``second`` carries the original layer's bias.
    """

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.rank = rank
        self.first = nn.Linear(in_features, rank, bias=False)
        self.second = nn.Linear(rank, out_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))

    def dense_weight(self) -> torch.Tensor:
        """The equivalent dense ``out × in`` matrix (for analysis, not inference)."""
        return self.second.weight @ self.first.weight


LinearLike = nn.Linear | LowRankLinear


def out_features(layer: nn.Module) -> int:
    return int(layer.out_features)  # type: ignore[arg-type]


def in_features(layer: nn.Module) -> int:
    return int(layer.in_features)  # type: ignore[arg-type]
