"""Reframe pool crops to the published AFLW2000 protocol's face box, from a 3D face model and each row's label pose.

The pool's crops (and the profiled views) are framed on the 68-point box. The published AFLW2000 protocol frames a face
on the bounding box of its *visible* AFLW-21 points: brows, eyes, nose, mouth, chin and the ear lobes, no jaw line. On a
frontal face the two ears make that box wider; on a profile the near ear pulls it toward the back of the head. This
module predicts, for a label pose, where the visible-AFLW-21 box sits relative to the 68-point box, using a mean 3D face
with ears (3DDFA's BFM folder has them): 19 of the 21 points are iBUG points or their means, the ear lobes are the
lowest vertices beside the jaw line, and visibility is a z-buffer test on the model's surface. `augment.protocol_box`
applies it to a random share of the training crops so that the model sees both framings.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .face_model import FaceModel, load_face_model
from .profiling import zbuffer_visible

# AFLW-21 points from the iBUG 68 (0-based): brow corners and centres, eye corners, nostrils, nose tip, mouth corners,
# chin; eye and mouth centres are means of point groups. The ear lobes come from the mesh (see ear_lobes).
_SINGLE = (17, 19, 21, 22, 24, 26, 36, 39, 42, 45, 31, 30, 35, 48, 54, 8)
_MEANS = ((37, 38, 40, 41), (43, 44, 46, 47), (51, 57))
# visibility grid (degrees): the rows' poses are looked up on it, their points projected exactly
_YAW, _PITCH, _ROLL = np.arange(-102, 103, 6), np.arange(-96, 97, 12), np.arange(-96, 97, 12)
_GRID_PX = 24.0  # z-buffer pixels per model unit (the outer eye-corner distance)
_TOL = 0.15  # depth tolerance of the z-buffer test, model units (points on the silhouette stay visible)


def ear_lobes(model: FaceModel) -> np.ndarray:
    """(2, 3) ear-lobe points of `model` in its canonical frame: per side, the lowest vertex that lies further out than
    the jaw line's end (iBUG points 1 and 17) by 5 % of the eye-corner distance.

    Raises:
        ConfigError: the model has no vertices there (a face mask without ears, like MediaPipe's canonical face).
    """
    jaw = model.landmarks[[0, 16], 0]
    if not np.isfinite(jaw).all():
        raise ConfigError(f"3D face model '{model.name}' has no jaw-line landmarks, so its ears cannot be found; "
                          "augment.protocol_box needs a model with ears and a full 68-point mapping (e.g. 3DDFA's BFM)")
    lobes = []
    for side, x_jaw in zip((-1.0, 1.0), np.sort(jaw)):
        ear = model.vertices[side * model.vertices[:, 0] > side * x_jaw + 0.05]
        if not len(ear):
            raise ConfigError(f"3D face model '{model.name}' has no vertices beside the jaw line (no ears); "
                              "augment.protocol_box needs a model with ears (e.g. 3DDFA's BFM folder)")
        lobes.append(ear[np.argmax(ear[:, 1])])  # y points down
    return np.array(lobes)


def aflw21_points(model: FaceModel) -> np.ndarray:
    """(21, 3) AFLW-21 points of `model` (canonical frame); the last two are the ear lobes."""
    lm = model.landmarks.astype(np.float64)
    pts = [lm[i] for i in _SINGLE] + [lm[list(g)].mean(0) for g in _MEANS]
    return np.vstack(pts + list(ear_lobes(model)))


def camera_rotations(angles: np.ndarray) -> np.ndarray:
    """(N, 3, 3) canonical-face -> image-frame rotations of (N, 3) yaw/pitch/roll labels: the inverse of Fit.angles
    (which maps Fit.rotation R to matrix_to_euler((G R G)^T), G = GL_FROM_CV)."""
    from ..angles import euler_to_matrix
    from ..keypoint_pose import GL_FROM_CV

    m = euler_to_matrix(*np.asarray(angles, np.float64).T).reshape(-1, 3, 3)
    return GL_FROM_CV @ m.transpose(0, 2, 1) @ GL_FROM_CV


class ProtocolFrames:
    """Visible-AFLW-21 box relative to the 68-point box, per label pose, for one 3D face model."""

    def __init__(self, model: FaceModel, surface_points: int = 5000):
        self.points21 = aflw21_points(model)
        if not np.isfinite(model.landmarks).all():
            raise ConfigError(f"3D face model '{model.name}' lacks some of the 68 points; augment.protocol_box needs a "
                              "full 68-point mapping (e.g. 3DDFA's BFM folder)")
        self.points68 = model.landmarks.astype(np.float64)
        step = max(1, len(model.vertices) // surface_points)
        self.surface = model.vertices[::step].astype(np.float64)
        grid = np.stack(np.meshgrid(_YAW, _PITCH, _ROLL, indexing="ij"), -1).reshape(-1, 3)
        self.visible = np.stack([self._visible21(r) for r in camera_rotations(grid)])  # (grid, 21) bool

    def _visible21(self, rot: np.ndarray) -> np.ndarray:
        """Which AFLW-21 points the surface does not hide under camera rotation `rot`."""
        pts = np.vstack([self.surface, self.points21]) @ rot.T * _GRID_PX
        origin = pts[:, :2].min(0) - 1
        shape = tuple((np.ceil(pts[:, :2].max(0) - origin) + 2).astype(int)[::-1])
        return zbuffer_visible(pts, shape, origin, _TOL * _GRID_PX)[-len(self.points21):]

    def _grid_index(self, angles: np.ndarray) -> np.ndarray:
        idx = [np.abs(np.asarray(a)[:, None] - axis[None]).argmin(1) for a, axis in zip(angles.T, (_YAW, _PITCH, _ROLL))]
        return (idx[0] * len(_PITCH) + idx[1]) * len(_ROLL) + idx[2]

    def frames(self, angles: np.ndarray) -> np.ndarray:
        """(N, 3) float32 per label pose: the visible-AFLW-21 box centre minus the 68-point box centre (x, y, in units
        of the 68-point box side), and the ratio of the two boxes' sides (side = max(width, height))."""
        angles = np.asarray(angles, np.float64).reshape(-1, 3)
        rots = camera_rotations(angles)
        p68 = np.einsum("nij,pj->npi", rots[:, :2], self.points68)
        p21 = np.einsum("nij,pj->npi", rots[:, :2], self.points21)
        vis = self.visible[self._grid_index(angles)]
        c68, s68 = _box(p68, np.ones(p68.shape[:2], bool))
        c21, s21 = _box(p21, vis)
        return np.column_stack([(c21 - c68) / s68[:, None], s21 / s68]).astype(np.float32)


def _box(points: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres (N, 2) and sides max(w, h) (N,) of the bounding boxes of the masked points."""
    lo = np.where(mask[..., None], points, np.inf).min(1)
    hi = np.where(mask[..., None], points, -np.inf).max(1)
    return (lo + hi) / 2, (hi - lo).max(1)


def training_frames(probability: float, model_path: str, angles: np.ndarray) -> np.ndarray | None:
    """Per-row frames (see ProtocolFrames.frames) for `augment.protocol_box`, or None when it is 0.

    Raises:
        ConfigError: the probability is outside 0..1, or no (usable) face model is given.
    """
    if not 0.0 <= probability <= 1.0:
        raise ConfigError(f"augment.protocol_box={probability} is a probability; use a value from 0 to 1")
    if probability == 0.0:
        return None
    if not model_path:
        raise ConfigError("augment.protocol_box needs augment.protocol_box_model: a 3D face model folder with ears, "
                          "e.g. ../shared/models/mesh/bfm_mean_3ddfa")
    return ProtocolFrames(load_face_model(model_path)).frames(angles)
