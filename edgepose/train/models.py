"""Model registry: backbones and heads by name, tiny builder functions (`create("mobilenetv3_small", head="rot6d")`)."""
from __future__ import annotations

from typing import Callable

from torch import nn

from ..errors import ConfigError, did_you_mean
from .heads import PoseNet, Rot6DHead
from .mobilenetv3 import mobilenetv3_large, mobilenetv3_small, mobilenetv3_small_relu, mobilenetv3_small_relu_nose

BACKBONES: dict[str, Callable[..., nn.Module]] = {}
HEADS: dict[str, Callable[[int], nn.Module]] = {"rot6d": Rot6DHead}


def register_backbone(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    BACKBONES[fn.__name__] = fn
    return fn


for _builder in (mobilenetv3_small, mobilenetv3_small_relu, mobilenetv3_small_relu_nose, mobilenetv3_large):
    register_backbone(_builder)


def create(backbone: str, head: str = "rot6d", width: float = 1.0) -> PoseNet:
    """Build a pose network from registered names.

    Raises:
        ConfigError: unknown backbone or head name (with the valid names).
    """
    if backbone not in BACKBONES:
        raise ConfigError(f"unknown backbone '{backbone}'.{did_you_mean(backbone, BACKBONES)} Available: {sorted(BACKBONES)}")
    if head not in HEADS:
        raise ConfigError(f"unknown head '{head}'.{did_you_mean(head, HEADS)} Available: {sorted(HEADS)}")
    body = BACKBONES[backbone](width=width)
    return PoseNet(body, HEADS[head](body.out_features))
