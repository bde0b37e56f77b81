"""Build a TensorRT engine bundle ON the Jetson / GPU (engines are not portable). Needs TensorRT 10 + pycuda, not torch.

    python export/jetson.py edgepose/bundles/default --precision fp16    # -> the `jetson` platform's model folder
    python export/jetson.py edgepose/bundles/default --precision int8 --calibration FACES_DIR   # -> `jetson-int8`'s
    edgepose export runs/qat_mbv3/last.pt --platform cpu-int8 --precision int8 --out QDQ_DIR   # (on the host)
    python export/jetson.py QDQ_DIR --precision int8 --out ...   # explicit Q/DQ

Add --dev-root AFLW2000_DIR to measure the engine's accuracy into its manifest.
"""
import argparse
import sys

from edgepose.errors import EdgePoseError
from edgepose.exporters.tensorrt_export import export_tensorrt_bundle
from edgepose.platform import load_platform

PLATFORMS = {"fp16": "jetson", "int8": "jetson-int8"}  # the platform whose model an engine of this precision is

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", help="an ONNX bundle folder (or manifest JSON)")
    ap.add_argument("--precision", default="fp16", choices=["fp16", "int8"])
    ap.add_argument("--out", default=None, help="bundle folder to write (default: the model folder of the platform "
                    "of this precision, jetson or jetson-int8: $EDGEPOSE_HOME/bundles/jetson-<precision>)")
    ap.add_argument("--calibration", default=None)
    ap.add_argument("--calibration-size", type=int, default=512)
    ap.add_argument("--dev-root", default=None)
    args = ap.parse_args()
    try:
        out = args.out or load_platform(PLATFORMS[args.precision]).model
        print(export_tensorrt_bundle(args.bundle, out, args.precision, args.calibration, args.calibration_size,
                                     args.dev_root))
    except EdgePoseError as exc:
        sys.exit(f"export/jetson.py: {exc}")
