"""Two-stage pose: landmarks, then a rigid fit to a 3D face (the product's second method, and a consistency check).

Routes (model files are user-supplied paths; edgepose ships none of them):
  * Face Mesh: MediaPipe's 468-point `face_landmark.tflite` (LiteRT) on the ROI MediaPipe uses (1.5x the detection
    box, rotated so the eyes are level), then a similarity (Kabsch/Umeyama) fit to the canonical face .obj.
  * 5-point PnP: a detector's 5 landmarks (YuNet) with cv2.solvePnPRansac against a built-in anthropometric
    5-point face (or the canonical face's eye centres, nose tip and mouth corners).
Both give a rotation in the OpenCV camera frame (x right, y down, z away); edgepose angles follow from
M = (diag(1, -1, -1) R)^T = Rz(roll) Ry(yaw) Rx(pitch).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .angles import matrix_to_euler
from .errors import ConfigError

GL_FROM_CV = np.diag([1.0, -1.0, -1.0])
# canonical-face vertex indices of the 5 detector landmarks (image-left eye = the subject's right eye, ...)
FIVE_POINT_VERTICES = ((33, 133), (362, 263), (1,), (61,), (291,))
# A 5-point mean face in mm (x = subject's left, y = up, z = out of the face, origin between the pupils), from adult
# anthropometric norms (Farkas 1994): interpupillary distance ~63 mm, mouth width ~50 mm, eye line to stomion
# ~70 mm, pronasale ~38 mm below the eye line and ~36 mm in front of it. Order: image-left eye (subject's right),
# image-right eye, nose tip, image-left mouth corner, image-right mouth corner (the YuNet order).
ANTHROPOMETRIC_5 = np.array([[-31.5, 0.0, 0.0], [31.5, 0.0, 0.0], [0.0, -38.0, 36.0],
                             [-25.0, -70.0, 8.0], [25.0, -70.0, 8.0]])
ROI_SCALE = 1.5
MESH_SIZE = 192


def load_canonical_face(path: str | Path) -> np.ndarray:
    """(N, 3) vertices of a Wavefront .obj (MediaPipe's canonical_face_model.obj: 468 vertices, cm)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"3D face model '{path}' does not exist; pass MediaPipe's canonical_face_model.obj")
    verts = [list(map(float, line.split()[1:4])) for line in path.read_text().splitlines() if line.startswith("v ")]
    return np.asarray(verts, np.float64)


def similarity_fit(model: np.ndarray, points: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Scale s, rotation R (no reflection), translation t minimising sum |s R model_i + t - points_i|^2 (Umeyama)."""
    mc, pc = model.mean(0), points.mean(0)
    a, b = model - mc, points - pc
    u, sig, vt = np.linalg.svd(b.T @ a)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    scale = float(np.trace(np.diag(sig) @ d) / (a ** 2).sum())
    return scale, rot, pc - scale * rot @ mc


def angles_from_camera_rotation(rot: np.ndarray) -> np.ndarray:
    """yaw, pitch, roll (degrees) from a model-to-OpenCV-camera rotation."""
    return matrix_to_euler((GL_FROM_CV @ rot).T)


@dataclass(frozen=True)
class KeypointPose:
    """A pose from landmarks: angles in degrees, the landmarks in frame pixels, and the fit residual."""

    yaw: float
    pitch: float
    roll: float
    landmarks: np.ndarray
    residual: float


class FaceMeshPose:
    """468 landmarks from MediaPipe's Face Mesh model, fitted to the canonical face.

    Args:
        landmark_model: path of face_landmark.tflite. canonical_face: path of canonical_face_model.obj.
        presence_threshold: MediaPipe's face flag (sigmoid of the presence logit) below which no pose is returned.
    """

    def __init__(self, landmark_model: str, canonical_face: str, presence_threshold: float = 0.5, threads: int = 1):
        from .backends import create_backend

        self.canonical = load_canonical_face(canonical_face)
        if not Path(landmark_model).expanduser().is_file():
            raise ConfigError(f"Face Mesh model '{landmark_model}' does not exist; pass face_landmark.tflite")
        self.backend = create_backend("litert")
        self.backend.load(str(Path(landmark_model).expanduser()), {"threads": threads})
        self.input_name = next(iter(self.backend.inputs))
        self.threshold = presence_threshold

    def estimate(self, frame: np.ndarray, box, eyes=None) -> KeypointPose | None:
        """Pose of the face in `box` (x1, y1, x2, y2); `eyes` = (image-left eye, image-right eye) levels the ROI.

        Returns None when the landmark model says there is no face.
        """
        x1, y1, x2, y2 = box
        side = ROI_SCALE * max(x2 - x1, y2 - y1)
        centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
        angle = 0.0 if eyes is None else float(np.degrees(np.arctan2(eyes[1][1] - eyes[0][1], eyes[1][0] - eyes[0][0])))
        m = cv2.getRotationMatrix2D(tuple(centre), angle, MESH_SIZE / side)
        m[:, 2] += MESH_SIZE / 2 - centre
        roi = cv2.warpAffine(frame, m, (MESH_SIZE, MESH_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        x = roi[None, ..., ::-1].astype(np.float32) / 255.0
        outputs = self.backend.run({self.input_name: x})
        mesh = next(v for v in outputs.values() if v.size == 1404).reshape(468, 3).astype(np.float64)
        presence = next(v for v in outputs.values() if v.size == 1).item()
        if 1.0 / (1.0 + np.exp(-presence)) < self.threshold:
            return None
        inverse = cv2.invertAffineTransform(m)
        xy = mesh[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        points = np.column_stack([xy, mesh[:, 2] * side / MESH_SIZE])
        scale, rot, t = similarity_fit(self.canonical, points)
        residual = float(np.sqrt((((points - t) @ rot / scale - self.canonical) ** 2).sum(1).mean()))
        yaw, pitch, roll = angles_from_camera_rotation(rot)
        return KeypointPose(float(yaw), float(pitch), float(roll), points, residual)


FACE_MESH_FILES = {"landmarks": "face_landmark.tflite", "detector": "blazeface_short_range.tflite",
                   "canonical": "canonical_face_model.obj"}
ROUTE_MIN_IOU = 0.2


def find_face_mesh_files(folder: str | Path) -> dict[str, Path]:
    """The three files of the Face Mesh route, found by name anywhere under `folder` (e.g. ../shared/models)."""
    folder = Path(folder).expanduser()
    found = {}
    for key, name in FACE_MESH_FILES.items():
        hits = sorted(folder.rglob(name)) if folder.is_dir() else []
        if not hits:
            raise ConfigError(f"no {name} under '{folder}'; the Face Mesh route needs MediaPipe's "
                              f"{', '.join(FACE_MESH_FILES.values())} in that folder (or below it)")
        found[key] = hits[0]
    return found


class FaceMeshRoute:
    """MediaPipe's whole route as one pose estimator: BlazeFace short range finds the face and its eyes (the ROI,
    as MediaPipe does), Face Mesh gives 468 points, a similarity fit to the canonical face gives the pose.

    Args:
        folder: holds face_landmark.tflite, blazeface_short_range.tflite and canonical_face_model.obj (any depth).
    """

    def __init__(self, folder: str | Path, threads: int = 1):
        from .detectors import create_detector, parse_detector

        files = find_face_mesh_files(folder)
        self.detector = create_detector(parse_detector({"type": "blazeface", "model": str(files["detector"]),
                                                        "box_map": [0, 0, 1, 1], "min_size": 0}))
        self.mesh = FaceMeshPose(str(files["landmarks"]), str(files["canonical"]), threads=threads)

    def estimate(self, frame: np.ndarray, box) -> KeypointPose | None:
        """Pose of the detected face that overlaps `box` best (IoU > 0.2); None when the route finds none there."""
        from .video.tracking import box_iou

        found = self.detector.detect(frame)
        if not len(found):
            return None
        k = int(np.argmax([box_iou(b, box) for b in found.boxes]))
        if box_iou(found.boxes[k], box) <= ROUTE_MIN_IOU:
            return None
        return self.mesh.estimate(frame, found.boxes[k], found.landmarks[k][:2])


def five_point_pnp(landmarks: np.ndarray, frame_shape, canonical: np.ndarray | None = None) -> KeypointPose | None:
    """Pose from 5 detector landmarks (YuNet order) by RANSAC PnP; None if it fails.

    The 3D face is the built-in anthropometric template, or the canonical face mesh when one is given.
    """
    model = ANTHROPOMETRIC_5 if canonical is None else np.array([canonical[list(ix)].mean(0) for ix in FIVE_POINT_VERTICES])
    h, w = frame_shape[:2]
    f = float(max(h, w))
    camera = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]])
    ok, rvec, tvec, _ = cv2.solvePnPRansac(model, landmarks.astype(np.float64), camera, None,
                                           flags=cv2.SOLVEPNP_EPNP, reprojectionError=8.0)
    if not ok:
        return None
    ok, rvec, tvec = cv2.solvePnP(model, landmarks.astype(np.float64), camera, None, rvec, tvec, True,
                                  flags=cv2.SOLVEPNP_ITERATIVE)
    rot = cv2.Rodrigues(rvec)[0]  # canonical face -> OpenCV camera, like the Face Mesh fit
    projected = cv2.projectPoints(model, rvec, tvec, camera, None)[0].reshape(-1, 2)
    yaw, pitch, roll = angles_from_camera_rotation(rot)
    return KeypointPose(float(yaw), float(pitch), float(roll), landmarks,
                        float(np.linalg.norm(projected - landmarks, axis=1).mean()))
