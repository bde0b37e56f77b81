"""Where an ONNX bundle's time goes: ONNX Runtime's own per-node profile, summed per operator type.

    python benchmarks/op_profile.py default default-cpu-int8 [benchmarks/peers/3ddfa_v2.json --models-dir DIR]
        [--runs 300] [--threads 1]

Each bundle (a packaged name, a bundle folder or a manifest JSON; ONNX single-model bundles) runs `--runs` times at
batch 1 on its manifest's input spec with profiling on; the table gives per operator type the kernel microseconds per
run, the share of the bundle's kernel time and the node count after ORT's graph optimisation (`Reorder*` are the
layout changes ORT inserts around the ops its blocked-channel (NCHWc) kernels cannot take). Profiling adds overhead:
compare shares, and time bundles against each other with `edgepose bench` or benchmarks/latency.py.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

from edgepose.bundle import resolve_bundle
from edgepose.errors import EdgePoseError, ModelFormatError
from edgepose.evaluation.bench import markdown_table


def op_profile(model: str, runs: int, threads: int, models_dir: str | None = None) -> tuple[list[dict], float]:
    """(rows per operator type, total kernel us per run) for one ONNX bundle."""
    import onnxruntime as ort

    manifest, files = resolve_bundle(model, models_dir)
    if manifest.format != "onnx" or len(files) != 1:
        raise ModelFormatError(f"'{model}' is a {manifest.format} bundle of {len(files)} model file(s); this profile "
                               "reads ONNX Runtime's, for single-model ONNX bundles")
    with tempfile.TemporaryDirectory(prefix="edgepose-profile-") as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.enable_profiling, options.profile_file_prefix = True, str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(files[0]), options, providers=["CPUExecutionProvider"])
        feed = {manifest.input.name: manifest.input.dummy(1)}
        for _ in range(runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    micros: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            micros[event["args"]["op_name"]] += event["dur"]
            calls[event["args"]["op_name"]] += 1
    total = sum(micros.values())
    rows = [{"op": op, "us/run": us / runs, "share %": 100.0 * us / total, "nodes": calls[op] // runs}
            for op, us in micros.most_common()]
    return rows, total / runs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="ONNX bundles: packaged names, folders or manifest JSONs")
    ap.add_argument("--runs", type=int, default=300, help="profiled runs per bundle (default 300)")
    ap.add_argument("--threads", type=int, default=1, help="ORT intra-op threads (default 1)")
    ap.add_argument("--models-dir", default=None, help="where manifests' model files live when not beside them")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.threads < 1:
        print("error: --runs and --threads must be at least 1", file=sys.stderr)
        return 2
    try:
        for model in args.models:
            rows, total = op_profile(model, args.runs, args.threads, args.models_dir)
            threads = f"{args.threads} thread" + ("s" if args.threads > 1 else "")
            print(f"\n{model}: {total:.0f} us of kernels per run ({args.runs} runs, {threads})\n")
            print(markdown_table(rows, ["op", "us/run", "share %", "nodes"]))
    except EdgePoseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
