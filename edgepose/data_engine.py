"""`edgepose label`: pseudo-label a face pool or an image folder with any teachers, with agreement filtering.

Votes per face:
- every teacher given with `--teacher`: a bundle folder, a manifest JSON (e.g. the public models in
  benchmarks/peers) or a training checkpoint (.pt; exported to a temporary ONNX bundle first, needs
  edgepose[train]). With flip consistency on, each teacher also sees the mirrored crop; its pose is mirrored
  back and averaged with the direct one, and the gap between the two counts toward the face's spread.
- columns already in a pool index (`--index-votes fsa,whenet,mp`): the public models' outputs stored there, or
  `fused`: the one label the training recipes use by default (`faces_pool.fuse_labels`, NaN for rows it drops), so
  a student can vote beside the labels it was trained on (one round of noisy-student relabelling).
- a landmark vote (`--face-model`): a 3D face fitted to the row's 68 annotated points.

The consensus is the chordal mean of the votes' rotation matrices. `spread` = mean geodesic angle of the votes
(and flip gaps) from it; `confidence` = exp(-spread / 10 deg). A face is dropped (`keep` = 0) when the spread is
above `--max-spread` or its yaw sign contradicts the index's coarse pose class. Output: a CSV with path, yaw,
pitch, roll, confidence, spread, votes, keep and one column triple per vote, written atomically; training recipes
read it through `data.labels`.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .angles import euler_to_matrix, flip_matrix, geodesic_degrees, matrix_to_euler, mean_rotation
from .atomic import atomic_write_bytes
from .bundle import model_name
from .errors import ConfigError
from .exporters.checkpoint_runtime import open_runtime
from .train.face_model import fitted_poses


@dataclass(frozen=True)
class LabelSettings:
    flip: bool = True
    max_spread: float = 12.0
    coarse_filter: bool = True
    confidence_scale: float = 10.0
    weights: tuple = ()  # (vote name, weight) pairs for the consensus; votes not named weigh 1
    max_yaw: tuple = ()  # (vote name, degrees) pairs: that vote counts only where the other votes' consensus |yaw|
    # is at most this (a teacher trusted in its own range, e.g. a larger student that is weaker at large yaw)
    skip_sources: tuple = ()  # (vote name, pool source) pairs: that vote does not count on that source's rows (a
    # teacher whose crop does not fit the source's box convention, e.g. 3DDFA_V2 on HIIT's whole-head 50 px boxes)
    no_flip: tuple = ()  # teacher names that vote without flip TTA while the others keep it (with flip on)

    def __post_init__(self):
        import math

        for key in ("max_spread", "confidence_scale"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"label: {key.replace('_', '-')} {value!r} must be a finite number of degrees > 0")
        for key in ("weights", "max_yaw"):
            for name, value in getattr(self, key):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                    raise ConfigError(f"label: {key} of vote '{name}' is {value!r}; give a finite number >= 0")


def consensus(votes: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Chordal mean of (N, K, 3) Euler votes (NaN = missing vote), each vote weighted by `weights` (K,) (default 1):
    (N, 3) angles and (N,) mean geodesic spread of the present votes."""
    mats = euler_to_matrix(*np.moveaxis(np.nan_to_num(votes), -1, 0))
    present = np.isfinite(votes).all(-1)
    w = present * (np.ones(votes.shape[1]) if weights is None else np.asarray(weights, float))
    mean = mean_rotation(*np.moveaxis(mats, 1, 0), weights=w)
    dist = geodesic_degrees(mats, mean[:, None])
    spread = np.where(present, dist, 0).sum(1) / np.maximum(present.sum(1), 1)
    angles = matrix_to_euler(mean)
    none = w.sum(1) == 0  # no vote, or only zero-weight ones
    angles[none] = np.nan
    return angles, np.where(none, np.nan, spread)


