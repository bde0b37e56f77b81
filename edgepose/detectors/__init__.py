"""Face detectors: frame -> face boxes (x1, y1, x2, y2) with scores, in the models' tight-box convention."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, did_you_mean
from ..platform import DetectorConfig


def map_box(box: np.ndarray, box_map) -> np.ndarray:
    """Shift/scale a detector box onto the tight-face-box convention: centre += (dcx*w, dcy*h), size *= (sw, sh)."""
    dcx, dcy, sw, sh = box_map
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2 + dcx * w, (y1 + y2) / 2 + dcy * h
    return np.array([cx - sw * w / 2, cy - sh * h / 2, cx + sw * w / 2, cy + sh * h / 2])


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression, highest score first."""
    order = np.argsort(-scores)
    keep: list[int] = []
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while len(order):
        i = order[0]
        keep.append(int(i))
        xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        overlap = inter / (areas[i] + areas[order[1:]] - inter + 1e-9)
        order = order[1:][overlap < iou]
    return keep


DETECTORS = {"haar": ("edgepose.detectors.haar", "HaarDetector")}


def create_detector(cfg: DetectorConfig):
    """Build the detector named by a platform's `detector` section."""
    import importlib

    if cfg.type not in DETECTORS:
        raise ConfigError(f"unknown detector '{cfg.type}'.{did_you_mean(cfg.type, DETECTORS)} Available: {sorted(DETECTORS)}")
    module, cls = DETECTORS[cfg.type]
    return getattr(importlib.import_module(module), cls)(cfg)
