"""The training loop: AdamW + warmup/cosine, EMA, atomic per-epoch checkpoints, --resume, CSV log, dev MAE."""
from __future__ import annotations

import copy
import csv
import dataclasses
import hashlib
import io
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from ..angles import euler_to_matrix, matrix_to_euler
from ..atomic import atomic_write_bytes, check_output_folder
from ..errors import ConfigError, ModelFormatError
from ..evaluation.metrics import summarize
from .checkpoint import (crop_spec, dev_crops, input_spec, load_trained, load_weights, predict_degrees,
                         read_checkpoint, to_tensor)
from .heads import landmark_loss
from .models import create_for
from .pool_data import PoolData, augment_batch, color_jitter
from .protocol_box import training_frames
from .recipe import SELECT_BY, Recipe, check_recipe, check_recipe_name, recipe_to_yaml


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save through a temporary file + rename: a killed run never leaves half a checkpoint."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def save_release_weights(checkpoint: str | Path, dst: str | Path) -> Path:
    """A slim copy of a checkpoint for shipping: EMA weights, recipe and metrics (no optimizer or RNG state).

    `edgepose export` and `--resume`-free fine-tuning accept it like a full checkpoint (`edgepose release`).

    Raises:
        ModelFormatError: the file is missing, unreadable, not a training checkpoint, or its weights do not fit its
            recipe (checked before anything is written). ConfigError: `dst` is the checkpoint itself or a folder.
    """
    if Path(dst).resolve() == Path(checkpoint).resolve():
        raise ConfigError(f"--out '{dst}' is the checkpoint itself; write the release copy to another file")
    if Path(dst).is_dir():
        raise ConfigError(f"--out '{dst}' is a folder; give the file to write, e.g. weights/NAME.pt")
    state = read_checkpoint(checkpoint)
    load_trained(checkpoint, state=state)  # a recipe, and weights that fit it (clear errors otherwise)
    if "ema" not in state:
        raise ModelFormatError(f"'{checkpoint}' has no EMA weights; give a .pt written by edgepose train, "
                               "edgepose average or QAT")
    save_checkpoint(Path(dst), slim_state(state))
    return Path(dst)


def slim_state(state: dict) -> dict:
    """A training state in the shipping layout: EMA weights, recipe, metrics (and a QAT run's NNCF config, a weight
    average's members)."""
    extra = {key: state[key] for key in ("nncf_config", "averaged_from") if key in state}
    return release_state(state["ema"], state["recipe"], state.get("metrics", {}), state["epoch"], state["step"],
                         **extra)


def release_state(weights: dict, recipe_yaml: str, metrics: dict, epoch: int, step: int, **extra) -> dict:
    """The shipping layout of a checkpoint: one set of weights (as both model and EMA, stored once), recipe, metrics."""
    return {"model": weights, "ema": weights, "recipe": recipe_yaml, "metrics": metrics, "epoch": epoch, "step": step,
            **extra}


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


def freeze_batchnorm(model: torch.nn.Module) -> None:
    """BatchNorm layers to eval mode: they normalise with their running statistics and stop updating them."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def curriculum_limit(schedule, epoch: int) -> float:
    """The |angle| limit of an epoch from [[start_epoch, max_abs_deg], ...] (no schedule: no limit)."""
    limit = float("inf")
    for start, max_deg in sorted(schedule):
        if epoch >= start:
            limit = float(max_deg)
    return limit


class _Distributed:
    """torchrun's environment (WORLD_SIZE / RANK): gloo on CPU, NCCL on GPU. Gradients are averaged across ranks
    after each backward and BatchNorm buffers broadcast from rank 0 after each optimizer step, so every rank holds
    the same weights; each rank trains on its own shard of every global batch; rank 0 alone writes files."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def average_gradients(self, model: torch.nn.Module) -> None:
        if self.world > 1:
            for p in model.parameters():
                if p.grad is not None:
                    torch.distributed.all_reduce(p.grad)
                    p.grad /= self.world

    def sync_buffers(self, model: torch.nn.Module) -> None:
        if self.world > 1:
            for b in model.buffers():
                torch.distributed.broadcast(b, 0)

    def mean(self, value: float) -> float:
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.world

    def identical(self, model: torch.nn.Module) -> bool:
        """True when every rank holds exactly the same parameters (compared by checksum)."""
        if self.world == 1:
            return True
        digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()
        digests: list = [None] * self.world
        torch.distributed.all_gather_object(digests, digest)
        return len(set(digests)) == 1

    def from_main(self, value):
        """Rank 0's value of a picklable object, on every rank."""
        if self.world == 1:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, 0)
        return box[0]

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


