"""Fit and measure the detector box mapping on the training pool (never on aflw2000-dev).

Runs the platform's detector on pool crops whose box is the 68-point bounding box (w300, ytf), reports the
detection rate and IoU before/after mapping, and prints the (dcx, dcy, sw, sh) box_map to put in platform files.

    python benchmarks/detector_boxes.py --root ../shared/data/faces --n 1500
"""
from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

from edgepose.datasets.faces_pool import read_pool_index
from edgepose.detectors import create_detector, map_box
from edgepose.platform import DetectorConfig
from edgepose.video.tracking import box_iou as iou


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, help="training pool folder (index.csv)")
    ap.add_argument("--detector", default="haar")
    ap.add_argument("--model", default="", help="detector model file (yunet / blazeface)")
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    table = read_pool_index(args.root)
    rows = np.flatnonzero(np.isin(table.source, ["w300", "ytf"]))
    rows = np.random.default_rng(0).permutation(rows)[: args.n]
    det = create_detector(DetectorConfig(type=args.detector, min_size=30, model=args.model))
    pairs = []
    for i in rows:
        img = cv2.imread(f"{args.root}/{table.paths[i]}")
        boxes = det.detect(img).boxes
        if len(boxes):
            label = table.boxes[i].astype(float)
            best = max(boxes, key=lambda b: iou(b, label))
            if iou(best, label) > 0.3:
                pairs.append((best, label))
    d = np.array([p[0] for p in pairs])
    lab = np.array([p[1] for p in pairs])
    dw, dh = d[:, 2] - d[:, 0], d[:, 3] - d[:, 1]
    box_map = (
        float(np.median(((lab[:, 0] + lab[:, 2]) - (d[:, 0] + d[:, 2])) / 2 / dw)),
        float(np.median(((lab[:, 1] + lab[:, 3]) - (d[:, 1] + d[:, 3])) / 2 / dh)),
        float(np.median((lab[:, 2] - lab[:, 0]) / dw)),
        float(np.median((lab[:, 3] - lab[:, 1]) / dh)),
    )
    raw = float(np.mean([iou(a, b) for a, b in pairs]))
    mapped = float(np.mean([iou(map_box(a, box_map), b) for a, b in pairs]))
    result = {"detector": args.detector, "tried": len(rows), "found": len(pairs), "rate": len(pairs) / len(rows),
              "iou_raw": raw, "iou_mapped": mapped, "box_map": [round(v, 4) for v in box_map]}
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
