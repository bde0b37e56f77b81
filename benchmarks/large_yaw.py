"""Where the large-yaw error comes from: Euler MAE against rotation (geodesic) error per |yaw| bin, and the part of
the pitch/roll error that lies along the gimbal direction.

    python benchmarks/large_yaw.py [--model BUNDLE_MANIFEST_OR_CHECKPOINT ...] --root AFLW2000_DIR

Near |yaw| = 90 deg, pitch and roll (R = Rz(roll) Ry(yaw) Rx(pitch)) turn about nearly the same axis, so a change of
pitch and sign(yaw) * roll together by the same amount moves the face very little (at yaw 81, pitch = roll = 55 is
8 deg from pitch = roll = 0) yet counts in full in an Euler MAE. For each model and bin this prints the Euler MAE, the
median per-face Euler error (a few faces with huge along-direction labels pull the mean), the mean geodesic error, the
mean |error| along that direction ((pitch + sign(yaw) roll) / 2) and across it, what the bin would score with the
along-direction error removed, and the slope of predicted on labelled along-direction component (1 = no shrinkage
toward zero).

With `--fit-mesh FOLDER` (a 3D face model, e.g. ../shared/models/mesh/bfm_mean_3ddfa) it also scores what a rigid
mean face fitted to each dev face's own 68 label points (`pt3d_68`, the 3DMM fit the labels come from) recovers: with
all 68, and with the camera-side half only (per mirrored pair the nearer point, plus the midline), which is what an
image shows. It tells whether the along component is in the visible geometry at all.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

BINS = ((0, 30), (30, 60), (60, 99))


def gimbal_split(pred: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """Per-face error components: along = (d pitch + s d roll) / 2, across = (d pitch - s d roll) / 2, s = sign(yaw),
    and the Euler error with the along part removed."""
    err = pred - truth
    s = np.where(truth[:, 0] >= 0, 1.0, -1.0)
    along = (err[:, 1] + s * err[:, 2]) / 2
    fixed = err.copy()
    fixed[:, 1] -= along
    fixed[:, 2] -= s * along
    return {"along": along, "across": (err[:, 1] - s * err[:, 2]) / 2, "fixed": fixed, "sign": s}


def report(name: str, pred: np.ndarray, truth: np.ndarray) -> list[str]:
    from edgepose.angles import euler_to_matrix, geodesic_degrees

    geo = geodesic_degrees(euler_to_matrix(*pred.T), euler_to_matrix(*truth.T))
    split = gimbal_split(pred, truth)
    s = split["sign"]
    lines = []
    for lo, hi in BINS:
        m = (np.abs(truth[:, 0]) >= lo) & (np.abs(truth[:, 0]) < hi)
        if not m.any():
            continue
        label_along = (truth[m, 1] + s[m] * truth[m, 2]) / 2
        pred_along = (pred[m, 1] + s[m] * pred[m, 2]) / 2
        slope = np.polyfit(label_along, pred_along, 1)[0] if m.sum() > 2 else float("nan")
        per_face = np.abs(pred[m] - truth[m]).mean(1)
        lines.append(f"| {name} | {lo}–{hi} | {m.sum()} | {per_face.mean():.2f} | {np.median(per_face):.2f} | {geo[m].mean():.2f} "
                     f"| {np.abs(split['along'][m]).mean():.2f} | {np.abs(split['across'][m]).mean():.2f} "
                     f"| {np.abs(split['fixed'][m]).mean():.2f} | {slope:.2f} |")
    return lines


def mesh_fits(mesh: str, root: str, limit: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Angles of `mesh` fitted to every dev face's `pt3d_68` points (all, and the camera-side half) and the labels."""
    from edgepose.datasets.aflw2000 import read_aflw2000
    from edgepose.datasets.faces_pool import FLIP_68
    from edgepose.train.face_model import fit_pose, load_face_model

    face = load_face_model(mesh)
    every = np.arange(68)
    fits: dict[str, list] = {"all 68": [], "camera side": []}
    truth = []
    for sample in read_aflw2000(root)[: limit or None]:
        pts = sample.points68
        whole = fit_pose(face, pts, every)
        depth = whole.project(face.landmarks)[:, 2]
        near = np.flatnonzero((FLIP_68 == every) | (depth <= depth[FLIP_68]))
        fits["all 68"].append(whole.angles())
        fits["camera side"].append(fit_pose(face, pts, near).angles())
        truth.append((sample.yaw, sample.pitch, sample.roll))
    return {k: np.array(v) for k, v in fits.items()}, np.array(truth)


def main() -> int:
    from edgepose.exporters.checkpoint_runtime import open_runtime
    from edgepose.evaluation.evaluate import evaluate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", default=[],
                    help="bundle folder, manifest or training checkpoint (default: the cpu bundle); "
                    "repeatable, e.g. benchmarks/peers/fsanet.json")
    ap.add_argument("--models-dir", default=None,
                    help="folder holding the model files of --model manifests kept elsewhere, e.g. ../shared/models/peers")
    ap.add_argument("--root", required=True, help="AFLW2000-3D folder")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--fit-mesh", default="", help="also fit this 3D face model to the labels' own 68 points")
    args = ap.parse_args()
    print("| model | \\|yaw\\| | faces | Euler MAE | median | geodesic | \\|along\\| | \\|across\\| | MAE without along | slope |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model in args.model or [None]:
        with open_runtime("cpu", model, models_dir=args.models_dir) as rt:
            _, pred, truth = evaluate(rt, "aflw2000", args.root, limit=args.limit, progress=False)
        print("\n".join(report(model or "default", pred, truth)))
    if args.fit_mesh:
        fits, truth = mesh_fits(args.fit_mesh, args.root, args.limit)
        for name, pred in fits.items():
            print("\n".join(report(f"mean-face fit, {name}", pred, truth)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
