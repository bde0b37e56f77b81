"""Face profiling: re-render a photographed face rotated in yaw/pitch with an exact label (300W-LP's idea).

A 3D face model is fitted to the 68 landmarks (scaled orthographic, `face_model.fit_pose`), which gives every face
pixel a depth. The head beyond the face mesh (forehead, hair, ears) is an ellipsoid fixed to the fitted pose; the
background stays where it was. Face and head points are rotated about the head centre around the camera's vertical
(yaw) and horizontal (pitch) axes, hidden points are dropped (z-buffer for the face, normals for the head), and the
new image is sampled from the old one through a piecewise-linear map between the moved points and fixed
background anchors, so the background stretches around the turned head the way 300W-LP's profiles do.

Labels stay exact relative to the source label: a camera-axis rotation C composes on the right of the label
matrix (`rotated_label`; the convention is checked against AFLW2000's 3D landmarks in tests/test_angles.py). The source label is the only
estimate involved, so sources are restricted to faces whose label is reliable (near-frontal, good Face Mesh fit).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.interpolate import LinearNDInterpolator
from scipy.spatial import Delaunay

from ..angles import euler_to_matrix, matrix_to_euler
from ..keypoint_pose import GL_FROM_CV
from .face_model import FaceModel, Fit, fit_pose

# Head ellipsoid in the canonical frame (unit = outer eye-corner distance, about 86 mm): centre behind the eyes at
# ear depth, semi-axes for a 16 x 23 x 20 cm head. Its front half covers forehead, hair and ears.
HEAD_CENTRE = np.array([0.0, 0.13, 0.9])
HEAD_AXES = np.array([0.93, 1.34, 1.16])


@dataclass(frozen=True)
class View:
    """One profiled view: a crop in the pool's protocol (square of crop_scale x the 68-point box, `side` px)."""

    image: np.ndarray  # (side, side, 3) uint8
    landmarks: np.ndarray  # (68, 2) crop pixels of the rotated 68 points
    box: np.ndarray  # (4,) x1, y1, x2, y2 of the 68-point box in crop pixels
    fit_rms: float  # landmark residual of the 3D fit in source pixels


def camera_rotation(d_yaw: float, d_pitch: float = 0.0) -> np.ndarray:
    """The image-frame (x right, y down, z into the scene) rotation that changes yaw by d_yaw (face toward the image
    left for d_yaw > 0) and pitch by d_pitch (face up for d_pitch > 0), degrees."""
    a, b = np.deg2rad(d_yaw), np.deg2rad(d_pitch)
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), np.sin(b)], [0, -np.sin(b), np.cos(b)]])
    return ry @ rx


def rotated_label(angles: np.ndarray, d_yaw: float, d_pitch: float = 0.0) -> np.ndarray:
    """(yaw, pitch, roll) of a face with pose `angles` after the camera rotation of `camera_rotation`.

    The label matrix is the transpose of the model-to-camera rotation with the camera's y and z axes flipped
    (angles.py), so the camera rotation C enters on the right as G C^T G, G = diag(1, -1, -1).
    """
    g = GL_FROM_CV
    return matrix_to_euler(euler_to_matrix(*angles) @ g @ camera_rotation(d_yaw, d_pitch).T @ g)


def _ellipsoid_points(n: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    """Fibonacci-sphere points on the head ellipsoid and their outward normals (canonical frame)."""
    i = np.arange(n) + 0.5
    phi, theta = np.arccos(1 - 2 * i / n), np.pi * (1 + 5 ** 0.5) * i
    unit = np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], 1)
    normals = unit / HEAD_AXES
    return HEAD_CENTRE + unit * HEAD_AXES, normals / np.linalg.norm(normals, axis=1, keepdims=True)


_HEAD, _HEAD_NORMALS = _ellipsoid_points()


def zbuffer_visible(points: np.ndarray, shape_hw: tuple[int, int], origin: np.ndarray, tol: float) -> np.ndarray:
    """z-buffer test on a 1-px grid: True where a point is within `tol` px of the nearest depth at its pixel."""
    h, w = shape_hw
    ij = np.floor(points[:, :2] - origin).astype(int)
    inside = (ij[:, 0] >= 0) & (ij[:, 0] < w) & (ij[:, 1] >= 0) & (ij[:, 1] < h)
    flat = ij[:, 1].clip(0, h - 1) * w + ij[:, 0].clip(0, w - 1)
    zbuf = np.full(h * w, np.inf)
    np.minimum.at(zbuf, flat[inside], points[inside, 2])
    return inside & (points[:, 2] <= zbuf[flat] + tol)


def _inside_hull(points: np.ndarray, queries: np.ndarray, grow: float = 1.06) -> np.ndarray:
    """True for queries inside the convex hull of `points`, grown by `grow` about its centre."""
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    c = hull.mean(0)
    return Delaunay(c + (hull - c) * grow).find_simplex(queries) >= 0


