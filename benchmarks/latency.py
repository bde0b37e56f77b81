"""Per-stage latency of platforms on this machine (detect, crop, pose model batch 1 and N, decode, end to end).

    python benchmarks/latency.py [--platform cpu,android | --all] [--threads 1,0] [--runs 300] [--min-time 1]
                                 [--peers benchmarks/peers/fsanet.json,...] [--detector blazeface:MODEL]
    python benchmarks/latency.py --compare A.json B.json      # ratios B / A per platform and stage

Frame: 640x480 with one face (scikit-image's public-domain astronaut). Prints a markdown table, writes JSON with
the environment (CPU model and flags, cores, library versions, providers in use) and the peak RSS. Threads 0 = all
cores. Exits 3 with the reason when no requested platform can run here (e.g. jetson without TensorRT).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from edgepose.bench import demo_frame, environment, markdown_table, peak_rss_mb, stage_latency
from edgepose.errors import EdgePoseError

COLUMNS = ["platform", "threads", "stage", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "per_s"]


def compare(a_path: str, b_path: str) -> int:
    a, b = (json.loads(Path(p).read_text()) for p in (a_path, b_path))
    key = lambda r: (r["platform"], r["threads"], r["stage"])  # noqa: E731
    base = {key(r): r for r in a["results"]}
    rows = [{"platform": r["platform"], "threads": r["threads"], "stage": r["stage"], "A p50_ms": base[key(r)]["p50_ms"],
             "B p50_ms": r["p50_ms"], "B/A": r["p50_ms"] / base[key(r)]["p50_ms"]}
            for r in b["results"] if key(r) in base]
    print(f"A = {a_path}\nB = {b_path}\n")
    print(markdown_table(rows, ["platform", "threads", "stage", "A p50_ms", "B p50_ms", "B/A"]))
    return 0


def main() -> int:
    from edgepose import Runtime
    from edgepose.platform import platform_names

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--platform", default="cpu", help="comma-separated platform names or YAML paths")
    ap.add_argument("--all", action="store_true", help="every packaged platform (unusable ones are reported)")
    ap.add_argument("--model", default=None)
    ap.add_argument("--detector", default=None, help="override the platforms' detector, e.g. blazeface:MODEL")
    ap.add_argument("--peers", default="", help="comma-separated manifests of other models, run on --peer-platform")
    ap.add_argument("--peer-platform", default="cpu")
    ap.add_argument("--threads", default="1,0", help="comma-separated thread counts; 0 = all cores")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--min-time", type=float, default=0.0, help="measure each stage for at least this many seconds")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--out-dir", default="runs/benchmarks")
    ap.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"))
    args = ap.parse_args()
    if args.compare:
        return compare(*args.compare)

    names = platform_names() if args.all else args.platform.split(",")
    runs = [(name, name, args.model) for name in names]
    runs += [(Path(m).stem, args.peer_platform, m) for m in args.peers.split(",") if m]
    frame = demo_frame(640, 480)
    rows, unavailable, described = [], {}, {}
    for label, name, model in runs:
        for threads in (int(t) for t in args.threads.split(",")):
            try:
                with Runtime(name, model=model, threads=threads, detector=args.detector) as rt:
                    described[label] = rt.describe()
                    for row in stage_latency(rt, frame, args.runs, args.warmup, args.min_time, args.batch):
                        rows.append({"platform": f"{label} ({rt.manifest.precision})", "threads": threads or "all", **row})
            except (EdgePoseError, ImportError) as exc:
                unavailable[label] = str(exc)
                print(f"platform '{label}' is not usable on this machine: {exc}", file=sys.stderr)
                break
    if rows:
        print(markdown_table(rows, COLUMNS))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"latency-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"environment": environment(), "peak_rss_mb": peak_rss_mb(), "runtimes": described,
                                "results": rows, "unavailable": unavailable}, indent=2, default=str))
    print(f"\npeak RSS {peak_rss_mb():.0f} MB\nJSON: {path}")
    return 0 if rows else 3


if __name__ == "__main__":
    raise SystemExit(main())
