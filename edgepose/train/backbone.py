"""The feature-extractor contract of the backbones: a `features` stack, its last map, and its global average."""
from __future__ import annotations

import torch
from torch import nn


class GlobalPoolBackbone(nn.Module):
    """Subclasses set `features` (the convolutional stack) and `out_features` (its channels). `forward` returns the
    pooled (N, out_features) vector; the pose head and feature distillation call the parts."""

    features: nn.Module
    out_features: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (N, C, H/32, W/32), for feature distillation."""
        return self.features(x)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        return features.mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.forward_features(x))
