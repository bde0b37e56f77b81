"""MobileFaceNet (Chen et al. 2018): depthwise bottlenecks with PReLU and a global depthwise (GDConv) head."""
from __future__ import annotations

import torch
from torch import nn

from .backbone import global_average


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.PReLU(cout))
    return nn.Sequential(*layers)


class DepthwiseBottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, expansion: int, stride: int):
        super().__init__()
        hidden = cin * expansion
        self.body = nn.Sequential(_conv(cin, hidden, 1), _conv(hidden, hidden, 3, stride, hidden),
                                  _conv(hidden, cout, 1, act=False))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


# (expansion, channels, repeats, stride) from the paper's table 1
SETTINGS = [(2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1)]


class MobileFaceNet(nn.Module):
    """At 112 px the last map is 7x7 and GDConv is the paper's 7x7 global depthwise conv; at other input sizes the
    map is average-pooled instead. `forward` returns the `out_features`-dimensional linear embedding."""

    def __init__(self, width: float = 1.0, embedding: int = 128):
        super().__init__()
        c = int(64 * width)
        layers: list[nn.Module] = [_conv(3, c, 3, 2), _conv(c, c, 3, 1, c)]
        for t, ch, n, s in SETTINGS:
            out = int(ch * width)
            for i in range(n):
                layers.append(DepthwiseBottleneck(c, out, t, s if i == 0 else 1))
                c = out
        layers.append(_conv(c, 512, 1))
        self.features = nn.Sequential(*layers)
        self.gdconv = _conv(512, 512, 7, 1, 512, act=False)
        self.gdconv[0].padding = (0, 0)
        self.embed = nn.Sequential(nn.Conv2d(512, embedding, 1, bias=False), nn.BatchNorm2d(embedding))
        self.out_features = embedding

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        pooled = self.gdconv(features) if features.shape[-2:] == (7, 7) else global_average(features)
        return self.embed(pooled).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.forward_features(x))


def mobilefacenet(width: float = 1.0) -> MobileFaceNet:
    return MobileFaceNet(width)
