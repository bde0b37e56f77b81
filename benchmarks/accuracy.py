"""Accuracy of one or more platforms on AFLW2000 (published protocol), side by side.

    python benchmarks/accuracy.py [--platform cpu[,other]] --root AFLW2000_DIR

Prints a markdown table (MAE per angle, AUC@5, failure rate, |yaw| bins, model size) and writes JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from edgepose.evaluation.bench import markdown_table
from edgepose.errors import BackendUnavailableError


def main() -> int:
    from edgepose.exporters.checkpoint_runtime import open_runtime
    from edgepose.evaluation.evaluate import evaluate
    from edgepose.evaluation.metrics import format_summary

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--platform", default="cpu")
    ap.add_argument("--model", default=None, help="bundle for every --platform, or a training checkpoint exported "
                    "for each (default: each platform's own)")
    ap.add_argument("--peers", default="", help="comma-separated manifests of other models, run on --peer-platform")
    ap.add_argument("--peer-platform", default="cpu")
    ap.add_argument("--models-dir", default="../shared/models/peers",
                    help="folder holding the model files the --peers manifests name (benchmarks/peers/*.json)")
    ap.add_argument("--dataset", default="aflw2000")
    ap.add_argument("--root", required=True, help="AFLW2000-3D folder")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--out-dir", default="runs/benchmarks")
    args = ap.parse_args()

    rows, details = [], {}
    runs = [(name, name, args.model, None) for name in args.platform.split(",")]
    runs += [(Path(m).stem, args.peer_platform, m, args.models_dir) for m in args.peers.split(",") if m]
    for label, name, model, models_dir in runs:
        try:
            with open_runtime(name, model, models_dir=models_dir) as rt:
                summary, _, _ = evaluate(rt, args.dataset, args.root, limit=args.limit)
                desc = rt.describe()
                size_mb = sum(p.stat().st_size for p in rt.model_paths) / 1e6
        except BackendUnavailableError as exc:
            print(f"{label}: platform '{name}' is not usable on this machine: {exc}", file=sys.stderr)
            continue
        print(format_summary(summary, f"{label}: {desc['backend']} {desc['precision']}"), "\n")
        rows.append({"platform": label, "precision": desc["precision"], "n": summary["n"], "yaw": summary["yaw"],
                     "pitch": summary["pitch"], "roll": summary["roll"], "mean": summary["mean"],
                     "AUC@5": summary["auc5"] * 100, ">15deg %": summary["failure15"] * 100,
                     **{f"|yaw| {k}": v["mean"] for k, v in summary["bins"].items()}, "size MB": size_mb})
        details[label] = {"runtime": desc, "summary": summary}
    if not rows:
        return 3
    print(markdown_table(rows, list(rows[0])))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"accuracy-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"dataset": args.dataset, "root": args.root, "results": details}, indent=2))
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
