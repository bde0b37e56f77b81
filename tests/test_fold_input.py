"""Normalisation folded into an ONNX model (`edgepose manifest fold-input`): the new bundle takes raw uint8 BGR
pixels, gives the float model's poses, and the runtime hands it the crop without a float copy."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose import Runtime
from edgepose.cli import main
from edgepose.errors import InputError
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


def test_shipped_folded_bundle_matches_the_float_litert_one(dev_samples):
    """The cpu bundle is folded (uint8 pixels in); raspberry-pi ships the same weights as a float LiteRT model with
    the training normalisation on the host. Same poses, with and without flip TTA (the mirror of uint8 pixels)."""
    with Runtime("cpu", threads=1) as cpu, Runtime("raspberry-pi", threads=1) as pi, \
            Runtime("cpu", threads=1, flip_tta=True) as cpu_tta, \
            Runtime("raspberry-pi", threads=1, flip_tta=True) as pi_tta:
        assert cpu.manifest.input.dtype == "uint8" and cpu.manifest.source["input_folded"]
        assert pi.manifest.input.dtype == "float32" and pi.manifest.input.mean == (127.5,) * 3
        for sample in dev_samples[:8]:
            frame = cv2.imread(str(sample.image))
            np.testing.assert_allclose(_poses(cpu, frame, [sample.box]), _poses(pi, frame, [sample.box]), atol=0.05)
            np.testing.assert_allclose(_poses(cpu_tta, frame, [sample.box]), _poses(pi_tta, frame, [sample.box]),
                                       atol=0.05)
    with Runtime("cpu-int8") as rt:
        assert rt.manifest.input.dtype == "uint8"


def test_fold_refuses_a_name_clash():
    from onnx import TensorProto, helper

    from edgepose.errors import ModelFormatError
    from edgepose.exporters.fold_input import fold_normalisation

    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["pixels_scale"])], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 4, 4])],
                              [helper.make_tensor_value_info("pixels_scale", TensorProto.FLOAT, ["N", 3, 4, 4])])
    with pytest.raises(ModelFormatError, match="already uses the tensor name"):
        fold_normalisation(helper.make_model(graph), InputSpec(name="input", size=(4, 4)))


def test_pixel_input_is_the_crop_itself():
    spec = InputSpec(name="pixels", size=(16, 20), layout="NHWC", color="BGR", mean=(0, 0, 0), std=(1, 1, 1),
                     dtype="uint8")
    crop = np.random.default_rng(0).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    one = to_input([crop], spec)
    assert one.dtype == np.uint8 and one.shape == (1, 16, 20, 3) and np.shares_memory(one, crop)
    nchw_rgb = InputSpec(name="x", size=(16, 20), layout="NCHW", color="RGB", mean=(0, 0, 0), std=(1, 1, 1),
                         dtype="uint8")
    want = np.stack([crop, crop])[..., ::-1].transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(to_input([crop, crop], nchw_rgb), want)
    assert to_input([], spec).shape == (0, 16, 20, 3)
    with pytest.raises(InputError, match="uint8 pixels"):
        to_input(crop[None].astype(np.float32) + 0.7, spec)
    with pytest.raises(InputError, match=r"\(N, H, W, 3\)"):
        to_input(crop, spec)  # one crop without its batch axis


def test_fold_refuses_what_it_cannot_fold(folded, tmp_path, capsys):
    cases = [
        (str(folded), str(tmp_path / "again"), "already folded"),
        (str(bundled_dir("default") / "manifest.json"), str(tmp_path / "shipped"), "already folded"),
        (str(bundled_dir("default-android") / "manifest.json"), str(tmp_path / "tfl"), "single ONNX models"),
        (str(bundled_dir("default") / "manifest.json"), str(folded.parent), "not an empty folder"),
        (str(bundled_dir("default") / "manifest.json"), str(folded), "not an empty folder"),  # a file
        (str(bundled_dir("default") / "manifest.json"), "", "needs --out"),
    ]
    for manifest, out, message in cases:
        assert main(["manifest", "fold-input", manifest] + (["--out", out] if out else [])) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "again").exists() and not (tmp_path / "tfl").exists()


def test_static_int8_graph_takes_the_pixels_as_its_quantized_input(tmp_path, dev_samples):
    """Folding a static-int8 (QDQ) bundle: no float op touches the pixels (they ARE the first convolution's quantized
    input, scale 1/std and zero point round(mean), colour order and the half-step offset folded into that
    convolution), and the poses stay within a fraction of a degree of the float-input int8 model."""
    import shutil

    import onnx

    from edgepose.exporters.calibration import calibration_inputs
    from edgepose.exporters.fold_input import fold_bundle
    from edgepose.exporters.onnx_export import onnx_to_int8
    from edgepose.manifest import load_manifest, sha256_file

    from .conftest import POOL

    bundle = tmp_path / "int8"
    bundle.mkdir()
    manifest = load_manifest(PEER)
    calib = calibration_inputs(need(POOL), manifest.input, 32, manifest.crop)
    onnx_to_int8(need(MODELS) / manifest.model_file, bundle / "model.onnx", calib, manifest.input.name)
    data = json.loads(PEER.read_text())
    data.update(model_file="model.onnx", sha256=sha256_file(bundle / "model.onnx"), precision="int8")
    (bundle / "manifest.json").write_text(json.dumps(data))
    folded = fold_bundle(bundle / "manifest.json", tmp_path / "folded")
    graph = onnx.load(str(folded.parent / "model.onnx")).graph
    first = [n.op_type for n in graph.node if "pixels" in n.input]
    assert first == ["Transpose"] and not any(n.op_type in ("Cast", "Sub", "Mul", "Gather") for n in graph.node[:3])
    assert "quantized input" in json.loads(folded.read_text())["source"]["input_folded"]
    with Runtime("cpu", model=str(bundle), threads=1) as plain, Runtime("cpu", model=str(folded), threads=1) as pixels:
        gaps = [np.abs(_poses(pixels, cv2.imread(str(s.image)), [s.box]) - _poses(plain, cv2.imread(str(s.image)),
                                                                                  [s.box])).max()
                for s in dev_samples[:10]]
    assert np.median(gaps) < 0.5 and max(gaps) < 3.0, gaps
    shutil.rmtree(bundle)
