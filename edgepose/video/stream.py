"""Video: a threaded capture -> detect -> pose pipeline with bounded queues, frame-ordered results, tracking, smoothing.

Each stage runs in its own thread (OpenCV decoding and ONNX Runtime / LiteRT release the GIL), so on 2 cores the
stages overlap. Results come out in frame order. For live sources (cameras) `drop_policy="drop_oldest"` keeps latency
bounded by discarding the oldest queued frame when the pipeline falls behind; `"block"` (the default for files and
iterables) never drops. An exception in any stage stops the pipeline and is re-raised to the consumer.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import queue
import threading
import weakref
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from ..crop import validate_frame
from ..errors import ConfigError, InputError
from ..pose import FacePose
from .smoothing import OneEuroConfig
from .tracking import IouTracker
from ..typed import above, at_least, between, check_ranges

DROP_POLICIES = ("block", "drop_oldest")
_END = object()


@dataclass(frozen=True)
class StreamOptions:
    """queue_size: frames each stage may hold. drop_policy: 'block' or 'drop_oldest' (None = drop_oldest for
    cameras, block otherwise). smoothing: One-Euro settings, or None for raw per-frame angles (default).
    track_iou / max_missed: IoU tracker settings. fps: timestamps for iterables (files and cameras report their own;
    this is their fallback when they report none).

    Raises:
        ConfigError: a value out of range (queue_size >= 1, fps > 0, 0 <= track_iou <= 1, max_missed >= 0) or an
            unknown drop_policy.
    """

    queue_size: int = field(default=4, metadata=between(1, 1 << 20, whole=True))
    drop_policy: str | None = None
    smoothing: OneEuroConfig | None = None
    track_iou: float = field(default=0.3, metadata=between(0.0, 1.0))
    max_missed: int = field(default=5, metadata=at_least(0, whole=True))
    fps: float = field(default=30.0, metadata=above(0.0))

    def __post_init__(self) -> None:
        check_ranges(self, "StreamOptions", ConfigError)
        if self.drop_policy not in (None, *DROP_POLICIES):
            raise ConfigError(f"StreamOptions.drop_policy '{self.drop_policy}' must be one of {DROP_POLICIES} or None")
        if self.smoothing is not None and not isinstance(self.smoothing, OneEuroConfig):
            raise ConfigError(f"StreamOptions.smoothing must be a OneEuroConfig or None, got {self.smoothing!r}")


@dataclass(frozen=True)
class FrameResult:
    """Poses of one frame. index: position in the source (gaps mean dropped frames); timestamp in seconds."""

    index: int
    timestamp: float
    poses: list[FacePose]
    frame: np.ndarray | None = None


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


def camera_index(source) -> int | None:
    """`source` as a camera index when it is one (checked: OpenCV crashes on some bad indices), else None.

    Raises:
        InputError: a negative index, or a bool.
    """
    if isinstance(source, bool):
        raise InputError(f"video source {source!r} is a bool; pass a camera index (0, 1, ...), a file path or frames")
    if not isinstance(source, numbers.Integral):
        return None
    if not 0 <= int(source) < 10_000:
        raise InputError(f"camera index {source} is invalid; cameras are numbered 0, 1, ... (0 is the first camera)")
    return int(source)


def _frames(source, fps: float) -> tuple[Iterator[tuple[float, np.ndarray]], bool, callable, float]:
    """(iterator of (timestamp, frame), is_live, release, frame rate) for a path, a camera index or frames."""
    import cv2

    camera = camera_index(source)
    if camera is not None or isinstance(source, str) or hasattr(source, "__fspath__"):
        cap = cv2.VideoCapture(camera if camera is not None else str(source))
        if not cap.isOpened():
            raise InputError(f"cannot open video source {source!r} (a file path, a camera index, or an iterable of frames)")
        reported = cap.get(cv2.CAP_PROP_FPS)
        rate = reported if math.isfinite(reported) and 0 < reported < 10_000 else fps

        def read():
            i = 0
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                yield i / rate, frame
                i += 1

        return read(), camera is not None, cap.release, rate
    if isinstance(source, Iterable) and not isinstance(source, (bytes, dict)):
        return ((i / fps, f) for i, f in enumerate(source)), False, lambda: None, fps
    raise InputError(f"unsupported video source {type(source).__name__}; pass a path, a camera index or frames")


class _Pipeline:
    """The three stage threads and their queues. Kept apart from PoseStream so that the threads do not keep the
    stream alive: a stream dropped without being closed is collected, and its finalizer stops them."""

    def __init__(self, runtime, frames, release, drop_policy: str, queue_size: int):
        self.runtime, self._frames, self._release, self.drop_policy = runtime, frames, release, drop_policy
        self.dropped = 0
        self._stop = threading.Event()
        self._captured: queue.Queue = queue.Queue(queue_size)
        self._detected: queue.Queue = queue.Queue(queue_size)
        self.results: queue.Queue = queue.Queue(queue_size)
        self._threads = [threading.Thread(target=self._guard, args=(fn,), daemon=True, name=f"edgepose-{fn.__name__}")
                         for fn in (self._capture, self._detect, self._pose)]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        """Ask every stage to end (they poll every 50 ms); does not wait."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=2.0)
        self._release()

    def _put(self, q: queue.Queue, item, droppable: bool = False) -> None:
        while not self._stop.is_set():
            if droppable and self.drop_policy == "drop_oldest" and q.full():
                try:
                    q.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass
            try:
                q.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def get(self, q: queue.Queue | None = None):
        q = self.results if q is None else q
        while not self._stop.is_set():
            try:
                return q.get(timeout=0.05)
            except queue.Empty:
                continue
        return _END

    def _guard(self, stage) -> None:
        try:
            stage()
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(self.results, _Failure(exc))

    def _capture(self) -> None:
        try:
            for index, (timestamp, frame) in enumerate(self._frames):
                if self._stop.is_set():
                    break
                self._put(self._captured, (index, timestamp, frame), droppable=True)
            self._put(self._captured, _END)
        finally:
            if self._stop.is_set():  # stopped (closed, or the stream was dropped): the capture is ours to release
                self._release()

    def _detect(self) -> None:
        while (item := self.get(self._captured)) is not _END:
            index, timestamp, frame = item
            found = self.runtime.detector.detect(validate_frame(frame))
            self._put(self._detected, (index, timestamp, frame, found))
        self._put(self._detected, _END)

    def _pose(self) -> None:
        while (item := self.get(self._detected)) is not _END:
            index, timestamp, frame, found = item
            poses = self.runtime.infer(frame, boxes=list(found.boxes)) if len(found) else []
            poses = [dataclasses.replace(p, score=float(s)) for p, s in zip(poses, found.scores)]
            self._put(self.results, (index, timestamp, frame, poses))
        self._put(self.results, _END)


