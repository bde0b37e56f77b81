"""Pose heads and their losses (torch). Each head's raw output is decoded in numpy by edgepose.decode."""
from __future__ import annotations

import torch
from torch import nn


class Rot6DHead(nn.Module):
    """Predicts the 6D rotation representation (first two columns of R, as [c0, c1]); manifest decode 'rot6d'."""

    decode = "rot6d"
    outputs = 6

    def __init__(self, in_features: int, hidden: int = 1024, dropout: float = 0.2):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_features, hidden), nn.Hardswish(), nn.Dropout(dropout), nn.Linear(hidden, 6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


def rot6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """Gram-Schmidt of (N, 6) -> (N, 3, 3) with the 6D vector as the first two columns."""
    a1, a2 = x[:, 0:3], x[:, 3:6]
    b1 = nn.functional.normalize(a1, dim=1)
    b2 = nn.functional.normalize(a2 - (b1 * a2).sum(1, keepdim=True) * b1, dim=1)
    return torch.stack([b1, b2, torch.cross(b1, b2, dim=1)], dim=2)


def geodesic_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean geodesic distance (radians) between rotation matrices (N, 3, 3)."""
    cos = ((pred.transpose(1, 2) @ target).diagonal(dim1=1, dim2=2).sum(1) - 1) / 2
    return torch.acos(cos.clamp(-1 + eps, 1 - eps)).mean()


class PoseNet(nn.Module):
    """Backbone + head. `forward` returns the head's raw output (what the exported model emits)."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))
