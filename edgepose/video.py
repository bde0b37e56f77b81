"""Video: a threaded capture -> detect -> pose pipeline with bounded queues, frame-ordered results, tracking, smoothing.

Each stage runs in its own thread (OpenCV decoding and ONNX Runtime / LiteRT release the GIL), so on 2 cores the
stages overlap. Results come out in frame order. For live sources (cameras) `drop_policy="drop_oldest"` keeps latency
bounded by discarding the oldest queued frame when the pipeline falls behind; `"block"` (the default for files and
iterables) never drops. An exception in any stage stops the pipeline and is re-raised to the consumer.
"""
from __future__ import annotations

import dataclasses
import queue
import threading

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from .crop import validate_frame
from .errors import ConfigError, InputError
from .pose import FacePose
from .smoothing import OneEuroConfig
from .tracking import IouTracker

DROP_POLICIES = ("block", "drop_oldest")
_END = object()


@dataclass(frozen=True)
class StreamOptions:
    """queue_size: frames each stage may hold. drop_policy: 'block' or 'drop_oldest' (None = drop_oldest for
    cameras, block otherwise). smoothing: One-Euro settings, or None for raw per-frame angles (default).
    track_iou / max_missed: IoU tracker settings. fps: timestamps for iterables (files and cameras report their own)."""

    queue_size: int = 4
    drop_policy: str | None = None
    smoothing: OneEuroConfig | None = None
    track_iou: float = 0.3
    max_missed: int = 5
    fps: float = 30.0


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


def _frames(source, fps: float) -> tuple[Iterator[tuple[float, np.ndarray]], bool, callable]:
    """(iterator of (timestamp, frame), is_live, release) for a path, a camera index or an iterable of frames."""
    import cv2

    if isinstance(source, (str, int)) or hasattr(source, "__fspath__"):
        cap = cv2.VideoCapture(source if isinstance(source, int) else str(source))
        if not cap.isOpened():
            raise InputError(f"cannot open video source {source!r} (a file path, a camera index, or an iterable of frames)")
        rate = cap.get(cv2.CAP_PROP_FPS) or fps

        def read():
            i = 0
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                yield i / rate, frame
                i += 1

        return read(), isinstance(source, int), cap.release
    if isinstance(source, Iterable):
        return ((i / fps, f) for i, f in enumerate(source)), False, lambda: None
    raise InputError(f"unsupported video source {type(source).__name__}; pass a path, a camera index or frames")


class PoseStream:
    """Iterate over FrameResults; close() (or leaving a `with` block) stops every thread."""

    def __init__(self, runtime, source, options: StreamOptions = StreamOptions(), keep_frames: bool = False):
        if options.drop_policy not in (None, *DROP_POLICIES):
            raise ConfigError(f"drop_policy '{options.drop_policy}' must be one of {DROP_POLICIES}")
        self.runtime, self.options, self.keep_frames = runtime, options, keep_frames
        self._frames, live, self._release = _frames(source, options.fps)
        self.drop_policy = options.drop_policy or ("drop_oldest" if live else "block")
        self.dropped = 0
        self._stop = threading.Event()
        self._captured: queue.Queue = queue.Queue(options.queue_size)
        self._detected: queue.Queue = queue.Queue(options.queue_size)
        self._results: queue.Queue = queue.Queue(options.queue_size)
        self._tracker = IouTracker(options.track_iou, options.max_missed, options.smoothing)
        self._threads = [threading.Thread(target=self._guard, args=(fn,), daemon=True, name=f"edgepose-{fn.__name__}")
                         for fn in (self._capture, self._detect, self._pose)]
        for t in self._threads:
            t.start()

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

    def _get(self, q: queue.Queue):
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
            self._put(self._results, _Failure(exc))

    def _capture(self) -> None:
        for index, (timestamp, frame) in enumerate(self._frames):
            if self._stop.is_set():
                break
            self._put(self._captured, (index, timestamp, frame), droppable=True)
        self._put(self._captured, _END)

    def _detect(self) -> None:
        while (item := self._get(self._captured)) is not _END:
            index, timestamp, frame = item
            found = self.runtime.detector.detect(validate_frame(frame))
            self._put(self._detected, (index, timestamp, frame, found))
        self._put(self._detected, _END)

    def _pose(self) -> None:
        while (item := self._get(self._detected)) is not _END:
            index, timestamp, frame, found = item
            poses = self.runtime.infer(frame, boxes=list(found.boxes)) if len(found) else []
            poses = [dataclasses.replace(p, score=float(s)) for p, s in zip(poses, found.scores)]
            self._put(self._results, (index, timestamp, frame, poses))
        self._put(self._results, _END)

    def __iter__(self) -> Iterator[FrameResult]:
        try:
            while (item := self._get(self._results)) is not _END:
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
        self._stop.set()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=2.0)
        self._release()

    def __enter__(self) -> "PoseStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
