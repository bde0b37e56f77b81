"""Angle conventions of edgepose: Euler (AFLW2000) <-> rotation matrix <-> 6D, flips and in-plane rotation.

Convention (AFLW2000-3D / 300W-LP, shared by the public models): angles in degrees,
R = Rz(roll) @ Ry(yaw) @ Rx(pitch), the transpose of the model-to-camera rotation (with the y and z axes of the
OpenCV camera flipped), so rotations about camera axes compose on the right. As seen in the image, yaw > 0 turns the face toward the image left,
pitch > 0 turns it up, roll > 0 rotates the head clockwise. Every reader converts into this at the door.
All functions accept a single triple/matrix or a leading batch dimension.
"""
from __future__ import annotations

import math

import numpy as np

_FLIP = np.diag([-1.0, 1.0, 1.0])


def _rx(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _ry(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rz(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def euler_to_matrix(yaw, pitch, roll) -> np.ndarray:
    """Rotation matrix (..., 3, 3) from yaw, pitch, roll in degrees (R = Rz(roll) Ry(yaw) Rx(pitch))."""
    y, p, r = (np.deg2rad(np.asarray(v, dtype=np.float64)) for v in (yaw, pitch, roll))
    return _rz(r) @ _ry(y) @ _rx(p)


def matrix_to_euler(matrix: np.ndarray) -> np.ndarray:
    """(..., 3) array of yaw, pitch, roll in degrees from rotation matrices (..., 3, 3)."""
    m = np.asarray(matrix, dtype=np.float64)
    pitch = np.arctan2(m[..., 2, 1], m[..., 2, 2])
    yaw = np.arctan2(-m[..., 2, 0], np.hypot(m[..., 0, 0], m[..., 1, 0]))
    roll = np.arctan2(m[..., 1, 0], m[..., 0, 0])
    return np.rad2deg(np.stack([yaw, pitch, roll], -1))


def matrix_to_rot6d(matrix: np.ndarray) -> np.ndarray:
    """The 6D representation (Zhou et al. 2019): the first two columns of R, as (..., 6) = [c0, c1]."""
    m = np.asarray(matrix, dtype=np.float64)
    return np.concatenate([m[..., :, 0], m[..., :, 1]], -1)


def rot6d_to_matrix(rot6d: np.ndarray) -> np.ndarray:
    """Rotation matrix from a (possibly unnormalised) 6D vector by Gram-Schmidt; inverse of matrix_to_rot6d."""
    v = np.asarray(rot6d, dtype=np.float64)
    a1, a2 = v[..., 0:3], v[..., 3:6]
    b1 = a1 / np.maximum(np.sqrt((a1 * a1).sum(-1, keepdims=True)), 1e-12)
    a2 = a2 - (b1 * a2).sum(-1, keepdims=True) * b1
    b2 = a2 / np.maximum(np.sqrt((a2 * a2).sum(-1, keepdims=True)), 1e-12)
    # b1 x b2 written out: np.cross costs more than the rest of the decoding for one face
    b3 = b1[..., [1, 2, 0]] * b2[..., [2, 0, 1]] - b1[..., [2, 0, 1]] * b2[..., [1, 2, 0]]
    return np.stack([b1, b2, b3], -1)


def rot6d_to_pose(rot6d) -> tuple[tuple[float, float, float], list[list[float]]]:
    """One face's ((yaw, pitch, roll) degrees, 3x3 rotation as nested lists) from six floats, in plain Python.

    The same arithmetic as matrix_to_euler(rot6d_to_matrix(v)) (tests/test_angles.py checks them equal): for one
    face just after the engine, this costs a quarter of the array version, whose many small numpy calls run with
    caches the engine has just evicted.
    """
    a1, a2 = rot6d[0:3], rot6d[3:6]
    n = max(math.sqrt(a1[0] * a1[0] + a1[1] * a1[1] + a1[2] * a1[2]), 1e-12)
    b1 = (a1[0] / n, a1[1] / n, a1[2] / n)
    d = b1[0] * a2[0] + b1[1] * a2[1] + b1[2] * a2[2]
    c = (a2[0] - d * b1[0], a2[1] - d * b1[1], a2[2] - d * b1[2])
    n = max(math.sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]), 1e-12)
    b2 = (c[0] / n, c[1] / n, c[2] / n)
    b3 = (b1[1] * b2[2] - b1[2] * b2[1], b1[2] * b2[0] - b1[0] * b2[2], b1[0] * b2[1] - b1[1] * b2[0])
    m = [[b1[0], b2[0], b3[0]], [b1[1], b2[1], b3[1]], [b1[2], b2[2], b3[2]]]
    yaw = math.degrees(math.atan2(-m[2][0], math.hypot(m[0][0], m[1][0])))
    return (yaw, math.degrees(math.atan2(m[2][1], m[2][2])), math.degrees(math.atan2(m[1][0], m[0][0]))), m


def flip_matrix(matrix: np.ndarray) -> np.ndarray:
    """Pose of the horizontally mirrored image: F R F with F = diag(-1, 1, 1) (negates yaw and roll)."""
    return _FLIP @ np.asarray(matrix, dtype=np.float64) @ _FLIP


def flip_euler(yaw, pitch, roll) -> tuple:
    """Euler angles of the horizontally mirrored face: (-yaw, pitch, -roll)."""
    return -np.asarray(yaw), np.asarray(pitch), -np.asarray(roll)


def rotate_in_plane(matrix: np.ndarray, degrees) -> np.ndarray:
    """Pose after the image is rotated clockwise (as displayed) by `degrees` about the face: R Rz(d).

    In the AFLW2000 convention R is the transpose of the model-to-camera rotation (roll is the innermost angle),
    so a rotation about the camera axis composes on the right; only a frontal face's roll simply grows by d.
    Checked against AFLW2000's own 3D landmarks (tests/test_angles.py).
    """
    return np.asarray(matrix, dtype=np.float64) @ _rz(np.deg2rad(np.asarray(degrees, dtype=np.float64)))


def mean_rotation(*matrices: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Chordal L2 mean of rotation matrices (each (..., 3, 3)): the rotation nearest their (weighted) element-wise
    average. `weights` (..., K) weighs the K matrices per item (0 = leave one out)."""
    stack = np.stack([np.asarray(m, dtype=np.float64) for m in matrices], axis=-3)
    if weights is not None:
        stack = stack * np.asarray(weights, dtype=np.float64)[..., None, None]
    u, _, vt = np.linalg.svd(stack.sum(-3))
    d = np.sign(np.linalg.det(u @ vt))
    u[..., :, 2] *= d[..., None]  # no reflections
    return u @ vt


def geodesic_degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees of the relative rotation between two (batches of) rotation matrices."""
    rel = np.swapaxes(np.asarray(a, dtype=np.float64), -1, -2) @ np.asarray(b, dtype=np.float64)
    cos = (np.trace(rel, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.rad2deg(np.arccos(np.clip(cos, -1.0, 1.0)))


def wrap_degrees(angle) -> np.ndarray:
    """Wrap angles into [-180, 180)."""
    return (np.asarray(angle, dtype=np.float64) + 180.0) % 360.0 - 180.0
