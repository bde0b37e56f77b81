"""Whole-frame latency: frames composed from the training pool with 1, 3 and 10 faces, per stage and end to end,
beside the per-face cost with boxes, `Runtime.stream` throughput, and the 450x450 whole-frame / boxed-face ratio."""
from __future__ import annotations

import time

import numpy as np

from .bench import latency_stats, sample_calls, stage_calls
from .scenes import SceneMaker

FACE_COUNTS = (1, 3, 10)


def frame_latency(rt, pool_root, runs: int = 30, seed: int = 0) -> list[dict]:
    """Rows (faces, stage, faces found, latency stats) at 640x480 with FACE_COUNTS faces of 60-160 px (40-90 px for
    10, so that they fit side by side)."""
    maker = SceneMaker(pool_root, seed=seed)
    rows = []
    for count in FACE_COUNTS:
        sizes = [int(s) for s in maker.rng.integers(*((60, 160) if count <= 3 else (40, 90)), count)]
        scene = maker.scene(640, 480, sizes)
        found = len(rt.infer(scene.frame))
        for stage, fn, _ in stage_calls(rt, scene.frame, all_faces=True):
            rows.append({"faces": len(scene.boxes), "found": found, "stage": stage,
                         **latency_stats(sample_calls(fn, runs, 3))})
    return rows


def boxed_ratio(rt, pool_root, runs: int = 60, seed: int = 0) -> dict:
    """Median whole-frame `infer(frame)` at 450x450 (one 200 px face) against `infer(frame, boxes=[box])`,
    interleaved call by call so a machine that drifts shifts both alike."""
    scene = SceneMaker(pool_root, seed=seed).scene(450, 450, [200])
    box = tuple(scene.boxes[0])
    whole, boxed = [], []
    for _ in range(3):
        rt.infer(scene.frame), rt.infer(scene.frame, boxes=[box])
    for _ in range(runs):
        t0 = time.perf_counter()
        rt.infer(scene.frame)
        t1 = time.perf_counter()
        rt.infer(scene.frame, boxes=[box])
        whole.append((t1 - t0) * 1e3), boxed.append((time.perf_counter() - t1) * 1e3)
    w, b = float(np.median(whole)), float(np.median(boxed))
    return {"whole_450_p50_ms": w, "boxed_p50_ms": b, "ratio": w / b}


def stream_throughput(rt, pool_root, frames: int = 60, seed: int = 0) -> dict:
    """Frames per second of `Runtime.stream` over a clip of composed 640x480 frames of 1-5 faces."""
    maker = SceneMaker(pool_root, seed=seed)
    clip = [maker.scene(640, 480, [int(s) for s in maker.rng.integers(60, 200, int(maker.rng.integers(1, 6)))]).frame
            for _ in range(frames)]
    start = time.perf_counter()
    with rt.stream(clip) as stream:
        n = sum(1 for _ in stream)
    elapsed = time.perf_counter() - start
    return {"frames": n, "seconds": elapsed, "fps": n / elapsed}
