"""Models and ensembles against a geometric reference on the training pool: a 3D face fitted to each row's 68
annotated points (the way 300W-LP and AFLW2000-3D were labelled), independent of every learned model and of the
consensus labels the students trained on. Mean geodesic (deg) by |yaw| bin of the fit; pool evidence for choosing
between candidates whose own holdout labels would favour one of them (never aflw2000-dev).

    python benchmarks/fit_agreement.py --index ../shared/data/faces --face-model ../shared/models/mesh/bfm_mean_3ddfa \
        BUNDLE[:flip] [BUNDLE[:flip] ...] [--models-dir ../shared/models/peers] [--limit N] [--json OUT]

Each bundle (an ensemble, a peer manifest, ':flip' for flip TTA) runs through the Runtime on the stored pool crops
with the row's face box, cutting its own crop. The fit is noisy per face (about 5 deg from any model), so only
differences between models on the same rows mean anything; the table gives n and the paired standard error against
the first model.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BINS = ((0, 30), (30, 60), (60, 99))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="bundle folders or manifests, BUNDLE[:flip]")
    ap.add_argument("--index", required=True, help="pool folder holding index.csv")
    ap.add_argument("--face-model", required=True, help="3D face model fitted to the 68 points (a 3DDFA BFM folder)")
    ap.add_argument("--models-dir", default=None, help="folder of model files that manifests name (peers)")
    ap.add_argument("--limit", type=int, default=0, help="score only the first N rows with 68 points (0 = all)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from edgepose.errors import EdgePoseError

    if args.json and not Path(args.json).expanduser().parent.is_dir():
        print(f"error: --json {args.json}: its folder does not exist; create it or write elsewhere", file=sys.stderr)
        return 2
    try:
        return _run(args)
    except EdgePoseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args) -> int:
    import cv2

    from edgepose import Runtime
    from edgepose.angles import euler_to_matrix, geodesic_degrees
    from edgepose.atomic import atomic_write_json
    from edgepose.datasets.faces_pool import read_pool_index
    from edgepose.train.face_model import fitted_poses

    table = read_pool_index(args.index)
    rows = [i for i, pts in enumerate(table.landmarks) if pts is not None and len(pts) == 68]
    rows = rows[: args.limit or None]
    fit = fitted_poses(args.face_model, [table.landmarks[i] for i in rows])
    ok = np.isfinite(fit).all(1)
    rows, fit = [r for r, good in zip(rows, ok) if good], fit[ok]
    images = [cv2.imread(str(Path(args.index) / table.paths[i]), cv2.IMREAD_COLOR) for i in rows]
    reference = euler_to_matrix(*fit.T)
    errors = {}
    for spec in args.models:
        path, flip = (spec[:-5], True) if spec.endswith(":flip") else (spec, False)
        with Runtime("cpu", path, threads=1, flip_tta=flip, models_dir=args.models_dir) as rt:
            mats = np.stack([rt.infer(img, boxes=[table.boxes[i]])[0].rotation for img, i in zip(images, rows)])
        errors[spec] = geodesic_degrees(mats, reference)
    first = next(iter(errors.values()))
    yaw = np.abs(fit[:, 0])
    result = {}
    print(f"{len(rows)} pool rows with 68 points; mean geodesic (deg) to the 68-point fit, by |yaw| bin of the fit\n")
    print("| model | all | " + " | ".join(f"\\|yaw\\| {lo}-{hi} (n={int(((yaw >= lo) & (yaw < hi)).sum())})"
                                       for lo, hi in BINS) + " | paired s.e. vs first |")
    print("|---|---|" + "---|" * len(BINS) + "---|")
    for spec, err in errors.items():
        bins = {f"{lo}-{hi}": float(err[(yaw >= lo) & (yaw < hi)].mean()) if ((yaw >= lo) & (yaw < hi)).any()
                else None for lo, hi in BINS}
        se = float((err - first).std(ddof=1) / np.sqrt(len(err)))
        result[spec] = {"all": float(err.mean()), "bins": bins, "paired_se_vs_first": se, "n": len(err)}
        print(f"| {spec} | {err.mean():.3f} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in bins.values())
              + f" | {se:.3f} |")
    if args.json:
        atomic_write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
