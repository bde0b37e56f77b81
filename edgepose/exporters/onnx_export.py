"""Checkpoint -> ONNX bundle (fp32) with a manifest, a PyTorch parity check and the measured dev accuracy."""
from __future__ import annotations

import os
import platform as host_platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..errors import ModelFormatError
from ..manifest import CropSpec, Manifest, save_manifest, sha256_file
from ..metrics import summarize
from ..train.models import create
from ..train.recipe import Recipe, recipe_from_yaml
from ..train.trainer import dev_crops, input_spec, load_checkpoint, predict_degrees


def load_trained(checkpoint: str | Path, use_ema: bool = True) -> tuple[torch.nn.Module, Recipe]:
    """The model of a training checkpoint (EMA weights by default) in eval mode, with its recipe."""
    path = Path(checkpoint)
    if not path.is_file():
        raise ModelFormatError(f"checkpoint '{path}' does not exist")
    try:
        state = load_checkpoint(path)
    except Exception as exc:
        raise ModelFormatError(f"cannot read checkpoint '{path}' ({exc}); is it an edgepose training checkpoint?") from None
    recipe = recipe_from_yaml(state["recipe"], where=f"recipe inside '{path}'")
    model = create(recipe.model.backbone, recipe.model.head, recipe.model.width)
    model.load_state_dict(state["ema" if use_ema and "ema" in state else "model"])
    return model.eval(), recipe


def export_onnx(checkpoint: str | Path, out_dir: str | Path, *, dev_root: str | None = None, opset: int = 17,
                use_ema: bool = True) -> Path:
    """Write `out_dir/model.onnx` + `out_dir/manifest.json` (each atomically); returns the manifest path.

    When `dev_root` (an AFLW2000 folder) is given, the manifest records the ONNX-vs-PyTorch max difference and
    the dev accuracy measured through ONNX Runtime.
    """
    import onnxruntime as ort

    model, recipe = load_trained(checkpoint, use_ema)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = input_spec(recipe)
    sample = torch.zeros(1, 3, *spec.size)
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".model.", suffix=".onnx")
    os.close(fd)
    try:
        torch.onnx.export(model, (sample,), tmp, dynamo=False, opset_version=opset, input_names=[spec.name],
                          output_names=["rot6d"], dynamic_axes={spec.name: {0: "batch"}, "rot6d": {0: "batch"}})
        metrics: dict = {}
        dev_path = dev_root or recipe.eval.aflw2000_root
        dev = dev_crops(dev_path, spec, recipe.data.crop_scale)
        if dev is not None:
            from ..preprocess import to_input

            session = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
            raw = session.run(None, {spec.name: to_input(dev[0], spec)})[0]
            from ..decode import decode_outputs

            onnx_deg = decode_outputs({"rot6d": raw}, {"type": "rot6d", "name": "rot6d"})[0]
            torch_deg = predict_degrees(model, dev[0])
            summary = summarize(onnx_deg, dev[1])
            metrics["aflw2000-dev"] = {k: summary[k] for k in ("n", "yaw", "pitch", "roll", "mean", "auc5", "failure15")}
            metrics["aflw2000-dev"]["bins"] = {k: round(v["mean"], 3) for k, v in summary["bins"].items()}
            metrics["parity_vs_torch_max_abs_deg"] = float(np.abs(onnx_deg - torch_deg).max())
        final = out / "model.onnx"
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    manifest = Manifest(
        model_file=final.name, format="onnx", precision="fp32", input=spec,
        crop=CropSpec(protocol="square", scale=recipe.data.crop_scale),
        output={"type": "rot6d", "name": "rot6d"}, sha256=sha256_file(final), name=recipe.name,
        source={"recipe": recipe.name, "checkpoint_sha256": sha256_file(checkpoint), "ema": use_ema,
                "edgepose": __version__, "torch": torch.__version__, "opset": opset,
                "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": host_platform.machine()},
        metrics=metrics,
    )
    save_manifest(manifest, out / "manifest.json")
    return out / "manifest.json"
