"""Per-stage latency of platforms on this machine (detect, crop, pose model batch 1 and N, decode, end to end).

    python benchmarks/latency.py [--platform cpu,android | --all] [--threads 1,0] [--runs 300] [--min-time 1]
                                 [--peers benchmarks/peers/fsanet.json,...] [--models-dir ../shared/models/peers]
                                 [--detector blazeface:MODEL]
    python benchmarks/latency.py --compare A.json B.json      # ratios B / A per platform and stage
    python benchmarks/latency.py --scenes ../shared/data/faces [--platform cpu,android] [--threads 1,0]

--scenes POOL: whole frames instead. 640x480 frames composed from the faces pool (edgepose.evaluation.scenes) with 1, 3 and 10
faces: detect, crop + normalise, pose model, decode, end to end, and infer with the boxes given; the 450x450 ratio
of whole-frame infer(frame) to infer(frame, boxes=[box]) (interleaved calls); Runtime.stream throughput on a clip of
60 composed frames. The platforms' own detector (detector: auto = BlazeFace after `edgepose detectors fetch`).

Frame: 640x480 with one face (scikit-image's public-domain astronaut). Prints a markdown table, writes JSON with
the environment (CPU model and flags, cores, library versions, providers in use) and the peak RSS. Threads 0 = all
cores. Exits 3 with the reason when no requested platform can run here (e.g. jetson without TensorRT).

Platforms are interleaved: each stage's calls are split into --rounds rounds and every round times every platform
(and thread count) in turn, so a machine that drifts during the run shifts them all alike; the table's last column is
the min..max of the round medians.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from edgepose.evaluation.bench import demo_frame, environment, markdown_table, peak_rss_mb, stage_latency
from edgepose.errors import EdgePoseError

COLUMNS = ["platform", "threads", "stage", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "per_s", "rounds min..max"]


def _spread(values: list[float]) -> str:
    return f"{min(values):.2f}..{max(values):.2f}"


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
    from edgepose.exporters.checkpoint_runtime import checkpoint_bundle
    from edgepose.platform import platform_names

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--platform", default="cpu", help="comma-separated platform names or YAML paths")
    ap.add_argument("--all", action="store_true", help="every packaged platform (unusable ones are reported)")
    ap.add_argument("--model", default=None, help="bundle for every --platform, or a training checkpoint exported "
                    "for each (default: each platform's own)")
    ap.add_argument("--detector", default=None, help="override the platforms' detector, e.g. blazeface:MODEL")
    ap.add_argument("--peers", default="", help="comma-separated manifests of other models, run on --peer-platform")
    ap.add_argument("--peer-platform", default="cpu")
    ap.add_argument("--models-dir", default="../shared/models/peers",
                    help="folder holding the model files the --peers manifests name (benchmarks/peers/*.json)")
    ap.add_argument("--threads", default="1,0", help="comma-separated thread counts; 0 = all cores")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--min-time", type=float, default=0.0, help="measure each stage for at least this many seconds")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5,
                    help="split each stage's calls into this many rounds, every round timing every platform in turn")
    ap.add_argument("--out-dir", default="runs/benchmarks")
    ap.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"))
    ap.add_argument("--scenes", default="", metavar="POOL", help="whole-frame latency on frames composed from POOL")
    args = ap.parse_args()
    if args.compare:
        return compare(*args.compare)
    if args.scenes:
        return whole_frames(args)
    if args.rounds < 1:
        ap.error(f"--rounds must be at least 1, got {args.rounds}")

    names = platform_names() if args.all else args.platform.split(",")
    runs = [(name, name, args.model, None) for name in names]
    runs += [(Path(m).stem, args.peer_platform, m, args.models_dir) for m in args.peers.split(",") if m]
    frame = demo_frame(640, 480)
    opened, unavailable, described = [], {}, {}
    with ExitStack() as stack:
        for label, name, model, models_dir in runs:
            try:
                model = stack.enter_context(checkpoint_bundle(model, name))
            except (EdgePoseError, ImportError) as exc:
                unavailable[label] = str(exc)
                print(f"platform '{label}': {exc}", file=sys.stderr)
                continue
            for threads in (int(t) for t in args.threads.split(",")):
                try:
                    rt = stack.enter_context(Runtime(name, model=model, threads=threads, detector=args.detector,
                                                     models_dir=models_dir))
                except (EdgePoseError, ImportError) as exc:
                    unavailable[label] = str(exc)
                    print(f"platform '{label}' is not usable on this machine: {exc}", file=sys.stderr)
                    break
                described[label] = rt.describe()
                opened.append((f"{label} ({rt.manifest.precision})", threads or "all", rt))
        timed = stage_latency([rt for _, _, rt in opened], frame, args.runs, args.warmup, args.min_time, args.batch,
                              args.rounds) if opened else []
    rows = [{"platform": label, "threads": threads, **row, "rounds min..max": _spread(row["round_p50_ms"])}
            for (label, threads, _), stages in zip(opened, timed) for row in stages]
    if rows:
        print(markdown_table(rows, COLUMNS))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"latency-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"environment": environment(), "peak_rss_mb": peak_rss_mb(), "runtimes": described,
                                "results": rows, "unavailable": unavailable}, indent=2, default=str))
    print(f"\npeak RSS {peak_rss_mb():.0f} MB\nJSON: {path}")
    return 0 if rows else 3


def whole_frames(args) -> int:
    """Per-stage whole-frame latency, the 450x450 ratio and stream throughput per platform and thread count."""
    from edgepose import Runtime
    from edgepose.evaluation.bench_frames import boxed_ratio, frame_latency, stream_throughput

    stage_rows, summary_rows = [], []
    for name in args.platform.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            with Runtime(name, threads=threads, detector=args.detector) as rt:
                label = {"platform": name, "threads": threads or "all", "detector": rt.describe()["detector"]}
                stage_rows += [{**label, **row} for row in frame_latency(rt, args.scenes, runs=max(10, args.runs // 10))]
                summary_rows.append({**label, **boxed_ratio(rt, args.scenes),
                                     **{f"stream_{k}": v for k, v in stream_throughput(rt, args.scenes).items()}})
    print(markdown_table(stage_rows, ["platform", "threads", "detector", "faces", "found", "stage", "p50_ms", "p90_ms"]))
    print()
    print(markdown_table(summary_rows, ["platform", "threads", "detector", "whole_450_p50_ms", "boxed_p50_ms", "ratio",
                                        "stream_fps"]))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"whole-frames-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"environment": environment(), "stages": stage_rows, "summary": summary_rows},
                               indent=2, default=str))
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
