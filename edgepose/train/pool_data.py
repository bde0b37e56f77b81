"""Training batches from the shared faces pool: decoded-image cache, label fusion, pose-consistent augmentation."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..angles import euler_to_matrix, flip_matrix, rotate_in_plane
from ..atomic import atomic_open
from ..datasets.faces_pool import (FLIP_5, FLIP_68, FusionRule, five_from_68, fuse_labels, holdout_mask,
                                   landmark_targets, read_pool_index)
from ..errors import ConfigError
from ..manifest import CropSpec
from .recipe import TRAINING_CROPS, AugmentConfig, DataConfig

POOL_SIDE = 128  # crops are stored at 128 px (HIIT at 50 px, upscaled into the cache)


def cache_dir() -> Path:
    """Where decoded datasets are cached: $EDGEPOSE_CACHE, else ~/.cache/edgepose (never inside ../shared)."""
    return Path(os.environ.get("EDGEPOSE_CACHE", Path.home() / ".cache" / "edgepose"))


def load_pool_images(root: Path, paths: list[str]) -> np.ndarray:
    """(N, 128, 128, 3) uint8 BGR images of the pool rows, decoded once and cached as a .npy file."""
    key = hashlib.sha1(("\n".join(paths) + str(root.resolve())).encode()).hexdigest()[:12]
    cache = cache_dir() / f"faces_{len(paths)}_{key}.npy"
    if cache.is_file():
        return np.load(cache, mmap_mode="r")
    images = np.empty((len(paths), POOL_SIDE, POOL_SIDE, 3), np.uint8)
    for i, rel in enumerate(tqdm(paths, desc="decoding faces pool", unit="img", mininterval=2)):
        img = cv2.imread(str(root / rel), cv2.IMREAD_COLOR)
        if img is None:
            raise ConfigError(f"cannot read pool image '{root / rel}' listed in {root / 'index.csv'}; check data.root "
                              "points at an intact copy of the pool")
        if img.shape[:2] != (POOL_SIDE, POOL_SIDE):
            img = cv2.resize(img, (POOL_SIDE, POOL_SIDE), interpolation=cv2.INTER_CUBIC)
        images[i] = img
    with atomic_open(cache) as f:  # runs started together may both build it
        np.save(f, images)
    return images


class PoolData:
    """Train / holdout split of the pool with fused labels as rotation matrices."""

    def __init__(self, cfg: DataConfig, landmarks: int = 0):
        if cfg.profiled_fit_model and not cfg.profiled:
            raise ConfigError("data.profiled_fit_model relabels the views of data.profiled, which is empty; set "
                              "data.profiled to a folder made by `edgepose profile`")
        if cfg.profiled_fit_model and cfg.profiled_relabel:
            raise ConfigError("data.profiled_fit_model and data.profiled_relabel both set the views' source poses; "
                              "choose one")
        if not cfg.root:
            raise ConfigError("data.root is empty: set it to the training pool folder (the one holding index.csv), "
                              "in the recipe or with --set data.root=PATH")
        root = Path(cfg.root)
        table = read_pool_index(root)
        labels, keep = fuse_labels(table, FusionRule(mp_max_fit=cfg.mp_max_fit))
        if cfg.labels:
            labels, keep = _labels_file(cfg, table.paths)
        elif cfg.profiled_relabel and cfg.profiled:
            raise ConfigError("data.profiled_relabel takes the views' source labels from data.labels, which is empty; "
                              "set data.labels to a file made by `edgepose label`, or drop profiled_relabel")
        rows = np.flatnonzero(keep)
        if cfg.pool_max_abs_yaw < 0:
            raise ConfigError(f"data.pool_max_abs_yaw is {cfg.pool_max_abs_yaw}; give a bound in degrees (e.g. 60), "
                              "or 0 to keep every pool row")
        if cfg.pool_max_abs_yaw:
            rows = rows[np.abs(labels[rows, 0]) <= cfg.pool_max_abs_yaw]
        if cfg.limit:
            rows = rows[np.random.default_rng(0).permutation(len(rows))[: cfg.limit]]
            rows.sort()
        self.images = load_pool_images(root, [table.paths[i] for i in rows])
        self.angles = labels[rows]
        # face boxes in the cached crops' pixels (HIIT's 50 px images are upscaled into the cache)
        side = np.array([50.0 if table.source[i] == "hiit" else POOL_SIDE for i in rows], np.float32)
        self.boxes = table.boxes[rows] * (POOL_SIDE / side)[:, None]
        self.landmarks = landmark_targets(table, landmarks)[rows] if landmarks else None
        self.matrices = euler_to_matrix(self.angles[:, 0], self.angles[:, 1], self.angles[:, 2]).astype(np.float32)
        held = holdout_mask(table, cfg.holdout)[rows]
        self.profiled = 0  # synthetic rows appended after the pool rows
        if cfg.profiled_extra and not cfg.profiled:
            raise ConfigError("data.profiled_extra adds to data.profiled, which is empty; set data.profiled to the "
                              "first profiled folder")
        if cfg.profiled:
            held = self._add_profiled(cfg, table, held, landmarks, labels, keep)
        self.train_idx = np.flatnonzero(~held)
        self.holdout_idx = np.flatnonzero(held)

    def _add_profiled(self, cfg: DataConfig, table, held: np.ndarray, landmarks: int, labels: np.ndarray,
                      keep: np.ndarray) -> np.ndarray:
        """Append the synthetic views of `cfg.profiled` and `cfg.profiled_extra`; a view is held out when its source
        face is (no identity leaks between train and holdout). With `cfg.profiled_relabel`, a view whose source is
        kept gets that source's pool label composed with its turn; with `cfg.profiled_fit_model`, its source's 3D-fit
        pose composed with its turn. Returns the extended holdout mask."""
        from .profile_pool import load_profiled

        views = load_profiled(cfg.profiled)
        for folder in cfg.profiled_extra:
            more = load_profiled(folder)
            views = {k: np.concatenate([views[k], more[k]]) for k in views}
        if cfg.limit:
            views = {k: v[: max(1, cfg.limit // 4)] for k, v in views.items()}
        row_of = {p: i for i, p in enumerate(table.paths)}
        rows = [row_of[p] for p in views["source_path"]]
        src_held = holdout_mask(table, cfg.holdout)[rows]
        self.images = np.concatenate([np.asarray(self.images), views["images"]])
        angles = views["angles"].astype(np.float32)
        if cfg.profiled_fit_model:
            angles = _relabel_views(angles, views, rows, *_fitted_sources(cfg.profiled_fit_model, table, rows))
        elif cfg.profiled_relabel:
            angles = _relabel_views(angles, views, rows, labels, keep)
        self.angles = np.concatenate([self.angles, angles])
        self.matrices = np.concatenate([self.matrices, euler_to_matrix(*angles.T).astype(np.float32)])
        self.boxes = np.concatenate([self.boxes, views["boxes"].astype(np.float32)])
        if landmarks:
            pts = views["landmarks"]
            if landmarks == 5:
                pts = five_from_68(pts)
            self.landmarks = np.concatenate([self.landmarks, pts.astype(np.float32)])
        self.profiled = len(angles)
        return np.concatenate([held, src_held])


def _relabel_views(angles: np.ndarray, views: dict, rows: list[int], labels: np.ndarray,
                   keep: np.ndarray) -> np.ndarray:
    """Views' labels recomputed from their sources' pool labels (where kept) and their camera turns."""
    from .profiling import rotated_label

    out = angles.copy()
    for i, (row, turn) in enumerate(zip(rows, views["turn"])):
        if keep[row]:
            out[i] = rotated_label(labels[row].astype(np.float64), *turn)
    return out


def _fitted_sources(face_model: str, table, rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Pool-row poses of `face_model` fitted to the 68 points of the rows in `rows` (300W-LP labels its views this
    way) and the mask of rows that have one."""
    from .face_model import fitted_poses

    sources = np.unique(rows)
    poses = np.full((len(table.paths), 3), np.nan)
    poses[sources] = fitted_poses(face_model, [table.landmarks[r] for r in sources])
    return poses, np.isfinite(poses).all(1)


