"""Export a checkpoint for Android / ARM boards as TFLite (LiteRT): int8 (`android`) and fp32 (`raspberry-pi`).

    python export/android.py runs/student_mbv3s_rot6d/last.pt --out runs/export [--precision fp16]
"""
import argparse
from pathlib import Path

from edgepose.exporters.export import export_bundle

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--out", default="runs/export")
    ap.add_argument("--platform", default="android,raspberry-pi", help="comma-separated LiteRT platforms")
    ap.add_argument("--precision", default=None, help="override each platform's precision (fp32/fp16/int8)")
    ap.add_argument("--calibration", default=None, help="int8 calibration images (default: the training pool)")
    args = ap.parse_args()
    for platform in args.platform.split(","):
        print(export_bundle(args.checkpoint, platform, Path(args.out) / platform, precision=args.precision,
                            calibration=args.calibration))
