"""TensorRT engine build and run: needs an NVIDIA GPU with TensorRT 10 + pycuda (skips with the reason elsewhere)."""
import numpy as np
import pytest

from edgepose.backends import backend_available

ok, why = backend_available("tensorrt")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not ok, reason=f"TensorRT unavailable on this machine: {why}")]


@pytest.mark.parametrize("precision, tolerance", [("fp16", 0.5), ("int8", None)])
def test_engine_matches_onnx(precision, tolerance, tmp_path, dev_root, pool_root):
    from edgepose import Runtime
    from edgepose.exporters.tensorrt_export import export_tensorrt_bundle
    from edgepose.evaluation.metrics import angle_errors, summarize
    from edgepose.preprocess import crop_face

    import cv2

    export_tensorrt_bundle("default", tmp_path / "e", precision, calibration=str(pool_root), calibration_size=256)
    with Runtime("cpu", threads=1) as cpu, Runtime("jetson", model=str(tmp_path / "e")) as gpu:
        assert gpu.describe()["backend"] == "tensorrt"
        from edgepose.datasets.aflw2000 import read_aflw2000

        samples = read_aflw2000(dev_root)
        crops = np.stack([crop_face(cv2.imread(str(s.image)), s.box, cpu.manifest.crop, cpu.manifest.input) for s in samples])
        truth = np.array([[s.yaw, s.pitch, s.roll] for s in samples])
        a, b = cpu.infer_crops(crops), gpu.infer_crops(crops)
    if tolerance is not None:
        assert angle_errors(a, b).max() <= tolerance
    else:
        assert summarize(b, truth)["mean"] - summarize(a, truth)["mean"] <= 1.0


def test_runtime_jetson_without_engine_names_the_fix(tmp_path):
    from edgepose import ModelFormatError, Runtime

    with pytest.raises(ModelFormatError, match="export/jetson.py"):
        Runtime("jetson", model=str(tmp_path / "none"))
