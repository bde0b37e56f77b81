"""Latency of a platform on this machine: pose model alone (batch 1) and end-to-end Runtime.infer on 640x480.

    python benchmarks/latency.py [--platform cpu] [--threads 1,0] [--runs 200] [--out-dir runs/benchmarks]

Prints a markdown table and writes JSON. Threads 0 = all cores. Exits 3 with the reason when the platform
cannot run on this machine (e.g. jetson without TensorRT).
"""
from __future__ import annotations

import argparse
import json
import os
import platform as host
import sys
import time
from pathlib import Path

import numpy as np

from edgepose.bench import demo_frame, markdown_table, time_calls
from edgepose.errors import BackendUnavailableError


def bench_platform(name: str, model: str | None, threads: int, runs: int, warmup: int, label: str = "") -> list[dict]:
    from edgepose import Runtime

    rows = []
    with Runtime(name, model=model, threads=threads) as rt:
        spec = rt.manifest.input
        shape = (1, 3, *spec.size) if spec.layout == "NCHW" else (1, *spec.size, 3)
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        label = f"{label or name} ({rt.manifest.precision}, {threads or os.cpu_count()} thr)"
        members = " (all ensemble members)" if len(rt.members) > 1 else ""
        rows.append({"platform": label, "stage": f"pose model, batch 1{members}",
                     **time_calls(lambda: [m.run({spec.name: x}) for m in rt.members], runs, warmup)})
        frame = demo_frame(640, 480)
        faces = rt.infer(frame)
        rows.append({"platform": label, "stage": f"infer 640x480 (detect + pose, {len(faces)} face)",
                     **time_calls(lambda: rt.infer(frame), max(20, runs // 4), max(3, warmup // 4))})
        if faces:
            boxes = [faces[0].box]
            rows.append({"platform": label, "stage": "infer 640x480 with box (crop + pose)",
                         **time_calls(lambda: rt.infer(frame, boxes=boxes), runs, warmup)})
        rows[-1]["engine"] = rt.describe().get("engine", "")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--platform", default="cpu", help="platform name or YAML path (comma-separated for several)")
    ap.add_argument("--model", default=None)
    ap.add_argument("--peers", default="", help="comma-separated manifests of other models, run on --peer-platform")
    ap.add_argument("--peer-platform", default="cpu")
    ap.add_argument("--threads", default="1,0", help="comma-separated thread counts; 0 = all cores")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--out-dir", default="runs/benchmarks")
    args = ap.parse_args()

    rows, unavailable = [], {}
    runs = [(name, name, args.model) for name in args.platform.split(",")]
    runs += [(Path(m).stem, args.peer_platform, m) for m in args.peers.split(",") if m]
    for label, name, model in runs:
        for threads in (int(t) for t in args.threads.split(",")):
            try:
                rows += bench_platform(name, model, threads, args.runs, args.warmup, label)
            except BackendUnavailableError as exc:
                unavailable[label] = str(exc)
                print(f"platform '{name}' is not usable on this machine: {exc}", file=sys.stderr)
                break
    if rows:
        print(markdown_table(rows, ["platform", "stage", "p50_ms", "p90_ms", "p99_ms", "per_s"]))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"latency-{time.strftime('%Y%m%d-%H%M%S')}.json"
    machine = {"cpu": host.processor() or host.machine(), "cores": os.cpu_count(), "python": host.python_version()}
    path.write_text(json.dumps({"machine": machine, "results": rows, "unavailable": unavailable}, indent=2))
    print(f"\nJSON: {path}")
    return 0 if rows else 3


if __name__ == "__main__":
    raise SystemExit(main())
