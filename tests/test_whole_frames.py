"""Whole frames with the default detector once fetched (BlazeFace): dev faces, small / large / several faces composed
from the training pool, a 10,000 px frame, and a profile posed."""
import cv2
import numpy as np
import pytest

from edgepose import Runtime
from edgepose.evaluation.evaluate import evaluate
from edgepose.evaluation.scenes import SceneMaker
from edgepose.video.tracking import box_iou

from .conftest import DEV


def found(poses, truth, min_iou=0.4) -> int:
    return sum(max((box_iou(p.box, t) for p in poses), default=0) >= min_iou for t in truth)


@pytest.fixture(scope="module")
def maker(pool_root):
    return SceneMaker(pool_root, seed=3)


@pytest.fixture()
def rt(fetched_home):
    with Runtime("cpu", threads=1) as runtime:
        assert runtime.describe()["detector"] == "blazeface"
        yield runtime


@pytest.mark.parametrize("size, rate", [(40, 0.5), (60, 0.9), (100, 0.9), (200, 1.0), (400, 1.0)])
def test_faces_from_40_to_400_px_in_640x480(rt, maker, size, rate):
    # measured over 45 faces per size (benchmarks/detection.py --scenes): 40 px 75-90 %, 60 px 98 %, 80+ px 100 %
    scenes = [maker.scene(640, 480, [size] * (1 if size >= 300 else 3)) for _ in range(4)]
    hits, total = sum(found(rt.infer(s.frame), s.boxes) for s in scenes), sum(len(s.boxes) for s in scenes)
    assert hits >= rate * total, f"{hits} of {total} faces of {size} px"


def test_two_to_five_people_are_found_whole(rt, maker):
    for n in (2, 3, 4, 5):
        scene = maker.scene(640, 480, [110, 150, 90, 130, 100][:n])
        poses = rt.infer(scene.frame)
        assert found(poses, scene.boxes) == len(scene.boxes)
        assert len(poses) <= len(scene.boxes) + 1  # at most one spurious face


@pytest.mark.slow
def test_a_10000_px_frame_keeps_its_faces(rt, maker):
    scene = maker.scene(10000, 7500, [500, 900, 1600])
    assert rt.detector.windows(2048, 1536)  # the frame is downscaled to 2048 px and tiled, not shrunk to 128 px
    assert found(rt.infer(scene.frame), scene.boxes) == len(scene.boxes)


def test_a_profile_face_is_found_and_posed(fetched_home, pool_root):
    profiles = SceneMaker(pool_root, seed=5, min_abs_yaw=70)
    with Runtime("android", threads=1) as runtime:
        for _ in range(3):
            scene = profiles.scene(640, 480, [160, 120])
            poses = runtime.infer(scene.frame)
            assert found(poses, scene.boxes) == len(scene.boxes)
            for box, yaw in zip(scene.boxes, scene.yaw):
                pose = max(poses, key=lambda p: box_iou(p.box, box))
                assert np.sign(pose.yaw) == np.sign(yaw) and abs(pose.yaw) > 35, (pose.yaw, yaw)


@pytest.mark.slow
@pytest.mark.parametrize("platform", ["cpu", "android"])
def test_default_detector_finds_297_of_300_dev_faces(fetched_home, dev_root, platform):
    with Runtime(platform) as runtime:
        summary, _, truth = evaluate(runtime, "aflw2000", str(DEV), progress=False, protocol="detector")
    assert summary["images"] - summary["missed"] >= 297
    assert (np.abs(truth[:, 0]) >= 60).sum() >= 40  # found among the 42 faces at |yaw| 60-99


def test_whole_frame_benchmark_reports_every_stage(rt, pool_root):
    from edgepose.evaluation.bench_frames import FACE_COUNTS, boxed_ratio, frame_latency, stream_throughput

    rows = frame_latency(rt, pool_root, runs=2)
    assert sorted({r["faces"] for r in rows}) == list(FACE_COUNTS)
    assert all(r["found"] >= r["faces"] - 2 and r["p50_ms"] > 0 for r in rows)
    assert {r["stage"] for r in rows} >= {"detect", "pose model", "end to end: infer(frame)"}
    ratio = boxed_ratio(rt, pool_root, runs=3)
    assert ratio["ratio"] == pytest.approx(ratio["whole_450_p50_ms"] / ratio["boxed_p50_ms"])
    assert stream_throughput(rt, pool_root, frames=5)["frames"] == 5


def test_demo_frame_shows_a_turned_face_found_and_posed(fetched_home, capsys, tmp_path):
    from edgepose.cli import main

    assert main(["demo", "--out", str(tmp_path / "demo.png"), "--json", "--threads", "1"]) == 0
    import json

    poses = json.loads(capsys.readouterr().out)
    assert len(poses) == 2
    frontal, turned = sorted(poses, key=lambda p: p["box"][0])
    assert abs(frontal["yaw"]) < 15 and turned["yaw"] < -35  # the cameraman faces the image right
