"""Canonical model representations shared by tasks, compression and export."""

from edgeprune.host.models.cnn import ConvNCHW, ConvNet
from edgeprune.host.models.gru import GRULayer, GRUStep, StackedGRU
from edgeprune.host.models.layers import LowRankLinear
from edgeprune.host.models.lstm import LSTMLayer, StackedLSTM
from edgeprune.host.models.mlp import MLP
from edgeprune.host.models.rnn import RecurrentLayer, RecurrentStep, StackedRNN

__all__ = ["GRULayer", "GRUStep", "StackedGRU", "LSTMLayer", "StackedLSTM", "RecurrentLayer", "RecurrentStep",
           "StackedRNN", "LowRankLinear", "MLP", "ConvNet", "ConvNCHW"]
