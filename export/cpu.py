"""Export a checkpoint for CPUs: ONNX fp32 (platform `cpu`) and, with --int8, static int8 (platform `cpu-int8`).

    python export/cpu.py runs/student_mbv3s_rot6d/last.pt --out runs/export [--int8]
"""
import argparse
from pathlib import Path

from edgepose.exporters.export import export_bundle

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--out", default="runs/export")
    ap.add_argument("--int8", action="store_true", help="also export the int8 bundle")
    ap.add_argument("--calibration", default=None, help="int8 calibration images (default: the training pool)")
    args = ap.parse_args()
    for platform in ["cpu"] + (["cpu-int8"] if args.int8 else []):
        print(export_bundle(args.checkpoint, platform, Path(args.out) / platform, calibration=args.calibration))
