"""Runtime("cpu") on real images: results, given boxes, detection, and every kind of bad input."""
import cv2
import numpy as np
import pytest

from edgepose import FacePose, InputError, PlatformError, Runtime


def test_describe_reports_what_runs(runtime):
    d = runtime.describe()
    assert d["backend"] == "onnxruntime" and d["precision"] == "fp32"
    assert d["providers"] == ["CPUExecutionProvider"]


def test_boxes_give_one_pose_each_near_the_labels(runtime, dev_samples):
    frontal = [s for s in dev_samples if max(abs(s.yaw), abs(s.pitch), abs(s.roll)) < 25][:12]
    errors = []
    for s in frontal:
        frame = cv2.imread(str(s.image))
        poses = runtime.infer(frame, boxes=[s.box, s.box])
        assert len(poses) == 2 and all(isinstance(p, FacePose) for p in poses)
        assert poses[0].yaw == pytest.approx(poses[1].yaw, abs=1e-4)
        assert poses[0].box == pytest.approx(s.box)
        errors.append(np.abs([poses[0].yaw - s.yaw, poses[0].pitch - s.pitch, poses[0].roll - s.roll]))
    errors = np.array(errors)
    assert errors.max() < 15.0, errors
    assert errors.mean() < 6.0


def test_flipped_face_mirrors_the_pose(runtime, dev_samples):
    s = next(s for s in dev_samples if 20 < abs(s.yaw) < 45)
    frame = cv2.imread(str(s.image))
    x1, y1, x2, y2 = s.box
    w = frame.shape[1]
    a = runtime.infer(frame, boxes=[s.box])[0]
    b = runtime.infer(np.ascontiguousarray(frame[:, ::-1]), boxes=[(w - x2, y1, w - x1, y2)])[0]
    assert np.sign(a.yaw) == -np.sign(b.yaw)
    assert abs(a.yaw + b.yaw) < 6 and abs(a.pitch - b.pitch) < 6


def test_detector_finds_the_astronaut(runtime, astronaut_bgr):
    poses = runtime.infer(astronaut_bgr)
    assert len(poses) >= 1
    best = max(poses, key=lambda p: (p.box[2] - p.box[0]))
    # the public-domain NASA portrait: face in the upper middle, turned slightly to the image right
    assert 150 < (best.box[0] + best.box[2]) / 2 < 300 and 40 < (best.box[1] + best.box[3]) / 2 < 200
    assert abs(best.yaw) < 40 and abs(best.pitch) < 30 and abs(best.roll) < 30


def test_no_face_gives_empty_list(runtime):
    assert runtime.infer(np.full((240, 320, 3), 127, np.uint8)) == []


def test_infer_crops_matches_infer(runtime, dev_samples):
    from edgepose.preprocess import crop_face

    s = dev_samples[0]
    frame = cv2.imread(str(s.image))
    crop = crop_face(frame, s.box, runtime.manifest.crop, runtime.manifest.input)
    a = runtime.infer_crops(crop[None])[0]
    b = runtime.infer(frame, boxes=[s.box])[0]
    np.testing.assert_allclose(a, [b.yaw, b.pitch, b.roll], atol=1e-4)


@pytest.mark.parametrize("frame, message", [
    (np.zeros((64, 64, 3), np.float32), "uint8"),
    (np.zeros((64, 64), np.uint8), "COLOR_GRAY2BGR"),
    (np.zeros((64, 64, 4), np.uint8), "H x W x 3"),
    (np.zeros((0, 64, 3), np.uint8), "empty"),
    ([[0, 0, 0]], "numpy array"),
])
def test_bad_frames_are_clear_errors(runtime, frame, message):
    with pytest.raises(InputError, match=message):
        runtime.infer(frame)


@pytest.mark.parametrize("box, message", [
    ((500, 500, 600, 600), "outside"),
    ((50, 50, 40, 60), "inverted"),
    ((1, 2, 3), "4 numbers"),
    ((0, 0, float("nan"), 10), "non-finite"),
    ((-1000, -1000, 0.01, 0.01), "less than one pixel"),  # clipped to a sliver: no face to pose
    ((99.999, 0, 900, 100), "less than one pixel"),
    (("1", "2", "30", "40"), "4 numbers"),
])
def test_bad_boxes_are_clear_errors(runtime, box, message):
    with pytest.raises(InputError, match=message):
        runtime.infer(np.zeros((100, 100, 3), np.uint8), boxes=[box])


