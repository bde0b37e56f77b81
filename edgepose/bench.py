"""Benchmark harness of the device half: timing loops and percentile tables (used by benchmarks/*.py)."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np


def time_calls(fn: Callable[[], object], runs: int, warmup: int) -> dict:
    """Milliseconds per call of `fn` after `warmup` untimed calls: p50/p90/p99/mean/min and calls per second."""
    for _ in range(warmup):
        fn()
    times = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter()
        fn()
        times[i] = (time.perf_counter() - t0) * 1e3
    return {"runs": runs, "p50_ms": float(np.percentile(times, 50)), "p90_ms": float(np.percentile(times, 90)),
            "p99_ms": float(np.percentile(times, 99)), "mean_ms": float(times.mean()), "min_ms": float(times.min()),
            "per_s": float(1e3 / np.percentile(times, 50))}


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    """A markdown table of dict rows (floats to 2 decimals)."""
    def fmt(v):
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def demo_frame(width: int = 640, height: int = 480) -> np.ndarray:
    """A width x height BGR frame holding one real face: scikit-image's public-domain NASA astronaut portrait."""
    import cv2

    try:
        from skimage import data
    except ImportError as exc:
        raise ImportError("the demo frame needs scikit-image: pip install 'edgepose[demo]'") from exc
    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    scale = min(width / img.shape[1], height / img.shape[0])
    img = cv2.resize(img, (int(img.shape[1] * scale), int(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    frame = np.full((height, width, 3), 40, np.uint8)
    y, x = (height - img.shape[0]) // 2, (width - img.shape[1]) // 2
    frame[y:y + img.shape[0], x:x + img.shape[1]] = img
    return frame
