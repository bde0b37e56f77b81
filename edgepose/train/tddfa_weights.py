"""3DDFA_V2's released PyTorch weights (MobileNetV1 x0.5 + 62-value 3DMM head, MIT) as an edgepose network's warm
start: `train.init: .../3ddfa-v2-mb05.pth` with `model.backbone: mobilenetv1_x050`, `model.head: camera`."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import ConfigError

# 3DDFA_V2's block names in order; each is a depthwise conv + BN + ReLU, then a 1x1 conv + BN + ReLU
BLOCKS = ("dw2_1", "dw2_2", "dw3_1", "dw3_2", "dw4_1", "dw4_2", "dw5_1", "dw5_2", "dw5_3", "dw5_4", "dw5_5", "dw5_6",
          "dw6")
# 3DDFA_V2 feeds BGR scaled (x - 127.5) / 128; edgepose's networks take RGB scaled (x - 127.5) / 127.5
INPUT_RESCALE = 127.5 / 128.0


def is_3ddfa_state(state) -> bool:
    """True for the dict 3DDFA_V2's training wrote (DataParallel's 'module.' names, its 62-value head)."""
    return (isinstance(state, dict) and isinstance(state.get("state_dict"), dict)
            and "module.fc_param.weight" in state["state_dict"])


def read_param_stats(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The 62 parameters' de-normalisation (mean, std) from the one `*mean-std-62d*.json` beside the weights."""
    found = sorted(folder.glob("*mean-std-62d*.json"))
    if len(found) != 1:
        raise ConfigError(f"3DDFA_V2 weights need their parameter statistics beside them: exactly one "
                          f"'*mean-std-62d*.json' in '{folder}' (found {len(found)}); 3DDFA_V2's "
                          "configs/param_mean_std_62d_120x120.pkl written as JSON {\"mean\": [62], \"std\": [62]}")
    try:
        data = json.loads(found[0].read_text())
        mean, std = (torch.tensor(data.get(k, []), dtype=torch.float32) for k in ("mean", "std"))
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"'{found[0]}' is not a JSON object of 62 'mean' and 62 'std' numbers ({exc})") from None
    if mean.shape != (62,) or std.shape != (62,) or not bool((std > 0).all()):
        raise ConfigError(f"'{found[0]}' must hold 62 'mean' and 62 positive 'std' values")
    return mean, std


def state_from_3ddfa(state: dict, folder: Path, model: torch.nn.Module) -> dict:
    """3DDFA_V2's tensors under `model`'s names: the backbone's 27 conv+BN pairs in order, the first conv taking
    edgepose's RGB input scaling, and, for the camera head, its Linear with the de-normalisation buffers. Another
    head (e.g. rot6d on the 512-d feature) is left out of the returned state: it starts fresh.

    Raises:
        ConfigError: `model`'s backbone is not MobileNetV1 x0.5, or the file lacks a tensor.
    """
    from .heads import CameraHead

    src = {k.removeprefix("module."): v for k, v in state["state_dict"].items()}
    camera = isinstance(getattr(model, "head", None), CameraHead)
    # edgepose's features[i] = (conv, BN, ReLU) in the order 3DDFA_V2 runs its layers
    order = [("conv1", "bn1")] + [pair for b in BLOCKS for pair in ((f"{b}.conv_dw", f"{b}.bn_dw"),
                                                                     (f"{b}.conv_sep", f"{b}.bn_sep"))]
    bn_keys = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    wanted = [f"{conv}.weight" for conv, _ in order] + [f"{bn}.{k}" for _, bn in order for k in bn_keys] + \
        ["fc_param.weight", "fc_param.bias"]
    missing = [k for k in wanted if k not in src]
    if missing:
        raise ConfigError(f"the 3DDFA_V2 weights lack {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}; "
                          "give 3DDFA_V2's released mb05_120x120.pth unchanged")
    out: dict = {}
    for layer, (conv, bn) in enumerate(order):
        out[f"backbone.features.{layer}.0.weight"] = src[f"{conv}.weight"]
        out.update({f"backbone.features.{layer}.1.{k}": src[f"{bn}.{k}"] for k in bn_keys})
    out["backbone.features.0.0.weight"] = src["conv1.weight"].flip(1) * INPUT_RESCALE  # BGR/128 -> RGB/127.5
    if camera:
        rows = list(CameraHead.ROWS)
        mean, std = (v[rows] for v in read_param_stats(folder))
        common = 1.0 / float(std.mean())  # one factor for all six: the 6D decoding is blind to it
        out["head.fc.weight"], out["head.fc.bias"] = src["fc_param.weight"][rows], src["fc_param.bias"][rows]
        out["head.scale"], out["head.shift"] = std * common, mean * common
    mine = {k: v for k, v in model.state_dict().items() if camera or k.startswith("backbone.")}
    wrong = [k for k in mine if k not in out or tuple(out[k].shape) != tuple(mine[k].shape)]
    if wrong or len(out) != len(mine):
        raise ConfigError(f"3DDFA_V2 weights fit MobileNetV1 x0.5 with the camera head (model.backbone: "
                          f"mobilenetv1_x050, model.width: 1.0, model.head: camera); this model differs at "
                          f"{', '.join(wrong[:3]) or 'its extra tensors'}")
    return out