def _labels_file(cfg: DataConfig, paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Labels and keep mask from an `edgepose label` CSV (rows it lacks or dropped are not kept)."""
    from ..datasets.labels_csv import read_labels

    table = read_labels(cfg.labels, cfg.labels_min_confidence)
    if paths and not any(p in table for p in paths):
        raise ConfigError(f"data.labels '{cfg.labels}' keeps no row of the pool in data.root (no path in common, or "
                          f"none kept at confidence >= {cfg.labels_min_confidence}); give the labels of this pool")
    labels = np.array([table.get(p, (0.0, 0.0, 0.0)) for p in paths], np.float32)
    return np.clip(labels, -99.0, 99.0), np.array([p in table for p in paths])


def augment_batch(images: np.ndarray, matrices: np.ndarray, idx: np.ndarray, size: int, crop: CropSpec | float,
                  aug: AugmentConfig | None, rng: np.random.Generator, points: np.ndarray | None = None,
                  frames: np.ndarray | None = None, boxes: np.ndarray | None = None):
    """Warp pool crops to size x size with labels kept true.

    `crop` is the model's crop (`checkpoint.crop_spec(recipe)`) or a square crop's scale. Square: the stored crop
    already is the 1.6x square around the face; the scale rescales relative to that. Roi: the square is cut around
    each row's face box (`boxes`, (rows, 4) stored-crop pixels, PoolData.boxes) as the manifest's roi protocol cuts
    it from a frame; scale and shift jitter then move it as a detector's box would.
    Flip mirrors the pose (F R F), in-plane rotation by d (clockwise as displayed) composes Rz(d) R.
    `matrices` is (rows, 3, 3) or (rows, K, 3, 3) (labels and a teacher's poses, transformed alike).
    Returns BGR uint8 (N, size, size, 3) and float32 rotation matrices shaped like matrices[idx]; with `points`
    ((rows, P, 2) crop pixels, NaN = missing) also the points warped alike, mirrored index order on flips, in 0..1.
    With `frames` ((rows, 3), from train/protocol_box.py) a crop is first reframed, with probability
    `aug.protocol_box`, on the box of its visible AFLW-21 points: centre shifted by frames[:2] 68-point box sides,
    side scaled by frames[2].
    """
    n = len(idx)
    out = np.empty((n, size, size, 3), np.uint8)
    mats = matrices[idx].astype(np.float64)
    pts = None if points is None else points[idx].astype(np.float64)
    if not isinstance(crop, CropSpec):
        crop = CropSpec(protocol="square", scale=float(crop))
    roi = crop.protocol == "roi"
    if roi and boxes is None:
        raise ConfigError("a roi crop is cut around each row's face box: pass the rows' boxes (PoolData.boxes)")
    if crop.protocol not in TRAINING_CROPS:
        raise ConfigError(f"training crops support the {' and '.join(TRAINING_CROPS)} protocols, not '{crop.protocol}'")
    base = POOL_SIDE * crop.scale / 1.6
    middle = ((POOL_SIDE - 1) / 2, (POOL_SIDE - 1) / 2)
    for j, i in enumerate(idx):
        scale, dx, dy, rot, flip = 1.0, 0.0, 0.0, 0.0, False
        if roi:
            x1, y1, x2, y2 = (float(v) for v in boxes[i])
            mean_side = ((x2 - x1) + (y2 - y1)) / 2
            base = max(crop.scale * mean_side, 1.0)
            middle = ((x1 + x2) / 2 + crop.shift[0] * mean_side - 0.5, (y1 + y2) / 2 + crop.shift[1] * mean_side - 0.5)
        if aug is not None and frames is not None and aug.protocol_box and rng.random() < aug.protocol_box:
            box = POOL_SIDE / 1.6  # the 68-point box side in the stored crop
            dx, dy, scale = frames[i, 0] * box, frames[i, 1] * box, float(frames[i, 2])
        if aug is not None:
            scale *= 1.0 + rng.uniform(-aug.scale_jitter, aug.scale_jitter)
            jx, jy = rng.uniform(-aug.shift_jitter, aug.shift_jitter, 2) * base
            dx, dy = dx + jx, dy + jy
            rot = rng.uniform(-aug.rotate_deg, aug.rotate_deg)
            flip = rng.random() < aug.flip
        centre = (middle[0] + dx, middle[1] + dy)  # pixel centres
        m = cv2.getRotationMatrix2D(centre, -rot, size / (base * scale))  # cv2: positive = counter-clockwise
        m[:, 2] += np.array([(size - 1) / 2, (size - 1) / 2]) - np.array(centre)
        if flip:
            m = np.array([[-1.0, 0, size - 1], [0, 1.0, 0]]) @ np.vstack([m, [0, 0, 1]])
        img = np.asarray(images[i])
        interp = cv2.INTER_AREA if size < base * scale * 0.7 else cv2.INTER_LINEAR
        out[j] = cv2.warpAffine(img, m, (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)
        if aug is not None and rng.random() < aug.lowres:
            small = max(12, int(size * rng.uniform(0.3, 0.6)))
            out[j] = cv2.resize(cv2.resize(out[j], (small, small), interpolation=cv2.INTER_AREA), (size, size))
        if aug is not None and aug.blur and rng.random() < aug.blur:
            out[j] = cv2.GaussianBlur(out[j], (0, 0), rng.uniform(0.5, 1.5))
        if aug is not None and aug.occlusion and rng.random() < aug.occlusion:
            _erase(out[j], rng)
        if rot:
            mats[j] = rotate_in_plane(mats[j], rot)
        if flip:
            mats[j] = flip_matrix(mats[j])
        if pts is not None:
            warped = pts[j] @ m[:, :2].T + m[:, 2]
            pts[j] = (warped[FLIP_68] if len(warped) == 68 else warped[FLIP_5]) if flip else warped
    if pts is None:
        return out, mats.astype(np.float32)
    return out, mats.astype(np.float32), (pts / size).astype(np.float32)


def _erase(img: np.ndarray, rng: np.random.Generator) -> None:
    """Random erasing in place: a box covering 5-25 % of the crop, aspect 0.5-2, filled with uniform noise
    (an occluder: hand, phone, mask). Pose labels are unchanged."""
    size = img.shape[0]
    area = rng.uniform(0.05, 0.25) * size * size
    aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
    h = int(min(size, round(np.sqrt(area * aspect))))
    w = int(min(size, round(np.sqrt(area / aspect))))
    y, x = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
    img[y:y + h, x:x + w] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def color_jitter(x: np.ndarray, aug: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Brightness / contrast / saturation jitter and random grayscale on a float32 (N, H, W, 3) 0..255 batch."""
    n = len(x)
    s = aug.color_jitter
    gray = x.mean(-1, keepdims=True)
    sat = rng.uniform(1 - s, 1 + s, (n, 1, 1, 1)).astype(np.float32)
    sat[rng.random(n) < aug.grayscale] = 0.0
    x = gray + (x - gray) * sat
    contrast = rng.uniform(1 - s, 1 + s, (n, 1, 1, 1)).astype(np.float32)
    mean = x.mean((1, 2, 3), keepdims=True)
    x = mean + (x - mean) * contrast
    x = x * rng.uniform(1 - s, 1 + s, (n, 1, 1, 1)).astype(np.float32)
    return np.clip(x, 0, 255)
