"""Quantization-aware training with NNCF: fake-quantize a trained fp32 model, fine-tune it, export int8.

`prepare` loads the fp32 checkpoint named by `qat.init`, inserts NNCF's fake quantizers (int8 weights per
channel, int8 activations) calibrated on pool crops (`nncf.quantize`), and hands the model back to the ordinary
training loop, so QAT gets every trainer feature (EMA, resume, logs). The NNCF layout is stored in each
checkpoint (`nncf_config`, JSON) so `restore` can rebuild the quantized model without calibration data.
`strip` turns a QAT model into a graph whose fake quantizers the legacy ONNX exporter writes as QDQ pairs;
`bake_weights` into a plain float model with the quantized weights baked in, for converters that quantize
themselves (ONNX Runtime static QDQ, LiteRT PT2E).
"""
from __future__ import annotations

import json

import numpy as np
import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..errors import ConfigError
from .recipe import QAT_PRESETS


def require_nncf():
    try:
        import nncf
        import nncf.torch  # noqa: F401
    except ImportError:
        raise ConfigError("quantization-aware training needs NNCF: pip install 'edgepose[qat]'") from None
    return nncf


def prepare(model: torch.nn.Module, init: str, crops: np.ndarray, preset: str = "performance") -> torch.nn.Module:
    """fp32 weights of `init` (EMA) into `model`, then NNCF fake quantizers calibrated on `crops` (BGR uint8)."""
    from .checkpoint import load_weights, to_tensor

    nncf = require_nncf()
    fold_batchnorm(load_weights(model, init, "qat.init").eval())
    data = nncf.Dataset([crops[i:i + 1] for i in range(len(crops))],
                        lambda b: to_tensor(b.astype(np.float32)).contiguous())
    if preset not in QAT_PRESETS:  # (recipes are checked when they load; this guards direct callers)
        raise ConfigError(f"qat.preset '{preset}' is unknown; use one of {', '.join(QAT_PRESETS)}")
    return nncf.quantize(model, data, subset_size=len(crops), preset=nncf.QuantizationPreset(preset))


@torch.no_grad()
def fold_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """Fold every BatchNorm2d that directly follows a Conv2d (in an nn.Sequential) into the conv, in place.

    Quantizing the folded conv is what the deployed graph runs; left separate, a QDQ pair sits between conv and
    BN and ONNX Runtime can fuse neither (measured 7x slower than fp32 here)."""
    for seq in [m for m in model.modules() if isinstance(m, torch.nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
                seq._modules[a] = fuse_conv_bn_eval(conv, bn)
                seq._modules[b] = torch.nn.Identity()
    return model


def config_of(model: torch.nn.Module) -> str:
    """The NNCF layout of a quantized model as JSON text (kept in checkpoints; torch.load stays weights_only)."""
    return json.dumps(require_nncf().torch.get_config(model), default=_jsonable)


def restore(model: torch.nn.Module, config: str) -> torch.nn.Module:
    """Rebuild the quantized structure described by `config` around a freshly created `model`."""
    nncf = require_nncf()
    return nncf.torch.load_from_config(model, json.loads(config))


def strip(model: torch.nn.Module, size: int) -> torch.nn.Module:
    """A copy of a QAT model whose fake quantizers are plain torch ops (QuantizeLinear/DequantizeLinear in ONNX)."""
    nncf = require_nncf()
    return nncf.strip(model, do_copy=True, strip_format=nncf.StripFormat.NATIVE,
                      example_input=torch.zeros(1, 3, size, size)).eval()


@torch.no_grad()
def bake_weights(model: torch.nn.Module, plain: torch.nn.Module, size: int) -> torch.nn.Module:
    """`plain` (a fresh model of the same architecture, BN folded) with the QAT model's parameters, its conv/linear
    weights replaced by what NNCF's weight quantizers feed those layers (values on the int8 grid).

    The quantized weights are captured at call time: NNCF applies its weight quantizers to the arguments of
    F.conv2d / F.linear, in the order the layers run, which forward pre-hooks on the layers record alike."""
    layers, weights = [], []

    class Capture(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func in (torch.nn.functional.conv2d, torch.nn.functional.linear):
                weights.append(args[1] if len(args) > 1 else kwargs["weight"])
            return func(*args, **(kwargs or {}))

    hooks = [m.register_forward_pre_hook(lambda mod, _: layers.append(mod)) for m in model.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    try:
        with Capture():
            model.eval()(torch.zeros(1, 3, size, size))
    finally:
        for h in hooks:
            h.remove()
    if len(layers) != len(weights):
        raise RuntimeError(f"captured {len(weights)} weights for {len(layers)} layers; cannot bake QAT weights")
    names = {id(m): n for n, m in model.named_modules()}
    state = {k: v for k, v in model.state_dict().items() if "__nncf" not in k and "_nncf" not in k}
    for layer, w in zip(layers, weights):
        state[f"{names[id(layer)]}.weight"] = w.detach().clone()
    plain.load_state_dict(state)
    return plain.eval()


def is_quantized(model: torch.nn.Module) -> bool:
    return any("quantizer" in type(m).__name__.lower() or "fakequant" in type(m).__name__.lower()
               for m in model.modules())


def _jsonable(value):
    if hasattr(value, "value"):
        return value.value
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