class PoseStream:
    """Iterate over FrameResults; close() (or leaving a `with` block) stops every thread. A stream dropped without
    closing, or whose consumer raised out of the loop, stops its threads when it is garbage collected.

    Attributes:
        fps: the source's frame rate (what a file or camera reports; StreamOptions.fps for iterables).
        dropped: frames discarded by the drop_oldest policy so far.
    """

    def __init__(self, runtime, source, options: StreamOptions = StreamOptions(), keep_frames: bool = False):
        if not isinstance(options, StreamOptions):
            raise ConfigError(f"stream options must be a StreamOptions, got {type(options).__name__}")
        self.runtime, self.options, self.keep_frames = runtime, options, keep_frames
        frames, live, release, self.fps = _frames(source, options.fps)
        self.drop_policy = options.drop_policy or ("drop_oldest" if live else "block")
        self._tracker = IouTracker(options.track_iou, options.max_missed, options.smoothing)
        self._pipeline = _Pipeline(runtime, frames, release, self.drop_policy, options.queue_size)
        weakref.finalize(self, self._pipeline.stop)

    @property
    def dropped(self) -> int:
        return self._pipeline.dropped

    def __iter__(self) -> Iterator[FrameResult]:
        try:
            while (item := self._pipeline.get()) is not _END:
                if isinstance(item, _Failure):
                    raise item.exc
                index, timestamp, frame, poses = item
                yield FrameResult(index, timestamp, self._track(poses, timestamp), frame if self.keep_frames else None)
        finally:
            self.close()
    def _track(self, poses: list[FacePose], timestamp: float) -> list[FacePose]:
        tracks = self._tracker.update([p.box for p in poses])
        out = []
        for pose, track in zip(poses, tracks):
            angles = (pose.yaw, pose.pitch, pose.roll)
            if track.smoother is not None:
                angles = track.smoother(angles, timestamp)
            out.append(dataclasses.replace(pose, yaw=float(angles[0]), pitch=float(angles[1]), roll=float(angles[2]),
                                           track_id=track.id))
        return out

    def close(self) -> None:
        self._pipeline.close()

    def __enter__(self) -> "PoseStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
