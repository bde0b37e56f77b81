"""Decoding of a pose model's raw outputs into yaw, pitch, roll degrees (numpy; the device half)."""
from __future__ import annotations

import numpy as np

from .angles import euler_to_matrix, matrix_to_euler, rot6d_to_matrix
from .errors import ModelFormatError

DECODINGS = ("rot6d", "euler_degrees", "sincos", "bins", "bins_packed")


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
    """
    kind = decoding.get("type")
    if kind == "rot6d":
        matrices = rot6d_to_matrix(_output(outputs, decoding["name"]).reshape(-1, 6))
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


def _first(outputs: dict[str, np.ndarray]) -> np.ndarray:
    return next(iter(outputs.values()))


def _output(outputs: dict[str, np.ndarray], name: str) -> np.ndarray:
    if name not in outputs:
        raise ModelFormatError(f"the manifest decodes output '{name}' but the model produced {sorted(outputs)}; "
                               "fix output names in the manifest")
    return np.asarray(outputs[name])
