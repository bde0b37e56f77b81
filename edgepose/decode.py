"""Decoding of a pose model's raw outputs into yaw, pitch, roll degrees (numpy; the device half)."""
from __future__ import annotations

import numpy as np

from .angles import euler_to_matrix, matrix_to_euler, rot6d_to_matrix
from .errors import ModelFormatError

DECODINGS = ("rot6d", "euler_degrees", "sincos", "bins", "bins_packed", "affine_camera")


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def decode_outputs(outputs: dict[str, np.ndarray], decoding: dict) -> tuple[np.ndarray, np.ndarray]:
    """Turn raw model outputs into ((N, 3) yaw/pitch/roll degrees, (N, 3, 3) rotation matrices).

    `decoding` is the manifest's `output` section: {"type": one of DECODINGS, ...}.
      rot6d:         {"name": output}; the 6 values are the first two columns of R.
      euler_degrees: {"name": output, "order": ["yaw", "pitch", "roll"]}.
      sincos:        {"name": output}; (N, 6) = sin(yaw, pitch, roll), cos(yaw, pitch, roll); angle = atan2.
      bins:          {"yaw": {"name", "width", "offset"}, "pitch": {...}, "roll": {...}};
                     angle = sum(softmax(logits)_i * i * width) + offset (Hopenet/WHENet style).
      bins_packed:   {"name", "bins", "width", "offset"}: one (N, 3 * bins) tensor, yaw/pitch/roll in turn.
      affine_camera: {"name": output}; the first 12 values are a 3x4 affine camera matrix [sR | t] (3DMM-parameter
                     models such as 3DDFA_V2), the rotation is read from its rows (see `decode_affine_camera`).
    """
    kind = decoding.get("type")
    if kind == "rot6d":
        matrices = rot6d_to_matrix(_output(outputs, decoding["name"]).reshape(-1, 6))
        return matrix_to_euler(matrices), matrices
    if kind == "affine_camera":
        matrices = decode_affine_camera(_output(outputs, decoding["name"]))
        return matrix_to_euler(matrices), matrices
    if kind == "euler_degrees":
        raw = _output(outputs, decoding["name"]).reshape(-1, 3)
        order = list(decoding.get("order", ["yaw", "pitch", "roll"]))
        angles = np.stack([raw[:, order.index(a)] for a in ("yaw", "pitch", "roll")], 1).astype(np.float64)
    elif kind == "sincos":
        raw = _output(outputs, decoding["name"]).astype(np.float64).reshape(-1, 6)
        angles = np.rad2deg(np.arctan2(raw[:, :3], raw[:, 3:]))
    elif kind == "bins_packed":
        bins = int(decoding["bins"])
        probs = _softmax(_output(outputs, decoding["name"]).astype(np.float64).reshape(-1, 3, bins))
        angles = probs @ (np.arange(bins) * float(decoding["width"])) + float(decoding["offset"])
    elif kind == "bins":
        cols = []
        for angle in ("yaw", "pitch", "roll"):
            spec = decoding[angle]
            probs = _softmax(_output(outputs, spec["name"]).astype(np.float64).reshape(len(_first(outputs)), -1))
            cols.append(probs @ (np.arange(probs.shape[1]) * float(spec["width"])) + float(spec["offset"]))
        angles = np.stack(cols, 1)
    else:
        raise ModelFormatError(f"unknown output decoding '{kind}'; the manifest's output.type must be one of {DECODINGS}")
    return angles, euler_to_matrix(angles[:, 0], angles[:, 1], angles[:, 2])


def decode_affine_camera(params: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations in edgepose's convention from (N, >=12) 3DMM parameters whose first 12 are a row-major
    3x4 affine camera matrix P = [s R_cam | t] (the weak-perspective camera of 300W-LP / AFLW2000-3D fits).

    The first two rows of P, normalised, are the first two rows of the model-to-image rotation; their cross product
    is the third. Fit noise leaves the rows only nearly orthogonal, so the matrix is projected to the nearest rotation
    (SVD, U Vt). The AFLW2000-convention matrix (R = Rz(roll) Ry(yaw) Rx(pitch)) is its transpose.
    """
    p = np.asarray(params, dtype=np.float64).reshape(len(params), -1)
    if p.shape[1] < 12:
        raise ModelFormatError(f"affine_camera decoding needs at least 12 values per face, the model gave {p.shape[1]}; "
                               "fix output.type or output.name in the manifest")
    rows = p[:, :12].reshape(-1, 3, 4)[:, :2, :3]
    r1 = rows[:, 0] / np.maximum(np.linalg.norm(rows[:, 0], axis=-1, keepdims=True), 1e-12)
    r2 = rows[:, 1] / np.maximum(np.linalg.norm(rows[:, 1], axis=-1, keepdims=True), 1e-12)
    u, _, vt = np.linalg.svd(np.stack([r1, r2, np.cross(r1, r2)], 1))
    d = np.sign(np.linalg.det(u @ vt))  # keep a proper rotation (det +1) when the rows are degenerate
    u[:, :, 2] *= d[:, None]
    return np.transpose(u @ vt, (0, 2, 1))


def _first(outputs: dict[str, np.ndarray]) -> np.ndarray:
    return next(iter(outputs.values()))


def _output(outputs: dict[str, np.ndarray], name: str) -> np.ndarray:
    if name not in outputs:
        raise ModelFormatError(f"the manifest decodes output '{name}' but the model produced {sorted(outputs)}; "
                               "fix output names in the manifest")
    return np.asarray(outputs[name])
