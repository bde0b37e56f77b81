"""Face detection on AFLW2000 and end-to-end pose with detector boxes (not label boxes).

For each image the detection with the highest IoU against the face box (the box of the 68 landmarks, the convention
detector boxes are mapped to; the visible-points label box of a profile covers only half the face) is matched when
IoU >= 0.4; misses are counted separately, and the pose MAE is over matched faces only.

    python benchmarks/detection.py --root AFLW2000_DIR --detector haar,yunet:../shared/models/detectors/yunet.onnx,\\
        blazeface:../shared/models/detectors/blazeface_short_range.tflite
    python benchmarks/detection.py --scenes ../shared/data/faces --detector auto   # composed 640x480 frames

--scenes POOL: instead of AFLW2000, frames composed from the training pool (edgepose.evaluation.scenes): 15 frames per face size
(40..400 px, three faces each below 300 px) and 15 frames of 2-5 faces at mixed yaw; found = IoU >= 0.4 with a pasted
face's box. This is what the detectors' tiling was tuned on (never dev).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from edgepose.evaluation.bench import demo_frame, markdown_table, time_calls
from edgepose.datasets.aflw2000 import read_aflw2000
from edgepose.evaluation.evaluate import detection_box
from edgepose.evaluation.metrics import format_summary, summarize
from edgepose.video.tracking import box_iou as iou



def main() -> int:
    from edgepose import Runtime

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--platform", default="cpu")
    ap.add_argument("--root", required=True, help="AFLW2000-3D folder")
    ap.add_argument("--min-iou", type=float, default=0.4)
    ap.add_argument("--detector", default="", help="comma-separated detectors: haar, yunet:MODEL, blazeface:MODEL")
    ap.add_argument("--out-dir", default="runs/benchmarks")
    ap.add_argument("--scenes", default="", metavar="POOL", help="composed frames from this faces pool instead")
    args = ap.parse_args()
    if args.scenes:
        return scenes(args)

    samples = read_aflw2000(args.root)
    rows, results = [], {}
    for spec in args.detector.split(",") if args.detector else [None]:
        result = evaluate_detector(Runtime(args.platform, threads=1, detector=spec), samples, args.min_iou)
        kind, _, model = (spec or result["detector"]).partition(":")
        label = f"{kind} ({Path(model).stem})" if model else kind
        results[label] = result
        s = result["pose"]
        rows.append({"detector": label, "matched": f"{result['matched']}/{result['n']}",
                     **{f"|yaw| {k}": f"{v[0]}/{v[1]}" for k, v in result["by_bin"].items()},
                     "mean IoU": result["mean_iou"], "p50 ms (640x480)": result["latency"]["p50_ms"],
                     "pose MAE (matched)": s["mean"], **{f"MAE {k}": v["mean"] for k, v in s["bins"].items()}})
        print(format_summary(s, f"{label}: pose with detector boxes (matched faces only)"), "\n")
    print(markdown_table(rows, list(rows[0])))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"detection-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"\nJSON: {path}")
    return 0


def evaluate_detector(rt, samples, min_iou: float) -> dict:
    """Match detections to label boxes, pose MAE over matched faces, detector latency on a 640x480 frame."""
    preds, truth, ious = [], [], []
    by_bin = {"0-30": [0, 0], "30-60": [0, 0], "60-99": [0, 0]}
    with rt:
        for s in samples:
            poses = rt.infer(cv2.imread(str(s.image)))
            face = detection_box(s)
            best = max(poses, key=lambda p: iou(p.box, face), default=None)
            key = "0-30" if abs(s.yaw) < 30 else "30-60" if abs(s.yaw) < 60 else "60-99"
            by_bin[key][1] += 1
            if best is not None and iou(best.box, face) >= min_iou:
                by_bin[key][0] += 1
                ious.append(iou(best.box, face))
                preds.append([best.yaw, best.pitch, best.roll])
                truth.append([s.yaw, s.pitch, s.roll])
        frame = demo_frame(640, 480)
        latency = time_calls(lambda: rt.detector.detect(frame), 30, 3)
        name = rt.platform.detector.type
    return {"detector": name, "matched": len(preds), "n": len(samples), "mean_iou": float(np.mean(ious)),
            "by_bin": by_bin, "latency": latency, "pose": summarize(np.array(preds), np.array(truth))}


def scenes(args) -> int:
    """Found faces by face size, and in 2-5 person frames, on frames composed from the training pool."""
    from edgepose import Runtime
    from edgepose.evaluation.scenes import SceneMaker

    rows = []
    for spec in args.detector.split(",") if args.detector else [None]:
        with Runtime(args.platform, threads=1, detector=spec) as rt:
            maker = SceneMaker(args.scenes, seed=1)
            cases = [(f"{size} px", [size] * (1 if size >= 300 else 3)) for size in (40, 60, 80, 120, 200, 300, 400)]
            row = {"detector": spec or rt.describe()["detector"]}
            for label, sizes in cases + [("2-5 people", None)]:
                found = total = 0
                for _ in range(15):
                    if sizes is None:
                        sizes_now = [int(v) for v in maker.rng.integers(60, 220, int(maker.rng.integers(2, 6)))]
                    scene = maker.scene(640, 480, sizes or sizes_now)
                    boxes = [p.box for p in rt.infer(scene.frame)]
                    found += sum(max((iou(b, gt) for b in boxes), default=0) >= args.min_iou for gt in scene.boxes)
                    total += len(scene.boxes)
                row[label] = f"{found}/{total}"
            rows.append(row)
    print(markdown_table(rows, list(rows[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