def profile_view(image: np.ndarray, points68: np.ndarray, model: FaceModel, d_yaw: float, d_pitch: float = 0.0,
                 side: int = 128, crop_scale: float = 1.6, fit: Fit | None = None) -> View:
    """Re-render `image` (a face crop, BGR) with the face rotated by d_yaw / d_pitch degrees about the camera axes.

    `points68` are the iBUG 68 landmarks in `image` pixels. Raises ValueError when the landmarks cannot be fitted.
    """
    fit = fit or fit_pose(model, points68)
    rot = camera_rotation(d_yaw, d_pitch)
    centre = fit.project(HEAD_CENTRE[None])[0]

    def turn(p: np.ndarray) -> np.ndarray:
        return centre + (p - centre) @ rot.T

    h, w = image.shape[:2]
    pad = max(h, w)
    origin = np.array([-pad, -pad], float)
    grid_hw = (h + 2 * pad, w + 2 * pad)
    tol = 0.04 * fit.scale  # depth tolerance: ~3.5 mm on the face

    # face: dense mesh points visible both before and after the turn
    src = fit.project(model.vertices.astype(np.float64))
    dst = turn(src)
    face = zbuffer_visible(src, grid_hw, origin, tol) & zbuffer_visible(dst, grid_hw, origin, tol)
    sub = np.flatnonzero(face)
    sub = sub[np.random.default_rng(0).permutation(len(sub))[:1500]]

    # head ellipsoid: front-facing before and after, outside the face mesh on both sides
    hsrc = fit.project(_HEAD)
    hdst = turn(hsrc)
    n_src = _HEAD_NORMALS @ fit.rotation.T
    n_dst = n_src @ rot.T
    face_src, face_dst = src[face, :2], dst[face, :2]
    head = (n_src[:, 2] < -0.1) & (n_dst[:, 2] < -0.1)
    head &= ~_inside_hull(face_src, hsrc[:, :2], 1.02) & ~_inside_hull(face_dst, hdst[:, :2], 1.02)

    # background: a fixed grid outside the head's outline before and after
    step = max(4.0, w / 16)
    gx, gy = np.meshgrid(np.arange(-pad, w + pad + 1, step), np.arange(-pad, h + pad + 1, step))
    bg = np.stack([gx.ravel(), gy.ravel()], 1)
    outline_src = np.vstack([hsrc[:, :2], src[:, :2]])
    outline_dst = np.vstack([hdst[:, :2], dst[:, :2]])
    bg = bg[~_inside_hull(outline_src, bg, 1.08) & ~_inside_hull(outline_dst, bg, 1.08)]

    targets = np.vstack([dst[sub, :2], hdst[head, :2], bg])
    sources = np.vstack([src[sub, :2], hsrc[head, :2], bg])
    warp = LinearNDInterpolator(targets, sources)

    # landmarks: annotated positions, depth from the fitted model (model point where the annotation is missing)
    lm3 = fit.project(model.landmarks.astype(np.float64))
    known = np.isfinite(points68[:, 0])
    lm3[known, :2] = points68[known]
    if not np.isfinite(lm3).all():
        missing = ~np.isfinite(lm3).all(1)
        raise ValueError(f"landmarks {np.flatnonzero(missing) + 1} are neither annotated nor on the 3D model")
    lm_dst = turn(lm3)[:, :2]
    x1, y1 = lm_dst.min(0)
    x2, y2 = lm_dst.max(0)
    s = crop_scale * max(x2 - x1, y2 - y1)
    x0, y0 = round((x1 + x2) / 2 - s / 2), round((y1 + y2) / 2 - s / 2)
    # the map is piecewise linear: evaluate it on a half-resolution grid (pixel centres) and upsample (4x cheaper)
    coarse = max(8, side // 2)
    u = ((np.arange(coarse) + 0.5) * side / coarse - 0.5) * s / side
    qx, qy = np.meshgrid(x0 + u, y0 + u)
    m = warp(np.stack([qx.ravel(), qy.ravel()], 1)).reshape(coarse, coarse, 2)
    m = np.where(np.isfinite(m), m, np.stack([qx, qy], -1)).astype(np.float32)
    m = cv2.resize(m, (side, side), interpolation=cv2.INTER_LINEAR)
    interp = cv2.INTER_AREA if s > 1.5 * side else cv2.INTER_LINEAR
    out = cv2.remap(image, m[..., 0], m[..., 1], interp, borderMode=cv2.BORDER_REPLICATE)
    lm_out = (lm_dst - [x0, y0]) * side / s
    box = np.concatenate([lm_out.min(0), lm_out.max(0)])
    return View(out, lm_out.astype(np.float32), box.astype(np.float32), fit.rms)
