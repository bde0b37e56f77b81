"""Face detectors on real images: Haar (bundled), YuNet and BlazeFace (model files from ../shared)."""
import cv2
import numpy as np
import pytest

from edgepose.detectors import create_detector, parse_detector
from edgepose.detectors.blazeface import ssd_anchors
from edgepose.errors import ConfigError, ModelFormatError
from edgepose.platform import DetectorConfig
from edgepose.video.tracking import box_iou as iou

from .conftest import SHARED

MODELS = SHARED / "models" / "detectors"
SPECS = {
    "haar": "haar",
    "yunet": f"yunet:{MODELS / 'yunet.onnx'}",
    "blazeface-short": f"blazeface:{MODELS / 'blazeface_short_range.tflite'}",
    "blazeface-full": f"blazeface:{MODELS / 'blazeface_full_range.tflite'}",
}



def detector(name):
    cfg = parse_detector(SPECS[name])
    if cfg.model and not MODELS.is_dir():
        pytest.skip(f"{MODELS} is absent")
    return create_detector(cfg)


def test_every_registered_detector_is_tested_and_names_its_class():
    import importlib.util

    from edgepose.detectors import DETECTORS

    assert {spec.split(":")[0] for spec in SPECS.values()} == set(DETECTORS)  # a new detector needs a SPECS entry
    for entry in DETECTORS.values():
        assert importlib.util.find_spec(entry.module) is not None and entry.cls.endswith("Detector")


@pytest.mark.parametrize("name", SPECS)
def test_detector_finds_the_astronaut(name, astronaut_bgr):
    found = detector(name).detect(astronaut_bgr)
    assert len(found) >= 1
    x1, y1, x2, y2 = found.boxes[0]
    assert 180 < (x1 + x2) / 2 < 280 and 60 < (y1 + y2) / 2 < 180 and 60 < x2 - x1 < 160
    if found.landmarks is not None:
        left_eye, right_eye = found.landmarks[0][0], found.landmarks[0][1]
        assert left_eye[0] < right_eye[0] and x1 <= left_eye[0] <= x2 and y1 <= left_eye[1] <= y2


@pytest.mark.parametrize("name, min_rate", [("yunet", 0.9), ("blazeface-short", 0.9)])
def test_learned_detectors_match_dev_faces(name, min_rate, dev_samples):
    det = detector(name)
    samples = dev_samples[::6]
    hits = sum(max((iou(b, s.box) for b in det.detect(cv2.imread(str(s.image))).boxes), default=0) >= 0.4
               for s in samples)
    assert hits / len(samples) >= min_rate


def test_anchor_counts():
    assert len(ssd_anchors(128)) == 896 and len(ssd_anchors(192)) == 2304
    assert ssd_anchors(128)[0] == pytest.approx([1 / 32, 1 / 32]) and ssd_anchors(128)[1] == pytest.approx([1 / 32, 1 / 32])


def test_blank_frame_has_no_faces():
    for name in ("haar", "blazeface-short"):
        assert len(detector(name).detect(np.zeros((240, 320, 3), np.uint8))) == 0


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelFormatError, match="none.onnx' not found"):
        create_detector(DetectorConfig(type="yunet", model=str(tmp_path / "none.onnx")))
    with pytest.raises(ConfigError, match="needs `detector.model`"):
        create_detector(DetectorConfig(type="yunet"))
    with pytest.raises(ConfigError, match="Did you mean 'yunet'"):
        create_detector(DetectorConfig(type="yunett"))


def test_runtime_with_blazeface_end_to_end(dev_samples):
    from edgepose import Runtime

    if not MODELS.is_dir():
        pytest.skip(f"{MODELS} is absent")
    s = next(s for s in dev_samples if max(abs(s.yaw), abs(s.pitch), abs(s.roll)) < 20)
    with Runtime("cpu", threads=1, detector=SPECS["blazeface-short"]) as rt:
        poses = rt.infer(cv2.imread(str(s.image)))
    best = max(poses, key=lambda p: iou(p.box, s.box))
    assert iou(best.box, s.box) > 0.5
    assert abs(best.yaw - s.yaw) < 15 and abs(best.pitch - s.pitch) < 15 and abs(best.roll - s.roll) < 15


def test_alignment_keeps_roll_on_a_rotated_face(dev_samples):
    """Level the eyes before the model, rotate the pose back: a face turned 40 deg in the image keeps its roll."""
    from edgepose import Runtime

    if not MODELS.is_dir():
        pytest.skip(f"{MODELS} is absent")
    s = next(s for s in dev_samples if max(abs(s.yaw), abs(s.pitch), abs(s.roll)) < 10)
    frame = cv2.imread(str(s.image))
    cx, cy = (s.box[0] + s.box[2]) / 2, (s.box[1] + s.box[3]) / 2
    rotated = cv2.warpAffine(frame, cv2.getRotationMatrix2D((cx, cy), -40, 1.0), frame.shape[1::-1],
                             borderMode=cv2.BORDER_REPLICATE)  # clockwise by 40 deg: roll + 40
    with Runtime("cpu", threads=1, detector=SPECS["blazeface-short"], align=True) as rt:
        pose = max(rt.infer(rotated), key=lambda p: p.box[2] - p.box[0])
    assert abs(pose.roll - (s.roll + 40)) < 8 and abs(pose.yaw - s.yaw) < 8 and abs(pose.pitch - s.pitch) < 8


@pytest.mark.parametrize("min_size, size, windows", [(40, (640, 480), 7), (40, (450, 450), 1), (0, (640, 480), 1),
                                                     (200, (640, 480), 1), (40, (1920, 1080), 63)])
def test_blazeface_tiles_only_where_faces_of_min_size_need_them(min_size, size, windows):
    import dataclasses

    det = detector("blazeface-short")
    det.cfg = dataclasses.replace(det.cfg, min_size=min_size)
    got = det.windows(*size)
    assert len(got) == windows and got[0] == (0, 0, max(size))
    for x, y, side in got[1:]:  # tiles lie inside the frame (or span it) and are at least the model's input size
        assert 0 <= x and 0 <= y and x + side <= max(size[0], side) and y + side <= max(size[1], side) and side >= 128


@pytest.mark.parametrize("spec, words", [
    ("blazeface:edgepose/bundles/default-raspberry-pi/model.tflite", r"expected a BlazeFace model with a \[128, 192\] px square input"),
    ("yunet:edgepose/bundles/default/model.onnx", "does not run as a YuNet face detector"),
])
def test_a_detector_given_another_model_of_its_format_says_so(spec, words):
    from .conftest import REPO

    kind, _, path = spec.partition(":")
    with pytest.raises(ModelFormatError, match=words):  # not a StopIteration or an OpenCV error at the first frame
        create_detector(parse_detector(f"{kind}:{REPO / path}"))
