"""How far the votes of a labels file agree, per |yaw| bin and per pool source, and how well each teacher keeps
the exact turns of the profiled views: the pool-side evidence for a consensus (never aflw2000-dev).

    python benchmarks/label_agreement.py --labels LABELS.csv --index ../shared/data/faces \
        [--face-model ../shared/models/mesh/bfm_mean_3ddfa] \
        [--views ~/.cache/edgepose/profiled_check300 --models-dir ../shared/models/peers \
         --teacher benchmarks/peers/3ddfa_v2.json ...] [--json OUT]

1. Pairwise: the median geodesic angle between every two votes, by |yaw| bin of the row's consensus.
2. Each vote against the others' consensus (leave one out), by |yaw| bin and by source.
3. With --face-model: each vote against a 3D face fitted to the row's 68 annotated points (a geometric reference
   independent of every learned model; 68-point rows only).
4. With --face-model and --weigh A,B: the consensus of votes A and B at weights (w, 1 - w) for w = 0, 0.1, ... 1
   against the 68-point fit, mean geodesic by |yaw| bin: how much of each teacher a consensus label should hold,
   chosen on pool faces.
5. With --views: each teacher's turn error on the views: the geodesic between its pose of a view and its own pose of
   the view's source face turned by the view's exact camera rotation. It needs no label, so it scores a teacher's
   large-yaw consistency by construction.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgepose.angles import euler_to_matrix, geodesic_degrees  # noqa: E402
from edgepose.data_engine import consensus  # noqa: E402

BINS = ((0, 30), (30, 60), (60, 99), (99, 181))


def geodesic(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Geodesic degrees between two (N, 3) Euler arrays; NaN where either is missing."""
    ok = np.isfinite(a).all(1) & np.isfinite(b).all(1)
    out = np.full(len(a), np.nan)
    out[ok] = geodesic_degrees(euler_to_matrix(*np.nan_to_num(a[ok]).T), euler_to_matrix(*np.nan_to_num(b[ok]).T))
    return out


def by_bin(values: np.ndarray, yaw: np.ndarray, stat=np.nanmedian) -> dict[str, tuple[float, int]]:
    out = {}
    for lo, hi in BINS:
        m = (np.abs(yaw) >= lo) & (np.abs(yaw) < hi) & np.isfinite(values)
        out[f"{lo}-{hi}"] = (float(stat(values[m])) if m.any() else float("nan"), int(m.sum()))
    return out


