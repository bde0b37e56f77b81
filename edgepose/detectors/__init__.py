"""Face detectors: frame -> face boxes (x1, y1, x2, y2) with scores, in the models' tight-box convention.

Every detector offers `detect(frame) -> Detections`; they differ in model, speed and whether they give landmarks.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, ModelFormatError, did_you_mean
from ..platform import DetectorConfig


@dataclass(frozen=True)
class Detections:
    """Faces found in one frame, most confident first.

    boxes: (K, 4) x1, y1, x2, y2 in frame pixels, already mapped to the pose models' tight-box convention.
    scores: (K,) detector confidence. landmarks: (K, P, 2) in frame pixels, or None when the detector gives none;
    YuNet: P = 5 (image-left eye, image-right eye, nose tip, image-left and image-right mouth corner);
    BlazeFace: P = 6 (image-left eye, image-right eye, nose tip, mouth centre, image-left and image-right ear tragion).
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.boxes)


def finish(boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray | None, cfg,
           default_threshold: float = 0.0, default_box_map=(0.0, 0.0, 1.0, 1.0)) -> Detections:
    """Threshold, order, cap and map raw detections (boxes in frame pixels) into Detections."""
    threshold = default_threshold if cfg.score_threshold is None else cfg.score_threshold
    keep = np.flatnonzero(scores >= threshold)
    keep = keep[np.argsort(-scores[keep])]
    if cfg.max_faces:
        keep = keep[: cfg.max_faces]
    box_map = default_box_map if cfg.box_map is None else cfg.box_map
    mapped = np.array([map_box(b, box_map) for b in boxes[keep]]).reshape(-1, 4)
    return Detections(mapped, scores[keep], None if landmarks is None else landmarks[keep])


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


@dataclass(frozen=True)
class DetectorEntry:
    """A registered detector: the module and class offering `detect(frame) -> Detections`, imported when used, and
    for detectors that read a user-supplied model file its suffix and a description (checked when a Runtime is built);
    landmarks: whether it gives eye landmarks (what eye levelling, Runtime(align=True), needs)."""

    module: str
    cls: str
    model_suffix: str = ""
    model_kind: str = ""
    landmarks: bool = False


DETECTORS: dict[str, DetectorEntry] = {
    "haar": DetectorEntry("edgepose.detectors.haar", "HaarDetector"),
    "yunet": DetectorEntry("edgepose.detectors.yunet", "YuNetDetector", ".onnx",
                           "YuNet ONNX model (face_detection_yunet_*.onnx)", landmarks=True),
    "blazeface": DetectorEntry("edgepose.detectors.blazeface", "BlazeFaceDetector", ".tflite",
                               "BlazeFace LiteRT model (blazeface_short_range.tflite / _full_range)", landmarks=True),
}


def model_path(cfg: DetectorConfig) -> str:
    """The detector's model file, checked to exist and to be of the detector's format."""
    from pathlib import Path

    suffix, what = DETECTORS[cfg.type].model_suffix, DETECTORS[cfg.type].model_kind
    if not cfg.model:
        raise ConfigError(f"detector '{cfg.type}' needs `detector.model`, the path of its {what}; it is not shipped "
                          f"with edgepose (e.g. --detector {cfg.type}:/models/model{suffix})")
    path = Path(cfg.model).expanduser()
    if not path.is_file():
        raise ModelFormatError(f"detector '{cfg.type}' model file '{cfg.model}' not found; give the path of its {what}")
    with open(path, "rb") as f:
        is_tflite = f.read(8)[4:8] == b"TFL3"  # the FlatBuffers identifier of every .tflite file
    if path.suffix.lower() != suffix or is_tflite != (suffix == ".tflite"):
        raise ModelFormatError(f"detector '{cfg.type}' reads a {what}; '{cfg.model}' is "
                               f"{'a LiteRT/TFLite file' if is_tflite else 'not one'}. Give the {suffix} file")
    return str(path)