class _Run:
    """Everything that must survive a kill to continue exactly: weights, EMA, optimizer, position, RNG streams."""

    def __init__(self, recipe: Recipe, data: PoolData, world: int = 1):
        cfg = recipe.train
        self.recipe, self.data, self.cfg, self.world = recipe, data, cfg, world
        self.model = create_for(recipe.model).to(memory_format=torch.channels_last)
        if cfg.init:
            load_weights(self.model, cfg.init, "train.init", cfg.init_match)
        if cfg.euler_weight:
            if not hasattr(self.model.head, "euler_weight"):
                raise ConfigError(f"train.euler_weight applies to the rot6d head only (model.head is "
                                  f"'{recipe.model.head}', whose loss is already in Euler angles); set it to 0")
            self.model.head.euler_weight = cfg.euler_weight
        if recipe.qat.init:
            from . import qat

            n = min(recipe.qat.calibration_size, len(data.train_idx))
            idx = data.train_idx[np.random.default_rng(cfg.seed).permutation(len(data.train_idx))[:n]]
            crops, _ = augment_batch(data.images, data.matrices, np.sort(idx), recipe.model.input_size,
                                     crop_spec(recipe), None, np.random.default_rng(0), boxes=data.boxes)
            self.model = qat.prepare(self.model, recipe.qat.init, crops, recipe.qat.preset)
        self.ema = EMA(self.model, cfg.ema_decay)
        self.frames = training_frames(recipe.augment.protocol_box, recipe.augment.protocol_box_model, data.angles)
        self.distiller = None
        self.targets = data.matrices[:, None]  # (N, K, 3, 3): labels, then the teacher's poses when distilling
        params = list(self.model.parameters())
        if recipe.distill.teacher:
            from .distill import Distiller

            self.distiller = Distiller(recipe.distill, self.model, data, recipe.model.input_size)
            self.targets = np.stack([data.matrices, self.distiller.poses], 1)
            params += list(self.distiller.parameters())
        self.opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.rng = np.random.default_rng(cfg.seed)
        self.epoch_rows = [self.rows_for(e) for e in range(cfg.epochs)]
        self.steps = [self.steps_for(len(r)) for r in self.epoch_rows]
        for epoch, (rows, steps) in enumerate(zip(self.epoch_rows, self.steps)):
            if not steps:  # an epoch of no step would score and save untrained weights as if trained
                raise ConfigError(f"epoch {epoch + 1} has {len(rows)} training rows (curriculum limit "
                                  f"{curriculum_limit(cfg.curriculum, epoch):g} deg), fewer than one batch of "
                                  f"train.batch_size {cfg.batch_size} x {world} process(es); lower train.batch_size, "
                                  "add data or relax train.curriculum")
        self.total = sum(self.steps)
        self.warmup = int(cfg.warmup_epochs * max(self.steps[0], 1))
        self.epoch, self.i, self.step = 0, 0, 0
        self.order: np.ndarray | None = None
        self.losses: list[float] = []
        self.best, self.bad_epochs = float("inf"), 0

    def rows_for(self, epoch: int) -> np.ndarray:
        limit = curriculum_limit(self.cfg.curriculum, epoch)
        idx = self.data.train_idx
        if limit != float("inf"):
            idx = idx[np.abs(self.data.angles[idx]).max(1) <= limit]
        if self.cfg.large_yaw_repeat > 1:  # large-angle emphasis: the large-yaw rows repeated within the epoch
            large = idx[np.abs(self.data.angles[idx, 0]) >= self.cfg.large_yaw_deg]
            idx = np.concatenate([idx, *[large] * (self.cfg.large_yaw_repeat - 1)])
        return idx

    def steps_for(self, rows: int) -> int:
        n = rows // (self.cfg.batch_size * self.world)
        return min(n, self.cfg.max_steps_per_epoch) if self.cfg.max_steps_per_epoch else n

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "ema": self.ema.model.state_dict(), "optimizer": self.opt.state_dict(),
                "distiller": self.distiller.state_dict() if self.distiller is not None else {},
                "epoch": self.epoch, "i": self.i, "step": self.step, "order": torch.from_numpy(self.order.copy()),
                "losses": list(self.losses), "best": self.best, "bad_epochs": self.bad_epochs,
                "numpy_rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                "recipe": recipe_to_yaml(self.recipe), **self._qat_config()}

    def _qat_config(self) -> dict:
        if not self.recipe.qat.init:
            return {}
        from . import qat

        return {"nncf_config": qat.config_of(self.model)}

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.model.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["optimizer"])
        if self.distiller is not None:
            self.distiller.load_state_dict(state["distiller"])
        self.epoch, self.i, self.step = state["epoch"], state["i"], state["step"]
        self.order = state["order"].numpy()
        self.losses, self.best, self.bad_epochs = list(state["losses"]), state["best"], state["bad_epochs"]
        self.rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])


