"""Face crop -> model input tensor, driven entirely by a manifest's InputSpec and CropSpec."""
from __future__ import annotations

import functools

import cv2
import numpy as np

from .crop import roi_crop, square_crop, square_warp
from .errors import ConfigError, InputError
from .manifest import CropSpec, InputSpec


def expand_crop(frame: np.ndarray, box, margins, size: tuple[int, int]) -> np.ndarray:
    """FSA-Net / WHENet crop: grow the box by margins (fractions of w, h), clip to the frame, int() truncation."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    ml, mt, mr, mb = margins
    H, W = frame.shape[:2]
    top, bottom = max(int(y1 - mt * h), 0), min(int(y2 + mb * h), H - 1)
    left, right = max(int(x1 - ml * w), 0), min(int(x2 + mr * w), W - 1)
    crop = frame[top:max(bottom, top + 1), left:max(right, left + 1)]
    return cv2.resize(crop, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


LEVELLED_PROTOCOLS = ("square", "roi")  # crops crop_face can cut along a face's eye line (Runtime align)


def crop_face(frame: np.ndarray, box, crop: CropSpec, spec: InputSpec, level_angle: float = 0.0) -> np.ndarray:
    """The BGR uint8 crop of one face at the model's input size.

    level_angle: degrees the face's eye line is turned clockwise in the image (from landmarks); the square crop is
    rotated by it so the eyes are level. The caller must compose the pose back (rotate_in_plane(R, level_angle)),
    which keeps roll intact.
    """
    if crop.protocol == "square":
        out = square_warp(frame, box, crop.scale, spec.size[0]) if not level_angle else \
            _levelled_square(frame, box, crop.scale, spec.size[0], level_angle)
        if spec.size[0] != spec.size[1]:
            out = cv2.resize(out, (spec.size[1], spec.size[0]), interpolation=cv2.INTER_LINEAR)
        return out
    if crop.protocol == "roi":
        if level_angle:
            return _levelled_roi(frame, box, crop.scale, crop.shift, spec.size, level_angle)
        return roi_crop(frame, box, crop.scale, crop.shift, spec.size)
    if level_angle:
        raise ConfigError(f"eye levelling (align) needs a model with the {' or '.join(LEVELLED_PROTOCOLS)} crop protocol, "
                          f"this one uses '{crop.protocol}'; run it with align=False")
    return expand_crop(frame, box, crop.margins, spec.size)


def _levelled_square(frame: np.ndarray, box, scale: float, size: int, angle: float) -> np.ndarray:
    """Square crop rotated counter-clockwise by `angle` about the box centre: cut 1.5x larger, rotate, centre-crop."""
    margin = int(np.ceil(size * 1.5))
    big = square_crop(frame, box, scale * margin / size, margin)
    c = (margin - 1) / 2
    m = cv2.getRotationMatrix2D((c, c), angle, 1.0)  # cv2: positive angle = counter-clockwise
    m[:, 2] += (size - margin) / 2
    return cv2.warpAffine(big, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _levelled_roi(frame: np.ndarray, box, scale: float, shift, size, angle: float) -> np.ndarray:
    """The roi crop (crop.roi_crop) of a face whose eye line is turned `angle` degrees clockwise, cut along the face's
    own axes: the square and its shift turned with the face, sampled straight from the frame (zero outside it)."""
    x1, y1, x2, y2 = box
    mean_side = ((x2 - x1) + (y2 - y1)) / 2
    side = max(1, int(mean_side * scale))
    t = np.radians(angle)
    u, v = np.array([np.cos(t), np.sin(t)]), np.array([-np.sin(t), np.cos(t)])  # the face's right and down, y down
    centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2]) + mean_side * (shift[0] * u + shift[1] * v)
    height, width = size
    su, sv = side / width, side / height  # frame pixels per output pixel
    # output pixel (i, j) centre -> frame point centre + (i + 0.5) su u + (j + 0.5) sv v - side / 2 (u + v), then to
    # pixel-centre coordinates (- 0.5)
    origin = centre - side / 2 * (u + v) + 0.5 * su * u + 0.5 * sv * v - 0.5
    m = np.array([[su * u[0], sv * v[0], origin[0]], [su * u[1], sv * v[1], origin[1]]])
    return cv2.warpAffine(frame, m, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def eye_line_angle(landmarks: np.ndarray) -> float:
    """Clockwise angle (degrees, as displayed) of the line from the image-left to the image-right eye."""
    (lx, ly), (rx, ry) = landmarks[0], landmarks[1]
    return float(np.degrees(np.arctan2(ry - ly, rx - lx)))


def to_input(crops, spec: InputSpec) -> np.ndarray:
    """(N, H, W, 3) BGR uint8 crops (an array, or a list of equal-sized images) -> the model input: float32 in the
    spec's colour order, normalisation and layout; or, for a model that normalises its own input (dtype uint8, mean
    0, std 1: exporters/fold_input.py), the uint8 pixels themselves (one BGR NHWC crop: a view, no copy).

    The float path is one pass in OpenCV (cv2.dnn.blobFromImagesWithParams: colour swap, (x - mean) / std per
    channel, layout), about a fifth cheaper than a numpy strided copy for one 128 px face; equal to the formula
    (tests/test_crop.py).
    """
    if not isinstance(crops, np.ndarray):  # one array either way: one crop is a view, several are stacked
        crops = list(crops)
        if any(np.shape(c) != np.shape(crops[0]) for c in crops):
            raise InputError(f"crops of different sizes {sorted({np.shape(c) for c in crops})}; cut every crop at the "
                             f"input size {spec.size}")
        if len(crops) == 1:
            crops = np.asarray(crops[0])[None]
        else:
            crops = np.stack(crops) if crops else np.zeros((0, *spec.size, 3), np.uint8)
    if crops.ndim != 4 or crops.shape[3] != 3:
        raise InputError(f"crops of shape {crops.shape}; expected (N, H, W, 3) BGR images (one crop: crop[None])")
    if fed_pixels(spec):
        if crops.dtype != np.uint8:
            raise InputError(f"crops are {crops.dtype}; this model takes uint8 pixels (0..255), convert with "
                             "np.clip(crops, 0, 255).astype(np.uint8)")
        x = crops[..., ::-1] if spec.color == "RGB" else crops
        x = x.transpose(0, 3, 1, 2) if spec.layout == "NCHW" else x
        return np.ascontiguousarray(x)
    if not len(crops):
        return np.zeros((0, 3, *spec.size) if spec.layout == "NCHW" else (0, *spec.size, 3), np.float32)
    if crops.dtype not in (np.uint8, np.float32):  # the two depths OpenCV's blob takes
        crops = crops.astype(np.float32)
    return cv2.dnn.blobFromImagesWithParams(list(crops), _blob_params(spec))


def fed_pixels(spec: InputSpec) -> bool:
    """Whether the model takes the crop's uint8 pixels as they are (it normalises itself); otherwise it is fed float32
    (normalised here; a quantized integer input is then scaled by the backend)."""
    return spec.dtype == "uint8" and tuple(spec.mean) == (0, 0, 0) and tuple(spec.std) == (1, 1, 1)


@functools.lru_cache(maxsize=32)
def _blob_params(spec: InputSpec) -> cv2.dnn.Image2BlobParams:
    p = cv2.dnn.Image2BlobParams()
    p.scalefactor = (*(1.0 / s for s in spec.std), 1.0)  # OpenCV scalars have four channels
    p.mean = (*spec.mean, 0.0)  # in the output's colour order (after the swap)
    p.swapRB = spec.color == "RGB"
    p.ddepth = cv2.CV_32F
    p.datalayout = cv2.dnn.DNN_LAYOUT_NCHW if spec.layout == "NCHW" else cv2.dnn.DNN_LAYOUT_NHWC
    return p


def prepare_batch(frame: np.ndarray, boxes, crop: CropSpec, spec: InputSpec, angles=None) -> np.ndarray:
    """Model input for every box of one frame (boxes already validated and clipped), levelled by `angles`."""
    angles = angles if angles is not None else [0.0] * len(boxes)
    return to_input([crop_face(frame, b, crop, spec, a) for b, a in zip(boxes, angles)], spec)
