"""Model registry: backbones and heads by name, tiny builder functions (`create("mobilenetv3_small", head="rot6d")`)."""
from __future__ import annotations

from typing import Callable

from torch import nn

from ..errors import ConfigError, did_you_mean
from .heads import HEADS, PoseNet
from .mobilefacenet import mobilefacenet
from .mobilenetv1 import mobilenetv1_x025, mobilenetv1_x050, mobilenetv1_x075
from .mobilenetv3 import (mobilenetv3_large, mobilenetv3_small, mobilenetv3_small_nose, mobilenetv3_small_relu,
                          mobilenetv3_small_relu_nose)
from .resnet import resnet18, resnet50, resnet152

BACKBONES: dict[str, Callable[..., nn.Module]] = {}


def register_backbone(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    BACKBONES[fn.__name__] = fn
    return fn


for _builder in (mobilenetv3_small, mobilenetv3_small_relu, mobilenetv3_small_nose, mobilenetv3_small_relu_nose,
                 mobilenetv3_large, mobilenetv1_x025, mobilenetv1_x050, mobilenetv1_x075, mobilefacenet,
                 resnet18, resnet50, resnet152):
    register_backbone(_builder)


def create(backbone: str, head: str = "rot6d", width: float = 1.0, landmarks: int = 0, attention: bool = False) -> PoseNet:
    """Build a pose network from registered names.

    Raises:
        ConfigError: unknown backbone or head name (with the valid names).
    """
    if backbone not in BACKBONES:
        raise ConfigError(f"unknown backbone '{backbone}'.{did_you_mean(backbone, BACKBONES)} Available: {sorted(BACKBONES)}")
    if head not in HEADS:
        raise ConfigError(f"unknown head '{head}'.{did_you_mean(head, HEADS)} Available: {sorted(HEADS)}")
    if landmarks not in (0, 5, 68):
        raise ConfigError(f"model.landmarks must be 0, 5 or 68, not {landmarks}")
    body = BACKBONES[backbone](width=width)
    return PoseNet(body, HEADS[head](body.out_features), landmarks, attention)


def create_for(model_cfg) -> PoseNet:
    """The network of a recipe's model section (edgepose.train.recipe.ModelConfig)."""
    return create(model_cfg.backbone, model_cfg.head, model_cfg.width, model_cfg.landmarks, model_cfg.attention)


def complexity(model: nn.Module, input_size: int) -> tuple[int, int]:
    """(parameters, multiply-accumulates) of one forward pass at input_size x input_size (convolutions + linears)."""
    import torch

    macs = [0]

    def conv_hook(m, _, out):
        macs[0] += out.numel() // out.shape[0] * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear_hook(m, _, out):
        macs[0] += out.numel() // out.shape[0] * m.in_features

    hooks = [m.register_forward_hook(conv_hook if isinstance(m, nn.Conv2d) else linear_hook)
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, input_size, input_size))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return sum(p.numel() for p in model.parameters()), macs[0]
