"""Knowledge distillation: a teacher checkpoint's pose as a soft label (cached: the teacher runs once per image),
plus optional online feature-map MSE through a 1x1 adapter and KL divergence on binned distributions.

The cached teacher pose is computed on the un-augmented crop and then goes through the same flip / in-plane
rotation as the labels (augmentations are pose-consistent), so it stays exact under augmentation.
"""
from __future__ import annotations

import hashlib


import numpy as np
import torch
from torch import nn

from ..angles import euler_to_matrix
from ..atomic import atomic_open
from ..errors import ConfigError
from ..manifest import sha256_file
from .heads import BIN_COUNT, geodesic_loss
from .pool_data import PoolData, augment_batch, cache_dir
from .recipe import DistillConfig


class Distiller(nn.Module):
    """Holds the frozen teacher, its cached poses for the pool rows, and the feature adapter (trained)."""

    def __init__(self, cfg: DistillConfig, student: nn.Module, data: PoolData, student_size: int):
        super().__init__()
        from .checkpoint import crop_spec, load_trained

        self.cfg = cfg
        teacher, trecipe = load_trained(cfg.teacher)
        self.teacher = [teacher.eval()]  # a list keeps it out of this module's parameters and state_dict
        for p in teacher.parameters():
            p.requires_grad_(False)
        self.teacher_size, self.teacher_crop = trecipe.model.input_size, crop_spec(trecipe)
        self.poses = self._cached_poses(cfg.teacher, data)
        real = len(data.images) - data.profiled
        self.poses[real:] = data.matrices[real:]  # profiled views keep their exact labels: no teacher guess there
        self.adapter = None
        if cfg.feature_weight > 0:
            with torch.no_grad():
                s_ch = student.backbone.forward_features(torch.zeros(1, 3, student_size, student_size)).shape[1]
                t_ch = teacher.backbone.forward_features(torch.zeros(1, 3, self.teacher_size, self.teacher_size)).shape[1]
            self.adapter = nn.Conv2d(s_ch, t_ch, 1)
        if cfg.kl_weight > 0 and not (_is_bins(student) and _is_bins(teacher)):
            raise ConfigError("distill.kl_weight needs 'bins' heads on both student and teacher; use pose_weight otherwise")

    def _cached_poses(self, teacher_path: str, data: PoolData) -> np.ndarray:
        from .checkpoint import predict_degrees

        key = hashlib.sha1(f"{sha256_file(teacher_path)}:{data.images.shape}:{data.angles.sum():.6f}".encode()).hexdigest()[:16]
        path = cache_dir() / f"teacher_poses_{key}.npy"
        if path.is_file():
            return np.load(path)
        rng = np.random.default_rng(0)
        degs = []
        for start in range(0, len(data.images), 512):
            idx = np.arange(start, min(start + 512, len(data.images)))
            crops, _ = augment_batch(data.images, data.matrices, idx, self.teacher_size, self.teacher_crop, None, rng,
                                     boxes=data.boxes)
            degs.append(predict_degrees(self.teacher[0], crops))
        d = np.concatenate(degs)
        mats = euler_to_matrix(d[:, 0], d[:, 1], d[:, 2]).astype(np.float32)
        with atomic_open(path) as f:  # a killed run leaves no half cache behind
            np.save(f, mats)
        return mats

    @property
    def online(self) -> bool:
        return self.cfg.feature_weight > 0 or self.cfg.kl_weight > 0

    def loss(self, student: nn.Module, x: torch.Tensor, out: torch.Tensor, features: torch.Tensor | None,
             teacher_r: torch.Tensor) -> torch.Tensor:
        """The distillation terms for one batch (added to the weighted label loss by the trainer)."""
        total = self.cfg.pose_weight * geodesic_loss(student.head.to_matrix(out), teacher_r)
        if self.online:
            teacher = self.teacher[0]
            tx = x if x.shape[-1] == self.teacher_size else nn.functional.interpolate(
                x, size=(self.teacher_size, self.teacher_size), mode="bilinear", align_corners=False)
            with torch.no_grad():
                t_features = teacher.backbone.forward_features(tx)
                t_out = teacher.head(teacher.backbone.pool(t_features))
            if self.adapter is not None:
                mapped = nn.functional.adaptive_avg_pool2d(self.adapter(features), t_features.shape[-2:])
                total = total + self.cfg.feature_weight * nn.functional.mse_loss(mapped, t_features)
            if self.cfg.kl_weight > 0:
                t = self.cfg.temperature
                s_log = nn.functional.log_softmax(out.view(-1, 3, BIN_COUNT) / t, -1)
                t_prob = nn.functional.softmax(t_out.view(-1, 3, BIN_COUNT) / t, -1)
                total = total + self.cfg.kl_weight * t * t * nn.functional.kl_div(s_log, t_prob, reduction="batchmean")
        return total


def _is_bins(model: nn.Module) -> bool:
    return type(model.head).__name__ == "BinnedHead"
