"""The training loop: AdamW + warmup/cosine, EMA, atomic per-epoch checkpoints, --resume, CSV log, dev MAE."""
from __future__ import annotations

import copy
import csv
import io
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..angles import matrix_to_euler
from ..datasets.aflw2000 import read_aflw2000
from ..manifest import InputSpec, atomic_write_bytes
from ..metrics import summarize
from .heads import geodesic_loss, rot6d_to_matrix
from .models import create
from .pool_data import PoolData, augment_batch, color_jitter
from .recipe import Recipe, recipe_to_yaml

INPUT_MEAN = 127.5
INPUT_STD = 127.5


def input_spec(recipe: Recipe) -> InputSpec:
    """The input contract every model trained by this loop has (RGB, (x - 127.5) / 127.5, NCHW)."""
    s = recipe.model.input_size
    return InputSpec(size=(s, s), layout="NCHW", color="RGB", mean=(INPUT_MEAN,) * 3, std=(INPUT_STD,) * 3)


def to_tensor(bgr: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) BGR 0..255 (uint8 or float) -> normalised RGB NCHW channels-last tensor."""
    x = torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1], dtype=np.float32))
    x = (x - INPUT_MEAN) / INPUT_STD
    return x.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save through a temporary file + rename: a killed run never leaves half a checkpoint."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def save_release_weights(checkpoint: str | Path, dst: str | Path) -> Path:
    """A slim copy of a checkpoint for shipping: EMA weights, recipe and metrics (no optimizer or RNG state).

    `edgepose export` and `--resume`-free fine-tuning accept it like a full checkpoint.
    """
    state = load_checkpoint(checkpoint)
    slim = {"model": state["ema"], "ema": state["ema"], "recipe": state["recipe"], "metrics": state.get("metrics", {}),
            "epoch": state["epoch"], "step": state["step"]}
    save_checkpoint(Path(dst), slim)
    return Path(dst)


def load_checkpoint(path: str | Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@torch.no_grad()
def predict_degrees(model: torch.nn.Module, batch: np.ndarray, chunk: int = 256) -> np.ndarray:
    """(N, 3) yaw/pitch/roll from BGR uint8 crops with a rot6d model in eval mode."""
    model.eval()
    outs = [rot6d_to_matrix(model(to_tensor(batch[i:i + chunk]))).double().numpy() for i in range(0, len(batch), chunk)]
    return matrix_to_euler(np.concatenate(outs))


def dev_crops(root: str, spec: InputSpec, scale: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Crops (device-side preprocessing, exactly as the runtime does it) and labels of AFLW2000 at `root`."""
    import cv2

    from ..manifest import CropSpec
    from ..preprocess import crop_face

    if not root or not Path(root).is_dir():
        return None
    samples = read_aflw2000(root)
    crop = CropSpec(protocol="square", scale=scale)
    crops = np.stack([crop_face(cv2.imread(str(s.image)), s.box, crop, spec) for s in samples])
    return crops, np.array([[s.yaw, s.pitch, s.roll] for s in samples])


class EMA:
    """Exponential moving average of all weights and buffers (the averaged model is what ships)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.model = copy.deepcopy(model).eval()
        self.decay = decay

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for e, m in zip(self.model.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.mul_(d).add_(m.detach(), alpha=1 - d)
            else:
                e.copy_(m)


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train(recipe: Recipe, out_dir: str | Path, resume: bool = False) -> dict:
    """Run `recipe`, writing checkpoints and logs to `out_dir`; returns the final metrics.

    Files: last.pt (every epoch, atomic), recipe.yaml (resolved), log.csv (one row per epoch).
    With resume=True, continues from last.pt at the next epoch with optimizer, schedule, EMA and RNG state.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "recipe.yaml", recipe_to_yaml(recipe).encode())
    cfg = recipe.train
    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    data = PoolData(recipe.data)
    model = create(recipe.model.backbone, recipe.model.head, recipe.model.width).to(memory_format=torch.channels_last)
    ema = EMA(model, cfg.ema_decay)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(data.train_idx) // cfg.batch_size
    if cfg.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
    total = steps_per_epoch * cfg.epochs
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    start_epoch, step = 0, 0

    ckpt_path = out / "last.pt"
    if resume:
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at '{ckpt_path}'; run without --resume to start fresh")
        state = load_checkpoint(ckpt_path)
        model.load_state_dict(state["model"])
        ema.model.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, step = state["epoch"] + 1, state["step"]
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])

    spec = input_spec(recipe)
    dev = dev_crops(recipe.eval.aflw2000_root, spec, recipe.data.crop_scale)
    hold_imgs, hold_mats = augment_batch(data.images, data.matrices, data.holdout_idx, spec.size[0],
                                         recipe.data.crop_scale, None, rng)
    metrics: dict = {}
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        t0 = time.time()
        order = rng.permutation(data.train_idx)
        losses = []
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step", mininterval=5)
        for i in bar:
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            imgs, mats = augment_batch(data.images, data.matrices, idx, spec.size[0], recipe.data.crop_scale,
                                       recipe.augment, rng)
            x = to_tensor(color_jitter(imgs.astype(np.float32), recipe.augment, rng))
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, warmup, cfg.lr)
            loss = geodesic_loss(rot6d_to_matrix(model(x)), torch.from_numpy(mats))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ema.update(model, step)
            step += 1
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.rad2deg(np.mean(losses[-50:])):.2f}deg")
        metrics = {"epoch": epoch + 1, "step": step, "train_loss_deg": float(np.rad2deg(np.mean(losses))),
                   "epoch_seconds": round(time.time() - t0, 1)}
        hold = summarize(predict_degrees(ema.model, hold_imgs), matrix_to_euler(hold_mats.astype(np.float64)))
        metrics["holdout_mae"] = hold["mean"]
        if dev is not None:
            s = summarize(predict_degrees(ema.model, dev[0]), dev[1])
            metrics.update(dev_mae=s["mean"], dev_yaw=s["yaw"], dev_pitch=s["pitch"], dev_roll=s["roll"],
                           **{f"dev_bin_{k}": v["mean"] for k, v in s["bins"].items()})
        save_checkpoint(ckpt_path, {
            "model": model.state_dict(), "ema": ema.model.state_dict(), "optimizer": opt.state_dict(),
            "epoch": epoch, "step": step, "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
            "recipe": recipe_to_yaml(recipe), "metrics": metrics,
        })
        _append_csv(out / "log.csv", metrics)
        tqdm.write(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
    return metrics


def _append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
