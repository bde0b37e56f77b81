"""Reading a training checkpoint: its state, its network with weights, the input contract it was trained with, and
its predictions on crops. Shared by training (warm starts, distillation, QAT) and the exporters, so neither needs the
trainer."""
from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np
import torch
import yaml

from ..datasets.aflw2000 import read_aflw2000
from ..decode import decode_outputs
from ..errors import ConfigError, ModelFormatError
from ..manifest import CropSpec, InputSpec
from .models import create_for
from .recipe import Recipe, recipe_from_yaml

INPUT_MEAN = 127.5
INPUT_STD = 127.5


def input_spec(recipe: Recipe) -> InputSpec:
    """The input contract every model trained by this loop has (RGB, (x - 127.5) / 127.5, NCHW)."""
    s = recipe.model.input_size
    return InputSpec(size=(s, s), layout="NCHW", color="RGB", mean=(INPUT_MEAN,) * 3, std=(INPUT_STD,) * 3)


def crop_spec(recipe: Recipe) -> CropSpec:
    """The crop a recipe's model is trained with, as its bundles' manifests state it (data.crop_*)."""
    d = recipe.data
    return CropSpec(protocol=d.crop_protocol, scale=d.crop_scale, shift=tuple(float(v) for v in d.crop_shift))


def to_tensor(bgr: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) BGR 0..255 (uint8 or float) -> normalised RGB NCHW channels-last tensor."""
    x = torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1], dtype=np.float32))
    x = (x - INPUT_MEAN) / INPUT_STD
    return x.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)


def load_checkpoint(path: str | Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def aligned_state(target: dict[str, torch.Tensor], source: dict[str, torch.Tensor]) -> tuple[dict, int]:
    """`source`'s tensors renamed onto `target`'s keys where the two networks differ only by blocks one of them
    lacks (e.g. MobileNetV3-Small with and without squeeze-excite): the matching runs of (tensor kind, shape) in
    definition order (difflib's SequenceMatcher; a dropped block breaks a run, it does not reorder). Returns the
    renamed state (matched keys only) and how many source tensors had no counterpart."""
    def sig(state: dict[str, torch.Tensor]) -> list[tuple]:
        return [(k.rsplit(".", 1)[-1], tuple(v.shape)) for k, v in state.items()]

    tk, sk = list(target), list(source)
    matcher = difflib.SequenceMatcher(None, sig(target), sig(source), autojunk=False)
    out = {}
    for block in matcher.get_matching_blocks():
        for i in range(block.size):
            out[tk[block.a + i]] = source[sk[block.b + i]]
    return out, len(sk) - len(out)


def load_weights(model: torch.nn.Module, checkpoint: str, key: str, match: str = "exact") -> torch.nn.Module:
    """The EMA weights (else the raw weights) of `checkpoint` into `model`, for a recipe's warm start `key`.

    `match="aligned"` warm-starts a variant of the checkpoint's network (blocks dropped or added, activations
    swapped): tensors are paired by `aligned_state`, the rest keep their fresh initialisation, and the counts are
    printed. At least half of the model's tensors must find a partner.

    Raises:
        ConfigError: no checkpoint at that path, or one of another network (backbone, width, head or options).
    """
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise ConfigError(f"{key}: no checkpoint at '{checkpoint}'; point it at a .pt written by edgepose train "
                          "(e.g. weights/student_mbv3s_rot6d.pt) or leave it empty to train from scratch")
    from .tddfa_weights import is_3ddfa_state, state_from_3ddfa

    raw = None
    if path.suffix == ".pth":  # 3DDFA_V2's release; anything unreadable is reported by read_checkpoint below
        try:
            raw = load_checkpoint(path)
        except Exception:
            raw = None

    if is_3ddfa_state(raw):
        weights = state_from_3ddfa(raw, path.parent, model)
        model.load_state_dict(weights, strict=False)
        fresh = len(model.state_dict()) - len(weights)
        if fresh:
            print(f"{key}: the backbone from 3DDFA_V2's '{checkpoint}'; {fresh} head tensors start fresh")
        return model
    state = read_checkpoint(path)
    weights = state["ema" if "ema" in state else "model"]
    if match == "aligned":
        mine = model.state_dict()
        paired, unused = aligned_state(mine, weights)
        params = {name for name, _ in model.named_parameters()}  # buffers (BatchNorm statistics) pair too easily
        if len(params & set(paired)) < len(params) / 2:
            raise ConfigError(f"{key}: only {len(params & set(paired))} of this model's {len(params)} weight tensors "
                              f"have a counterpart in '{checkpoint}'; warm-start from a variant of the same network, "
                              "or from scratch")
        model.load_state_dict(paired, strict=False)
        print(f"{key}: {len(paired)} of {len(mine)} tensors from '{checkpoint}' ({unused} of its tensors unused)")
        return model
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        theirs = yaml.safe_load(state.get("recipe") or "{}").get("model", {})
        raise ConfigError(f"{key}: '{checkpoint}' holds another network ({theirs or 'recipe unknown'}) than this "
                          f"recipe's model section; warm-start from a checkpoint of the same model, or from scratch "
                          f"({str(exc).splitlines()[0]})") from None
    return model


def read_checkpoint(checkpoint: str | Path) -> dict:
    """The raw state of a training checkpoint, with clear errors for a missing, unreadable or foreign file."""
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise ModelFormatError(f"checkpoint '{path}' does not exist")
    try:
        state = load_checkpoint(path)
    except Exception as exc:  # torch raises pickle, zip and runtime errors for damaged or foreign files
        raise ModelFormatError(f"cannot read checkpoint '{path}': not a PyTorch file edgepose wrote, or damaged "
                               f"({type(exc).__name__}); give a .pt written by edgepose train, average or release") from None
    _check_ours(state, path, "ema")  # EMA or raw weights
    return state


def _check_ours(state, path: Path, key: str) -> None:
    if not isinstance(state, dict) or "recipe" not in state or not ({key, "model"} & set(state)):
        raise ModelFormatError(f"'{path}' is not an edgepose training checkpoint (no recipe or weights in it); give a "
                               ".pt written by edgepose train, average, release or QAT")


def load_trained(checkpoint: str | Path, use_ema: bool = True,
                 state: dict | None = None) -> tuple[torch.nn.Module, Recipe]:
    """The model of a training checkpoint (EMA weights by default) in eval mode, with its recipe. `state`: the
    checkpoint already read by `read_checkpoint` (read here otherwise)."""
    path = Path(checkpoint)
    state = read_checkpoint(path) if state is None else state
    key = "ema" if use_ema and isinstance(state, dict) and "ema" in state else "model"
    _check_ours(state, path, key)
    recipe = recipe_from_yaml(state["recipe"], where=f"recipe inside '{path}'")
    model = create_for(recipe.model)
    if "nncf_config" in state:  # a quantization-aware training checkpoint: rebuild NNCF's quantizers first
        from . import qat

        model = qat.restore(qat.fold_batchnorm(model.eval()), state["nncf_config"])
    try:
        model.load_state_dict(state[key])
    except RuntimeError as exc:
        raise ModelFormatError(f"the weights in '{path}' do not fit the network its recipe names "
                               f"({str(exc)[:200]})") from None
    return model.eval(), recipe


@torch.no_grad()
def predict_degrees(model: torch.nn.Module, batch: np.ndarray, chunk: int = 256) -> np.ndarray:
    """(N, 3) yaw/pitch/roll from BGR uint8 crops, decoded by the device-half decoder the runtime uses."""
    model.eval()
    raw = np.concatenate([model(to_tensor(batch[i:i + chunk])).numpy() for i in range(0, len(batch), chunk)])
    return decode_outputs({"pose": raw}, model.head.decoding("pose"))[0]


def dev_crops(root: str, spec: InputSpec, crop: CropSpec | float) -> tuple[np.ndarray, np.ndarray] | None:
    """Crops (device-side preprocessing, exactly as the runtime does it) and labels of AFLW2000 at `root`.
    `crop`: the model's crop (`crop_spec(recipe)`), or a square crop's scale."""
    import cv2

    from ..preprocess import crop_face

    if not root or not Path(root).is_dir():
        return None
    samples = read_aflw2000(root)
    if not isinstance(crop, CropSpec):
        crop = CropSpec(protocol="square", scale=float(crop))
    crops = np.stack([crop_face(cv2.imread(str(s.image)), s.box, crop, spec) for s in samples])
    return crops, np.array([[s.yaw, s.pitch, s.roll] for s in samples])
