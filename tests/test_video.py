"""Video: the threaded stream on a generated clip of dev images, the tracker, and One-Euro smoothing."""
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest

from edgepose.video.smoothing import OneEuroConfig, OneEuroFilter
from edgepose.video.tracking import IouTracker
from edgepose.video import StreamOptions

from .conftest import SHARED

BLAZEFACE = SHARED / "models" / "detectors" / "blazeface_short_range.tflite"


@pytest.fixture(scope="module")
def clip(tmp_path_factory, dev_root):
    sys.path.insert(0, "benchmarks")
    from video import make_clip

    path = tmp_path_factory.mktemp("video") / "clip.avi"
    labels = make_clip(str(dev_root), path, 60)
    return path, labels


@pytest.fixture(scope="module")
def stream_runtime():
    from edgepose import Runtime

    if not BLAZEFACE.is_file():
        pytest.skip(f"{BLAZEFACE} is absent")
    with Runtime("cpu", threads=1, detector=f"blazeface:{BLAZEFACE}") as rt:
        yield rt


def test_stream_file_in_order_with_tracks(stream_runtime, clip):
    path, labels = clip
    results = list(stream_runtime.stream(str(path)))
    assert [r.index for r in results] == list(range(len(labels)))
    assert np.allclose(np.diff([r.timestamp for r in results]), 1 / 30, atol=1e-3)
    # each dev image is held for 3 frames: the main face keeps its track id within a hold, and a new image
    # whose face box moved gets a new id
    for start in range(0, len(labels), 3):
        ids = [max(r.poses, key=lambda p: p.box[2] - p.box[0]).track_id for r in results[start:start + 3] if r.poses]
        assert len(set(ids)) == 1
    frontal = [(r, s) for r, s in zip(results, labels) if r.poses and abs(s.yaw) < 25]
    errors = [abs(max(r.poses, key=lambda p: p.box[2] - p.box[0]).yaw - s.yaw) for r, s in frontal]
    assert np.median(errors) < 8


def test_stream_matches_single_image_inference(stream_runtime, clip):
    path, _ = clip
    cap = cv2.VideoCapture(str(path))
    frames = [cap.read()[1] for _ in range(9)]
    streamed = list(stream_runtime.stream(frames))
    for frame, result in zip(frames, streamed):
        direct = stream_runtime.infer(frame)
        assert [round(p.yaw, 4) for p in direct] == [round(p.yaw, 4) for p in result.poses]


def test_drop_oldest_bounds_the_queue(stream_runtime, clip):
    path, labels = clip
    frames = [cv2.VideoCapture(str(path)).read()[1]] * 200
    with stream_runtime.stream(frames, StreamOptions(drop_policy="drop_oldest", queue_size=1)) as s:
        results = list(s)
    indices = [r.index for r in results]
    assert indices == sorted(indices) and len(results) + s.dropped == 200


def test_errors_in_a_stage_reach_the_consumer_and_threads_stop(stream_runtime):
    frames = [np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64), np.float32)]
    before = threading.active_count()
    with pytest.raises(Exception, match="dtype"):
        list(stream_runtime.stream(frames))
    assert threading.active_count() <= before


def test_close_early_stops_threads(stream_runtime, clip):
    path, _ = clip
    before = threading.active_count()
    stream = stream_runtime.stream(str(path))
    next(iter(stream))
    stream.close()
    assert threading.active_count() <= before


def test_one_euro_reduces_jitter_with_bounded_lag():
    rng = np.random.default_rng(0)
    t = np.arange(300) / 30.0
    truth = np.where(t < 5, 0.0, 30.0)  # a head turn of 30 deg at t = 5 s
    noisy = truth + rng.normal(0, 2.0, len(t))
    f = OneEuroFilter(OneEuroConfig(min_cutoff=1.0, beta=0.05))
    smooth = np.array([f([v, 0, 0], ti)[0] for v, ti in zip(noisy, t)])
    still = slice(30, 150)
    assert np.std(np.diff(smooth[still])) < 0.5 * np.std(np.diff(noisy[still]))
    after = smooth[150:]
    assert np.argmax(after > 27.0) <= 6  # reaches 90 % of the step within 6 frames (200 ms at 30 fps)


def test_tracker_keeps_ids_and_expires_tracks():
    tr = IouTracker(min_iou=0.3, max_missed=1)
    a = tr.update([(0, 0, 10, 10), (50, 50, 60, 60)])
    b = tr.update([(51, 50, 61, 60), (1, 0, 11, 10)])
    assert [t.id for t in b] == [a[1].id, a[0].id]
    tr.update([])
    tr.update([])
    assert tr.update([(0, 0, 10, 10)])[0].id not in (a[0].id, a[1].id)


def test_video_cli_writes_annotated_clip(clip, tmp_path):
    path, labels = clip
    out = tmp_path / "annotated.mp4"
    r = subprocess.run([sys.executable, "-m", "edgepose", "video", str(path), "--out", str(out), "--smooth",
                        "--detector", f"blazeface:{BLAZEFACE}", "--threads", "1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"{len(labels)} frames out (0 dropped)" in r.stdout
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(labels)