def check_detector(cfg: DetectorConfig) -> None:
    """Validate a detector section without building it (when a Runtime is built, not at its first frame).

    Raises:
        ConfigError: unknown detector type, a missing `detector.model`, a value out of its range (max_faces < 0,
            score_threshold outside 0..1, scale_factor <= 1, ...) or a box_map that is not 4 numbers with sw, sh > 0.
        ModelFormatError: the model file does not exist or is not the detector's format.
    """
    from ..typed import check_ranges

    check_ranges(cfg, "detector")  # a config built in Python skips from_mapping's checks
    _check_box_map(cfg.box_map)
    if 0 < cfg.detect_width < MIN_DETECT_WIDTH:
        raise ConfigError(f"detector.detect_width {cfg.detect_width} leaves no face to find; give 0 (never downscale) "
                          f"or at least {MIN_DETECT_WIDTH} pixels (the packaged platforms use 320)")
    cfg = resolve_detector(cfg, warn=False)
    if cfg.type not in DETECTORS:
        raise ConfigError(f"unknown detector '{cfg.type}'.{did_you_mean(cfg.type, [*DETECTORS, AUTO])} "
                          f"Available: {sorted([*DETECTORS, AUTO])}")
    if DETECTORS[cfg.type].model_suffix:
        model_path(cfg)


def _check_box_map(box_map) -> None:
    import math

    if box_map is None:
        return
    ok = isinstance(box_map, (tuple, list)) and len(box_map) == 4 and all(
        not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) for v in box_map)
    if not ok or box_map[2] <= 0 or box_map[3] <= 0:
        raise ConfigError(f"detector.box_map {box_map!r} must be 4 finite numbers (dcx, dcy, sw, sh) with sw, sh > 0, "
                          "e.g. [0.0, 0.05, 0.9, 0.95]; or leave it out for the detector's fitted default")


def parse_detector(spec) -> DetectorConfig | None:
    """A DetectorConfig from a DetectorConfig, a mapping, or 'type[:model path]' (e.g. 'yunet:/models/yunet.onnx')."""
    from ..typed import from_mapping

    if spec is None or isinstance(spec, DetectorConfig):
        return spec
    if isinstance(spec, str):
        kind, _, model = spec.partition(":")
        spec = {"type": kind, "model": model}
    return from_mapping(DetectorConfig, spec, "detector", ConfigError)


MIN_DETECT_WIDTH = 64  # a frame downscaled below this holds no face a detector can find
AUTO = "auto"
_warned_haar = False
HAAR_WARNING = ("no learned face detector is installed, so `detector: auto` runs OpenCV's Haar cascades, which miss "
                "turned, rolled and small faces (AFLW2000 dev: 219 of 300 faces found, 12 of the 42 beyond 60 deg of "
                "yaw; BlazeFace: 297 and 41) and are tens of times slower. Get MediaPipe's BlazeFace (Apache-2.0) once "
                "with: edgepose detectors fetch   (offline: edgepose detectors fetch --from FOLDER)")


def resolve_detector(cfg: DetectorConfig, warn: bool = True) -> DetectorConfig:
    """The concrete detector of a config: 'auto' is BlazeFace when `edgepose detectors fetch` stored it, else Haar
    (with a warning, once per process, naming the fetch command); any other type is returned as it is."""
    global _warned_haar
    if cfg.type != AUTO:
        return cfg
    from .fetch import fetched_model

    path = fetched_model("blazeface_short_range.tflite")
    if path is not None:
        return dataclasses.replace(cfg, type="blazeface", model=str(path))
    if warn and not _warned_haar:
        _warned_haar = True
        warnings.warn(HAAR_WARNING, UserWarning, stacklevel=3)
    return dataclasses.replace(cfg, type="haar", model="")


def create_detector(cfg: DetectorConfig):
    """Build the detector named by a platform's `detector` section ('auto' resolved by `resolve_detector`)."""
    import importlib

    cfg = resolve_detector(cfg)
    check_detector(cfg)
    entry = DETECTORS[cfg.type]
    return getattr(importlib.import_module(entry.module), entry.cls)(cfg)
