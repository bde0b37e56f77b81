"""Student search by measured latency: every candidate backbone x input size, exported four ways, timed in one run.

    python benchmarks/student_search.py [--candidates mobilenetv3_small,mobilenetv1_x050@128,...] [--sizes 96,112,128]
        [--rounds 5] [--iters 200] [--checkpoints DIR] [--peer ../shared/models/peers/3ddfa-v2-mb05.onnx]
        [--out runs/student_search.json] [--work DIR] [--quick]

Each candidate is the default's network shape (backbone + rot6d head) exported with the project's own exporters:
ONNX fp32, ONNX static int8 (the cpu-int8 quantizer: QDQ, per-channel weights, u8 activations), LiteRT fp32 and
LiteRT int8 (PT2E, the android / raspberry-pi path), int8 calibrated on 64 pool crops. All engines run batch 1 on
1 thread, in rounds that visit every (candidate, engine) in turn, so a slow minute on a shared machine hits all of
them alike. A row's p50 is the median over rounds of each round's p50; its `x peer` ratio is the median over rounds
of (its ORT fp32 p50 / the peer's ORT fp32 p50 in that round). The public 3DDFA_V2 model (and its ORT static int8)
runs in the same rounds as the reference row.

Untrained (seeded) weights measure speed. `--checkpoints DIR`: training checkpoints (`*.pt`, searched recursively)
whose recipe names a candidate's backbone and input size; their weights are exported instead, and the dev and
holdout MAE their training recorded fill the MAE columns (the MAE comes from training, not from this script). The
Pareto front is latency (ORT fp32 p50 ratio to the peer) vs dev MAE when MAE is known, else vs MACs.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

CANDIDATES = ("mobilenetv3_small", "mobilenetv3_small_relu", "mobilenetv3_small_nose", "mobilenetv3_small_relu_nose",
              "mobilenetv1_x025", "mobilenetv1_x050", "mobilenetv1_x075", "mobilefacenet")
SIZES = (96, 112, 128)
ENGINES = ("ort_fp32", "ort_int8", "litert_fp32", "litert_int8")
PEER = "../shared/models/peers/3ddfa-v2-mb05.onnx"
PEER_SIZE = 120
CALIBRATION = 64
COLUMNS = ["candidate", "input", "params M", "MMACs", *[f"{e} ms" for e in ENGINES], "ort fp32/int8",
           "litert fp32/int8", "x peer", "dev MAE", "holdout MAE", "pareto"]


@dataclass
class Candidate:
    """One row: a network at one input size and the batch-1 callables that run each of its exports."""

    name: str
    input: int
    params: int
    macs: int
    runners: dict[str, Callable[[], object]]
    checkpoint: str = ""
    metrics: dict = field(default_factory=dict)


def load_checkpoints(folder: str) -> dict[tuple[str, int], tuple[Path, dict]]:
    """(backbone, input size) -> (checkpoint, the metrics its training recorded) for every *.pt under `folder`.
    With several checkpoints for one key, the one with the lowest holdout MAE is kept (never chosen on dev)."""
    from edgepose.errors import ConfigError
    from edgepose.train.checkpoint import read_checkpoint
    from edgepose.train.recipe import recipe_from_yaml

    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"--checkpoints '{root}' is not a folder; pass the folder holding the trained candidates")
    found: dict[tuple[str, int], tuple[Path, dict]] = {}
    for path in sorted(root.rglob("*.pt")):
        state = read_checkpoint(path)
        recipe = recipe_from_yaml(state["recipe"], where=f"recipe inside '{path}'")
        key, metrics = (recipe.model.backbone, recipe.model.input_size), state.get("metrics", {})
        held = metrics.get("holdout_mae", float("inf"))
        if key not in found or held < found[key][1].get("holdout_mae", float("inf")):
            found[key] = (path, metrics)
    return found


def ort_runner(path: Path, x: np.ndarray) -> Callable[[], object]:
    from edgepose.backends import create_backend

    backend = create_backend("onnxruntime")
    backend.load(str(path), {"threads": 1})
    feed = {"input": x}
    return lambda: backend.run(feed)


def litert_runner(path: Path, x_nchw: np.ndarray) -> Callable[[], object]:
    from edgepose.backends import create_backend

    backend = create_backend("litert")
    backend.load(str(path), {"threads": 1})
    feed = {"input": np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))}  # LiteRT exports take NHWC
    return lambda: backend.run(feed)


def build_candidate(backbone: str, size: int, pool: str, work: Path, checkpoint: tuple[Path, dict] | None) -> Candidate:
    """Export one candidate four ways through edgepose.exporters and load each artifact on 1 thread."""
    import torch

    from edgepose.exporters.calibration import calibration_inputs
    from edgepose.exporters.onnx_export import onnx_to_int8, write_onnx
    from edgepose.exporters.tflite_export import torch_to_tflite
    from edgepose.manifest import InputSpec, sha256_file
    from edgepose.train.models import complexity, create
    from edgepose.train.checkpoint import input_spec, load_trained

    if checkpoint is not None:
        model, recipe = load_trained(checkpoint[0])
        spec, crop_scale = input_spec(recipe), recipe.data.crop_scale
    else:
        torch.manual_seed(0)
        model = create(backbone, head="rot6d").eval()
        spec, crop_scale = InputSpec(size=(size, size)), 1.6
    calib = calibration_inputs(pool, spec, CALIBRATION, crop_scale)
    stem = f"{backbone}-{size}" + (f"-{sha256_file(checkpoint[0])[:12]}" if checkpoint else "")
    fp32 = reuse(work / f"{stem}.onnx", lambda p: write_onnx(model, spec, p))
    int8 = reuse(work / f"{stem}-int8.onnx", lambda p: onnx_to_int8(fp32, p, calib, spec.name))
    tfl = {prec: reuse(work / f"{stem}-{prec}.tflite", lambda p: torch_to_tflite(model, spec, prec, p, calib)[0])
           for prec in ("fp32", "int8")}
    x = calib[:1]
    params, macs = complexity(model, size)
    return Candidate(backbone, size, params, macs,
                     {"ort_fp32": ort_runner(fp32, x), "ort_int8": ort_runner(int8, x),
                      "litert_fp32": litert_runner(tfl["fp32"], x), "litert_int8": litert_runner(tfl["int8"], x)},
                     str(checkpoint[0]) if checkpoint else "", dict(checkpoint[1]) if checkpoint else {})


def reuse(path: Path, export: Callable[[Path], Path]) -> Path:
    """`path` when an earlier run left it in the work folder (exports are written atomically: a file there is
    whole: write_onnx, onnx_to_int8 and torch_to_tflite rename into place), else `export(path)`. Untrained candidates are seeded, so a rerun would write the same model."""
    return path if path.is_file() else export(path)


def build_peer(path: str, pool: str, work: Path) -> Candidate:
    """3DDFA_V2 (MobileNetV1 x0.5, BGR (x - 127.5) / 128 at 120 px) and its ONNX Runtime static int8."""
    from edgepose.exporters.calibration import calibration_crops
    from edgepose.exporters.onnx_export import onnx_to_int8
    from edgepose.manifest import InputSpec
    from edgepose.preprocess import to_input

    spec = InputSpec(size=(PEER_SIZE, PEER_SIZE), color="BGR", std=(128.0,) * 3)
    calib = to_input(calibration_crops(pool, PEER_SIZE, CALIBRATION), spec)
    int8 = reuse(work / "peer-int8.onnx", lambda p: onnx_to_int8(Path(path), p, calib, spec.name))
    params, macs = onnx_complexity(Path(path))
    return Candidate("3DDFA_V2 mb05 (peer)", PEER_SIZE, params, macs,
                     {"ort_fp32": ort_runner(Path(path), calib[:1]), "ort_int8": ort_runner(int8, calib[:1])})


def onnx_complexity(path: Path) -> tuple[int, int]:
    """(parameters, multiply-accumulates at batch 1) of an ONNX graph: initializer sizes, and Conv / Gemm / MatMul
    MACs from shape inference with the batch fixed at 1."""
    import onnx
    from onnx import numpy_helper, shape_inference

    model = onnx.load(str(path))
    for dim in model.graph.input[0].type.tensor_type.shape.dim[:1]:
        dim.ClearField("dim_param")
        dim.dim_value = 1
    model = shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in (*model.graph.value_info, *model.graph.output, *model.graph.input)}
    weights = {t.name: numpy_helper.to_array(t).shape for t in model.graph.initializer}
    macs = 0
    for node in model.graph.node:
        out = shapes.get(node.output[0])
        if not out or node.op_type not in ("Conv", "Gemm", "MatMul") or node.input[1] not in weights:
            continue
        w = weights[node.input[1]]
        if node.op_type == "Conv":  # each output element: (in channels / groups) x kernel area
            macs += int(np.prod(out)) * int(np.prod(w[1:]))
        else:
            transposed = node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute)
            macs += int(np.prod(out)) * int(w[1] if transposed else w[0])
    return int(sum(np.prod(s) for s in weights.values())), macs


def measure(cands: list[Candidate], rounds: int, iters: int) -> dict[int, dict[str, list[float]]]:
    """p50 of `iters` calls per (candidate, engine), `rounds` times; each round visits every candidate in turn."""
    from edgepose.evaluation.bench import time_calls

    times: dict[int, dict[str, list[float]]] = {i: {e: [] for e in c.runners} for i, c in enumerate(cands)}
    for r in range(rounds):
        for i, c in enumerate(cands):
            for engine, fn in c.runners.items():
                times[i][engine].append(time_calls(fn, iters, max(3, iters // 20))["p50_ms"])
        print(f"round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    return times


def pareto(points: list[tuple[float, float]]) -> list[bool]:
    """True where no other point is at least as good on both axes and better on one (lower is better)."""
    return [not any(a <= x and b <= y and (a < x or b < y) for a, b in points) for x, y in points]


def table_rows(cands: list[Candidate], times: dict[int, dict[str, list[float]]], peer: int | None) -> list[dict]:
    """One dict per candidate: p50s, int8 speed-ups (fp32 / int8 per round, median), ratio to the peer, MAE, Pareto."""
    rows = []
    for i, c in enumerate(cands):
        t = {e: np.asarray(v) for e, v in times[i].items()}
        row = {"candidate": c.name, "input": c.input, "params M": c.params / 1e6, "MMACs": c.macs / 1e6,
               **{f"{e} ms": float(np.median(t[e])) for e in ENGINES if e in t}, "checkpoint": c.checkpoint}
        for engine in ("ort", "litert"):
            if f"{engine}_int8" in t:
                row[f"{engine} fp32/int8"] = float(np.median(t[f"{engine}_fp32"] / t[f"{engine}_int8"]))
        if peer is not None:  # every engine against the peer's ORT fp32 in the same round (JSON; the table shows ORT fp32)
            reference = np.asarray(times[peer]["ort_fp32"])
            row.update({f"{e} x peer": float(np.median(t[e] / reference)) for e in ENGINES if e in t})
            row["x peer"] = row["ort_fp32 x peer"]
        for key, col in (("dev_mae", "dev MAE"), ("holdout_mae", "holdout MAE")):
            if key in c.metrics:
                row[col] = float(c.metrics[key])
        rows.append(row)
    students = [r for r in rows if "litert_fp32 ms" in r]
    with_mae = [r for r in students if "dev MAE" in r]
    ranked, axis = (with_mae, "dev MAE") if with_mae else (students, "MMACs")
    latency = "x peer" if peer is not None else "ort_fp32 ms"
    for r, front in zip(ranked, pareto([(r[latency], r[axis]) for r in ranked])):
        r["pareto"] = f"yes ({axis})" if front else ""
    return rows


def candidate_sizes(candidates: str, sizes: str) -> list[tuple[str, int]]:
    """(backbone, input size) pairs: each name at every size of `sizes`, or only at N when written `name@N`.

    Raises:
        ConfigError: an unknown backbone or a size that is not a whole number.
    """
    from edgepose.errors import ConfigError, did_you_mean
    from edgepose.train.models import BACKBONES

    pairs = []
    for entry in candidates.split(","):
        name, _, only = entry.strip().partition("@")
        if name not in BACKBONES:
            raise ConfigError(f"unknown candidate '{name}'.{did_you_mean(name, BACKBONES)} Available: {sorted(BACKBONES)}")
        try:
            pairs += [(name, int(n)) for n in (only or sizes).split(",")]
        except ValueError:
            raise ConfigError(f"input sizes must be whole numbers of pixels, not '{only or sizes}'") from None
    return pairs


def write_json(path: Path, payload: dict) -> None:
    from edgepose.atomic import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(payload, indent=1).encode())


def main(argv: list[str] | None = None) -> int:
    from edgepose.evaluation.bench import environment, markdown_table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", default=",".join(CANDIDATES),
                    help="backbone names, each timed at every --sizes, or at one size when written name@SIZE")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=200, help="timed calls per engine per round (p50 of these)")
    ap.add_argument("--pool", default="../shared/data/faces", help="calibration crops (the training pool)")
    ap.add_argument("--peer", default=PEER, help="3DDFA_V2 ONNX reference ('' to skip)")
    ap.add_argument("--checkpoints", default="", help="folder of trained candidate checkpoints (adds the MAE columns)")
    ap.add_argument("--out", default="runs/student_search.json")
    ap.add_argument("--work", default="", help="folder for the exported models; those already there are reused "
                    "(resume a long search, or re-time without re-exporting). Default: a new temporary folder")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 2 rounds of 10 calls")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.iters = 2, 10

    trained = load_checkpoints(args.checkpoints) if args.checkpoints else {}
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="student-search-"))
    work.mkdir(parents=True, exist_ok=True)
    cands = []
    for backbone, size in candidate_sizes(args.candidates, args.sizes):
        print(f"exporting {backbone} @ {size}", file=sys.stderr, flush=True)
        cands.append(build_candidate(backbone, size, args.pool, work, trained.get((backbone, size))))
    peer = None
    if args.peer:
        cands.append(build_peer(args.peer, args.pool, work))
        peer = len(cands) - 1
    times = measure(cands, args.rounds, args.iters)
    rows = table_rows(cands, times, peer)
    print(markdown_table(rows, COLUMNS))
    front = [f"{r['candidate']} @ {r['input']}" for r in rows if r.get("pareto")]
    print(f"\nPareto front ({'x peer' if peer is not None else 'ORT fp32 ms'} vs "
          f"{'dev MAE' if any('dev MAE' in r for r in rows) else 'MACs'}): {', '.join(front)}")
    write_json(Path(args.out), {"environment": environment(), "rounds": args.rounds, "iters": args.iters,
                                "threads": 1, "batch": 1, "calibration_images": CALIBRATION, "pool": args.pool,
                                "peer": args.peer, "rows": rows,
                                "round_p50_ms": [{"candidate": c.name, "input": c.input, **times[i]}
                                                 for i, c in enumerate(cands)]})
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
