"""Face crops: the square-around-the-box protocol every edgepose bundle is trained and run with."""
from __future__ import annotations

import math

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
        InputError: the box is not 4 finite numbers, has x2 <= x1 or y2 <= y1, or keeps less than a pixel of width
            or height inside the frame (nothing of a face to pose).
    """
    try:
        values = list(box)
        if len(values) != 4 or any(isinstance(v, (str, bytes, bool)) for v in values):
            raise TypeError
        x1, y1, x2, y2 = (float(v) for v in values)
    except (TypeError, ValueError):
        raise InputError(f"box {box!r} must be 4 numbers (x1, y1, x2, y2) in frame pixels") from None
    if not all(map(math.isfinite, (x1, y1, x2, y2))):
        raise InputError(f"box {box!r} has a non-finite coordinate")
    if x2 <= x1 or y2 <= y1:
        raise InputError(f"box {box!r} is empty or inverted; expected x1 < x2 and y1 < y2")
    cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))
    if cx2 <= cx1 or cy2 <= cy1:
        raise InputError(f"box {box!r} lies outside the {width}x{height} frame")
    if cx2 - cx1 < 1 or cy2 - cy1 < 1:
        raise InputError(f"box {box!r} keeps less than one pixel of width or height inside the {width}x{height} frame "
                         f"({cx2 - cx1:.3g} x {cy2 - cy1:.3g}); give a box around a visible face")
    return cx1, cy1, cx2, cy2


def square_geometry(box, scale: float) -> tuple[int, int, int]:
    """(side, left, top) in whole pixels of the square of side scale * max(w, h) centred on `box`."""
    x1, y1, x2, y2 = box
    side = max(1, int(round(scale * max(x2 - x1, y2 - y1))))
    return side, int(round((x1 + x2) / 2 - side / 2)), int(round((y1 + y2) / 2 - side / 2))


def square_crop(frame: np.ndarray, box, scale: float, size: int) -> np.ndarray:
    """Crop a square of side scale * max(w, h) centred on `box`, replicate the border, resize to size x size.

    This is the training-pool protocol (see the manifest's `crop.scale`): the face box fills about
    1/scale of the crop. Downscaling uses INTER_AREA, upscaling INTER_LINEAR. The runtime cuts the same square
    faster with `square_warp`.
    """
    side, left, top = square_geometry(box, scale)
    h, w = frame.shape[:2]
    pad_l, pad_t = max(0, -left), max(0, -top)
    pad_r, pad_b = max(0, left + side - w), max(0, top + side - h)
    src = frame[max(top, 0):min(top + side, h), max(left, 0):min(left + side, w)]
    if pad_l or pad_t or pad_r or pad_b:
        src = cv2.copyMakeBorder(src, pad_t, pad_b, pad_l, pad_r, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(src, (size, size), interpolation=interp)


def square_warp(frame: np.ndarray, box, scale: float, size: int) -> np.ndarray:
    """`square_crop`'s square without copying it: each 2x of downscaling is an exact 2x2 mean of the pixels under
    the square (INTER_AREA on a view of the frame), so at most a factor below 2 is left to bilinear sampling: one
    cv2.resize when the square lies inside the frame and halves evenly, else one affine warp straight from the
    frame (replicated border). The crop stays within a few grey levels of `square_crop`'s, and the models score the
    same on aflw2000-dev (docs/detection.md), for a fraction of its cost.
    """
    side, left, top = square_geometry(box, scale)
    h, w = frame.shape[:2]
    if left >= 0 and top >= 0 and left + side <= w and top + side <= h:
        out = _halve_and_resize(frame[top:top + side, left:left + side], size)
        if out is not None:
            return out
    step = side / size  # source pixels per output pixel
    x, y = left + step / 2 - 0.5, top + step / 2 - 0.5  # where output pixel (0, 0)'s centre samples the source
    src = frame
    if step >= 2:
        x0, y0 = max(left, 0), max(top, 0)
        src = frame[y0:min(top + side, h), x0:min(left + side, w)]
        x, y = x - x0, y - y0
        while step >= 2 and min(src.shape[:2]) >= 2:
            half_h, half_w = src.shape[0] // 2, src.shape[1] // 2
            src = cv2.resize(src[:2 * half_h, :2 * half_w], (half_w, half_h), interpolation=cv2.INTER_AREA)
            x, y, step = (x - 0.5) / 2, (y - 0.5) / 2, step / 2  # pixel j of the half is the mean of 2j, 2j + 1
    m = np.array([[step, 0.0, x], [0.0, step, y]])
    return cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def _halve_and_resize(square: np.ndarray, size: int) -> np.ndarray | None:
    """A square lying inside the frame: exact 2x2 means while it is at least twice the output, then one bilinear
    cv2.resize (a third of an equivalent warpAffine's cost at 128 px). None when a halving meets an odd side: dropping
    its last pixel (or rounding the side) moves the crop by up to half a pixel, 1.5-3 grey levels on a textured face
    (twice the warp's difference from the training crop), so the caller warps instead."""
    while square.shape[0] >= 2 * size:
        if square.shape[0] % 2:
            return None
        half = square.shape[0] // 2
        square = cv2.resize(square, (half, half), interpolation=cv2.INTER_AREA)
    if square.shape[0] == size:
        return np.ascontiguousarray(square)
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_LINEAR)


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
