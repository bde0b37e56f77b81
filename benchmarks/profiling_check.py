"""How exact are profiled labels? Turn pool faces by known angles, run the public models, compare.

For near-frontal 68-point pool faces, each face is re-rendered by `edgepose.train.profiling.profile_view` with
known camera-axis turns. The public models (FSA-Net, WHENet; their manifests in benchmarks/peers) run on the
source crop and on every view; the change in their prediction is compared with the change in the label. Turns
stay within the range where the public models are accurate (|yaw| below ~60), so their error is small against
the check. Also writes a contact sheet of views up to profile.

  python benchmarks/profiling_check.py --face-model ../shared/models/mesh/bfm_mean_3ddfa --faces 60
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from edgepose.runtime import Runtime
from edgepose.train.face_model import fit_pose, load_face_model
from edgepose.train.profile_pool import ProfileSettings, source_rows
from edgepose.train.profiling import profile_view, rotated_label

TURNS = [(15.0, 0.0), (30.0, 0.0), (45.0, 0.0), (0.0, 15.0), (0.0, -15.0)]  # (d_yaw toward the face's side, d_pitch)
SHEET_TURNS = [0.0, 25.0, 50.0, 75.0]
HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--face-model", required=True)
    ap.add_argument("--pool", required=True, help="training pool folder (index.csv)")
    ap.add_argument("--faces", type=int, default=60)
    ap.add_argument("--out", default="runs/profiling_check")
    ap.add_argument("--models-dir", default=str(HERE.parent.parent / "shared" / "models" / "peers"),
                    help="folder holding the FSA-Net and WHENet model files")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_face_model(args.face_model)
    rows, table, labels = source_rows(args.pool, ProfileSettings(source_max_yaw=15.0, source_max_pitch=15.0))
    rows = rows[np.random.default_rng(0).permutation(len(rows))[: args.faces]]
    peers = {n: Runtime("cpu", model=str(HERE / "peers" / f"{n}.json"), threads=1, models_dir=args.models_dir)
             for n in ("fsanet", "whenet")}

    def predict(img, box) -> np.ndarray:
        return np.mean([[[p.yaw, p.pitch, p.roll] for p in rt.infer(img, boxes=[box])][0] for rt in peers.values()], 0)

    deltas = {t: [] for t in TURNS}
    sheet = []
    for k, row in enumerate(rows):
        img = cv2.imread(str(Path(args.pool) / table.paths[row]))
        pts, lab = table.landmarks[row], labels[row].astype(np.float64)
        fit = fit_pose(model, pts)
        base = predict(img, np.concatenate([pts.min(0), pts.max(0)]))
        side = 1.0 if lab[0] >= 0 else -1.0
        for d_yaw, d_pitch in TURNS:
            view = profile_view(img, pts, model, side * d_yaw, d_pitch, fit=fit)
            label_change = rotated_label(lab, side * d_yaw, d_pitch) - lab
            mirror = np.array([side, 1.0, side])  # report changes as if every face turned toward the image left
            deltas[(d_yaw, d_pitch)].append(((predict(view.image, view.box) - base) * mirror, label_change * mirror))
        if k < 8:
            sheet.append(np.hstack([img] + [profile_view(img, pts, model, side * d, 0.0, fit=fit).image
                                            for d in SHEET_TURNS]))
    report = {"face_model": model.name, "faces": int(len(rows)), "turns": []}
    print(f"{len(rows)} near-frontal pool faces, public models = mean of FSA-Net and WHENet")
    print("| turn (yaw, pitch) | label change y/p/r | public-model change y/p/r | |difference| y/p/r |")
    print("|---|---|---|---|")
    for turn, pairs in deltas.items():
        pred, lab = (np.array([p[i] for p in pairs]) for i in (0, 1))
        diff = np.abs(pred - lab).mean(0)
        print(f"| {turn} | {_fmt(lab.mean(0))} | {_fmt(pred.mean(0))} | {_fmt(diff)} |")
        report["turns"].append({"turn": turn, "label_change": lab.mean(0).tolist(),
                                "model_change": pred.mean(0).tolist(), "abs_difference": diff.tolist()})
    cv2.imwrite(str(out / "contact_sheet.png"), np.vstack(sheet))
    (out / "profiling_check.json").write_text(json.dumps(report, indent=2))
    print(f"contact sheet (columns: source, turned {SHEET_TURNS} deg): {out / 'contact_sheet.png'}")


def _fmt(v) -> str:
    return " / ".join(f"{x:+.1f}" for x in v)


if __name__ == "__main__":
    main()
