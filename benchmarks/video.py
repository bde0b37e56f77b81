"""Video throughput: the threaded Runtime.stream pipeline against a plain sequential loop, same clip, same models.

    python benchmarks/video.py --root AFLW2000_DIR [--frames 300] [--detector blazeface:MODEL] [--clip OUT.avi]

The clip is generated from aflw2000-dev images (640x480, one face per frame), written as MJPG and decoded back,
so both runs include video decoding.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edgepose.datasets.aflw2000 import read_aflw2000


def make_clip(root: str, path: Path, frames: int) -> list:
    """Write a 640x480 MJPG clip of dev images (each held for 3 frames); return their labels per frame."""
    samples = read_aflw2000(root)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    labels = []
    for i in range(frames):
        s = samples[(i // 3) % len(samples)]
        frame = np.zeros((480, 640, 3), np.uint8)
        frame[15:465, 95:545] = cv2.imread(str(s.image))
        writer.write(frame)
        labels.append(s)
    writer.release()
    return labels


def main() -> int:
    from edgepose import Runtime

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, help="AFLW2000-3D folder")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--platform", default="cpu")
    ap.add_argument("--detector", default=None)
    ap.add_argument("--clip", default=None, help="keep the generated clip here")
    args = ap.parse_args()

    clip = Path(args.clip) if args.clip else Path(tempfile.mkdtemp()) / "clip.avi"
    make_clip(args.root, clip, args.frames)
    with Runtime(args.platform, threads=1, detector=args.detector) as rt:
        t0 = time.perf_counter()
        cap, n_seq = cv2.VideoCapture(str(clip)), 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            rt.infer(frame)
            n_seq += 1
        seq = time.perf_counter() - t0
        t0 = time.perf_counter()
        with rt.stream(str(clip)) as stream:
            n_pipe = sum(1 for _ in stream)
        pipe = time.perf_counter() - t0
    print(f"clip: {args.frames} frames 640x480, {os.cpu_count()} cores, detector {rt.platform.detector.type}")
    print(f"sequential loop : {n_seq} frames in {seq:.2f} s = {n_seq / seq:.1f} frames/s")
    print(f"threaded stream : {n_pipe} frames in {pipe:.2f} s = {n_pipe / pipe:.1f} frames/s  ({seq / pipe:.2f}x)")
    return 0 if n_pipe == n_seq == args.frames else 1


if __name__ == "__main__":
    raise SystemExit(main())
