"""Face crops: the square-around-the-box protocol every edgepose bundle is trained and run with."""
from __future__ import annotations

import cv2
import numpy as np

from .errors import InputError


def validate_frame(frame) -> np.ndarray:
    """Check that `frame` is a BGR uint8 H x W x 3 image and return it; raise InputError otherwise."""
    if not isinstance(frame, np.ndarray):
        raise InputError(f"frame must be a numpy array (BGR uint8 HxWx3, as cv2.imread returns), got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise InputError(f"frame dtype is {frame.dtype}; edgepose expects uint8 BGR in 0..255 "
                         "(convert with np.clip(frame, 0, 255).astype(np.uint8))")
    if frame.ndim != 3 or frame.shape[2] != 3:
        hint = " (grayscale: use cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))" if frame.ndim == 2 else ""
        raise InputError(f"frame shape is {frame.shape}; expected H x W x 3 BGR{hint}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InputError(f"frame is empty (shape {frame.shape}); pass an image with at least one pixel")
    return frame


def clip_box(box, width: int, height: int) -> tuple[float, float, float, float]:
    """Validate an (x1, y1, x2, y2) face box and clip it to the frame.

    Raises:
        InputError: the box is not 4 finite numbers, has x2 <= x1 or y2 <= y1, or lies wholly outside the frame.
    """
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise InputError(f"box {box!r} must be 4 numbers (x1, y1, x2, y2) in frame pixels") from None
    if not all(np.isfinite([x1, y1, x2, y2])):
        raise InputError(f"box {box!r} has a non-finite coordinate")
    if x2 <= x1 or y2 <= y1:
        raise InputError(f"box {box!r} is empty or inverted; expected x1 < x2 and y1 < y2")
    cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))
    if cx2 <= cx1 or cy2 <= cy1:
        raise InputError(f"box {box!r} lies outside the {width}x{height} frame")
    return cx1, cy1, cx2, cy2


def square_crop(frame: np.ndarray, box, scale: float, size: int) -> np.ndarray:
    """Crop a square of side scale * max(w, h) centred on `box`, replicate the border, resize to size x size.

    This is the training-pool protocol (see the manifest's `crop.scale`): the face box fills about
    1/scale of the crop. Downscaling uses INTER_AREA, upscaling INTER_LINEAR.
    """
    x1, y1, x2, y2 = box
    side = max(1, int(round(scale * max(x2 - x1, y2 - y1))))
    left = int(round((x1 + x2) / 2 - side / 2))
    top = int(round((y1 + y2) / 2 - side / 2))
    h, w = frame.shape[:2]
    pad_l, pad_t = max(0, -left), max(0, -top)
    pad_r, pad_b = max(0, left + side - w), max(0, top + side - h)
    src = frame[max(top, 0):min(top + side, h), max(left, 0):min(left + side, w)]
    if pad_l or pad_t or pad_r or pad_b:
        src = cv2.copyMakeBorder(src, pad_t, pad_b, pad_l, pad_r, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(src, (size, size), interpolation=interp)


def roi_crop(frame: np.ndarray, box, scale: float, shift: tuple[float, float], size: tuple[int, int]) -> np.ndarray:
    """The "roi" protocol: a square of side int(scale * (w + h) / 2) on the box centre moved by shift * (w + h) / 2,
    corners rounded to pixels, zero-padded where it leaves the frame, bilinear resize to size (height, width).

    This is 3DDFA_V2's crop (`parse_roi_box_from_bbox` with scale 1.58 and shift (0, 0.14), then `crop_img`).
    """
    x1, y1, x2, y2 = box
    mean_side = ((x2 - x1) + (y2 - y1)) / 2
    cx, cy = (x1 + x2) / 2 + shift[0] * mean_side, (y1 + y2) / 2 + shift[1] * mean_side
    side = max(1, int(mean_side * scale))
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    right, bottom = int(round(cx - side / 2 + side)), int(round(cy - side / 2 + side))
    h, w = frame.shape[:2]
    out = np.zeros((bottom - top, right - left, 3), np.uint8)
    sx, sy, ex, ey = max(left, 0), max(top, 0), min(right, w), min(bottom, h)
    if ex > sx and ey > sy:
        out[sy - top:ey - top, sx - left:ex - left] = frame[sy:ey, sx:ex]
    return cv2.resize(out, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
