"""Reader of the shared training pool (`faces/index.csv`) and the fusion of its soft labels into one pose.

The pool has no ground truth, only three public estimators. They fail in different places
(see faces/README.md): MediaPipe Face Mesh + canonical fit (`mp_*`) is the best below ~45 deg of yaw when its
fit residual is low; FSA-Net and WHENet are the better pair at large yaw, where WHENet keeps range and FSA-Net
under-estimates; and the coarse yaw class is a trustworthy sign. `fuse_labels` encodes exactly that.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError

LABEL_LIMIT = 99.0


@dataclass(frozen=True)
class FusionRule:
    """How the pool's soft labels become one (yaw, pitch, roll); degrees unless stated.

    Attributes:
        mp_max_fit: trust Face Mesh labels only when its RMS fit residual (cm) is at most this.
        mp_full_below / mp_none_above: |teacher yaw| where the Face Mesh weight fades from 0.5 to 0.
        whenet_yaw_from / whenet_yaw_full: |teacher yaw| where the yaw label moves from the teachers' mean
            to WHENet alone (FSA-Net saturates on profiles).
        max_whenet_yaw: rows beyond this |WHENet yaw| (back-of-head views) are dropped.
    """

    mp_max_fit: float = 0.6
    mp_full_below: float = 35.0
    mp_none_above: float = 50.0
    whenet_yaw_from: float = 30.0
    whenet_yaw_full: float = 70.0
    max_whenet_yaw: float = 120.0


@dataclass(frozen=True)
class PoolTable:
    """Columns of the pool as arrays (one row per image); boxes in crop pixels."""

    paths: list[str]
    source: np.ndarray
    identity: np.ndarray
    boxes: np.ndarray
    coarse_yaw: np.ndarray  # NaN where unknown
    fsa: np.ndarray  # (N, 3) yaw, pitch, roll
    whenet: np.ndarray
    mp: np.ndarray  # NaN where Face Mesh found no face
    mp_fit: np.ndarray
    landmarks: list  # per row: (K, 2) crop-pixel points in the source's own order (68, 30, 5) or None

    def __len__(self) -> int:
        return len(self.paths)


def _float(value: str) -> float:
    return float(value) if value != "" else float("nan")


def read_pool_index(root: str | Path) -> PoolTable:
    """Read `index.csv` of the training pool at `root`.

    Raises:
        ConfigError: there is no index.csv under `root`.
    """
    index = Path(root) / "index.csv"
    if not index.is_file():
        raise ConfigError(f"no training pool index at '{index}'; set data.root to the folder holding index.csv")
    cols: dict[str, list] = {k: [] for k in ("path", "source", "identity", "box", "coarse", "fsa", "whenet", "mp", "fit",
                                             "landmarks")}
    with open(index, newline="") as f:
        for row in csv.DictReader(f):
            cols["path"].append(row["path"])
            cols["source"].append(row["source"])
            cols["identity"].append(row["identity"])
            cols["box"].append([float(row[k]) for k in ("box_x1", "box_y1", "box_x2", "box_y2")])
            cols["coarse"].append(_float(row["coarse_yaw"]))
            for key, prefix in (("fsa", "fsa"), ("whenet", "whenet"), ("mp", "mp")):
                cols[key].append([_float(row[f"{prefix}_{a}"]) for a in ("yaw", "pitch", "roll")])
            cols["fit"].append(_float(row["mp_fit"]))
            pts = row["landmarks"].split()
            cols["landmarks"].append(np.array(pts, np.float32).reshape(-1, 2) if pts else None)
    return PoolTable(
        paths=cols["path"], source=np.array(cols["source"]), identity=np.array(cols["identity"]),
        boxes=np.array(cols["box"], np.float32), coarse_yaw=np.array(cols["coarse"]),
        fsa=np.array(cols["fsa"]), whenet=np.array(cols["whenet"]), mp=np.array(cols["mp"]),
        mp_fit=np.array(cols["fit"]), landmarks=cols["landmarks"],
    )


def _ramp(x: np.ndarray, start: float, end: float) -> np.ndarray:
    """0 at or below `start`, 1 at or above `end`, linear between."""
    return np.clip((x - start) / (end - start), 0.0, 1.0)


def fuse_labels(table: PoolTable, rule: FusionRule = FusionRule()) -> tuple[np.ndarray, np.ndarray]:
    """One (yaw, pitch, roll) label per row and a keep mask.

    Returns:
        labels: (N, 3) float32 degrees, clipped to +-99.
        keep: (N,) bool; False for back-of-head views and rows whose yaw sign contradicts coarse_yaw.
    """
    teachers, whenet = _teachers(table)
    abs_yaw = np.abs(teachers[:, 0])
    w_when = _ramp(abs_yaw, rule.whenet_yaw_from, rule.whenet_yaw_full)
    teachers[:, 0] = (1 - w_when) * teachers[:, 0] + w_when * whenet[:, 0]

    w_mp = np.where(mp_fit_ok(table, rule), 0.5 * (1 - _ramp(abs_yaw, rule.mp_full_below, rule.mp_none_above)), 0.0)
    w_mp = w_mp[:, None]
    labels = (1 - w_mp) * teachers + w_mp * np.nan_to_num(table.mp)
    labels = np.clip(labels, -LABEL_LIMIT, LABEL_LIMIT).astype(np.float32)

    keep = (np.abs(table.whenet[:, 0]) <= rule.max_whenet_yaw) & ~yaw_sign_clash(labels[:, 0], table.coarse_yaw)
    return labels, keep


def _teachers(table: PoolTable) -> tuple[np.ndarray, np.ndarray]:
    """The FSA-Net/WHENet mean and WHENet with its yaw clipped to the label range, (N, 3) each."""
    whenet = table.whenet.copy()
    whenet[:, 0] = np.clip(whenet[:, 0], -LABEL_LIMIT, LABEL_LIMIT)
    return (table.fsa + whenet) / 2.0, whenet


def mp_fit_ok(table: PoolTable, rule: FusionRule = FusionRule()) -> np.ndarray:
    """Rows where Face Mesh found the face and its canonical-face fit is good enough to trust."""
    return np.isfinite(table.mp[:, 0]) & (np.nan_to_num(table.mp_fit, nan=9.0) <= rule.mp_max_fit)


def trusted_mp(table: PoolTable, rule: FusionRule = FusionRule()) -> np.ndarray:
    """(N, 3) Face Mesh labels where the fusion rule gives them full weight (good fit, |FSA-Net/WHENet yaw| at most
    `mp_full_below`: Face Mesh's strength, about 2.3 deg MAE below 30 deg yaw against about 3.3 for the two
    teachers), NaN elsewhere. As a label vote it tilts near-frontal consensus toward Face Mesh."""
    abs_yaw = np.abs(_teachers(table)[0][:, 0])
    return np.where((mp_fit_ok(table, rule) & (abs_yaw <= rule.mp_full_below))[:, None], table.mp, np.nan)


def fused_vote(table: PoolTable) -> np.ndarray:
    """The fused training label as a label vote: (N, 3), NaN on the rows `fuse_labels` drops."""
    labels, keep = fuse_labels(table)
    return np.where(keep[:, None], labels, np.nan)


# pool-index columns usable as `edgepose label --index-votes`: name -> (N, 3) degrees, NaN = no vote
POOL_VOTES = {"fsa": lambda t: t.fsa, "whenet": lambda t: t.whenet, "mp": lambda t: t.mp, "mp_trusted": trusted_mp,
              "fused": fused_vote}


def yaw_sign_clash(yaw: np.ndarray, coarse_yaw: np.ndarray) -> np.ndarray:
    """True where a yaw beyond 5 deg points the other way from a non-frontal coarse pose class (NaN = unknown)."""
    coarse = np.nan_to_num(coarse_yaw)
    return (np.abs(coarse) >= 1) & (np.sign(yaw) != np.sign(coarse)) & (np.abs(yaw) > 5)


def holdout_mask(table: PoolTable, fraction: float, seed: int = 0) -> np.ndarray:
    """True for a validation split of about `fraction` of the rows, disjoint by identity where one is known."""
    keys = np.where(table.identity != "", table.identity, np.array(table.paths))
    uniq, inverse = np.unique(keys, return_inverse=True)
    rng = np.random.default_rng(seed)
    return (rng.random(len(uniq)) < fraction)[inverse]


# iBUG 68-point mirror permutation: index i of a flipped face is point FLIP_68[i] of the original
FLIP_68 = np.array(list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
                   + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40] + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
                   + [64, 63, 62, 61, 60, 67, 66, 65])
FLIP_5 = np.array([1, 0, 2, 4, 3])  # image-left eye, image-right eye, nose, image-left / image-right mouth corner


def five_from_68(pts: np.ndarray) -> np.ndarray:
    """(..., 5, 2) eye centres, nose tip and mouth corners (MTFL order) from (..., 68, 2) iBUG points."""
    return np.stack([pts[..., 36:42, :].mean(-2), pts[..., 42:48, :].mean(-2), pts[..., 30, :], pts[..., 48, :],
                     pts[..., 54, :]], -2)


def landmark_targets(table: PoolTable, points: int) -> np.ndarray:
    """(N, points, 2) landmark targets in crop pixels, NaN where a row has none of that kind.

    points=5: eye centres, nose tip, mouth corners (from 68-point or MTFL 5-point rows); points=68: iBUG rows only.
    """
    out = np.full((len(table), points, 2), np.nan, np.float32)
    for i, pts in enumerate(table.landmarks):
        if pts is None:
            continue
        if points == 68 and len(pts) == 68:
            out[i] = pts
        elif points == 5 and len(pts) == 68:
            out[i] = five_from_68(pts)
        elif points == 5 and len(pts) == 5:
            out[i] = pts
    return out