def test_box_past_the_edge_is_clipped(runtime, dev_samples):
    s = dev_samples[0]
    frame = cv2.imread(str(s.image))
    x1, y1, x2, y2 = s.box
    pose = runtime.infer(frame, boxes=[(x1 - 1000, y1, x2, y2)])[0]
    assert pose.box[0] == 0.0 and pose.box[2] == pytest.approx(x2)


def test_unknown_platform():
    with pytest.raises(PlatformError, match="Known platforms"):
        Runtime("tpu")


def test_non_contiguous_tiny_and_huge_frames(runtime, dev_samples):
    s = dev_samples[0]
    frame = cv2.imread(str(s.image))
    wide = np.zeros((frame.shape[0], frame.shape[1] * 2, 3), np.uint8)
    wide[:, ::2] = frame
    view = wide[:, ::2]  # a non-contiguous view holding the same pixels
    assert not view.flags["C_CONTIGUOUS"]
    a, b = runtime.infer(view, boxes=[s.box])[0], runtime.infer(frame, boxes=[s.box])[0]
    assert a.yaw == pytest.approx(b.yaw, abs=1e-4)
    tiny = np.full((8, 12, 3), 90, np.uint8)
    assert runtime.infer(tiny) == []
    pose = runtime.infer(tiny, boxes=[(2, 2, 9, 7)])[0]
    assert np.isfinite([pose.yaw, pose.pitch, pose.roll]).all()
    huge = np.zeros((4320, 7680, 3), np.uint8)
    huge[1000:1450, 3000:3450] = frame
    x1, y1, x2, y2 = s.box
    big = runtime.infer(huge, boxes=[(x1 + 3000, y1 + 1000, x2 + 3000, y2 + 1000)])[0]
    assert big.yaw == pytest.approx(b.yaw, abs=1.0)
    assert isinstance(runtime.infer(huge), list)


def test_flip_tta_is_exactly_mirror_consistent(dev_samples):
    """With flip TTA a mirrored face gets exactly the mirrored pose (yaw, roll negated); without it only roughly."""
    s = next(s for s in dev_samples if 20 < abs(s.yaw) < 45)
    frame = cv2.imread(str(s.image))
    x1, y1, x2, y2 = s.box
    w = frame.shape[1]
    mirrored, box = np.ascontiguousarray(frame[:, ::-1]), (w - x2, y1, w - x1, y2)
    with Runtime("cpu", flip_tta=True, threads=1) as rt:
        assert rt.describe()["flip_tta"] is True
        a, b = rt.infer(frame, boxes=[s.box])[0], rt.infer(mirrored, boxes=[box])[0]
        plain = Runtime("cpu", threads=1)
        p = plain.infer(frame, boxes=[s.box])[0]
        plain.close()
    assert (a.yaw, a.pitch, a.roll) == pytest.approx((-b.yaw, b.pitch, -b.roll), abs=0.05)
    assert np.allclose(a.rotation @ a.rotation.T, np.eye(3), atol=1e-9) and np.linalg.det(a.rotation) == pytest.approx(1)
    assert abs(a.yaw - p.yaw) < 8 and (a.yaw, a.pitch, a.roll) != pytest.approx((p.yaw, p.pitch, p.roll), abs=1e-3)


@pytest.mark.parametrize("boxes, message", [
    (5, "list of"), ("abc", "list of"), ((10, 10, 50, 50), "pass \\[box\\]"), ([[], [0.0]], "4 numbers"),
])
def test_boxes_that_are_not_a_list_of_boxes_are_clear_errors(runtime, boxes, message):
    with pytest.raises(InputError, match=message):
        runtime.infer(np.zeros((100, 100, 3), np.uint8), boxes=boxes)


