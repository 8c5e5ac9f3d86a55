"""The canonical small convolutional classifier: 3×3 conv blocks, global average pooling, a linear readout.

Images are NHWC (``[B, H, W, C]``), the layout TFLite and the device use, so a task's arrays feed the
PyTorch model, TFLM and the board alike; the model permutes to PyTorch's NCHW inside. Export traces
``ConvNCHW`` (the same layers without that permute), which onnx2tf turns back into an NHWC graph.
Channel pruning removes whole filters of a conv layer and the matching input channels of the next
layer (or columns of the readout: global average pooling keeps one feature per channel).
"""

from __future__ import annotations

import torch
from torch import nn


class ConvNet(nn.Module):
    """``conv 3×3 → ReLU [→ max-pool 2×2]`` per layer, then average pooling over what is left and a linear head.

    Parameters
    ----------
    input_hw:
        Image height and width.
    in_channels:
        Channels of the input image ``C``.
    channels:
        Output channels (filters) of each conv layer; they may differ after channel pruning.
    num_outputs:
        Classes of the readout.
    pool_after:
        Per layer, whether a 2×2 max pool follows it (default: after every layer but the last).

    ``forward(x[B, H, W, C]) → logits[B, num_outputs]``.
    """

    PREFIX = "conv"

    def __init__(self, input_hw: tuple[int, int], in_channels: int, channels: list[int], num_outputs: int,
                 pool_after: list[bool] | None = None) -> None:
        super().__init__()
        if not channels or any(c < 1 for c in channels):
            raise ValueError(f"channels must be a non-empty list of positive ints, got {channels}")
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self.in_channels = int(in_channels)
        self.num_outputs = int(num_outputs)
        self.pool_after = list(pool_after) if pool_after is not None else [True] * (len(channels) - 1) + [False]
        if len(self.pool_after) != len(channels):
            raise ValueError("pool_after needs one flag per conv layer")
        sizes = [self.in_channels, *channels]
        self.layers = nn.ModuleList([nn.Conv2d(sizes[i], sizes[i + 1], 3, padding=1) for i in range(len(channels))])
        self.head = nn.Linear(channels[-1], num_outputs)
        h, w = self.input_hw
        for pool in self.pool_after:
            if pool:
                h, w = h // 2, w // 2
        if h < 1 or w < 1:
            raise ValueError(f"{sum(self.pool_after)} pools do not fit a {self.input_hw} image")
        self.final_hw = (h, w)

    @property
    def channels(self) -> list[int]:
        return [int(conv.out_channels) for conv in self.layers]  # type: ignore[union-attr,arg-type]

    def layer_hw(self) -> list[tuple[int, int]]:
        """Output height and width of every conv layer (before its pool)."""
        h, w = self.input_hw
        out = []
        for pool in self.pool_after:
            out.append((h, w))
            if pool:
                h, w = h // 2, w // 2
        return out

    def forward_nchw(self, x: torch.Tensor) -> torch.Tensor:
        for conv, pool in zip(self.layers, self.pool_after, strict=True):
            x = torch.relu(conv(x))
            if pool:
                x = nn.functional.max_pool2d(x, 2)
        x = nn.functional.avg_pool2d(x, self.final_hw)  # global: one value per channel
        return self.head(torch.flatten(x, 1))  # type: ignore[no-any-return]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_nchw(x.permute(0, 3, 1, 2))


class ConvNCHW(nn.Module):
    """Export wrapper: ``ConvNet`` on NCHW input (what the ONNX exporter traces; see the module docstring)."""

    def __init__(self, model: ConvNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_nchw(x)
