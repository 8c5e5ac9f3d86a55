"""Canonical model representations shared by tasks, compression and export."""

from edgeprune.host.models.gru import GRULayer, GRUStep, StackedGRU
from edgeprune.host.models.layers import LowRankLinear
from edgeprune.host.models.mlp import MLP

__all__ = ["GRULayer", "GRUStep", "StackedGRU", "LowRankLinear", "MLP"]
