"""Runtime and stream lifecycle: closed runtimes, camera indices, stream options, threads that always stop."""
import gc
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from edgepose import Runtime
from edgepose.errors import ConfigError, EdgePoseError, InputError, ModelFormatError, PlatformError
from edgepose.video import StreamOptions

from .conftest import REPO, SHARED


def _frames(n=40, size=(120, 160)):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (*size, 3), dtype=np.uint8) for _ in range(n)]


def _threads_back_to(baseline: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gc.collect()
        if threading.active_count() <= baseline:
            return True
        time.sleep(0.05)
    return False


def test_a_closed_runtime_says_it_is_closed():
    rt = Runtime("cpu", threads=1)
    rt.close()
    frame = np.zeros((64, 64, 3), np.uint8)
    for call in (lambda: rt.infer(frame), lambda: rt.infer(frame, boxes=[(0, 0, 32, 32)]),
                 lambda: rt.infer_crops(np.zeros((1, *rt.manifest.input.size, 3), np.uint8)), lambda: rt.stream([frame])):
        with pytest.raises(EdgePoseError, match="closed"):
            call()
    rt.close()  # twice is harmless


def test_a_negative_camera_index_is_an_error_not_a_segfault():
    code = ("from edgepose import Runtime\n"
            "from edgepose.errors import InputError\n"
            "rt = Runtime('cpu', threads=1)\n"
            "try:\n    rt.stream(-1)\nexcept InputError as exc:\n    print('InputError:', exc)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert "InputError: camera index -1 is invalid" in r.stdout


@pytest.mark.parametrize("source", [True, 2.5, b"abc", None])
def test_other_bad_sources_are_input_errors(runtime, source):
    with pytest.raises(InputError):
        runtime.stream(source)


@pytest.mark.parametrize("options, match", [
    (dict(fps=0), "fps"), (dict(fps=-5), "fps"), (dict(fps=float("nan")), "fps"), (dict(queue_size=0), "queue_size"),
    (dict(queue_size=2.5), "queue_size"), (dict(track_iou=1.5), "track_iou"), (dict(max_missed=-1), "max_missed"),
    (dict(drop_policy="newest"), "drop_policy"), (dict(smoothing=0.5), "smoothing"),
])
def test_stream_options_are_validated(options, match):
    with pytest.raises(ConfigError, match=match):
        StreamOptions(**options)


def test_a_stream_dropped_unconsumed_stops_its_threads(runtime):
    baseline = threading.active_count()
    stream = runtime.stream(_frames(), StreamOptions(queue_size=1))
    assert threading.active_count() >= baseline + 3
    del stream
    assert _threads_back_to(baseline)


def test_a_stream_whose_consumer_raises_stops_its_threads(runtime):
    baseline = threading.active_count()

    def consume():
        for _ in runtime.stream(_frames(), StreamOptions(queue_size=1)):
            raise KeyError("consumer failed")

    with pytest.raises(KeyError):
        consume()
    assert _threads_back_to(baseline)


def test_video_out_keeps_the_source_frame_rate(tmp_path):
    src, out = tmp_path / "clip.avi", tmp_path / "annotated.avi"
    writer = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (160, 120))
    for frame in _frames(12):
        writer.write(frame)
    writer.release()
    r = subprocess.run([sys.executable, "-m", "edgepose", "video", str(src), "--out", str(out), "--threads", "1"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0, abs=0.01)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12


# -- detectors and platform files: errors when the Runtime is built, not at its first frame -----------------------

DETECTORS = SHARED / "models" / "detectors"


def test_a_missing_detector_file_is_reported_as_not_found_at_build(tmp_path):
    with pytest.raises(ModelFormatError, match="blazeface.*not found"):
        Runtime("cpu", detector=f"blazeface:{tmp_path / 'blazeface_short_range.tflite'}")


def test_a_tflite_given_to_yunet_is_a_format_error_at_build():
    blazeface = DETECTORS / "blazeface_short_range.tflite"
    if not blazeface.is_file():
        pytest.skip(f"{blazeface} is absent")
    with pytest.raises(ModelFormatError, match="yunet.*LiteRT/TFLite file.*\\.onnx"):
        Runtime("cpu", detector=f"yunet:{blazeface}")


def test_an_onnx_given_to_blazeface_is_a_format_error_at_build():
    with pytest.raises(ModelFormatError, match="blazeface"):
        Runtime("cpu", detector=f"blazeface:{REPO / 'edgepose' / 'bundles' / 'default' / 'model.onnx'}")


def test_an_unknown_detector_name_fails_at_build():
    with pytest.raises(ConfigError, match="unknown detector 'yunett'. Did you mean 'yunet'"):
        Runtime("cpu", detector="yunett")


def test_unknown_backend_options_are_refused_with_a_suggestion(tmp_path):
    yaml_path = tmp_path / "mine.yaml"
    yaml_path.write_text("name: mine\nbackend: onnxruntime\nbackend_options:\n  graph_optimisation: all\n")
    with pytest.raises(PlatformError, match="unknown backend option 'graph_optimisation'.*Did you mean "
                                            "'graph_optimization'"):
        Runtime(str(yaml_path))
    with pytest.raises(PlatformError, match="unknown backend option 'provider'"):
        Runtime("cpu", backend_options={"provider": ["CPUExecutionProvider"]})


def test_negative_threads_are_refused():
    with pytest.raises(ConfigError, match="threads"):
        Runtime("cpu", threads=-2)


def test_a_misspelt_backend_in_a_platform_file_is_a_platform_error(tmp_path, capsys):
    from edgepose.cli import main
    from edgepose.errors import PlatformError

    bad = tmp_path / "typo.yaml"
    bad.write_text((REPO / "platforms" / "cpu.yaml").read_text().replace("backend: onnxruntime", "backend: onnxruntme"))
    with pytest.raises(PlatformError, match="unknown backend 'onnxruntme'"):
        Runtime(str(bad))
    image = tmp_path / "frame.jpg"
    cv2.imwrite(str(image), np.full((64, 64, 3), 128, np.uint8))
    assert main(["infer", str(image), "--platform", str(bad)]) == 2
    assert "unknown backend 'onnxruntme'" in capsys.readouterr().err
