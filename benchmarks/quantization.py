"""Does int8 pay here? fp32 vs int8 latency of student variants on ONNX Runtime (and LiteRT), by input size and batch.

    python benchmarks/quantization.py --pool POOL_DIR [--variants mobilenetv3_small,mobilenetv3_small_relu,mobilenetv3_small_relu_nose]
                                      [--sizes 112,160,224] [--batches 1,8] [--litert] [--weights CHECKPOINT]
    python benchmarks/quantization.py --report --pool POOL_DIR --dev AFLW2000_DIR [--weights weights/student_mbv3s_128_3ddfa_yaw2.pt] [--qat runs/qat_mbv3/last.pt]
                                                  [--json OUT.json]

--report: the quantization report of one trained student: every int8 route the export command offers (ORT static
PTQ, NNCF PTQ, ORT dynamic, LiteRT PT2E PTQ) plus the shipped QAT bundles and torch.ao dynamic int8, each with size,
aflw2000-dev MAE and batch-1 latency on 1 thread and on all cores, timed in interleaved rounds beside its fp32 parent.

Latency does not depend on the weights, so untrained variants (seeded) measure speed; pass --weights to also score
fp32 vs int8 accuracy on aflw2000-dev for a trained checkpoint. ONNX int8 = static QDQ, per-channel weights, uint8
activations, calibrated on the training pool. Timing: 1 thread, rounds interleaved fp32/int8 so drifts cancel;
the ratio column is fp32 / int8 (> 1 means int8 is faster).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def ort_session(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def main() -> int:
    import torch

    from edgepose.evaluation.bench import interleaved_medians, markdown_table
    from edgepose.exporters.calibration import calibration_inputs
    from edgepose.exporters.onnx_export import onnx_to_int8, write_onnx
    from edgepose.manifest import InputSpec
    from edgepose.train.models import create

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="mobilenetv3_small,mobilenetv3_small_relu,mobilenetv3_small_relu_nose")
    ap.add_argument("--sizes", default="112,160,224")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pool", required=True, help="training pool folder (calibration crops)")
    ap.add_argument("--litert", action="store_true", help="also LiteRT fp32 vs PT2E int8 (batch 1, slower to convert)")
    ap.add_argument("--probe", action="store_true", help="also time two 5-layer probes: dense 3x3 vs depthwise-separable")
    ap.add_argument("--report", action="store_true", help="the quantization report of --weights (see above)")
    ap.add_argument("--weights", default="weights/student_mbv3s_128_3ddfa_yaw2.pt")
    ap.add_argument("--qat", default="",
                    help="--report: also export this QAT checkpoint to int8 with both ONNX quantizers")
    ap.add_argument("--dev", default="", help="--report: AFLW2000-3D folder to score on")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", default=None, help="--report: also write the rows here")
    args = ap.parse_args()
    if args.report and not args.dev:
        ap.error("--report scores every candidate: give --dev AFLW2000_DIR")
    if args.report:
        from quantization_report import report

        return report(args)

    torch.manual_seed(0)
    rows = []
    work = Path(tempfile.mkdtemp())
    models = [(v, lambda v=v: create(v)) for v in args.variants.split(",")]
    if args.probe:
        models += [("probe: dense 3x3 convs", lambda: probe(False)), ("probe: depthwise-separable", lambda: probe(True))]
    for variant, build in models:
        model = build().eval()
        for size in (int(s) for s in args.sizes.split(",")):
            spec = InputSpec(size=(size, size))
            calib = calibration_inputs(args.pool, spec, 64)
            stem = variant.replace(" ", "_").replace(":", "")
            fp32 = write_onnx(model, spec, work / f"{stem}-{size}.onnx")
            int8 = onnx_to_int8(fp32, work / f"{stem}-{size}-int8.onnx", calib, spec.name)
            s32, s8 = ort_session(fp32, args.threads), ort_session(int8, args.threads)
            for batch in (int(b) for b in args.batches.split(",")):
                x = np.repeat(calib[:1], batch, axis=0)
                t = interleaved_medians({"fp32": lambda: s32.run(None, {"input": x}),
                                         "int8": lambda: s8.run(None, {"input": x})}, max(5, 60 // batch))
                rows.append({"engine": "onnxruntime", "variant": variant, "input": size, "batch": batch,
                             "fp32 ms": float(np.median(t["fp32"])), "int8 ms": float(np.median(t["int8"])),
                             "fp32/int8": float(np.median(t["fp32"] / t["int8"])),
                             "fp32 MB": fp32.stat().st_size / 1e6, "int8 MB": int8.stat().st_size / 1e6})
                print(rows[-1], flush=True)
            if args.litert and size == int(args.sizes.split(",")[0]) and not variant.startswith("probe"):
                rows.append(litert_row(model, spec, calib, variant, size, work, args.threads))
                print(rows[-1], flush=True)
    print()
    print(markdown_table(rows, ["engine", "variant", "input", "batch", "fp32 ms", "int8 ms", "fp32/int8", "fp32 MB", "int8 MB"]))
    return 0


def probe(depthwise: bool):
    """A 5-stage conv/ReLU net, dense 3x3 or depthwise-separable: tells whether int8 convolutions pay at all here."""
    from torch import nn

    def block(ci, co, stride, dw):
        if not dw:
            return nn.Sequential(nn.Conv2d(ci, co, 3, stride, 1, bias=False), nn.BatchNorm2d(co), nn.ReLU())
        return nn.Sequential(nn.Conv2d(ci, ci, 3, stride, 1, groups=ci, bias=False), nn.BatchNorm2d(ci), nn.ReLU(),
                             nn.Conv2d(ci, co, 1, bias=False), nn.BatchNorm2d(co), nn.ReLU())

    return nn.Sequential(block(3, 32, 2, False), block(32, 64, 2, depthwise), block(64, 128, 2, depthwise),
                         block(128, 256, 2, depthwise), block(256, 256, 1, depthwise), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(256, 6))


def litert_row(model, spec, calib, variant, size, work, threads) -> dict:
    from edgepose.backends import create_backend
    from edgepose.evaluation.bench import interleaved_medians
    from edgepose.exporters.tflite_export import torch_to_tflite

    paths = {p: torch_to_tflite(model, spec, p, work / f"{variant}-{size}-{p}.tflite", calib)[0] for p in ("fp32", "int8")}
    backends = {}
    for p, path in paths.items():
        backends[p] = create_backend("litert")
        backends[p].load(str(path), {"threads": threads})  # quantizes int8 inputs itself
    x = np.ascontiguousarray(calib[:1].transpose(0, 2, 3, 1))
    t = interleaved_medians({p: (lambda b=b: b.run({"input": x})) for p, b in backends.items()}, 60)
    return {"engine": "litert", "variant": variant, "input": size, "batch": 1, "fp32 ms": float(np.median(t["fp32"])),
            "int8 ms": float(np.median(t["int8"])), "fp32/int8": float(np.median(t["fp32"] / t["int8"])),
            "fp32 MB": paths["fp32"].stat().st_size / 1e6, "int8 MB": paths["int8"].stat().st_size / 1e6}


if __name__ == "__main__":
    raise SystemExit(main())
