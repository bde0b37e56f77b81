"""Pool-holdout MAE of trained checkpoints under one recipe's data and labels: the figure `train.select_by` picks
best.pt by, for checkpoints from different runs (rounds, weight averages, the shipped weights) in one run.

    python benchmarks/holdout.py --recipe RECIPE.yaml CHECKPOINT.pt [CHECKPOINT.pt ...] [--set KEY=VALUE] [--json OUT.json]

The recipe fixes the holdout rows, their labels (`data.labels`, with profiled views relabelled when the recipe says
so) and the crops (same seed and framing as the trainer's per-epoch holdout); every checkpoint must take that
recipe's input size. With profiled views in the holdout it also prints the pool rows and the views apart. This is
how a default is chosen without aflw2000-dev.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="training checkpoints (.pt) to score")
    ap.add_argument("--recipe", required=True, help="recipe whose data section defines the holdout and its labels")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a recipe value, as `edgepose train --set` does; repeatable")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    from edgepose.angles import matrix_to_euler
    from edgepose.errors import EdgePoseError
    from edgepose.evaluation.metrics import summarize

    try:
        from edgepose.train.checkpoint import load_trained, predict_degrees
        from edgepose.train.pool_data import PoolData, augment_batch
        from edgepose.train.recipe import load_recipe
    except ImportError as exc:
        print(f"error: scoring checkpoints needs the training extra ({exc}): pip install 'edgepose[train]'",
              file=sys.stderr)
        return 2
    try:
        if args.json and not Path(args.json).expanduser().parent.is_dir():
            raise EdgePoseError(f"--json {args.json}: its folder does not exist; create it or write elsewhere")
        recipe = load_recipe(args.recipe, args.set)
        data = PoolData(recipe.data, recipe.model.landmarks)
        size = recipe.model.input_size
        imgs, mats = augment_batch(data.images, data.matrices, data.holdout_idx, size, recipe.data.crop_scale, None,
                                   np.random.default_rng(recipe.train.seed + 1))
        truth = matrix_to_euler(mats.astype(np.float64))
        views = data.holdout_idx >= len(data.angles) - data.profiled
        print(f"holdout of {args.recipe}: {len(truth)} rows ({int(views.sum())} profiled views)", file=sys.stderr)
        rows = []
        for ckpt in args.checkpoints:
            model, own = load_trained(ckpt)
            if own.model.input_size != size or own.data.crop_scale != recipe.data.crop_scale:
                raise EdgePoseError(f"'{ckpt}' takes {own.model.input_size} px crops at scale {own.data.crop_scale}, "
                                    f"the recipe's holdout is {size} px at scale {recipe.data.crop_scale}; score it under "
                                    "a recipe of its own input size and crop scale")
            pred = predict_degrees(model, imgs)
            row = {"checkpoint": ckpt, "holdout": summarize(pred, truth)["mean"]}
            if views.any() and (~views).any():
                row["holdout_pool"] = summarize(pred[~views], truth[~views])["mean"]
                row["holdout_views"] = summarize(pred[views], truth[views])["mean"]
            rows.append(row)
    except EdgePoseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    keys = [k for k in ("holdout", "holdout_pool", "holdout_views") if k in rows[0]]
    print("| checkpoint | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for row in rows:
        print(f"| {row['checkpoint']} | " + " | ".join(f"{row[k]:.3f}" for k in keys) + " |")
    if args.json:
        Path(args.json).expanduser().write_text(json.dumps({"recipe": args.recipe, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