def teacher_votes(spec: str, images: list[np.ndarray], boxes: np.ndarray, flip: bool, chunk: int = 64,
                  models_dir: str | None = None):
    """(N, 3) poses of one teacher and (N,) flip gaps in degrees (0 without flip).

    Faces go to the model in batches of `chunk` (crops cut by the teacher's own manifest), not one `infer` call each.
    `models_dir`: where the teacher's model files are when they are not beside its manifest.
    """
    from tqdm import tqdm

    from .crop import clip_box
    from .preprocess import prepare_batch

    with open_runtime("cpu", spec, threads=0, models_dir=models_dir) as rt:
        if rt.parts:
            raise ConfigError(f"--teacher '{spec}' is an ensemble; give its member bundles as separate --teacher "
                              "options with --vote-weight NAME=W (their rotation mean is the consensus)")
        crop, spec_in = rt.manifest.crop, rt.manifest.input
        direct, mirrored = [], []
        with tqdm(total=len(images), desc=f"labelling with {Path(spec).name}", unit="face", mininterval=5) as bar:
            for start in range(0, len(images), chunk):
                batch, flipped = [], []
                for img, box in zip(images[start:start + chunk], boxes[start:start + chunk]):
                    h, w = img.shape[:2]
                    batch.append(prepare_batch(img, [clip_box(box, w, h)], crop, spec_in))
                    if flip:
                        fbox = clip_box((w - box[2], box[1], w - box[0], box[3]), w, h)
                        flipped.append(prepare_batch(np.ascontiguousarray(img[:, ::-1]), [fbox], crop, spec_in))
                direct.append(rt.predict(np.concatenate(batch))[1])
                if flip:
                    mirrored.append(rt.predict(np.concatenate(flipped))[1])
                bar.update(len(batch))
    direct = np.concatenate(direct) if direct else np.zeros((0, 3, 3))
    if not flip:
        return matrix_to_euler(direct), np.zeros(len(direct))
    mirrored = flip_matrix(np.concatenate(mirrored)) if mirrored else np.zeros((0, 3, 3))
    both = np.stack([matrix_to_euler(direct), matrix_to_euler(mirrored)], 1)
    angles, _ = consensus(both)
    return angles, geodesic_degrees(direct, mirrored)


def label_pool(root: str | Path, out: str | Path, teachers: list[str], index_votes: list[str] = (),
               face_model: str | None = None, settings: LabelSettings = LabelSettings(), limit: int = 0,
               stored_votes: tuple = (), models_dir: str | None = None) -> dict:
    """Label the rows of a pool index (boxes, coarse classes and landmarks from the index).

    stored_votes: (labels CSV, [vote names]) pairs: votes taken from an earlier labels file's columns instead of
    running their teachers again. models_dir: where the teachers' model files are when not beside their manifests.
    """
    from .datasets.faces_pool import POOL_VOTES, read_pool_index
    from .datasets.labels_csv import read_vote_columns

    table = read_pool_index(root)
    n = min(limit, len(table)) if limit else len(table)
    columns: dict[str, np.ndarray] = {}
    for name in index_votes:
        if name not in POOL_VOTES:
            raise ConfigError(f"unknown index vote '{name}'; choose from {', '.join(POOL_VOTES)}")
        columns[name] = POOL_VOTES[name](table)[:n].astype(np.float64)
    for path, names in stored_votes:
        columns.update(read_vote_columns(path, list(names), table.paths[:n]))
    if face_model:
        columns["landmarks"] = fitted_poses(face_model, table.landmarks[:n])
    images = [_read_pool_image(Path(root) / p) for p in table.paths[:n]] if teachers else []
    return _label(out, table.paths[:n], images, table.boxes[:n], teachers, columns, table.coarse_yaw[:n], settings,
                  table.source[:n], models_dir)


def _read_pool_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ConfigError(f"pool image '{path}' named by index.csv is missing or unreadable; restore it, or drop its "
                          "row from the index")
    return image


def label_folder(folder: str | Path, out: str | Path, teachers: list[str], detector: str | None = None,
                 settings: LabelSettings = LabelSettings(), limit: int = 0, models_dir: str | None = None) -> dict:
    """Label every image under `folder` (jpg/png); the largest face a detector finds in each is labelled."""
    from .runtime import Runtime

    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"--images '{folder}' is not a folder; give the folder of .jpg/.png images to label")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[: limit or None]
    if not files:
        raise ConfigError(f"--images '{folder}' holds no .jpg/.png images (searched its subfolders too)")
    paths, images, boxes = [], [], []
    with Runtime("cpu", detector=detector) as rt:
        for f in files:
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            found = rt.detector.detect(img) if img is not None else None
            if found is None or not len(found.boxes):
                continue  # unreadable image or no face: not labelled (counted in the summary)
            b = np.asarray(found.boxes, float)
            boxes.append(b[np.argmax((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))])
            paths.append(str(f.relative_to(folder)))
            images.append(img)
    if not paths:
        raise ConfigError(f"no face found in any of the {len(files)} image(s) under '{folder}', so no labels file was "
                          "written; check the images, or try another --detector")
    summary = _label(out, paths, images, np.array(boxes).reshape(-1, 4), teachers, {}, np.full(len(paths), np.nan),
                     settings, models_dir=models_dir)
    summary["images"], summary["no_face"] = len(files), len(files) - len(paths)
    return summary


