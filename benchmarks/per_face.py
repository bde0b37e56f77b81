"""What a face costs outside the pose engine: `infer(frame, boxes=[box])` timed whole, with the engine call timed
inside it, on the platforms' own bundles (batch 1, one face per call).

    python benchmarks/per_face.py [--platform cpu,cpu-int8,android] [--calls 300] [--rounds 5] [--threads 1]

Prints per platform the median over rounds of each round's median: the whole call, the engine, the rest (crop,
normalisation, decoding, validation) and the rest as a share of the engine. A 640x480 frame; the calls cycle through
faces of 100, 160 and 233 px (crop squares of 160, 256 and 373 px: no halving, one even halving, and an odd
side, which takes the warp).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from edgepose import Runtime
from edgepose.evaluation.bench import demo_frame, markdown_table


def profile(rt: Runtime, frame: np.ndarray, boxes: list, calls: int) -> tuple[float, float]:
    """(median whole-call ms, median engine ms) over `calls` calls; the engine is timed by wrapping Runtime._run."""
    engine_ms: list[float] = []
    run = rt._run

    def timed(backend, batch):
        t0 = time.perf_counter()
        out = run(backend, batch)
        engine_ms.append((time.perf_counter() - t0) * 1e3)
        return out

    rt._run = timed
    try:
        whole = []
        for i in range(calls):
            box = boxes[i % len(boxes)]
            t0 = time.perf_counter()
            rt.infer(frame, boxes=[box])
            whole.append((time.perf_counter() - t0) * 1e3)
    finally:
        rt._run = run
    return float(np.median(whole)), float(np.median(engine_ms))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--platform", default="cpu,android")
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if args.calls < 1 or args.rounds < 1:
        ap.error("--calls and --rounds must be >= 1")
    frame = np.ascontiguousarray(demo_frame(640, 480))
    boxes = [(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2) for cx, cy, side in
             ((320.0, 240.0, 100.0), (320.0, 240.0, 160.0), (320.0, 250.0, 233.0))]
    runtimes = {name: Runtime(name, threads=args.threads) for name in args.platform.split(",") if name}
    results = {name: [] for name in runtimes}
    for rt in runtimes.values():
        profile(rt, frame, boxes, 21)  # warm-up
    for _ in range(args.rounds):  # platforms interleaved round by round
        for name, rt in runtimes.items():
            results[name].append(profile(rt, frame, boxes, args.calls))
    rows = []
    for name, runs in results.items():
        whole, engine = (float(np.median([r[i] for r in runs])) for i in (0, 1))
        rows.append({"platform": name, "infer(frame, boxes) ms": f"{whole:.3f}", "engine ms": f"{engine:.3f}",
                     "outside the engine ms": f"{whole - engine:.3f}",
                     "outside / engine": f"{100 * (whole - engine) / engine:.0f} %"})
    print(markdown_table(rows, list(rows[0])))
    for rt in runtimes.values():
        rt.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
