"""Build a TensorRT engine bundle ON the Jetson / GPU (engines are not portable). Needs TensorRT 10 + pycuda, not torch.

    python export/jetson.py edgepose/bundles/default --precision fp16 --out ~/.cache/edgepose/bundles/jetson-fp16
    python export/jetson.py edgepose/bundles/default --precision int8 --calibration FACES_DIR \\
        --out ~/.cache/edgepose/bundles/jetson-int8
    edgepose export runs/qat_mbv3/last.pt --platform cpu-int8 --precision int8 --out QDQ_DIR   # (on the host)
    python export/jetson.py QDQ_DIR --precision int8 --out ...   # explicit Q/DQ

Add --dev-root AFLW2000_DIR to measure the engine's accuracy into its manifest.
"""
import argparse
import sys

from edgepose.errors import EdgePoseError
from edgepose.exporters.tensorrt_export import export_tensorrt_bundle

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", help="an ONNX bundle folder (or manifest JSON)")
    ap.add_argument("--precision", default="fp16", choices=["fp16", "int8"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--calibration", default=None)
    ap.add_argument("--calibration-size", type=int, default=512)
    ap.add_argument("--dev-root", default=None)
    args = ap.parse_args()
    try:
        print(export_tensorrt_bundle(args.bundle, args.out, args.precision, args.calibration, args.calibration_size,
                                     args.dev_root))
    except EdgePoseError as exc:
        sys.exit(f"export/jetson.py: {exc}")
