"""YuNet through OpenCV's FaceDetectorYN (OpenCV >= 4.8): boxes, scores and 5 landmarks; the model file is user-supplied."""
from __future__ import annotations

import cv2
import numpy as np

from ..errors import BackendUnavailableError, ModelFormatError
from ..platform import DetectorConfig
from . import Detections, finish, model_path

# YuNet boxes reach the forehead; this maps them onto the 68-point face-box convention the pose models were trained
# with (fitted on 300-W + YTF, IoU 0.69 -> 0.86; see ../shared/models/README.md)
YUNET_BOX_MAP = (0.0064, 0.1311, 1.0516, 0.7706)
DEFAULT_SCORE = 0.6


class YuNetDetector:
    name = "yunet"

    def __init__(self, cfg: DetectorConfig):
        if not hasattr(cv2, "FaceDetectorYN"):
            raise BackendUnavailableError("this OpenCV has no FaceDetectorYN; install opencv-python-headless>=4.8")
        self.cfg = cfg
        try:
            self.net = cv2.FaceDetectorYN.create(model_path(cfg), "", (320, 320), DEFAULT_SCORE, 0.3, 5000)
        except cv2.error as exc:
            raise ModelFormatError(f"OpenCV cannot load YuNet model '{cfg.model}': {exc}") from None
        if cfg.score_threshold is not None:
            self.net.setScoreThreshold(float(cfg.score_threshold))
        try:  # a wrong ONNX model loads but fails at its first frame: find out now
            self.net.setInputSize((64, 64))
            self.net.detect(np.zeros((64, 64, 3), np.uint8))
        except cv2.error as exc:
            raise ModelFormatError(f"'{cfg.model}' does not run as a YuNet face detector in OpenCV ({str(exc).strip()}); "
                                   "give face_detection_yunet_*.onnx") from None

    def detect(self, frame: np.ndarray) -> Detections:
        h, w = frame.shape[:2]
        scale = min(1.0, self.cfg.detect_width / w) if self.cfg.detect_width else 1.0
        img = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA) \
            if scale < 1.0 else frame
        self.net.setInputSize((img.shape[1], img.shape[0]))
        _, faces = self.net.detect(img)
        faces = np.zeros((0, 15), np.float32) if faces is None else faces
        faces = faces[np.minimum(faces[:, 2], faces[:, 3]) >= self.cfg.min_size * scale]
        xywh = faces[:, :4] / scale
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:4]], 1)
        landmarks = (faces[:, 4:14] / scale).reshape(-1, 5, 2)
        return finish(boxes, faces[:, 14].astype(float), landmarks, self.cfg, default_box_map=YUNET_BOX_MAP)
