"""AFLW2000-3D and 300W-LP readers (.jpg + .mat pairs) with the standard evaluation protocol.

Protocol of published results: pose from `Pose_Para[:3]` (pitch, yaw, roll in radians), samples with any
|angle| > 99 degrees dropped, face box = bounding box of the visible `pt2d` points (negative = invisible).
`box68` is the other convention some works use: the bounding box of the 68 `pt3d_68` points (x, y), occluded ones
included, which is wider and, on profiles, off-centre towards the hidden side.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError

MAX_ABS_ANGLE = 99.0


@dataclass(frozen=True)
class PoseSample:
    """One labelled face: image path, face box (x1, y1, x2, y2) in image pixels or None when the dataset has no
    boxes (evaluate with a detector), yaw/pitch/roll in degrees, and the BGR pixels for in-memory datasets."""

    image: Path
    box: tuple[float, float, float, float] | None
    yaw: float
    pitch: float
    roll: float
    pixels: np.ndarray | None = None
    points68: np.ndarray | None = field(default=None, repr=False)  # (68, 2) image x, y of `pt3d_68` (AFLW2000-3D)

    @property
    def box68(self) -> tuple[float, float, float, float] | None:
        """The box of the 68 3D landmarks (occluded ones included), or None when the labels have none."""
        if self.points68 is None:
            return None
        (x1, y1), (x2, y2) = self.points68.min(0), self.points68.max(0)
        return float(x1), float(y1), float(x2), float(y2)

    def load(self) -> np.ndarray:
        """The BGR uint8 image."""
        if self.pixels is not None:
            return self.pixels
        import cv2

        img = cv2.imread(str(self.image))
        if img is None:
            raise ConfigError(f"cannot read image '{self.image}'")
        return img


def read_mat_sample(mat_path: Path) -> PoseSample | None:
    """Read one `.mat` label; None when the sample falls outside the protocol (|angle| > 99 or no visible point)."""
    from scipy.io import loadmat

    mat = loadmat(str(mat_path))
    pitch, yaw, roll = np.rad2deg(np.asarray(mat["Pose_Para"], dtype=np.float64).ravel()[:3])
    if max(abs(yaw), abs(pitch), abs(roll)) > MAX_ABS_ANGLE:
        return None
    pts = np.asarray(mat["pt2d"], dtype=np.float64)
    if pts.shape[0] != 2:
        pts = pts.T
    visible = pts[:, (pts[0] >= 0) & (pts[1] >= 0)]
    if visible.shape[1] < 2:
        return None
    box = (visible[0].min(), visible[1].min(), visible[0].max(), visible[1].max())
    if box[2] <= box[0] or box[3] <= box[1]:
        return None
    points68 = None
    if "pt3d_68" in mat:
        p68 = np.asarray(mat["pt3d_68"], dtype=np.float64)
        points68 = (p68 if p68.shape[0] in (2, 3) else p68.T)[:2].T.copy()
    return PoseSample(mat_path.with_suffix(".jpg"), tuple(float(v) for v in box), float(yaw), float(pitch), float(roll),
                      points68=points68)


def read_aflw2000(root: str | Path) -> list[PoseSample]:
    """All samples of an AFLW2000-3D (or 300W-LP) folder that pass the protocol, sorted by file name.

    Raises:
        ConfigError: the folder does not exist or holds no `.mat` files.
    """
    root = Path(root)
    mats = sorted(root.rglob("*.mat")) if root.is_dir() else []
    if not mats:
        raise ConfigError(f"no AFLW2000/300W-LP .mat labels under '{root}'; point --root at the folder holding "
                          "imageNNNNN.jpg + imageNNNNN.mat pairs")
    samples = [s for s in (read_mat_sample(m) for m in mats) if s is not None and s.image.exists()]
    return samples
