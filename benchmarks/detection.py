"""Face detection on AFLW2000 and end-to-end pose with detector boxes (not label boxes).

For each image the detection with the highest IoU against the label box (visible pt2d points) is matched when
IoU >= 0.4; misses are counted separately, and the pose MAE is over matched faces only.

    python benchmarks/detection.py [--platform cpu] [--root ../shared/data/aflw2000-dev]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from edgepose.bench import demo_frame, time_calls
from edgepose.datasets.aflw2000 import read_aflw2000
from edgepose.metrics import format_summary, summarize


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def main() -> int:
    from edgepose import Runtime

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--platform", default="cpu")
    ap.add_argument("--root", default="../shared/data/aflw2000-dev")
    ap.add_argument("--min-iou", type=float, default=0.4)
    ap.add_argument("--out-dir", default="runs/benchmarks")
    args = ap.parse_args()

    samples = read_aflw2000(args.root)
    preds, truth, ious, found_by_bin = [], [], [], {"0-30": [0, 0], "30-60": [0, 0], "60-99": [0, 0]}
    with Runtime(args.platform, threads=1) as rt:
        for s in samples:
            poses = rt.infer(cv2.imread(str(s.image)))
            best = max(poses, key=lambda p: iou(p.box, s.box), default=None)
            key = "0-30" if abs(s.yaw) < 30 else "30-60" if abs(s.yaw) < 60 else "60-99"
            found_by_bin[key][1] += 1
            if best is not None and iou(best.box, s.box) >= args.min_iou:
                found_by_bin[key][0] += 1
                ious.append(iou(best.box, s.box))
                preds.append([best.yaw, best.pitch, best.roll])
                truth.append([s.yaw, s.pitch, s.roll])
        frame = demo_frame(640, 480)
        latency = time_calls(lambda: rt.detector.detect(frame), 30, 3)
        detector = rt.platform.detector.type
    summary = summarize(np.array(preds), np.array(truth))
    rate = len(preds) / len(samples)
    print(f"detector {detector}: matched {len(preds)}/{len(samples)} ({rate:.1%}, IoU >= {args.min_iou}), mean IoU "
          f"{np.mean(ious):.2f}; by |yaw| bin: " + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in found_by_bin.items()))
    print(f"detector latency on 640x480 (1 thread): p50 {latency['p50_ms']:.1f} ms")
    print(format_summary(summary, "pose MAE with detector boxes (matched faces only)"))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"detection-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"detector": detector, "matched": len(preds), "n": len(samples), "mean_iou": float(np.mean(ious)),
                                "by_bin": found_by_bin, "latency": latency, "pose": summary}, indent=2))
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
