"""Drawing of head-pose results on frames (pose axes, boxes, angle text)."""
from __future__ import annotations

import cv2
import numpy as np

from .angles import euler_to_matrix


def axes_2d(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 2) image-plane directions (x right, y down) of the face's left, up and forward axes.

    Rows of M = Rz(roll) Ry(yaw) Rx(pitch) are the face axes in a y-up camera frame; flipping y gives pixels.
    """
    m = euler_to_matrix(yaw, pitch, roll)
    return np.stack([m[:, 0], -m[:, 1]], 1)


def draw_pose(frame: np.ndarray, pose, length: float | None = None) -> np.ndarray:
    """Draw box, axes (red = face left, green = up, blue = forward) and angles of one FacePose in place."""
    x1, y1, x2, y2 = (int(round(v)) for v in pose.box)
    cv2.rectangle(frame, (x1, y1), (x2, y2), (255, 255, 255), 1)
    centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
    length = length or 0.6 * max(x2 - x1, y2 - y1)
    for direction, colour in zip(axes_2d(pose.yaw, pose.pitch, pose.roll), ((0, 0, 255), (0, 255, 0), (255, 0, 0))):
        end = centre + length * direction
        cv2.line(frame, tuple(int(v) for v in centre), tuple(int(v) for v in end), colour, 2, cv2.LINE_AA)
    text = f"y{pose.yaw:+.0f} p{pose.pitch:+.0f} r{pose.roll:+.0f}"
    cv2.putText(frame, text, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 255), 1, cv2.LINE_AA)
    return frame