def test_crops_and_batches_of_the_wrong_size_or_dtype_are_clear_errors_and_an_empty_batch_is_empty(runtime):
    size = runtime.manifest.input.size
    with pytest.raises(InputError, match=f"this model takes {size[0]}x{size[1]}"):
        runtime.infer_crops(np.zeros((2, size[0] + 8, size[1], 3), np.uint8))
    good = runtime.manifest.input.dummy(2)
    with pytest.raises(InputError, match="model input batch"):
        runtime.predict(good.astype(np.float64))
    with pytest.raises(InputError, match="model input batch"):
        runtime.predict(good[:, :-1])
    assert runtime.infer_crops(np.zeros((0, *size, 3), np.uint8)).shape == (0, 3)
    assert len(runtime.predict(good)[0]) == 2 and runtime.predict(good[:0])[1].shape == (0, 3, 3)


@pytest.mark.parametrize("options, message", [
    ({"flip_tta": "no"}, "flip_tta must be True or False"), ({"align": 1}, "align must be True or False"),
    ({"models_dir": 123}, "models_dir must be a folder path"),
    ({"detector": {"type": "haar", "max_faces": -1}}, "max_faces"),
    ({"detector": {"type": "haar", "score_threshold": 2}}, "score_threshold"),
    ({"detector": {"type": "haar", "scale_factor": 1.0}}, "scale_factor"),
    ({"detector": {"type": "haar", "box_map": [0, 0, 1]}}, "box_map"),
    ({"detector": "haar", "align": True}, "gives no eye landmarks"),
    ({"detector": {"type": "haar", "detect_width": 3}}, "detect_width 3 leaves no face"),
    ({"threads": 100000}, "threads must be a whole number 0..256"),
    ({"backend_options": {"providers": "CPUExecutionProvider"}}, "providers must be a list"),
])
def test_bad_runtime_options_are_refused_when_it_is_built(options, message):
    from edgepose.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        Runtime("cpu", **options)


def test_a_detector_config_built_in_python_is_range_checked_too():
    from edgepose.errors import ConfigError
    from edgepose.platform import DetectorConfig

    with pytest.raises(ConfigError, match="'detector.max_faces' = -1"):
        Runtime("cpu", detector=DetectorConfig(max_faces=-1))


def test_face_poses_compare_and_hash_by_value(runtime, dev_samples):
    s = dev_samples[0]
    frame = cv2.imread(str(s.image))
    a, b = runtime.infer(frame, boxes=[s.box])[0], runtime.infer(frame, boxes=[s.box])[0]
    assert a == b and len({a, b}) == 1


def _fixed_batch_bundle(folder, batch: int):
    """A real ONNX model of fixed batch `batch` whose yaw is its crop's mean value (so each face is recognisable)."""
    import hashlib
    import json

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=0),
             helper.make_node("Unsqueeze", ["m", "one"], ["m1"]),
             helper.make_node("Mul", ["m1", "yaw_only"], ["pose"])]
    graph = helper.make_graph(nodes, "fixed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 32, 32])],
                              [helper.make_tensor_value_info("pose", TensorProto.FLOAT, [batch, 3])],
                              [numpy_helper.from_array(np.array([1, 2, 3], np.int64), "axes"),
                               numpy_helper.from_array(np.array([1], np.int64), "one"),
                               numpy_helper.from_array(np.array([[1, 0, 0]], np.float32), "yaw_only")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    folder.mkdir()
    onnx.save(model, folder / "model.onnx")
    manifest = {"model_file": "model.onnx", "format": "onnx", "precision": "fp32",
                "sha256": hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest(),
                "input": {"name": "x", "size": [32, 32], "layout": "NCHW", "color": "BGR", "mean": [0, 0, 0],
                          "std": [1, 1, 1], "batch": batch, "dtype": "float32"},
                "crop": {"protocol": "square", "scale": 1.5}, "output": {"type": "euler_degrees", "name": "pose"}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize("faces", [1, 3, 4, 6])
def test_a_fixed_batch_model_takes_any_number_of_faces_in_order(tmp_path, faces):
    pytest.importorskip("onnx")
    with Runtime("cpu", model=str(_fixed_batch_bundle(tmp_path / "b", 4)), threads=1) as rt:
        crops = np.stack([np.full((32, 32, 3), 10 * (i + 1), np.uint8) for i in range(faces)])
        np.testing.assert_allclose(rt.infer_crops(crops)[:, 0], 10 * np.arange(1, faces + 1), atol=1e-4)
