"""OpenCV Haar cascades (frontal + profile both ways), shipped with opencv-python 4.x: a baseline detector."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import BackendUnavailableError
from ..platform import DetectorConfig
from . import Detections, finish, nms


def _cascade(name: str) -> "cv2.CascadeClassifier":
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        raise BackendUnavailableError("this OpenCV build has no Haar cascades (OpenCV 5 dropped them); "
                                      "install opencv-python-headless<5")
    path = Path(cv2.data.haarcascades) / name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise BackendUnavailableError(f"cannot load Haar cascade '{path}'; reinstall opencv-python-headless<5")
    return cascade


# Haar box -> 68-point face-box convention, fitted on the training pool (w300 + ytf), never on dev:
#   python benchmarks/detector_boxes.py --n 1000   (975/1000 found; IoU 0.60 raw -> 0.78 mapped)
HAAR_BOX_MAP = (0.0, 0.1588, 0.9143, 0.8839)


class HaarDetector:
    """Frontal cascade plus the profile cascade on the frame and its mirror; merged by NMS.

    Scores are the cascades' final-stage level weights w squashed as w / (w + 2): monotone, not calibrated.
    """

    name = "haar"

    def __init__(self, cfg: DetectorConfig):
        self.cfg = cfg
        self.frontal = _cascade("haarcascade_frontalface_default.xml")
        self.profile = _cascade("haarcascade_profileface.xml")

    def _run(self, cascade, gray: np.ndarray, mirrored: bool, scale: float) -> tuple[list, list]:
        side = max(20, int(self.cfg.min_size * scale))
        rects, _, weights = cascade.detectMultiScale3(gray, scaleFactor=self.cfg.scale_factor, minNeighbors=5,
                                                      minSize=(side, side), outputRejectLevels=True)
        boxes, scores = [], []
        width = gray.shape[1]
        for (x, y, w, h), s in zip(rects, np.ravel(weights) if len(rects) else []):
            x1 = width - (x + w) if mirrored else x
            boxes.append([x1 / scale, y / scale, (x1 + w) / scale, (y + h) / scale])
            scores.append(max(float(s), 0.0) / (max(float(s), 0.0) + 2.0))  # uncalibrated, monotone in s
        return boxes, scores

    def detect(self, frame: np.ndarray) -> Detections:
        """Faces in a BGR frame (no landmarks)."""
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        scale = min(1.0, self.cfg.detect_width / gray.shape[1]) if self.cfg.detect_width else 1.0
        if scale < 1.0:
            gray = cv2.resize(gray, (self.cfg.detect_width, max(1, int(round(gray.shape[0] * scale)))),
                              interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        passes = [(self.frontal, gray, False)]
        if self.cfg.profile:
            passes += [(self.profile, gray, False), (self.profile, np.ascontiguousarray(gray[:, ::-1]), True)]
        boxes, scores = [], []
        for cascade, img, mirrored in passes:
            b, s = self._run(cascade, img, mirrored, scale)
            boxes += b
            scores += s
        boxes_arr, scores_arr = np.asarray(boxes, float).reshape(-1, 4), np.asarray(scores, float)
        keep = nms(boxes_arr, scores_arr, 0.3)
        return finish(boxes_arr[keep], scores_arr[keep], None, self.cfg, default_box_map=HAAR_BOX_MAP)
