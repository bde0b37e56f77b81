"""3D face models for face profiling: load a user-supplied mesh with a 68-point mapping, fit it to 68 landmarks.

Supported layouts (the user points at a folder; none of these models ships with edgepose):
- 3DDFA's BFM-derived folder: `u_shp.npy` + `u_exp.npy` (mean shape + mean expression, flattened xyz) and
  `keypoints_sim.npy` (indices of the 68 iBUG landmark coordinates into the flattened array). BFM terms apply.
- An `.obj` mesh with an eos-style `ibug_to_sfm.txt` mapping (iBUG point number = vertex index), e.g. the Surrey
  Face Model reference mesh. Points the mapping lacks (the jaw contour) are NaN and skipped by the fit.

Every model is brought into one canonical frame: origin between the outer eye corners, x toward the image
right of a frontal face, y down, z into the scene (right-handed, like image pixels + depth), unit = the outer
eye-corner distance; the model's own frontal orientation is kept as the zero pose. The fit is scaled orthographic (weak perspective), like 300W-LP's face profiling.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError

INNER = np.arange(17, 68)  # brows, nose, eyes, mouth: stable under pose (the jaw contour slides on the silhouette)


@dataclass(frozen=True)
class FaceModel:
    """A mean 3D face in the canonical frame.

    Attributes:
        vertices: (V, 3) dense surface points.
        landmarks: (68, 3) iBUG points; NaN rows where the model has no vertex for that point.
        name: where it came from (for provenance in generated data).
    """

    vertices: np.ndarray
    landmarks: np.ndarray
    name: str


def load_face_model(path: str | Path) -> FaceModel:
    """Load a 3D face model folder (or .obj file) and bring it into the canonical frame.

    Raises:
        ConfigError: the path holds no supported layout.
    """
    p = Path(path).expanduser()
    if (p / "u_shp.npy").is_file():
        flat = np.load(p / "u_shp.npy").astype(np.float64).ravel()
        if (p / "u_exp.npy").is_file():
            flat = flat + np.load(p / "u_exp.npy").astype(np.float64).ravel()
        vertices = flat.reshape(-1, 3)
        landmarks = vertices[np.load(p / "keypoints_sim.npy")[::3] // 3]
        return _canonical(vertices, landmarks, str(p))
    obj = p if p.suffix == ".obj" else next(iter(sorted(p.glob("*reference.obj")) or sorted(p.glob("*.obj"))), None)
    mapping = (p if p.is_dir() else p.parent) / "ibug_to_sfm.txt"
    if obj is not None and obj.is_file() and mapping.is_file():
        vertices = np.array([line.split()[1:4] for line in obj.read_text().splitlines() if line.startswith("v ")], float)
        landmarks = np.full((68, 3), np.nan)
        for ibug, vid in re.findall(r"^\s*(\d+)\s*=\s*(\d+)", mapping.read_text(), re.M):
            if int(vid) < len(vertices):
                landmarks[int(ibug) - 1] = vertices[int(vid)]
        return _canonical(vertices, landmarks, str(obj))
    raise ConfigError(f"'{p}' is not a supported 3D face model: expected a 3DDFA BFM folder (u_shp.npy, "
                      "keypoints_sim.npy) or an .obj with ibug_to_sfm.txt beside it")


def _canonical(vertices: np.ndarray, landmarks: np.ndarray, name: str) -> FaceModel:
    """Keep the model's own axes (its frontal pose is the zero pose, as in 3DDFA's labels) but flip their signs so
    that x runs from point 37 to 46 (outer eye corners), y down toward the mouth and z into the scene; move the
    origin between the outer eye corners and scale their distance to 1."""
    left, right = landmarks[36], landmarks[45]
    origin = (left + right) / 2
    sx = np.sign(right[0] - left[0])
    sy = np.sign(np.nanmean(landmarks[[48, 54], 1]) - origin[1])
    frame = np.diag([sx, sy, sx * sy])  # right-handed whenever the source frame is
    scale = np.linalg.norm(right - left)
    v = (vertices - origin) @ frame.T / scale
    lm = (landmarks - origin) @ frame.T / scale
    if lm[30, 2] > np.nanmean(lm[[36, 45], 2]):  # nose behind the eyes: the source frame was left-handed
        raise ConfigError(f"3D face model '{name}' has a mirrored (left-handed) frame; cannot orient it")
    return FaceModel(v.astype(np.float32), lm.astype(np.float32), name)


@dataclass(frozen=True)
class Fit:
    """Scaled orthographic pose: image point = scale * (rotation @ X)[:2] + shift; depth = scale * (rotation @ X)[2]."""

    scale: float
    rotation: np.ndarray  # (3, 3), canonical -> image frame (x right, y down, z into the scene)
    shift: np.ndarray  # (2,)
    rms: float  # landmark residual in pixels

    def angles(self) -> np.ndarray:
        """(yaw, pitch, roll) of the fitted face in edgepose's (AFLW2000) convention."""
        from ..keypoint_pose import GL_FROM_CV, angles_from_camera_rotation

        return angles_from_camera_rotation(self.rotation @ GL_FROM_CV)  # canonical frame -> Face Mesh's GL frame

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) canonical points -> (N, 3) image x, y and depth (pixels; larger depth = farther)."""
        out = self.scale * (points @ self.rotation.T)
        out[:, :2] += self.shift
        return out


def fit_pose(model: FaceModel, points: np.ndarray, use: np.ndarray = INNER, iters: int = 30) -> Fit:
    """Fit scale, rotation and 2D shift of `model` to (68, 2) image landmarks (least squares on the `use` points).

    Projection Procrustes: start from the affine camera's nearest rotation, then alternate between giving each
    landmark the depth the current pose predicts and solving the full 3D similarity (Umeyama) to those points.
    (A plain SVD of the 2x3 cross-covariance is biased toward frontal poses: the projected norm depends on R.)
    """
    ok = use[np.isfinite(model.landmarks[use, 0]) & np.isfinite(points[use, 0])]
    if len(ok) < 6:
        raise ValueError(f"need at least 6 usable landmarks to fit a face model, got {len(ok)}")
    X, x = model.landmarks[ok].astype(np.float64), points[ok].astype(np.float64)
    Xc, xc = X - X.mean(0), x - x.mean(0)
    affine = np.linalg.lstsq(Xc, xc, rcond=None)[0].T  # (2, 3)
    scale = float(np.linalg.norm(affine, axis=1).mean())
    u, _, vt = np.linalg.svd(affine / scale)
    r2 = u @ np.eye(2, 3) @ vt
    rotation = np.vstack([r2, np.cross(r2[0], r2[1])])
    for _ in range(iters):
        target = np.column_stack([xc, scale * Xc @ rotation[2]])
        u, sig, vt = np.linalg.svd(target.T @ Xc)
        d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
        rotation = u @ d @ vt
        proj = Xc @ rotation[:2].T
        scale = float((proj * xc).sum() / (proj * proj).sum())
    shift = x.mean(0) - scale * (X.mean(0) @ rotation[:2].T)
    resid = scale * (X @ rotation[:2].T) + shift - x
    return Fit(float(scale), rotation, shift, float(np.sqrt((resid ** 2).sum(1).mean())))


def fitted_poses(face_model: str | Path, landmarks: list) -> np.ndarray:
    """(N, 3) poses from a 3D face fitted to each row's 68 landmarks; NaN where a row has none."""
    model = load_face_model(face_model)
    out = np.full((len(landmarks), 3), np.nan)
    for i, pts in enumerate(landmarks):
        if pts is not None and len(pts) == 68:
            out[i] = fit_pose(model, pts).angles()
    return out
