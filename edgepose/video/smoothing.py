"""Temporal smoothing of pose angles: the One-Euro filter (Casiez et al., CHI 2012), one per tracked face."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroConfig:
    """min_cutoff (Hz): lower = smoother at rest. beta: higher = less lag when the head moves fast.
    d_cutoff (Hz): cutoff of the speed estimate."""

    min_cutoff: float = 1.0
    beta: float = 0.05
    d_cutoff: float = 1.0


def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters a vector signal (here yaw, pitch, roll) sampled at irregular times."""

    def __init__(self, cfg: OneEuroConfig = OneEuroConfig()):
        self.cfg = cfg
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None
        self.t: float | None = None

    def __call__(self, value, t: float) -> np.ndarray:
        value = np.asarray(value, np.float64)
        if self.x is None or self.t is None or t <= self.t:
            self.x, self.dx, self.t = value, np.zeros_like(value), t
            return value
        dt = t - self.t
        dx = (value - self.x) / dt
        a_d = _alpha(self.cfg.d_cutoff, dt)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        cutoff = self.cfg.min_cutoff + self.cfg.beta * np.abs(self.dx)
        a = np.array([_alpha(c, dt) for c in cutoff])
        self.x = a * value + (1 - a) * self.x
        self.t = t
        return self.x
