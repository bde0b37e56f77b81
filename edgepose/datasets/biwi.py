"""BIWI Kinect Head Pose readers: the public folder layout and the common npz packing.

Folder layout (`hpdb/NN/frame_XXXXX_rgb.png` + `frame_XXXXX_pose.txt`): the pose file holds the head rotation
matrix (3 rows) and the head centre (4th row). Converted at the door as the public head-pose code does it:
R^T, then yaw and roll negated, i.e. edgepose angles = matrix_to_euler(F R^T F) with F = diag(-1, 1, 1).
There is no face box in the release: evaluate it with the detector protocol.

npz packing (FSA-Net style): `image` (N, H, W, 3) face crops and `pose` (N, 3) yaw, pitch, roll in degrees. The crops
were cut with their own margin; `box_fraction` says which central share of the crop is the face box.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..angles import flip_matrix, matrix_to_euler
from ..errors import ConfigError
from .aflw2000 import MAX_ABS_ANGLE, PoseSample


def biwi_angles(rotation: np.ndarray) -> np.ndarray:
    """yaw, pitch, roll (degrees, edgepose convention) of a BIWI pose-file rotation matrix."""
    return matrix_to_euler(flip_matrix(np.asarray(rotation, np.float64).T))


def read_biwi_pose(path: Path) -> np.ndarray:
    rows = [list(map(float, line.split())) for line in Path(path).read_text().splitlines() if line.strip()]
    if len(rows) < 3 or any(len(r) != 3 for r in rows[:3]):
        raise ConfigError(f"'{path}' is not a BIWI pose file (3 rows of a rotation matrix, then the head centre)")
    return biwi_angles(np.array(rows[:3]))


def read_biwi(root: str | Path) -> list[PoseSample]:
    """All frames of a BIWI folder (or one npz file) within the +-99 degree protocol, sorted by path."""
    root = Path(root)
    if root.suffix == ".npz":
        return read_biwi_npz(root)
    poses = sorted(root.rglob("*_pose.txt")) if root.is_dir() else []
    if not poses:
        raise ConfigError(f"no BIWI frames under '{root}': expected hpdb/NN/frame_XXXXX_rgb.png + frame_XXXXX_pose.txt, "
                          "or pass an .npz with 'image' and 'pose' arrays")
    samples = []
    for pose in poses:
        image = pose.with_name(pose.name.replace("_pose.txt", "_rgb.png"))
        yaw, pitch, roll = read_biwi_pose(pose)
        if image.is_file() and max(abs(yaw), abs(pitch), abs(roll)) <= MAX_ABS_ANGLE:
            samples.append(PoseSample(image, None, float(yaw), float(pitch), float(roll)))
    return samples


def read_biwi_npz(path: str | Path, box_fraction: float = 0.6) -> list[PoseSample]:
    """Samples of an npz packing; each holds its crop in `pixels` and the central face box."""
    data = np.load(path)
    if "image" not in data or "pose" not in data:
        raise ConfigError(f"'{path}' lacks the 'image' and 'pose' arrays of the BIWI npz packing")
    images, poses = data["image"], data["pose"]
    samples = []
    for img, (yaw, pitch, roll) in zip(images, poses):
        if max(abs(yaw), abs(pitch), abs(roll)) > MAX_ABS_ANGLE:
            continue
        h, w = img.shape[:2]
        mx, my = w * (1 - box_fraction) / 2, h * (1 - box_fraction) / 2
        samples.append(PoseSample(Path(path), (mx, my, w - mx, h - my), float(yaw), float(pitch), float(roll),
                                  pixels=np.ascontiguousarray(img[..., ::-1])))  # npz crops are RGB
    return samples
