"""FacePose: the result type of the runtime."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class FacePose:
    """Head pose of one face.

    Attributes:
        yaw, pitch, roll: degrees, AFLW2000 convention (yaw > 0: face turns to the image left; pitch > 0: up;
            roll > 0: head rotates clockwise in the image); R = Rz(roll) Ry(yaw) Rx(pitch).
        box: (x1, y1, x2, y2) tight face box in frame pixels (clipped to the frame).
        score: detector confidence (1.0 for boxes given by the caller).
        rotation: the 3x3 rotation matrix, or None (left out of == and hash: the angles determine it).
        track_id: stable id of this face across video frames (Runtime.stream), None for single images.
    """

    yaw: float
    pitch: float
    roll: float
    box: tuple[float, float, float, float]
    score: float = 1.0
    rotation: np.ndarray | None = field(default=None, compare=False)
    track_id: int | None = None

    def to_dict(self) -> dict:
        return {"yaw": round(self.yaw, 2), "pitch": round(self.pitch, 2), "roll": round(self.roll, 2),
                "box": [round(float(v), 1) for v in self.box], "score": round(float(self.score), 3),
                **({"track_id": self.track_id} if self.track_id is not None else {})}
