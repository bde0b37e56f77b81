"""MobileNetV1 (Howard et al. 2017): a plain depthwise-separable Conv-BN-ReLU stack, the backbone of 3DDFA_V2.

Every activation is a ReLU that fuses into the convolution before it, and BatchNorm folds into the weights at
export, so static int8 quantizes the whole backbone (no float islands between Q/DQ pairs).
"""
from __future__ import annotations

from torch import nn

from .backbone import GlobalPoolBackbone

# (output channels at width 1, stride) of the 13 depthwise-separable blocks, from the paper's table 1
BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1),
          (512, 1), (1024, 2), (1024, 1)]


def _conv_bn_relu(cin: int, cout: int, k: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class MobileNetV1(GlobalPoolBackbone):
    """MobileNetV1 feature extractor at a width multiplier; `forward` returns the pooled `out_features` vector."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        c = max(8, int(32 * width))
        layers: list[nn.Module] = [_conv_bn_relu(3, c, 3, 2)]
        for out, stride in BLOCKS:
            cout = max(8, int(out * width))
            layers += [_conv_bn_relu(c, c, 3, stride, groups=c), _conv_bn_relu(c, cout, 1, 1)]
            c = cout
        self.features = nn.Sequential(*layers)
        self.out_features = c


def mobilenetv1_x025(width: float = 1.0) -> MobileNetV1:
    return MobileNetV1(0.25 * width)


def mobilenetv1_x050(width: float = 1.0) -> MobileNetV1:
    """The width of 3DDFA_V2's mb05 network."""
    return MobileNetV1(0.5 * width)


def mobilenetv1_x075(width: float = 1.0) -> MobileNetV1:
    return MobileNetV1(0.75 * width)
