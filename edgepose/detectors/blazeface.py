"""MediaPipe BlazeFace (short or full range .tflite) on LiteRT: SSD anchors, box + 6 keypoint decoding, weighted NMS.

The model file comes from `edgepose detectors fetch` (Apache-2.0, from MediaPipe); the variant is read from its input
size (128 px short range, 192 px full range). The whole frame is letterboxed to a square, as MediaPipe does; short
range only finds faces of at least ~15 % of that square, so smaller faces (down to `min_size`) are searched in
overlapping square tiles as well, and everything is merged by one weighted NMS.
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
# smallest face, as a fraction of the window side, that short range finds in most cases: measured on frames composed
# from the training pool (benchmarks/detection.py --scenes), never on dev. With 0.15 instead, 40 px faces in 640x480
# frames were found as often (39 vs 38 of 45) for 13 windows instead of 7
MIN_RELATIVE_FACE = 0.13
TILE_OVERLAP = 0.3  # of the tile side: a face up to this size lies whole in some tile
MAX_SIDE = 2048  # larger frames are downscaled to this longer side first (tiles keep faces of min_size * scale)


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
        shapes = sorted(tuple(int(v) for v in d["shape"]) for d in self.backend.outputs)
        if shapes != sorted([(1, len(self.anchors), 1), (1, len(self.anchors), 16)]):
            raise ModelFormatError(f"'{cfg.model}' has outputs {shapes}; a BlazeFace model of {self.size} px gives "
                                   f"{len(self.anchors)} anchors' scores (1, {len(self.anchors)}, 1) and boxes with "
                                   f"keypoints (1, {len(self.anchors)}, 16). Give blazeface_short_range.tflite or "
                                   "_full_range.tflite")

    def windows(self, width: int, height: int) -> list[tuple[int, int, int]]:
        """(x, y, side) squares to run: the whole frame, then a pyramid of overlapping tiles (side doubling) down to
        the side where faces of min_size pixels are large enough for the model."""
        long_side = max(width, height)
        out = [(0, 0, long_side)]
        # min_size 0 = whole frame only (MediaPipe's behaviour); tiles never go below the model's own input size
        tile = max(self.size, int(self.cfg.min_size / MIN_RELATIVE_FACE)) if self.size == 128 and self.cfg.min_size > 0 \
            else long_side
        while tile * 1.5 < long_side:  # coarser windows cover faces down to MIN_RELATIVE_FACE of their side
            def starts(length: int) -> list[int]:  # evenly spread, overlapping by at least TILE_OVERLAP
                n = int(np.ceil(max(0, length - tile) / (tile * (1 - TILE_OVERLAP)))) + 1
                return sorted({int(round(v)) for v in np.linspace(0, max(0, length - tile), n)})

            out += [(x, y, tile) for y in starts(height) for x in starts(width)]
            tile *= 2
        return out

    def detect(self, frame: np.ndarray) -> Detections:
        h, w = frame.shape[:2]
        scale = min(1.0, MAX_SIDE / max(h, w))
        img = frame if scale == 1.0 else cv2.resize(frame, (round(w * scale), round(h * scale)),
                                                     interpolation=cv2.INTER_AREA)
        boxes, scores, points = [], [], []
        for i, (x, y, side) in enumerate(self.windows(img.shape[1], img.shape[0])):
            b, s, p = self._detect_window(img, x, y, side, whole=i == 0)
            boxes.append(b), scores.append(s), points.append(p)
        boxes, kept, points = weighted_nms(np.concatenate(boxes), np.concatenate(scores), np.concatenate(points),
                                           NMS_IOU)
        boxes, points = boxes / scale, points / scale
        # a face of min_size often gets a box a little smaller than that: keep it (the filter is for tiny false faces)
        big = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= 0.75 * self.cfg.min_size
        return finish(boxes[big], kept[big], points[big], self.cfg, default_box_map=BLAZEFACE_BOX_MAP)

    def _detect_window(self, img: np.ndarray, x: int, y: int, side: int, whole: bool):
        """Raw (boxes, scores, keypoints) in image pixels found in the square window (x, y, side), letterboxed with
        zeros where it passes the image. A tile keeps only faces small enough to be its job and not cut by its edge."""
        h, w = img.shape[:2]
        if whole:
            pad_x, pad_y = (side - w) // 2, (side - h) // 2  # centred letterbox, as MediaPipe does
            x, y = -pad_x, -pad_y
        window = img[max(y, 0):min(y + side, h), max(x, 0):min(x + side, w)]
        top, left = max(-y, 0), max(-x, 0)
        square = cv2.copyMakeBorder(window, top, side - window.shape[0] - top, left, side - window.shape[1] - left,
                                    cv2.BORDER_CONSTANT, value=0) if window.shape[:2] != (side, side) else window
        small = cv2.resize(square, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        tensor = (small[None, ..., ::-1].astype(np.float32) / 127.5) - 1.0
        outputs = list(self.backend.run({self.input_name: tensor}).values())
        reg = next(o for o in outputs if o.shape[-1] == 16)[0]
        logits = next(o for o in outputs if o.shape[-1] == 1)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80, 80)))
        threshold = DEFAULT_SCORE if self.cfg.score_threshold is None else self.cfg.score_threshold
        sel = np.flatnonzero(scores >= threshold)
        reg, anchors = reg[sel] / self.size, self.anchors[sel]
        centre = reg[:, :2] + anchors
        boxes = np.concatenate([centre - reg[:, 2:4] / 2, centre + reg[:, 2:4] / 2], 1)
        points = reg[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
        scores = scores[sel]
        if not whole:
            margin = 0.02
            inside = ((boxes[:, 0] > margin) | (x <= 0)) & ((boxes[:, 1] > margin) | (y <= 0)) & \
                     ((boxes[:, 2] < 1 - margin) | (x + side >= w)) & ((boxes[:, 3] < 1 - margin) | (y + side >= h))
            small_enough = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) <= TILE_OVERLAP * 1.3
            keep = inside & small_enough
            boxes, scores, points = boxes[keep], scores[keep], points[keep]
        offset = np.array([x, y], np.float32)
        return boxes * side + np.tile(offset, 2), scores, points * side + offset
