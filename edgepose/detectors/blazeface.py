"""MediaPipe BlazeFace (short or full range .tflite) on LiteRT: SSD anchors, box + 6 keypoint decoding, weighted NMS.

The model file is user-supplied (Apache-2.0, from MediaPipe); the variant is read from its input size
(128 px short range, 192 px full range). The whole frame is letterboxed to a square, as MediaPipe does.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..errors import ModelFormatError
from ..platform import DetectorConfig
from . import Detections, finish, model_path

# (strides, anchors per cell) of MediaPipe's SSD anchor calculator, fixed anchor size, offset 0.5
VARIANTS = {128: ((8, 2), (16, 6)), 192: ((4, 1),)}
LANDMARKS = ("left_eye", "right_eye", "nose_tip", "mouth_centre", "left_ear_tragion", "right_ear_tragion")
DEFAULT_SCORE = 0.5
# BlazeFace box -> 68-point face-box convention, fitted on the training pool (w300 + ytf), never on dev:
#   python benchmarks/detector_boxes.py --detector blazeface --model .../blazeface_short_range.tflite --n 1000
#   (1000/1000 found; IoU 0.80 raw -> 0.85 mapped)
BLAZEFACE_BOX_MAP = (0.0022, 0.0616, 0.9679, 0.9391)
NMS_IOU = 0.3


def ssd_anchors(size: int) -> np.ndarray:
    """(N, 2) anchor centres in 0..1, in the model's output order (row-major cells, anchors per cell repeated)."""
    centres = []
    for stride, per_cell in VARIANTS[size]:
        cells = size // stride
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], 1)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, points: np.ndarray, iou: float):
    """MediaPipe's weighted NMS: each kept box is the score-weighted mean of the boxes overlapping it."""
    order = np.argsort(-scores)
    out_boxes, out_scores, out_points = [], [], []
    while len(order):
        top = boxes[order[0]]
        xx1 = np.maximum(top[0], boxes[order, 0])
        yy1 = np.maximum(top[1], boxes[order, 1])
        xx2 = np.minimum(top[2], boxes[order, 2])
        yy2 = np.minimum(top[3], boxes[order, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        areas = (boxes[order, 2] - boxes[order, 0]) * (boxes[order, 3] - boxes[order, 1])
        overlap = inter / ((top[2] - top[0]) * (top[3] - top[1]) + areas - inter + 1e-9)
        group = order[overlap > iou]
        w = scores[group] / scores[group].sum()
        out_boxes.append((boxes[group] * w[:, None]).sum(0))
        out_points.append((points[group] * w[:, None, None]).sum(0))
        out_scores.append(scores[order[0]])
        order = order[overlap <= iou]
    return np.array(out_boxes).reshape(-1, 4), np.array(out_scores), np.array(out_points).reshape(-1, len(LANDMARKS), 2)


class BlazeFaceDetector:
    name = "blazeface"

    def __init__(self, cfg: DetectorConfig):
        from ..backends import create_backend

        self.cfg = cfg
        self.backend = create_backend("litert")
        self.backend.load(model_path(cfg), {"threads": 1})
        detail = next(iter(self.backend.inputs.values()))
        self.size = int(detail["shape"][1])
        if self.size not in VARIANTS:
            raise ModelFormatError(f"'{cfg.model}' has input {list(detail['shape'])}; expected a BlazeFace model "
                                   f"with a {sorted(VARIANTS)} px square input")
        self.input_name = detail["name"]
        self.anchors = ssd_anchors(self.size)

    def detect(self, frame: np.ndarray) -> Detections:
        h, w = frame.shape[:2]
        side = max(h, w)
        pad_x, pad_y = (side - w) // 2, (side - h) // 2
        square = cv2.copyMakeBorder(frame, pad_y, side - h - pad_y, pad_x, side - w - pad_x, cv2.BORDER_CONSTANT, value=0)
        img = cv2.resize(square, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        x = (img[None, ..., ::-1].astype(np.float32) / 127.5) - 1.0
        outputs = list(self.backend.run({self.input_name: x}).values())
        reg = next(o for o in outputs if o.shape[-1] == 16)[0]
        logits = next(o for o in outputs if o.shape[-1] == 1)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80, 80)))
        threshold = DEFAULT_SCORE if self.cfg.score_threshold is None else self.cfg.score_threshold
        sel = np.flatnonzero(scores >= threshold)
        reg, anchors = reg[sel] / self.size, self.anchors[sel]
        centre = reg[:, :2] + anchors
        boxes = np.concatenate([centre - reg[:, 2:4] / 2, centre + reg[:, 2:4] / 2], 1)
        points = reg[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
        boxes, kept, points = weighted_nms(boxes, scores[sel], points, NMS_IOU)
        offset = np.array([pad_x, pad_y], np.float32)
        boxes = boxes * side - np.tile(offset, 2)
        points = points * side - offset
        big = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= self.cfg.min_size
        return finish(boxes[big], kept[big], points[big], self.cfg, default_box_map=BLAZEFACE_BOX_MAP)