def _label(out, paths, images, boxes, teachers, columns, coarse, settings: LabelSettings, sources=None,
           models_dir=None) -> dict:
    gaps = np.zeros(len(paths))
    flips = {model_name(spec): settings.flip and model_name(spec) not in settings.no_flip for spec in teachers}
    unknown = sorted(set(settings.no_flip) - set(flips))
    if unknown:
        raise ConfigError(f"--vote-no-flip names {', '.join(unknown)}, which is no teacher here; teachers: "
                          f"{', '.join(model_name(spec) for spec in teachers) or 'none'}")
    for spec in teachers:
        if model_name(spec) in columns:
            raise ConfigError(f"two votes are named '{model_name(spec)}' (a teacher and a stored or index vote); "
                              "give each vote once")
        angles, gap = teacher_votes(spec, images, boxes, flips[model_name(spec)], models_dir=models_dir)
        columns[model_name(spec)] = angles
        gaps = np.maximum(gaps, gap)
    if not columns:
        raise ConfigError("no votes: give --teacher, --index-votes or --face-model")
    weights, max_yaw = dict(settings.weights), dict(settings.max_yaw)
    skipped = dict.fromkeys(name for name, _ in settings.skip_sources)
    if skipped and sources is None:
        raise ConfigError("a vote skipped by source needs a pool index (--index): image folders have no sources")
    for name, source in settings.skip_sources:
        if name in columns:
            if source not in set(sources):
                raise ConfigError(f"vote skip on source '{source}', which the pool does not have; its sources: "
                                  f"{', '.join(sorted(set(sources)))}")
            columns[name][np.asarray(sources) == source] = np.nan
    for what, named in (("vote weight", weights), ("vote yaw bound", max_yaw), ("vote source skip", skipped)):
        unknown = sorted(set(named) - set(columns))
        if unknown:
            raise ConfigError(f"{what} for {', '.join(unknown)}, which is not a vote here; votes: {', '.join(columns)}")
    w = np.array([weights.get(name, 1.0) for name in columns])
    votes = np.stack(list(columns.values()), 1)
    if max_yaw:
        votes = _gate_votes(votes, w, [max_yaw.get(name, np.inf) for name in columns])
    angles, spread = consensus(votes, w)
    spread = np.maximum(spread, gaps / 2)
    keep = np.isfinite(spread) & (spread <= settings.max_spread)
    if settings.coarse_filter:
        from .datasets.faces_pool import yaw_sign_clash

        keep &= ~yaw_sign_clash(angles[:, 0], coarse)
    confidence = np.exp(-np.nan_to_num(spread, nan=99.0) / settings.confidence_scale)
    _write_labels(Path(out), paths, angles, confidence, spread, np.isfinite(votes).all(-1).sum(1), keep, columns)
    return {"rows": len(paths), "kept": int(keep.sum()), "median_spread": float(np.nanmedian(spread)),
            "votes": {name: weights.get(name, 1.0) for name in columns},
            **({"vote_max_yaw": max_yaw} if max_yaw else {}),
            "flip_tta": flips,
            **({"vote_skip_sources": [list(p) for p in settings.skip_sources]} if settings.skip_sources else {})}


def _gate_votes(votes: np.ndarray, weights: np.ndarray, bounds: list[float]) -> np.ndarray:
    """Votes with a finite yaw bound blanked (NaN) on rows where the consensus of the unbounded votes has a larger
    |yaw|; rows without any unbounded vote keep every vote."""
    bounds = np.asarray(bounds, float)
    free = ~np.isfinite(bounds)
    if not free.any():
        raise ConfigError("every vote has a yaw bound, so none is left to decide the yaw; leave at least one unbounded")
    reference = consensus(votes[:, free], weights[free])[0][:, 0]
    out = votes.copy()
    for k in np.flatnonzero(~free):
        out[np.abs(reference) > bounds[k], k] = np.nan  # NaN reference (no unbounded vote) compares False: kept
    return out


def _write_labels(path: Path, paths, angles, confidence, spread, count, keep, columns) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["path", "yaw", "pitch", "roll", "confidence", "spread", "votes", "keep"]
               + [f"{name}_{a}" for name in columns for a in ("yaw", "pitch", "roll")])
    for i, p in enumerate(paths):
        extra = [f"{v:.2f}" if np.isfinite(v) else "" for name in columns for v in columns[name][i]]
        w.writerow([p, *(f"{v:.2f}" for v in angles[i]), f"{confidence[i]:.3f}", f"{spread[i]:.2f}",
                    int(count[i]), int(keep[i])] + extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue().encode())
