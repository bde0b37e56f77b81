"""Normalisation folded into an ONNX model (`edgepose manifest fold-input`): the new bundle takes raw uint8 BGR
pixels, gives the float model's poses, and the runtime hands it the crop without a float copy."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose import Runtime
from edgepose.cli import main
from edgepose.manifest import InputSpec
from edgepose.preprocess import to_input
from edgepose.bundle import bundled_dir

from .conftest import need

pytest.importorskip("onnx")


REPO = Path(__file__).resolve().parent.parent
PEER = REPO / "benchmarks" / "peers" / "3ddfa_v2.json"  # a float ONNX model with its own crop, colour and std
MODELS = REPO.parent / "shared" / "models" / "peers"


@pytest.fixture(scope="module")
def folded(tmp_path_factory):
    from edgepose.exporters.fold_input import fold_bundle

    return fold_bundle(PEER, tmp_path_factory.mktemp("folded") / "bundle", need(MODELS))


def _poses(rt, frame, boxes):
    return np.array([(p.yaw, p.pitch, p.roll) for p in rt.infer(frame, boxes=boxes)])


def test_folded_bundle_gives_the_float_models_poses(folded, dev_samples):
    import onnxruntime as ort

    data = json.loads(folded.read_text())
    assert data["input"]["dtype"] == "uint8" and data["input"]["layout"] == "NHWC" and data["input"]["color"] == "BGR"
    assert "fold-input" in data["source"]["input_folded"]
    session = ort.InferenceSession(str(folded.parent / data["model_file"]), providers=["CPUExecutionProvider"])
    assert [i.type for i in session.get_inputs()] == ["tensor(uint8)"]
    with Runtime("cpu", model=str(PEER), models_dir=str(MODELS), threads=1) as plain, \
            Runtime("cpu", model=str(folded), threads=1) as pixels:
        for sample in dev_samples[:12]:
            frame = cv2.imread(str(sample.image))
            np.testing.assert_allclose(_poses(pixels, frame, [sample.box]), _poses(plain, frame, [sample.box]),
                                       atol=1e-3)
        frame = cv2.imread(str(dev_samples[0].image))
        boxes = [s.box for s in dev_samples[:5]]  # a batch of 5: the stacked path
        np.testing.assert_allclose(_poses(pixels, frame, boxes), _poses(plain, frame, boxes), atol=1e-3)


def test_shipped_cpu_bundles_take_pixels(runtime):
    """The cpu bundles are folded: the runtime passes the crop itself to the engine (see test_shipped_accuracy for
    their scores, unchanged by the fold)."""
    assert runtime.manifest.input.dtype == "uint8" and runtime.manifest.source["input_folded"]
    with Runtime("cpu-int8") as rt:
        assert rt.manifest.input.dtype == "uint8"


def test_pixel_input_is_the_crop_itself():
    spec = InputSpec(name="pixels", size=(16, 20), layout="NHWC", color="BGR", mean=(0, 0, 0), std=(1, 1, 1),
                     dtype="uint8")
    crop = np.random.default_rng(0).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    one = to_input([crop], spec)
    assert one.dtype == np.uint8 and one.shape == (1, 16, 20, 3) and np.shares_memory(one, crop)
    nchw_rgb = InputSpec(name="x", size=(16, 20), layout="NCHW", color="RGB", mean=(0, 0, 0), std=(1, 1, 1),
                         dtype="uint8")
    np.testing.assert_array_equal(to_input([crop, crop], nchw_rgb), np.stack([crop, crop])[..., ::-1].transpose(0, 3, 1, 2))
    assert to_input([], spec).shape == (0, 16, 20, 3)


def test_fold_refuses_what_it_cannot_fold(folded, tmp_path, capsys):
    cases = [
        (str(folded), str(tmp_path / "again"), "already folded"),
        (str(bundled_dir("default") / "manifest.json"), str(tmp_path / "shipped"), "already folded"),
        (str(bundled_dir("default-android") / "manifest.json"), str(tmp_path / "tfl"), "single ONNX models"),
        (str(bundled_dir("default") / "manifest.json"), str(folded.parent), "already holds files"),
        (str(bundled_dir("default") / "manifest.json"), "", "needs --out"),
    ]
    for manifest, out, message in cases:
        assert main(["manifest", "fold-input", manifest] + (["--out", out] if out else [])) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "again").exists() and not (tmp_path / "tfl").exists()
