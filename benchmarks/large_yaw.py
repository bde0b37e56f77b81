"""Where the large-yaw error comes from: Euler MAE against rotation (geodesic) error per |yaw| bin, and the part of
the pitch/roll error that lies along the gimbal direction.

    python benchmarks/large_yaw.py [--model BUNDLE_OR_MANIFEST ...] [--root ../shared/data/aflw2000-dev]

Near |yaw| = 90 deg, pitch and roll (R = Rz(roll) Ry(yaw) Rx(pitch)) turn about nearly the same axis, so a change of
pitch and sign(yaw) * roll together by the same amount moves the face very little (at yaw 81, pitch = roll = 55 is
8 deg from pitch = roll = 0) yet counts in full in an Euler MAE. For each model and bin this prints the Euler MAE, the
median per-face Euler error (a few faces with huge along-direction labels pull the mean), the mean geodesic error, the
mean |error| along that direction ((pitch + sign(yaw) roll) / 2) and across it, what the bin would score with the
along-direction error removed, and the slope of predicted on labelled along-direction component (1 = no shrinkage
toward zero).
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


def main() -> int:
    from edgepose import Runtime
    from edgepose.evaluate import evaluate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", default=[], help="bundle folder or manifest (default: the cpu bundle); "
                    "repeatable, e.g. benchmarks/peers/fsanet.json")
    ap.add_argument("--root", default="../shared/data/aflw2000-dev")
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()
    print("| model | \\|yaw\\| | faces | Euler MAE | median | geodesic | \\|along\\| | \\|across\\| | MAE without along | slope |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model in args.model or [None]:
        with Runtime("cpu", model=model) as rt:
            _, pred, truth = evaluate(rt, "aflw2000", args.root, limit=args.limit, progress=False)
        print("\n".join(report(model or "default", pred, truth)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
