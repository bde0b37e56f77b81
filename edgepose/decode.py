"""Decoding of a pose model's raw outputs into yaw, pitch, roll degrees (numpy; the device half)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .angles import euler_to_matrix, matrix_to_euler, rot6d_to_matrix, rot6d_to_pose
from .errors import ModelFormatError

ANGLES = ("yaw", "pitch", "roll")


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _with_matrices(angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return angles, euler_to_matrix(angles[:, 0], angles[:, 1], angles[:, 2])


SCALAR_BATCH = 4  # up to this many faces, rot6d decodes in plain Python (angles.rot6d_to_pose): cheaper than numpy


def _rot6d(outputs, decoding):
    raw = _output(outputs, decoding["name"]).reshape(-1, 6)
    # Gram-Schmidt of a zero or collinear pair of columns gives zero columns: a rotation's third column has length 1
    if len(raw) <= SCALAR_BATCH:
        angles, matrices = zip(*map(rot6d_to_pose, raw.tolist())) if len(raw) else ((), ())
        if any(abs(m[0][2] * m[0][2] + m[1][2] * m[1][2] + m[2][2] * m[2][2] - 1.0) > 1e-3 for m in matrices):
            raise _degenerate(decoding, "two columns of R that are zero or parallel")
        return np.array(angles, np.float64).reshape(-1, 3), np.array(matrices, np.float64).reshape(-1, 3, 3)
    matrices = rot6d_to_matrix(raw)
    if (np.abs((matrices[:, :, 2] ** 2).sum(1) - 1.0) > 1e-3).any():
        raise _degenerate(decoding, "two columns of R that are zero or parallel")
    return matrix_to_euler(matrices), matrices


def _affine_camera(outputs, decoding):
    matrices = decode_affine_camera(_output(outputs, decoding["name"]))
    return matrix_to_euler(matrices), matrices


def _euler_degrees(outputs, decoding):
    raw = _output(outputs, decoding["name"]).reshape(-1, 3)
    if len(raw) and np.abs(raw).max() > 360:
        raise ModelFormatError(f"model output '{decoding['name']}' holds {np.abs(raw).max():.4g}, not an angle in degrees "
                               "(|value| > 360); the output is in other units or is not Euler angles: fix output.type "
                               "in the manifest")
    order = list(decoding.get("order", ANGLES))
    return _with_matrices(np.stack([raw[:, order.index(a)] for a in ANGLES], 1).astype(np.float64))


def _sincos(outputs, decoding):
    raw = _output(outputs, decoding["name"]).astype(np.float64).reshape(-1, 6)
    if len(raw) and (raw[:, :3] ** 2 + raw[:, 3:] ** 2 < 1e-12).any():
        raise _degenerate(decoding, "a sine and cosine that are both zero")
    return _with_matrices(np.rad2deg(np.arctan2(raw[:, :3], raw[:, 3:])))


def _bins_packed(outputs, decoding):
    bins = int(decoding["bins"])
    probs = _softmax(_output(outputs, decoding["name"]).astype(np.float64).reshape(-1, 3, bins))
    return _with_matrices(probs @ (np.arange(bins) * float(decoding["width"])) + float(decoding["offset"]))


def _bins(outputs, decoding):
    cols = []
    for angle in ANGLES:
        spec = decoding[angle]
        probs = _softmax(_output(outputs, spec["name"]).astype(np.float64).reshape(len(_first(outputs)), -1))
        cols.append(probs @ (np.arange(probs.shape[1]) * float(spec["width"])) + float(spec["offset"]))
    return _with_matrices(np.stack(cols, 1))


@dataclass(frozen=True)
class Decoding:
    """One output decoding a manifest can name (`output.type`) and a training head can export.

    decode: (outputs by name, the manifest's output section) -> ((N, 3) yaw/pitch/roll degrees, (N, 3, 3) matrices).
    required, optional: the keys of the output section besides "type".
    outputs: the output tensor names the section reads.
    per_face: how many values each face has in each of those outputs (None: any number; the decoder checks).
    """

    decode: Callable[[dict, dict], tuple[np.ndarray, np.ndarray]]
    required: frozenset
    optional: frozenset = frozenset()
    outputs: Callable[[dict], list[str]] = lambda d: [d["name"]]
    form: str = ""
    per_face: Callable[[dict], int | None] = lambda d: None


_NAME = frozenset({"name"})
DECODINGS: dict[str, Decoding] = {
    "rot6d": Decoding(_rot6d, _NAME, form='{"name"}: the 6 values are the first two columns of R',
                      per_face=lambda d: 6),
    "euler_degrees": Decoding(_euler_degrees, _NAME, frozenset({"order"}),
                              form='{"name", "order": ["yaw", "pitch", "roll"]}', per_face=lambda d: 3),
    "sincos": Decoding(_sincos, _NAME, form='{"name"}: (N, 6) = sin(yaw, pitch, roll), cos(...); angle = atan2',
                       per_face=lambda d: 6),
    "bins": Decoding(_bins, frozenset(ANGLES), outputs=lambda d: [d[a]["name"] for a in ANGLES],
                     form='{"yaw": {"name", "width", "offset"}, "pitch": ..., "roll": ...}; angle = '
                          'sum(softmax(logits)_i * i * width) + offset (Hopenet/WHENet style)'),
    "bins_packed": Decoding(_bins_packed, frozenset({"name", "bins", "width", "offset"}),
                            form='{"name", "bins", "width", "offset"}: one (N, 3 * bins) tensor, yaw/pitch/roll',
                            per_face=lambda d: 3 * int(d["bins"])),
    "affine_camera": Decoding(_affine_camera, _NAME,
                              form='{"name"}: the first 12 values are a 3x4 affine camera [sR | t] (3DMM-parameter '
                                   'models such as 3DDFA_V2); see decode_affine_camera'),
}


def decode_outputs(outputs: dict[str, np.ndarray], decoding: dict, faces: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Turn raw model outputs into ((N, 3) yaw/pitch/roll degrees, (N, 3, 3) rotation matrices).

    `decoding` is the manifest's `output` section: {"type": a key of DECODINGS, ...}; each entry's `form` says what
    else it holds. `faces`: the batch the outputs answer; each output read must then have one row per face.

    Raises:
        ModelFormatError: an output missing, non-finite, with a row count other than `faces`, or with a number of
            values per face the decoding cannot read (a manifest that names the wrong output or type: no face is
            dropped or invented silently); values that are no rotation (zero 6D columns, zero sine and cosine, Euler
            values beyond 360 degrees).
    """
    entry = DECODINGS.get(decoding.get("type"))
    if entry is None:
        raise ModelFormatError(f"unknown output decoding '{decoding.get('type')}'; the manifest's output.type must be "
                               f"one of {sorted(DECODINGS)}")
    want = entry.per_face(decoding)
    for name in entry.outputs(decoding):
        raw = _output(outputs, name)
        if not np.isfinite(raw).all():  # before any arithmetic: no NumPy warnings, no SVD that cannot converge
            raise ModelFormatError(f"model output '{name}' holds non-finite values (NaN or inf); the model file or its "
                                   "manifest's input normalisation is wrong — re-export the bundle")
        shape = raw.shape
        rows = shape[0] if len(shape) > 1 else 1
        width = raw.size // rows if rows else 0
        if faces is not None and rows != faces:
            raise ModelFormatError(f"model output '{name}' has shape {list(shape)}: {rows} row(s) for a batch of "
                                   f"{faces} face(s); each face needs its own row — fix output.name in the manifest "
                                   "or re-export the bundle")
        if want is not None and width != want and rows:
            raise ModelFormatError(f"model output '{name}' has {width} values per face but output.type "
                                   f"'{decoding['type']}' reads {want}; fix output.type (or output.bins) in the "
                                   "manifest")
    return entry.decode(outputs, decoding)


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
    if not np.isfinite(rows).all():
        raise ModelFormatError("affine_camera decoding: the model gave non-finite camera values; the model file or the "
                               "manifest's input normalisation is wrong")
    r1 = rows[:, 0] / np.maximum(np.linalg.norm(rows[:, 0], axis=-1, keepdims=True), 1e-12)
    r2 = rows[:, 1] / np.maximum(np.linalg.norm(rows[:, 1], axis=-1, keepdims=True), 1e-12)
    if len(p) and (np.linalg.norm(np.cross(r1, r2), axis=-1) < 1e-6).any():
        raise ModelFormatError("affine_camera decoding: the camera's first two rows are zero or parallel, which is no "
                               "rotation; the model file or the manifest's output or input normalisation is wrong")
    u, _, vt = np.linalg.svd(np.stack([r1, r2, np.cross(r1, r2)], 1))
    d = np.sign(np.linalg.det(u @ vt))  # keep a proper rotation (det +1) when the rows are degenerate
    u[:, :, 2] *= d[:, None]
    return np.transpose(u @ vt, (0, 2, 1))


def _degenerate(decoding: dict, what: str) -> ModelFormatError:
    return ModelFormatError(f"model output '{decoding['name']}' gives {what}, which is no rotation; the model file or "
                            f"the manifest's output.type '{decoding['type']}' or input normalisation is wrong")


def _first(outputs: dict[str, np.ndarray]) -> np.ndarray:
    return next(iter(outputs.values()))


def _output(outputs: dict[str, np.ndarray], name: str) -> np.ndarray:
    if name not in outputs:
        raise ModelFormatError(f"the manifest decodes output '{name}' but the model produced {sorted(outputs)}; "
                               "fix output names in the manifest")
    return np.asarray(outputs[name])


def check_decoding(decoding) -> None:
    """Validate a manifest's `output` section before any model runs (see `decode_outputs` for the forms).

    Raises:
        ModelFormatError: unknown type, missing or unknown keys, a wrongly typed name, a bad order, bins or width.
    """
    from .errors import did_you_mean

    if not isinstance(decoding, dict) or decoding.get("type") not in DECODINGS:
        kind = decoding.get("type") if isinstance(decoding, dict) else decoding
        raise ModelFormatError(f"manifest.output.type '{kind}' must be one of {sorted(DECODINGS)}")
    required, optional = DECODINGS[decoding["type"]].required, DECODINGS[decoding["type"]].optional
    for key in set(decoding) - required - optional - {"type"}:
        raise ModelFormatError(f"unknown key 'manifest.output.{key}' for output type '{decoding['type']}'."
                               f"{did_you_mean(str(key), required | optional)} Valid keys: {sorted(required | optional)}")
    for key in sorted(required - set(decoding)):
        raise ModelFormatError(f"manifest.output of type '{decoding['type']}' needs '{key}'")
    if decoding["type"] == "bins":
        for angle in ANGLES:
            _check_bins(decoding[angle], f"manifest.output.{angle}", {"name", "width", "offset"})
        return
    if not isinstance(decoding["name"], str) or not decoding["name"]:
        raise ModelFormatError(f"manifest.output.name must be the output tensor's name, got {decoding['name']!r}")
    if "order" in decoding and (not isinstance(decoding["order"], (list, tuple))
                                or sorted(map(str, decoding["order"])) != sorted(ANGLES)):
        raise ModelFormatError(f"manifest.output.order must list yaw, pitch and roll once each, got {decoding['order']!r}")
    if decoding["type"] == "bins_packed":
        _check_bins(decoding, "manifest.output", {"type", "name", "bins", "width", "offset"})
        if isinstance(decoding["bins"], bool) or not isinstance(decoding["bins"], int) or not 1 <= decoding["bins"] <= 4096:
            raise ModelFormatError(f"manifest.output.bins must be a whole number 1..4096, got {decoding['bins']!r}")


def _check_bins(spec, where: str, keys: set) -> None:
    import math

    if not isinstance(spec, dict) or set(spec) != keys:
        raise ModelFormatError(f"{where} must be a mapping with keys {sorted(keys)}, got {spec!r}")
    if not isinstance(spec["name"], str) or not spec["name"]:
        raise ModelFormatError(f"{where}.name must be the output tensor's name, got {spec['name']!r}")
    for key, low in (("width", 0.0), ("offset", None)):
        value = spec[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or (low is not None and value <= low):
            raise ModelFormatError(f"{where}.{key} must be a finite number{' > 0' if low is not None else ''}, "
                                   f"got {value!r}")


def output_names(decoding: dict) -> list[str]:
    """The model outputs a (validated) decoding reads."""
    return DECODINGS[decoding["type"]].outputs(decoding)
