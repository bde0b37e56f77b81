"""The quantization report of one trained student (benchmarks/quantization.py --report).

Each candidate is a real bundle made by the export command (edgepose.exporters.export_bundle), scored on aflw2000-dev
through the Runtime and timed at batch 1 on 1 thread and on all cores; rounds are interleaved across candidates so
the machine's drift hits all alike, and `fp32/x` is the per-round ratio to the fp32 bundle of the same engine.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from edgepose.evaluation.bench import interleaved_medians

REPO = Path(__file__).resolve().parent.parent
CANDIDATES = [  # (engine, label, platform, precision, quantizer)
    ("onnxruntime", "fp32", "cpu", "fp32", None),
    ("onnxruntime", "PTQ, ORT static", "cpu-int8", "int8", "ort-static"),
    ("onnxruntime", "PTQ, NNCF", "cpu-int8", "int8", "nncf-ptq"),
    ("onnxruntime", "dynamic (MatMul/Gemm weights)", "cpu-int8", "int8", "ort-dynamic"),
    ("litert", "fp32", "raspberry-pi", "fp32", None),
    ("litert", "PTQ, PT2E", "android", "int8", "pt2e"),
]
SHIPPED = [("onnxruntime", "shipped default-cpu-int8 (the faster of int8 / fp32 at export)", "cpu-int8",
            "default-cpu-int8"),
           ("litert", "QAT (shipped default-android)", "android", "default-android")]
QAT_QUANTIZERS = [("ort-static", "QAT + ORT static activations (cpu-int8 --precision int8)"),
                  ("nncf-ptq", "QAT + NNCF PTQ activations")]


def report(args) -> int:
    from edgepose.evaluation.bench import markdown_table
    from edgepose.exporters.export import export_bundle

    work = Path(tempfile.mkdtemp(prefix="edgepose-quant-"))
    entries = []
    for engine, label, platform, precision, quantizer in CANDIDATES:
        out = work / f"{platform}-{quantizer or precision}"
        t0 = time.time()
        export_bundle(args.weights, platform, out, precision=precision, quantizer=quantizer, dev_root=args.dev,
                      calibration=args.pool)
        print(f"exported {engine} {label} in {time.time() - t0:.0f} s", flush=True)
        entries.append({"engine": engine, "candidate": label, "platform": platform, "bundle": out})
    for quantizer, label in QAT_QUANTIZERS if args.qat else ():  # the QAT checkpoint through both ONNX quantizers
        out = work / f"qat-{quantizer}"
        export_bundle(args.qat, "cpu-int8", out, precision="int8", quantizer=quantizer, dev_root=args.dev,
                      calibration=args.pool)
        entries.append({"engine": "onnxruntime", "candidate": label, "platform": "cpu-int8", "bundle": out})
    for engine, label, platform, name in SHIPPED:
        entries.append({"engine": engine, "candidate": label, "platform": platform,
                        "bundle": REPO / "edgepose" / "bundles" / name})
    rows = [_describe(e) for e in entries]
    for threads, key in ((1, "p50 ms, 1 thread"), (0, f"p50 ms, {os.cpu_count()} threads")):
        _time(entries, rows, threads, key, args.rounds)
    rows += _torch_rows(args)
    columns = ["engine", "candidate", "precision", "size MB", "dev MAE", "60-99", "p50 ms, 1 thread",
               "fp32/x, 1 thread", f"p50 ms, {os.cpu_count()} threads", f"fp32/x, {os.cpu_count()} threads"]
    print()
    print(markdown_table(rows, columns))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


def _describe(entry: dict) -> dict:
    from edgepose.manifest import load_manifest

    m = load_manifest(Path(entry["bundle"]) / "manifest.json")
    dev = (m.metrics or {}).get("aflw2000-dev", {})
    return {"engine": entry["engine"], "candidate": entry["candidate"], "precision": m.precision,
            "size MB": (Path(entry["bundle"]) / m.model_file).stat().st_size / 1e6,
            "dev MAE": dev.get("mean", float("nan")), "60-99": dev.get("bins", {}).get("60-99", float("nan")),
            "quantization": m.source.get("quantization", "")}


def _time(entries: list[dict], rows: list[dict], threads: int, key: str, rounds: int) -> None:
    """Batch-1 p50 of every entry in `rounds` interleaved rounds; ratio to the same engine's fp32 entry per round."""
    from edgepose import Runtime

    rts = [Runtime(e["platform"], model=str(e["bundle"]), threads=threads) for e in entries]
    try:
        fns = {}
        for j, rt in enumerate(rts):
            spec = rt.manifest.input
            feed = {spec.name: spec.dummy(1)}
            fns[j] = lambda rt=rt, feed=feed: rt.backend.run(feed)
        times = interleaved_medians(fns, 100, rounds)
    finally:
        for rt in rts:
            rt.close()
    fp32 = {e["engine"]: j for j, e in enumerate(entries) if e["candidate"] == "fp32"}
    for j, (e, row) in enumerate(zip(entries, rows)):
        row[key] = float(np.median(times[j]))
        row[key.replace("p50 ms", "fp32/x")] = float(np.median(times[fp32[e["engine"]]] / times[j]))


def _torch_rows(args) -> list[dict]:
    """PyTorch on this CPU: fp32 against torch.ao dynamic int8 of the Linear layers (host-side inference)."""
    import torch

    from edgepose.exporters.onnx_export import torch_dynamic_int8
    from edgepose.evaluation.metrics import summarize
    from edgepose.train.checkpoint import crop_spec, dev_crops, input_spec, load_trained, predict_degrees, to_tensor

    model, recipe = load_trained(args.weights)
    crops, truth = dev_crops(args.dev, input_spec(recipe), crop_spec(recipe))
    models = {"fp32": model, "dynamic int8 (torch.ao, Linear)": torch_dynamic_int8(load_trained(args.weights)[0])}
    x = to_tensor(crops[:1])
    rows = {}
    for k, m in models.items():
        s = summarize(predict_degrees(m, crops), truth)
        rows[k] = {"engine": "torch", "candidate": k, "precision": "fp32" if k == "fp32" else "int8",
                   "size MB": len(_state_bytes(m)) / 1e6, "dev MAE": s["mean"], "60-99": s["bins"]["60-99"]["mean"]}
    for threads in (1, os.cpu_count()):
        torch.set_num_threads(threads)
        with torch.no_grad():
            t = interleaved_medians({k: (lambda m=m: m(x)) for k, m in models.items()}, 100, args.rounds)
        key = "1 thread" if threads == 1 else f"{threads} threads"
        for k in models:
            rows[k][f"p50 ms, {key}"] = float(np.median(t[k]))
            rows[k][f"fp32/x, {key}"] = float(np.median(t["fp32"] / t[k]))
    return list(rows.values())


def _state_bytes(model) -> bytes:
    import io

    import torch

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()
