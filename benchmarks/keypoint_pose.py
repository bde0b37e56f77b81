"""Keypoint + fit routes on AFLW2000 next to the learned model: Face Mesh + canonical fit, and YuNet 5-point PnP.

    python benchmarks/keypoint_pose.py --root AFLW2000_DIR --models ../shared/models

Face Mesh route: BlazeFace short range for the ROI (as MediaPipe does), face flag >= 0.5, Kabsch fit to the
canonical face. PnP route: YuNet's 5 landmarks. Each route's MAE is over the faces it returns (its miss rate is
reported), and the learned model (label boxes) is scored on the same faces.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from edgepose.evaluation.bench import markdown_table
from edgepose.datasets.aflw2000 import read_aflw2000
from edgepose.evaluation.metrics import summarize
from edgepose.video.tracking import box_iou as iou


def main() -> int:
    from edgepose import Runtime
    from edgepose.detectors import create_detector, parse_detector
    from edgepose.keypoint_pose import ROUTE_MIN_IOU, FaceMeshRoute, five_point_pnp, load_canonical_face

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", required=True, help="folder holding the detector and Face Mesh model files")
    ap.add_argument("--root", required=True, help="AFLW2000-3D folder")
    args = ap.parse_args()
    det_dir, mesh_obj = Path(args.models) / "detectors", Path(args.models) / "mesh/mediapipe_canonical_face/canonical_face_model.obj"

    samples = read_aflw2000(args.root)
    yunet = create_detector(parse_detector({"type": "yunet", "model": str(det_dir / "yunet.onnx"), "detect_width": 0,
                                            "min_size": 0}))
    mesh = FaceMeshRoute(args.models)
    canonical = load_canonical_face(mesh_obj)
    routes = {"Face Mesh + canonical fit": {}, "YuNet 5-point PnP (anthropometric)": {},
              "YuNet 5-point PnP (canonical face)": {}}
    learned = {}
    with Runtime("cpu", threads=1) as rt:
        for i, s in enumerate(samples):
            frame = cv2.imread(str(s.image))
            p = rt.infer(frame, boxes=[s.box])[0]
            learned[i] = (p.yaw, p.pitch, p.roll)
            est = mesh.estimate(frame, s.box)
            if est is not None:
                routes["Face Mesh + canonical fit"][i] = (est.yaw, est.pitch, est.roll)
            found = yunet.detect(frame)
            if len(found):
                k = int(np.argmax([iou(b, s.box) for b in found.boxes]))
                if iou(found.boxes[k], s.box) > ROUTE_MIN_IOU:
                    for name, template in (("anthropometric", None), ("canonical face", canonical)):
                        est = five_point_pnp(found.landmarks[k], frame.shape, template)
                        if est is not None:
                            routes[f"YuNet 5-point PnP ({name})"][i] = (est.yaw, est.pitch, est.roll)
    truth = np.array([[s.yaw, s.pitch, s.roll] for s in samples])
    rows = [{"route": "learned model (label boxes)", "faces": f"{len(samples)}/{len(samples)}",
             **_cols(summarize(np.array([learned[i] for i in range(len(samples))]), truth))}]
    for name, preds in routes.items():
        idx = sorted(preds)
        rows.append({"route": name, "faces": f"{len(idx)}/{len(samples)}",
                     **_cols(summarize(np.array([preds[i] for i in idx]), truth[idx])),
                     "learned, same faces": summarize(np.array([learned[i] for i in idx]), truth[idx])["mean"]})
    print(markdown_table(rows, ["route", "faces", "yaw", "pitch", "roll", "mean", "0-30", "30-60", "60-99",
                                "learned, same faces"]))
    return 0


def _cols(s: dict) -> dict:
    return {"yaw": s["yaw"], "pitch": s["pitch"], "roll": s["roll"], "mean": s["mean"],
            **{k: v["mean"] for k, v in s["bins"].items()}}


if __name__ == "__main__":
    raise SystemExit(main())