def _targets(mats: np.ndarray, noise_deg: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(matrices, degrees) training targets; Gaussian angle noise (label smoothing) when noise_deg > 0."""
    degs = matrix_to_euler(mats.astype(np.float64))
    if noise_deg > 0:
        degs = degs + rng.normal(0.0, noise_deg, degs.shape)
        mats = euler_to_matrix(degs[:, 0], degs[:, 1], degs[:, 2])
    return mats.astype(np.float32), degs.astype(np.float32)


def train(recipe: Recipe, out_dir: str | Path, resume: bool = False) -> dict:
    """Run `recipe`, writing checkpoints and logs to `out_dir`; returns the final metrics.

    Files: last.pt (end of every epoch and every `train.checkpoint_every` steps, atomic), best.pt (EMA weights of
    the epoch with the lowest holdout MAE, or the part of it `train.select_by` names), recipe.yaml (resolved),
    log.csv (one row per epoch), and with `train.keep_epochs` epoch_<N>.pt (each epoch's EMA weights, for averaging).
    resume=True continues from last.pt exactly where it stopped, mid-epoch included: same batch order, optimizer,
    schedule, EMA and RNG streams, so a killed and resumed run ends with the weights of an uninterrupted one.
    """
    check_recipe(recipe)  # recipes built in Python too: nothing is written for an out-of-range value
    check_recipe_name(recipe.name)  # checkpoints carry it into bundles (read back, an old name is still accepted)
    dist = _Distributed()
    try:
        return _train(recipe, Path(out_dir), resume, dist)
    finally:
        dist.close()


def holdout_set(recipe: Recipe, data: PoolData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The held-out crops every epoch is scored on (no augmentation, a fixed seed), their labels in degrees, and
    which of them are profiled views (exact labels). `benchmarks/holdout.py` scores other checkpoints on the same."""
    imgs, mats = augment_batch(data.images, data.matrices, data.holdout_idx, recipe.model.input_size,
                               crop_spec(recipe), None, np.random.default_rng(recipe.train.seed + 1), boxes=data.boxes)
    return imgs, matrix_to_euler(mats.astype(np.float64)), data.holdout_idx >= len(data.angles) - data.profiled


def holdout_metrics(pred: np.ndarray, truth: np.ndarray, views: np.ndarray) -> dict:
    """Holdout MAE over all held-out rows and, when there are profiled views among them, over the pool rows (soft
    labels) and the views (exact labels) apart."""
    out = {"holdout_mae": summarize(pred, truth)["mean"]}
    if views.any() and (~views).any():
        out["holdout_pool_mae"] = summarize(pred[~views], truth[~views])["mean"]
        out["holdout_views_mae"] = summarize(pred[views], truth[views])["mean"]
    return out


def _train(recipe: Recipe, out: Path, resume: bool, dist: _Distributed) -> dict:
    cfg = recipe.train
    if cfg.select_by != "holdout" and not recipe.data.profiled:
        raise ConfigError(f"train.select_by={cfg.select_by} splits the holdout into pool rows and profiled views; "
                          "set data.profiled, or use train.select_by=holdout")
    ckpt_path = out / "last.pt"
    if resume and not ckpt_path.is_file():
        raise ConfigError(f"--resume: no checkpoint at '{ckpt_path}'; run without --resume to start fresh")
    if not resume and (ckpt_path.is_file() or (out / "best.pt").is_file()):
        raise ConfigError(f"'{out}' already holds a training run (last.pt / best.pt); continue it with --resume, or "
                          "train into a new --out (remove the folder to start that run over)")
    previous = read_checkpoint(ckpt_path) if resume else None
    if previous is not None:  # before anything is written: a resumed run is the same run
        _check_same_run(recipe, previous, ckpt_path)
    torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // dist.world))
    torch.manual_seed(cfg.seed)
    root = recipe.eval.aflw2000_root
    if root and not Path(root).is_dir():  # named but missing: an error, not a run that silently reports no dev figures
        raise ConfigError(f"eval.aflw2000_root '{root}' is not a folder (relative paths are from the current folder, "
                          f"{Path.cwd()}); fix the path, or set eval.aflw2000_root='' to train without dev figures")
    check_output_folder(out, "the run folder")
    # data, model, init weights and teacher first: a missing or mismatched input leaves no run folder behind
    run = _Run(recipe, PoolData(recipe.data, recipe.model.landmarks), dist.world)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / "recipe.yaml", recipe_to_yaml(recipe).encode())
    if previous is not None:
        run.restore(previous)

    spec, crop = input_spec(recipe), crop_spec(recipe)
    head = run.model.head
    dev = dev_crops(recipe.eval.aflw2000_root, spec, crop_spec(recipe))
    hold_imgs, hold_truth, hold_views = holdout_set(recipe, run.data)
    if cfg.select_by != "holdout" and (hold_views.all() or not hold_views.any()):
        raise ConfigError(f"train.select_by={cfg.select_by}: the holdout has {int(hold_views.sum())} profiled views and "
                          f"{int((~hold_views).sum())} pool rows; it needs both (raise data.holdout)")
    metrics: dict = {}
    board = _tensorboard(out) if cfg.tensorboard and dist.main else None
    while run.epoch < cfg.epochs:
        run.model.train()
        if cfg.freeze_bn:
            freeze_batchnorm(run.model)
        t0 = time.time()
        if run.i == 0:
            run.order = run.rng.permutation(run.epoch_rows[run.epoch])
            run.losses = []
        steps = run.steps[run.epoch]
        bar = tqdm(range(run.i, steps), desc=f"epoch {run.epoch + 1}/{cfg.epochs}", unit="step", mininterval=5,
                   initial=run.i, total=steps, disable=not dist.main)
        for i in bar:
            shard = i * dist.world + dist.rank  # this rank's slice of the global batch
            idx = run.order[shard * cfg.batch_size:(shard + 1) * cfg.batch_size]
            points = None
            if run.data.landmarks is None:
                imgs, targets = augment_batch(run.data.images, run.targets, idx, spec.size[0], crop,
                                              recipe.augment, run.rng, frames=run.frames, boxes=run.data.boxes)
            else:
                imgs, targets, points = augment_batch(run.data.images, run.targets, idx, spec.size[0], crop,
                                                      recipe.augment, run.rng, run.data.landmarks, run.frames,
                                                      run.data.boxes)
            x = to_tensor(color_jitter(imgs.astype(np.float32), recipe.augment, run.rng))
            mats, degs = _targets(targets[:, 0], cfg.label_noise_deg, run.rng)
            for group in run.opt.param_groups:
                group["lr"] = lr_at(run.step, run.total, run.warmup, cfg.lr)
            if points is not None:
                pred, marks = run.model.forward_with_landmarks(x)
                w = cfg.landmark_weight
                loss = (1 - w) * head.loss(pred, torch.from_numpy(mats), torch.from_numpy(degs)) + \
                    w * landmark_loss(marks, torch.from_numpy(points))
            elif run.distiller is None:
                loss = head.loss(run.model(x), torch.from_numpy(mats), torch.from_numpy(degs))
            else:
                pred, features = run.model.forward_with_features(x) if run.distiller.online else (run.model(x), None)
                loss = recipe.distill.hard_weight * head.loss(pred, torch.from_numpy(mats), torch.from_numpy(degs))
                loss = loss + run.distiller.loss(run.model, x, pred, features, torch.from_numpy(targets[:, 1]))
            (loss / cfg.accumulate).backward()
            run.step += 1
            run.i = i + 1
            if run.step % cfg.accumulate == 0 or run.i == steps:
                dist.average_gradients(run.model)
                run.opt.step()
                run.opt.zero_grad(set_to_none=True)
                dist.sync_buffers(run.model)
                run.ema.update(run.model, run.step - 1)  # same decay warm-up as the shipped run
            run.losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(run.losses[-50:]):.4f}")
            if cfg.checkpoint_every and run.i % cfg.checkpoint_every == 0 and run.i < steps and dist.main:
                save_checkpoint(ckpt_path, run.state())
        train_loss = dist.mean(float(np.mean(run.losses)) if run.losses else 0.0)
        identical = dist.identical(run.model)
        if not dist.main:  # only rank 0 evaluates and writes; the others wait for its stop decision
            run.epoch, run.i = run.epoch + 1, 0
            if dist.from_main(None):
                break
            continue
        metrics = {"epoch": run.epoch + 1, "step": run.step, "train_loss": train_loss, "world_size": dist.world,
                   "ranks_identical": identical,
                   "curriculum_max_deg": _finite_or_none(curriculum_limit(cfg.curriculum, run.epoch)),
                   "epoch_rows": len(run.epoch_rows[run.epoch]),
                   "epoch_seconds": round(time.time() - t0, 1)}
        metrics.update(holdout_metrics(predict_degrees(run.ema.model, hold_imgs), hold_truth, hold_views))
        if dev is not None:
            s = summarize(predict_degrees(run.ema.model, dev[0]), dev[1])
            metrics.update(dev_mae=s["mean"], dev_yaw=s["yaw"], dev_pitch=s["pitch"], dev_roll=s["roll"],
                           **{f"dev_bin_{k}": v["mean"] for k, v in s["bins"].items()})
        score = metrics[SELECT_BY[cfg.select_by]]
        improved = score < run.best - cfg.min_delta
        run.best, run.bad_epochs = (score, 0) if improved else (run.best, run.bad_epochs + 1)
        run.epoch, run.i = run.epoch + 1, 0
        state = {**run.state(), "metrics": metrics}
        if improved:
            save_checkpoint(out / "best.pt", state)
        save_checkpoint(ckpt_path, state)
        if cfg.keep_epochs:
            save_checkpoint(out / f"epoch_{run.epoch}.pt", slim_state(state))
        _append_csv(out / "log.csv", metrics)
        if board is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and key not in ("epoch", "step"):
                    board.add_scalar(key, value, run.epoch)
            board.flush()
        tqdm.write(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
        stop = bool(cfg.patience and run.bad_epochs >= cfg.patience)
        dist.from_main(stop)
        if stop:
            tqdm.write(f"early stop: holdout MAE has not improved for {cfg.patience} epochs (best {run.best:.3f})")
            break
    return metrics


# what may change when a run is resumed: how long it runs and how it reports, never what it trains (the QAT
# calibration only initialises the quantizer ranges, which the checkpoint then restores)
RESUMABLE = frozenset({"train.epochs", "train.patience", "train.threads", "train.checkpoint_every", "train.tensorboard",
                       "eval.aflw2000_root", "qat.calibration_size"})


def _check_same_run(recipe: Recipe, state: dict, path: Path) -> None:
    """Raise ConfigError when `recipe` differs from the one `state` was trained with beyond RESUMABLE keys."""
    from .recipe import recipe_from_yaml

    def flat(r: Recipe) -> dict:
        return {f"{section}.{key}": value for section, values in dataclasses.asdict(r).items()
                for key, value in (values.items() if isinstance(values, dict) else [("", values)])}

    before, now = flat(recipe_from_yaml(state["recipe"], where=f"the recipe inside '{path}'")), flat(recipe)
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k) and k not in RESUMABLE)
    if changed:
        what = "; ".join(f"{k.rstrip('.')}: {before.get(k)!r} -> {now.get(k)!r}" for k in changed[:6])
        raise ConfigError(f"--resume: the recipe differs from the one '{path}' was trained with ({what}); a resumed "
                          f"run must train the same thing (only {', '.join(sorted(RESUMABLE))} may change). Train the "
                          "new recipe into a new --out, or resume with the original settings")


def _finite_or_none(value: float) -> float | None:
    """None for no limit (inf), so the metrics stay valid JSON."""
    return value if math.isfinite(value) else None


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ConfigError(f"train.tensorboard needs the tensorboard package ({exc}): pip install tensorboard, "
                          "or set train.tensorboard=false (log.csv has the same figures)") from None
    return SummaryWriter(str(out / "tensorboard"))


def _append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
