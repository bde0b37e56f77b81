"""Composed test frames: real face crops of the training pool pasted, at chosen sizes, into one frame with known boxes.

For detection and whole-frame latency measurements (several faces, small and large, profiles) where no labelled
multi-face photos are at hand. Each crop is blended in through a soft round mask, so no square seam is left to find.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..datasets.faces_pool import read_pool_index

SOURCES = ("w300", "cfp", "ytf", "mtfl")  # 128 px crops; hiit's 50 px head crops have no tight face box


@dataclass(frozen=True)
class Scene:
    """frame: BGR uint8. boxes: (K, 4) the pasted faces' tight boxes (x1, y1, x2, y2) in frame pixels.
    yaw: (K,) the pool's WHENet yaw of each face, degrees (a soft label, for binning by yaw only)."""

    frame: np.ndarray
    boxes: np.ndarray
    yaw: np.ndarray


class SceneMaker:
    """Draws pool faces (seeded) and pastes them into frames.

    Args:
        pool_root: the faces pool folder (index.csv and the crops).
        seed: the random stream of faces, positions and backgrounds.
        min_abs_yaw: only faces whose WHENet |yaw| is at least this (e.g. 50 for profiles).
    """

    def __init__(self, pool_root: str | Path, seed: int = 0, min_abs_yaw: float = 0.0):
        self.root = Path(pool_root)
        table = read_pool_index(self.root)
        keep = np.isin(table.source, SOURCES) & (np.abs(table.whenet[:, 0]) >= min_abs_yaw)
        self.rows = np.flatnonzero(keep)
        self.table = table
        self.rng = np.random.default_rng(seed)

    def background(self, width: int, height: int) -> np.ndarray:
        """A smooth random colour field with mild noise (no faces in it)."""
        small = self.rng.integers(30, 220, (3, 4, 3)).astype(np.uint8)
        w, h = min(width, 1024), min(height, 1024)  # noise drawn at most at 1024 px, then stretched (memory)
        bg = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        bg = np.clip(bg + self.rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
        return bg if (w, h) == (width, height) else cv2.resize(bg, (width, height), interpolation=cv2.INTER_LINEAR)

    def scene(self, width: int, height: int, face_sizes) -> Scene:
        """A frame with one face per entry of `face_sizes` (the face box's longer side in pixels), not overlapping."""
        frame = self.background(width, height)
        boxes, yaws, taken = [], [], []
        for size in face_sizes:
            row = int(self.rng.choice(self.rows))
            crop = cv2.imread(str(self.root / self.table.paths[row]))
            bx1, by1, bx2, by2 = self.table.boxes[row]
            scale = size / max(bx2 - bx1, by2 - by1)
            side = int(round(crop.shape[0] * scale))
            for _ in range(50):  # rejection sampling of a free spot
                x, y = int(self.rng.integers(0, max(1, width - side))), int(self.rng.integers(0, max(1, height - side)))
                if all(x + side <= tx or tx + ts <= x or y + side <= ty or ty + ts <= y for tx, ty, ts in taken):
                    break
            else:
                continue
            taken.append((x, y, side))
            self._paste(frame, cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA if scale < 1 else
                                          cv2.INTER_LINEAR), x, y)
            boxes.append([x + bx1 * scale, y + by1 * scale, x + bx2 * scale, y + by2 * scale])
            yaws.append(float(self.table.whenet[row, 0]))
        return Scene(frame, np.array(boxes, float).reshape(-1, 4), np.array(yaws))

    @staticmethod
    def _paste(frame: np.ndarray, crop: np.ndarray, x: int, y: int) -> None:
        h, w = frame.shape[:2]
        side = crop.shape[0]
        x2, y2 = min(x + side, w), min(y + side, h)
        crop = crop[: y2 - y, : x2 - x]
        r = np.hypot(*np.meshgrid(np.arange(side) - side / 2 + 0.5, np.arange(side) - side / 2 + 0.5))
        alpha = np.clip((side * 0.5 - r) / (side * 0.12), 0, 1)[: y2 - y, : x2 - x, None]
        region = frame[y:y2, x:x2]
        region[:] = (alpha * crop + (1 - alpha) * region).astype(np.uint8)