def table(title: str, rows: dict[str, dict[str, tuple[float, int]]]) -> str:
    if not rows:
        return f"\n{title}: needs at least two votes"
    cols = list(next(iter(rows.values())))
    lines = [f"\n{title}\n", "| vote | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    lines += [f"| {name} | " + " | ".join(f"{v:.2f} (n={n})" for v, n in r.values()) + " |" for name, r in rows.items()]
    return "\n".join(lines)


def pool_report(votes: dict[str, np.ndarray], label: np.ndarray, sources: np.ndarray, fitted) -> tuple[str, dict]:
    names = list(votes)
    yaw = label[:, 0]
    out, text = {"pairwise": {}, "leave_one_out": {}, "by_source": {}, "vs_fit": {}}, []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            out["pairwise"][f"{a} ~ {b}"] = by_bin(geodesic(votes[a], votes[b]), yaw)
    text.append(table("Pairwise median geodesic (deg) by |yaw| bin of the consensus", out["pairwise"]))
    for a in names if len(names) > 1 else ():  # leave-one-out needs another vote
        others = np.stack([votes[b] for b in names if b != a], 1)
        loo = geodesic(votes[a], consensus(others)[0])
        out["leave_one_out"][a] = by_bin(loo, yaw)
        out["by_source"][a] = {s: (float(np.nanmedian(loo[sources == s])), int(np.isfinite(loo[sources == s]).sum()))
                               for s in sorted(set(sources))}
    text.append(table("Each vote against the others' consensus: median geodesic (deg) by |yaw| bin",
                      out["leave_one_out"]))
    text.append(table("Each vote against the others' consensus: median geodesic (deg) by source", out["by_source"]))
    if fitted is not None:
        for a in names:
            out["vs_fit"][a] = by_bin(geodesic(votes[a], fitted), fitted[:, 0])
        text.append(table("Each vote against the 68-point 3D fit: median geodesic (deg) by |yaw| bin of the fit",
                          out["vs_fit"]))
    return "\n".join(text), out


def weight_sweep(votes: dict[str, np.ndarray], pair: list[str], fitted: np.ndarray) -> tuple[str, dict]:
    """Consensus of two votes at weights (w, 1 - w) against the 68-point fit: mean geodesic by |yaw| bin of the fit."""
    missing = [name for name in pair if name not in votes]
    if len(pair) != 2 or missing:
        raise SystemExit(f"--weigh takes two vote names of the labels file (A,B); it has {', '.join(votes)}")
    both = np.stack([votes[pair[0]], votes[pair[1]]], 1)
    rows = {}
    for w in np.round(np.linspace(0, 1, 11), 2):
        err = geodesic(consensus(both, np.array([w, 1 - w]))[0], fitted)
        rows[f"{pair[0]}={w:g}, {pair[1]}={1 - w:g}"] = {**by_bin(err, fitted[:, 0], np.nanmean),
                                                        "all": (float(np.nanmean(err)), int(np.isfinite(err).sum()))}
    return table("Weighted consensus against the 68-point 3D fit: mean geodesic (deg) by |yaw| bin of the fit",
                 rows), rows


def views_report(views_dir: str, teachers: list[str], pool: Path, paths: list[str], boxes: np.ndarray,
                 limit: int, models_dir: str | None = None) -> tuple[str, dict]:
    import cv2

    from edgepose.bundle import model_name
    from edgepose.exporters.checkpoint_runtime import open_runtime
    from edgepose.train.profile_pool import load_profiled
    from edgepose.train.profiling import rotated_label

    views = load_profiled(views_dir)
    n = min(limit or len(views["images"]), len(views["images"]))
    row = {p: i for i, p in enumerate(paths)}
    keep = [i for i in range(n) if str(views["source_path"][i]) in row]
    src_rows = [row[str(views["source_path"][i])] for i in keep]
    sources = {r: cv2.imread(str(pool / paths[r]), cv2.IMREAD_COLOR) for r in set(src_rows)}
    results, text = {}, []
    for spec in teachers:
        with open_runtime("cpu", spec, threads=0, models_dir=models_dir) as rt:
            on_view = np.array([[*_pose(rt, views["images"][i], views["boxes"][i])] for i in keep])
            on_src = {r: _pose(rt, sources[r], boxes[r]) for r in set(src_rows)}
        turned = np.array([rotated_label(np.array(on_src[r]), *views["turn"][i]) for r, i in zip(src_rows, keep)])
        err = geodesic(on_view, turned)
        results[model_name(spec)] = {**by_bin(err, turned[:, 0], np.nanmean), "all": (float(np.nanmean(err)), len(err))}
    text.append(table(f"Turn error on {len(keep)} profiled views: mean geodesic (deg) between a teacher's pose of the "
                      "view and its pose of the source turned exactly, by |yaw| bin of the turned pose", results))
    return "\n".join(text), results


def _pose(rt, image, box) -> tuple[float, float, float]:
    p = rt.infer(image, boxes=[box])[0]
    return p.yaw, p.pitch, p.roll


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", required=True, help="labels CSV written by `edgepose label` (one column per vote)")
    ap.add_argument("--index", required=True, help="pool folder holding index.csv (sources, boxes, landmarks)")
    ap.add_argument("--face-model", default=None, help="3D face model for the 68-point fit reference")
    ap.add_argument("--weigh", default=None, metavar="A,B",
                    help="with --face-model: sweep the weight of vote A against vote B in their consensus")
    ap.add_argument("--views", default=None, help="profiled views folder (edgepose profile --out)")
    ap.add_argument("--teacher", action="append", default=[], help="teacher to score on the views; repeatable")
    ap.add_argument("--models-dir", default=None,
                    help="folder holding the model files of teacher manifests kept elsewhere, e.g. ../shared/models/peers")
    ap.add_argument("--views-limit", type=int, default=0, help="score only the first N views (0 = all)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.views and not args.teacher:
        ap.error("--views scores teachers: give at least one --teacher")

    from edgepose.atomic import atomic_write_bytes
    from edgepose.datasets.faces_pool import read_pool_index
    from edgepose.datasets.labels_csv import read_vote_table
    from edgepose.train.face_model import fitted_poses

    paths, label, votes = read_vote_table(args.labels)
    table_ = read_pool_index(args.index)
    order = {p: i for i, p in enumerate(table_.paths)}
    idx = np.array([order[p] for p in paths])
    fitted = fitted_poses(args.face_model, [table_.landmarks[i] for i in idx]) if args.face_model else None
    text, result = pool_report(votes, label, table_.source[idx], fitted)
    print(text)
    if args.weigh:
        if fitted is None:
            ap.error("--weigh scores against the 68-point fit: give --face-model")
        wtext, result["weights"] = weight_sweep(votes, args.weigh.split(","), fitted)
        print(wtext)
    if args.views:
        vtext, result["views"] = views_report(args.views, args.teacher, Path(args.index), table_.paths, table_.boxes,
                                              args.views_limit, models_dir=args.models_dir)
        print(vtext)
    if args.json:
        atomic_write_bytes(args.json, json.dumps(result, indent=2).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
