"""One Runtime shared by 4 threads gives exactly the single-threaded answers, on every platform and detector here."""
import threading

import pytest

from edgepose import Runtime
from edgepose.backends import backend_available
from edgepose.platform import load_platform

from .conftest import SHARED

DETECTORS = SHARED / "models" / "detectors"
SPECS = {"haar": "haar", "blazeface": f"blazeface:{DETECTORS / 'blazeface_short_range.tflite'}",
         "yunet": f"yunet:{DETECTORS / 'yunet.onnx'}"}
PLATFORMS = ("cpu", "cpu-int8", "android", "raspberry-pi")
THREADS = 4


def open_runtime(platform: str, detector: str) -> Runtime:
    usable, why = backend_available(load_platform(platform).backend)
    if not usable:
        pytest.skip(why)
    if detector != "haar" and not DETECTORS.is_dir():
        pytest.skip(f"{DETECTORS} is absent")
    return Runtime(platform, threads=1, detector=SPECS[detector])


def hammer(rt: Runtime, frames, calls: int) -> tuple[int, list[str], int]:
    """(results differing from sequential, exceptions, faces compared) over THREADS threads x `calls` infer()s."""
    def key(poses):
        return [(p.box, p.yaw, p.pitch, p.roll, p.score) for p in poses]

    expected = [key(rt.infer(f)) for f in frames]
    differ, errors, faces = [0] * THREADS, [], [0] * THREADS
    start = threading.Barrier(THREADS)

    def work(tid: int) -> None:
        try:
            start.wait()
            for k in range(calls):
                i = (tid + k) % len(frames)  # threads walk the frames out of step, so they overlap on different frames
                got = key(rt.infer(frames[i]))
                differ[tid] += got != expected[i]
                faces[tid] += len(got)
        except Exception as exc:  # counted, and the thread goes on dying as it would in a user's program
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(differ), errors, sum(faces)


@pytest.fixture(scope="module")
def frames(dev_samples):
    return [s.load() for s in dev_samples[:8]]


FAST = [(p, "blazeface", 50) for p in PLATFORMS] + [("cpu", "yunet", 50), ("android", "haar", 12)]


@pytest.mark.parametrize("platform, detector, calls", FAST)
def test_shared_runtime_matches_sequential(platform, detector, calls, frames):
    with open_runtime(platform, detector) as rt:
        differ, errors, faces = hammer(rt, frames, calls)
    assert errors == [] and differ == 0
    assert faces >= THREADS * calls * 0.9  # the frames hold faces, so the comparison covers real poses


@pytest.mark.slow
@pytest.mark.parametrize("detector", SPECS)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_shared_runtime_matches_sequential_200(platform, detector, frames):
    with open_runtime(platform, detector) as rt:
        differ, errors, _ = hammer(rt, frames, 200)
    assert errors == [] and differ == 0


def test_each_thread_gets_its_own_litert_engine_and_detector(frames):
    with open_runtime("android", "blazeface") as rt:
        mine = (rt.members[0], rt.detector)
        theirs = []
        t = threading.Thread(target=lambda: theirs.append((rt.members[0], rt.detector)))
        t.start()
        t.join()
        assert theirs[0][0] is not mine[0] and theirs[0][1] is not mine[1]
        assert rt.members[0] is mine[0] and rt.detector is mine[1]  # the same thread keeps its own


def test_onnxruntime_session_is_shared(frames):
    with open_runtime("cpu", "haar") as rt:
        theirs = []
        t = threading.Thread(target=lambda: theirs.append(rt.members[0]))
        t.start()
        t.join()
        assert theirs[0] is rt.members[0] is rt.backend
