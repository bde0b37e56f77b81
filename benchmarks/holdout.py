"""Pool-holdout MAE of trained checkpoints under one recipe's data and labels: the figure `train.select_by` picks
best.pt by, for checkpoints from different runs (rounds, weight averages, the shipped weights) in one run.

    python benchmarks/holdout.py --recipe RECIPE.yaml CKPT.pt [CKPT.pt ...] [BUNDLE[:flip] ...] [--set KEY=VALUE]
        [--models-dir FOLDER] [--json OUT.json]

The recipe fixes the holdout rows, their labels (`data.labels`, with profiled views relabelled when the recipe says
so) and the crops (the trainer's own `holdout_set` and `holdout_metrics`); every checkpoint must take that recipe's
input size and crop scale. It prints the MAE over all held-out rows and per |yaw| bin of their labels (0-30, 30-60,
60-99: the large-yaw bin decides more than the mean between close candidates), and with profiled views in the
holdout the pool rows and the views apart. This is how a default is chosen without aflw2000-dev.

A bundle folder or manifest (an ensemble, a peer such as benchmarks/peers/3ddfa_v2.json with --models-dir; ':flip'
adds flip TTA) is scored through the Runtime on the same held-out images with their face boxes, each cutting its
own crop: how ensembles and tiers are compared on pool evidence.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="training checkpoints (.pt) or bundles (BUNDLE[:flip]) to score")
    ap.add_argument("--models-dir", default=None, help="folder of model files that manifests name, e.g. peers'")
    ap.add_argument("--recipe", required=True, help="recipe whose data section defines the holdout and its labels")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a recipe value, as `edgepose train --set` does; repeatable")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    from edgepose.errors import EdgePoseError
    from edgepose.evaluation.metrics import summarize

    try:
        from edgepose.train.checkpoint import crop_spec, load_trained, predict_degrees
        from edgepose.train.pool_data import PoolData
        from edgepose.train.recipe import load_recipe
        from edgepose.train.trainer import holdout_metrics, holdout_set
    except ImportError as exc:
        print(f"error: scoring checkpoints needs the training extra ({exc}): pip install 'edgepose[train]'",
              file=sys.stderr)
        return 2
    try:
        if args.json and not Path(args.json).expanduser().parent.is_dir():
            raise EdgePoseError(f"--json {args.json}: its folder does not exist; create it or write elsewhere")
        recipe = load_recipe(args.recipe, args.set)
        data = PoolData(recipe.data, recipe.model.landmarks)
        imgs, truth, views = holdout_set(recipe, data)
        size = recipe.model.input_size
        print(f"holdout of {args.recipe}: {len(truth)} rows ({int(views.sum())} profiled views)", file=sys.stderr)
        rows = []
        for ckpt in args.checkpoints:
            if not ckpt.endswith(".pt"):
                pred = bundle_poses(ckpt, data, args.models_dir)
            else:
                model, own = load_trained(ckpt)
                if own.model.input_size != size or crop_spec(own) != crop_spec(recipe):
                    raise EdgePoseError(f"'{ckpt}' takes {own.model.input_size} px crops ({crop_spec(own)}), the "
                                        f"recipe's holdout is {size} px ({crop_spec(recipe)}); score it under a recipe "
                                        "of its own input size and crop, or as an exported bundle")
                pred = predict_degrees(model, imgs)
            bins = {name: {"n": b["n"], "mean": b["mean"] if b["n"] else None}
                    for name, b in summarize(pred, truth)["bins"].items()}
            rows.append({"checkpoint": ckpt, **holdout_metrics(pred, truth, views), "holdout_bins": bins})
    except EdgePoseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    keys = [k for k in ("holdout_mae", "holdout_pool_mae", "holdout_views_mae") if k in rows[0]]
    bins = list(rows[0]["holdout_bins"])
    counts = rows[0]["holdout_bins"]
    print("| checkpoint | " + " | ".join(keys + [f"\\|yaw\\| {b} (n={counts[b]['n']})" for b in bins]) + " |")
    print("|---|" + "---|" * (len(keys) + len(bins)))
    for row in rows:
        figures = [row[k] for k in keys] + [row["holdout_bins"][b]["mean"] for b in bins]
        print(f"| {row['checkpoint']} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in figures) + " |")
    if args.json:
        Path(args.json).expanduser().write_text(json.dumps({"recipe": args.recipe, "rows": rows}, indent=2))
    return 0


def bundle_poses(spec: str, data, models_dir: str | None):
    """(N, 3) poses of a bundle (':flip' for flip TTA) on the held-out images, each face by its box."""
    import numpy as np

    from edgepose import Runtime

    path, flip = (spec[:-5], True) if spec.endswith(":flip") else (spec, False)
    with Runtime("cpu", path, threads=1, flip_tta=flip, models_dir=models_dir) as rt:
        poses = [rt.infer(np.ascontiguousarray(data.images[i]), boxes=[data.boxes[i]])[0] for i in data.holdout_idx]
    return np.array([[p.yaw, p.pitch, p.roll] for p in poses])


if __name__ == "__main__":
    sys.exit(main())
