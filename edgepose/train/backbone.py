"""The feature-extractor contract of the backbones: a `features` stack, its last map, and its global average."""
from __future__ import annotations

import torch
from torch import nn


def global_average(x: torch.Tensor) -> torch.Tensor:
    """Mean over the spatial axes, kept as (N, C, 1, 1). Written as adaptive average pooling so that it exports as
    ONNX GlobalAveragePool, which ONNX Runtime runs in its blocked NCHWc layout; a ReduceMean there costs a reorder
    of the map around every squeeze-excite block (about 2 % of the default's time per face, docs/benchmarks.md)."""
    return nn.functional.adaptive_avg_pool2d(x, 1)


class GlobalPoolBackbone(nn.Module):
    """Subclasses set `features` (the convolutional stack) and `out_features` (its channels). `forward` returns the
    pooled (N, out_features) vector; the pose head and feature distillation call the parts."""

    features: nn.Module
    out_features: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (N, C, H/32, W/32), for feature distillation."""
        return self.features(x)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        return global_average(features).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.forward_features(x))
