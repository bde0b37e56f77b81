"""MobileNetV3 backbones (Howard et al. 2019), written here so the SDK needs neither torchvision nor timm."""
from __future__ import annotations

import torch
from torch import nn

from .backbone import GlobalPoolBackbone, global_average


def _divisible(v: float, divisor: int = 8) -> int:
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        hidden = _divisible(channels // 4)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = global_average(x)
        return x * nn.functional.hardsigmoid(self.fc2(nn.functional.relu(self.fc1(s))))


def _conv_bn(cin: int, cout: int, k: int, stride: int, groups: int, act: type[nn.Module] | None) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, k: int, exp: int, cout: int, se: bool, act: type[nn.Module], stride: int):
        super().__init__()
        layers: list[nn.Module] = []
        if exp != cin:
            layers.append(_conv_bn(cin, exp, 1, 1, 1, act))
        layers.append(_conv_bn(exp, exp, k, stride, exp, act))
        if se:
            layers.append(SqueezeExcite(exp))
        layers.append(_conv_bn(exp, cout, 1, 1, 1, None))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


# (kernel, expansion, out, squeeze-excite, hard-swish, stride) per block, from the paper's tables 1 and 2.
SMALL = [
    (3, 16, 16, True, False, 2), (3, 72, 24, False, False, 2), (3, 88, 24, False, False, 1),
    (5, 96, 40, True, True, 2), (5, 240, 40, True, True, 1), (5, 240, 40, True, True, 1),
    (5, 120, 48, True, True, 1), (5, 144, 48, True, True, 1), (5, 288, 96, True, True, 2),
    (5, 576, 96, True, True, 1), (5, 576, 96, True, True, 1),
]
LARGE = [
    (3, 16, 16, False, False, 1), (3, 64, 24, False, False, 2), (3, 72, 24, False, False, 1),
    (5, 72, 40, True, False, 2), (5, 120, 40, True, False, 1), (5, 120, 40, True, False, 1),
    (3, 240, 80, False, True, 2), (3, 200, 80, False, True, 1), (3, 184, 80, False, True, 1),
    (3, 184, 80, False, True, 1), (3, 480, 112, True, True, 1), (3, 672, 112, True, True, 1),
    (5, 672, 160, True, True, 2), (5, 960, 160, True, True, 1), (5, 960, 160, True, True, 1),
]


class MobileNetV3(GlobalPoolBackbone):
    """MobileNetV3 feature extractor: `forward` returns the pooled feature vector of size `out_features`.

    Quantization-friendly variants: `hardswish=False` uses ReLU everywhere (int8 kernels fuse Conv+ReLU; hard-swish
    stays float between Q/DQ pairs), `squeeze_excite=False` drops the SE blocks (float multiplies per block).
    """

    def __init__(self, config: list[tuple], width: float = 1.0, hardswish: bool = True, squeeze_excite: bool = True):
        super().__init__()
        cin = _divisible(16 * width)
        swish = nn.Hardswish if hardswish else nn.ReLU
        layers: list[nn.Module] = [_conv_bn(3, cin, 3, 2, 1, swish)]
        for k, exp, out, se, hs, stride in config:
            cout = _divisible(out * width)
            layers.append(InvertedResidual(cin, k, _divisible(exp * width), cout, se and squeeze_excite,
                                           swish if hs else nn.ReLU, stride))
            cin = cout
        self.out_features = 6 * cin
        layers.append(_conv_bn(cin, self.out_features, 1, 1, 1, swish))
        self.features = nn.Sequential(*layers)


def mobilenetv3_small(width: float = 1.0) -> MobileNetV3:
    return MobileNetV3(SMALL, width)


def mobilenetv3_small_relu(width: float = 1.0) -> MobileNetV3:
    """ReLU instead of hard-swish: every activation fuses into an int8 convolution."""
    return MobileNetV3(SMALL, width, hardswish=False)


def mobilenetv3_small_nose(width: float = 1.0) -> MobileNetV3:
    """Hard-swish kept, no squeeze-excite: isolates what the SE blocks cost."""
    return MobileNetV3(SMALL, width, squeeze_excite=False)


def mobilenetv3_small_relu_nose(width: float = 1.0) -> MobileNetV3:
    """ReLU and no squeeze-excite: a plain conv/ReLU graph, the friendliest to int8 kernels."""
    return MobileNetV3(SMALL, width, hardswish=False, squeeze_excite=False)


def mobilenetv3_large(width: float = 1.0) -> MobileNetV3:
    return MobileNetV3(LARGE, width)
