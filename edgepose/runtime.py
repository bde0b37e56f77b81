"""edgepose.Runtime: frame -> detector -> crop -> backend -> decode -> [FacePose], configured by a platform file."""
from __future__ import annotations

import dataclasses
import os
import threading

import numpy as np

from .angles import euler_to_matrix, flip_matrix, matrix_to_euler, mean_rotation, rotate_in_plane
from .backends import check_backend_options, check_format, create_backend
from .bundle import locate_manifest, resolve_bundle
from .crop import clip_box, validate_frame
from .decode import decode_outputs
from .detectors import check_detector
from .errors import ConfigError, EdgePoseError, InputError
from .model_check import check_model_io
from .per_thread import PerThread, Shared
from .platform import MAX_THREADS, Platform, load_platform
from .pose import FacePose
from .preprocess import LEVELLED_PROTOCOLS, eye_line_angle, fed_pixels, prepare_batch, to_input

# faces sent to the pose model at once: the crops and input tensor of one chunk stay a few MB whatever the box count
POSE_CHUNK = 64


class Runtime:
    """Head-pose estimation on one platform.

    Args:
        platform: a packaged platform name (see `edgepose platforms`) or the path of a platform YAML.
        model: 'default', a bundle folder or a manifest JSON; overrides the platform's model.
        threads: engine threads (0 = all cores); overrides the platform's.
        backend_options: merged over the platform's backend options.
        detector: replaces the platform's detector: a DetectorConfig, a mapping, or 'type[:model path]'
            (e.g. 'blazeface:/models/blazeface_short_range.tflite', 'yunet:/models/yunet.onnx', 'haar').
        align: level each face's eyes before the pose model, using the detector's eye landmarks (YuNet, BlazeFace),
            then rotate the predicted pose back (R = Rz(eye angle) R_levelled), so roll is preserved. Models whose
            manifest says crop.aligned are always run this way. Needs a detector with landmarks (ConfigError
            otherwise); boxes the caller passes to `infer` carry no landmarks and are not levelled.
        flip_tta: test-time augmentation: also run each crop mirrored, mirror that pose back (F R F) and return the
            rotation mean of the two. Twice the pose-model compute (one batch of 2N) for a lower error.
        models_dir: a folder to look for the model files in when they are not beside the manifest (third-party
            models kept elsewhere; a manifest itself can only name files inside its own folder).

    A model may be an ensemble manifest (edgepose.ensemble): each member bundle runs with its own crop, input and
    decoding (and its own flip TTA; `flip_tta=True` turns it on for all), and `infer` returns the weighted rotation
    mean of the members' poses. `predict` and `infer_crops`, which take one member's crops, refuse an ensemble.

    Raises:
        PlatformError, ConfigError: unknown platform, bad platform file, unknown backend option or detector.
        BackendUnavailableError: the platform's engine is not installed (the message names the extra).
        ModelFormatError: bundle missing or invalid, a model file outside its folder, without or failing its
            checksum, or not matching its manifest (input name/shape/layout/dtype, output names); a detector model
            file missing or of the wrong format.

    Threads: one Runtime may be shared by any number of threads and gives each call the answer it would give
    single-threaded. Engines that are safe to share (ONNX Runtime sessions) are shared; the others (LiteRT
    interpreters, TensorRT contexts) and every detector (OpenCV cascades and FaceDetectorYN, BlazeFace on LiteRT)
    are loaded once per calling thread, on that thread's first call, and freed when the thread ends. A thread's
    first call therefore pays a model load; give a thread pool long-lived workers. `close()` closes them all; do
    not call it while other threads still run inference.

    Example:
        >>> with Runtime("cpu") as rt:
        ...     poses = rt.infer(cv2.imread("face.jpg"))
    """

    def __init__(self, platform: str = "cpu", model: str | None = None, *, threads: int | None = None,
                 backend_options: dict | None = None, detector=None, align: bool = False, flip_tta: bool = False,
                 models_dir: str | None = None):
        self._engines: list = []
        self._closed = False
        self.platform: Platform = load_platform(platform)
        if detector is not None:
            from .detectors import parse_detector

            self.platform = dataclasses.replace(self.platform, detector=parse_detector(detector))
        check_detector(self.platform.detector)  # unknown type, missing or wrong-format file: now, not at first frame
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or not 0 <= threads <= MAX_THREADS):
            raise ConfigError(f"threads must be a whole number 0..{MAX_THREADS} (0 = all cores), got {threads!r}")
        for name, value in (("align", align), ("flip_tta", flip_tta)):
            if not isinstance(value, (bool, np.bool_)):
                raise ConfigError(f"{name} must be True or False, got {value!r}")
        if models_dir is not None and not isinstance(models_dir, (str, os.PathLike)):
            raise ConfigError(f"models_dir must be a folder path (str or Path), got {type(models_dir).__name__}")
        check_backend_options(self.platform.backend, backend_options or {}, "backend_options")
        self.backend = create_backend(self.platform.backend)  # a missing engine is reported before a missing model
        self._detectors: PerThread | None = None
        self._lock = threading.Lock()
        self.flip_tta = flip_tta
        self.parts: list[tuple[Runtime, float]] = []  # an ensemble's member runtimes and weights
        self._dummies: dict[int, np.ndarray] = {}  # run_pose_model's inputs by batch size
        from .ensemble import is_ensemble_file, load_ensemble

        path = locate_manifest(model or self.platform.model)
        if is_ensemble_file(path):
            if align:
                raise ConfigError("align levels one model's crops; an ensemble's members cut their own crops: run it "
                                  "with align=False")
            try:
                for m in load_ensemble(path).members:
                    self.parts.append((Runtime(platform, str(m.bundle), threads=threads, backend_options=backend_options,
                                               detector=self.platform.detector, flip_tta=m.flip_tta or flip_tta,
                                               models_dir=models_dir), m.weight))
            except BaseException:
                self.close()
                raise
            levelled = [str(rt.model_path) for rt, _ in self.parts if rt.align]
            if levelled:  # an ensemble hands its members no eye landmarks: such a member would run unlevelled
                self.close()
                raise ConfigError(f"ensemble member(s) {', '.join(levelled)} say crop.aligned (trained on eye-levelled "
                                  "crops); an ensemble does not level its members' crops: run that bundle on its own")
            first = self.parts[0][0]
            self.backend, self.manifest, self.align, self.batch_size = first.backend, first.manifest, False, 0
            self.model_paths = [p for rt, _ in self.parts for p in rt.model_paths]
            self.model_path = path
            return
        self.manifest, self.model_paths = resolve_bundle(path, models_dir)
        check_format(self.manifest.format, self.platform, model or self.platform.model)
        self.model_path = self.model_paths[0]
        self.align = align or self.manifest.crop.aligned
        if self.align and self.manifest.crop.protocol not in LEVELLED_PROTOCOLS:  # before any engine loads
            raise ConfigError(f"eye levelling (align) needs a model with the {' or '.join(LEVELLED_PROTOCOLS)} crop "
                              f"protocol, this one uses '{self.manifest.crop.protocol}'; run it with align=False")
        if self.align:
            from .detectors import DETECTORS, resolve_detector

            kind = resolve_detector(self.platform.detector, warn=False).type
            if not DETECTORS[kind].landmarks:
                why = "the model's manifest says crop.aligned" if not align else "align=True"
                raise ConfigError(f"{why}, but the '{kind}' detector gives no eye landmarks to level the faces by; use "
                                  f"one that does: {sorted(k for k, d in DETECTORS.items() if d.landmarks)} (BlazeFace: "
                                  "edgepose detectors fetch)")
        options = {**self.platform.backend_options, **(backend_options or {})}
        options["threads"] = self.platform.threads if threads is None else threads
        if self.manifest.format == "tensorrt":
            options.update(expect_trt_version=self.manifest.source.get("tensorrt"), expect_gpu=self.manifest.source.get("gpu"))
        self.backend.load(str(self.model_path), options)

        def load(path):
            member = create_backend(self.platform.backend)
            member.load(str(path), options)
            return member

        first = [self.backend]
        try:
            first += [load(path) for path in self.model_paths[1:]]  # ensemble members (FSA-Net's two)
            for path, engine in zip(self.model_paths, first):  # a manifest that disagrees with its model fails here
                check_model_io(self.manifest, engine.io(), str(path))
        except BaseException:
            for engine in first:  # free what was loaded (GPU memory on TensorRT) before reporting
                engine.close()
            raise
        self._engines = [Shared(b) if b.thread_safe else PerThread(lambda path=path: load(path), first=b)
                         for path, b in zip(self.model_paths, first)]
        self.batch_size = self.manifest.input.batch

    @property
    def members(self) -> list:
        """The calling thread's pose-model engines (one per model file; an ensemble's: every member's)."""
        if self.parts:
            return [e for rt, _ in self.parts for e in rt.members]
        return [engine.get() for engine in self._engines]

    def run_pose_model(self, faces: int = 1) -> None:
        """Run the pose model(s) once on `faces` random inputs (each member with its own input, twice the faces with
        flip TTA): what one face costs the pose model, for benchmarks."""
        if self.parts:
            for rt, _ in self.parts:
                rt.run_pose_model(faces)
            return
        n = faces * (2 if self.flip_tta else 1)
        x = self._dummies.get(n)
        if x is None:  # made once: random numbers cost more than the model they feed
            x = self._dummies[n] = self.manifest.input.dummy(n)
        for engine in self.members:
            self._run(engine, x)

    @property
    def detector(self):
        """The calling thread's detector, built on first use (each thread gets its own: none is thread-safe)."""
        if self._detectors is None:
            from .detectors import create_detector

            with self._lock:
                if self._detectors is None:
                    self._detectors = PerThread(lambda: create_detector(self.platform.detector))
        return self._detectors.get()

    def describe(self) -> dict:
        """What actually runs: platform, backend and engine details, precision, model file."""
        from .detectors import resolve_detector

        out = {"platform": self.platform.name, "backend": self.backend.name, "precision": self.manifest.precision,
               "model": str(self.model_path), "flip_tta": self.flip_tta,
               "detector": resolve_detector(self.platform.detector, warn=False).type, **self.backend.describe()}
        if self.parts:
            out["precision"] = "+".join(sorted({rt.manifest.precision for rt, _ in self.parts}))
            out["members"] = [{"model": str(rt.model_path), "weight": w, "flip_tta": rt.flip_tta,
                               "precision": rt.manifest.precision} for rt, w in self.parts]
        return out

    def infer(self, frame: np.ndarray, boxes=None) -> list[FacePose]:
        """Poses of the faces in a BGR uint8 H x W x 3 frame.

        Args:
            frame: the image, OpenCV's BGR uint8 convention.
            boxes: optional tight face boxes (x1, y1, x2, y2) in frame pixels; one FacePose per box, in order.
                Boxes reaching past the frame are clipped to it (FacePose.box is the clipped box); a box wholly
                outside the frame is an error. Without boxes, the platform's detector finds the faces.

        Raises:
            InputError: malformed frame or box.
            EdgePoseError: the runtime is closed.
        """
        self._check_open()
        frame = validate_frame(frame)
        h, w = frame.shape[:2]
        levels = None
        if boxes is None:
            found = self.detector.detect(frame)
            clipped, scores = [clip_box(b, w, h) for b in found.boxes], found.scores
            if self.align and found.landmarks is not None:
                levels = [eye_line_angle(lm) for lm in found.landmarks]
        else:
            clipped = [clip_box(b, w, h) for b in _box_list(boxes)]
            scores = [1.0] * len(clipped)
        poses = []
        for i in range(0, len(clipped), POSE_CHUNK):  # bounded chunks: memory stays flat however many boxes
            chunk, chunk_levels = clipped[i:i + POSE_CHUNK], None if levels is None else levels[i:i + POSE_CHUNK]
            angles, matrices = self._pose_boxes(frame, chunk, chunk_levels)
            poses += [FacePose(a[0], a[1], a[2], tuple(b), float(s), m)  # tolist: Python floats in one call
                      for a, b, s, m in zip(angles.tolist(), chunk, scores[i:i + POSE_CHUNK], matrices)]
        return poses

    def _pose_boxes(self, frame: np.ndarray, boxes: list, levels) -> tuple[np.ndarray, np.ndarray]:
        """((N, 3) degrees, (N, 3, 3) matrices) of clipped boxes: this model's crops, or an ensemble's weighted
        rotation mean of its members' poses (each member cutting its own crop)."""
        if self.parts:
            mats = [rt._pose_boxes(frame, boxes, None)[1] for rt, _ in self.parts]
            matrices = mean_rotation(*mats, weights=np.array([w for _, w in self.parts]))
            return matrix_to_euler(matrices), matrices
        angles, matrices = self.predict(prepare_batch(frame, boxes, self.manifest.crop, self.manifest.input, levels))
        if levels is not None:
            matrices = rotate_in_plane(matrices, np.asarray(levels))  # undo the levelling: roll kept
            angles = matrix_to_euler(matrices)
        return angles, matrices

    def stream(self, source, options=None, keep_frames: bool = False):
        """Poses over a video: a file path, a camera index, or an iterable of BGR frames.

        Returns a PoseStream: iterate it for FrameResults in frame order (faces carry track ids; angles are
        One-Euro smoothed when options.smoothing is set); close it, or use it in a `with` block, to stop early.
        """
        from .video.stream import PoseStream, StreamOptions

        self._check_open()
        return PoseStream(self, source, options or StreamOptions(), keep_frames)

    def infer_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, 3) yaw/pitch/roll for BGR uint8 crops already cut with the manifest's crop protocol and size.

        Raises:
            InputError: not (N, H, W, 3) images at the model's input size (edgepose.preprocess.crop_face cuts them).
        """
        self._check_open()
        self._check_single("infer_crops")
        crops = np.asarray(crops)
        size = tuple(self.manifest.input.size)
        if crops.ndim == 4 and crops.shape[1:3] != size:
            raise InputError(f"crops are {crops.shape[1]}x{crops.shape[2]} pixels, this model takes {size[0]}x{size[1]}"
                             f" ({self.manifest.crop.protocol} crop); cut them with edgepose.preprocess.crop_face("
                             "frame, box, rt.manifest.crop, rt.manifest.input)")
        return self.predict(to_input(crops, self.manifest.input))[0]

    def predict(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decoded ((N, 3) degrees, (N, 3, 3) matrices) for a preprocessed input batch (with flip_tta: the rotation
        mean of each crop's pose and its mirrored crop's pose mirrored back).

        Raises:
            InputError: `batch` is not an array of the manifest's input shape (any batch size) and dtype
                (edgepose.preprocess.to_input makes one from crops).
        """
        self._check_open()
        self._check_single("predict")
        self._check_batch(batch)
        if not len(batch):
            return np.zeros((0, 3)), np.zeros((0, 3, 3))
        if not self.flip_tta:
            return self._predict(batch)
        width_axis = self.manifest.input.layout.index("W")
        _, matrices = self._predict(np.concatenate([batch, np.flip(batch, axis=width_axis)]))
        n = len(batch)
        matrices = mean_rotation(matrices[:n], flip_matrix(matrices[n:]))
        return matrix_to_euler(matrices), matrices

    def _predict(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # decode_outputs refuses non-finite outputs, a wrong row count or width, and values that are no rotation
        decoded = [decode_outputs(self._run(engine.get(), batch), self.manifest.output, len(batch))
                   for engine in self._engines]
        if len(decoded) == 1:
            return decoded[0]
        angles = np.mean([d[0] for d in decoded], axis=0)  # ensembles average Euler angles, as FSA-Net does
        return angles, euler_to_matrix(angles[:, 0], angles[:, 1], angles[:, 2])

    def _check_batch(self, batch) -> None:
        spec = self.manifest.input
        want, dtype = spec.shape(1)[1:], "uint8" if fed_pixels(spec) else "float32"  # what to_input makes
        if not isinstance(batch, np.ndarray) or batch.ndim != 4 or batch.shape[1:] != want or batch.dtype != dtype:
            got = f"{type(batch).__name__} {list(batch.shape)} {batch.dtype}" if isinstance(batch, np.ndarray) \
                else type(batch).__name__
            raise InputError(f"model input batch is {got}; this model takes (N, {', '.join(map(str, want))}) "
                             f"{dtype} ({spec.layout}); make it from BGR crops with edgepose.preprocess.to_input("
                             "crops, rt.manifest.input), or call rt.infer_crops(crops)")

    def _run(self, backend, batch: np.ndarray) -> dict[str, np.ndarray]:
        name, size, n = self.manifest.input.name, self.batch_size, len(batch)
        if size and n != size:  # a fixed-batch model: whole batches, the last one padded with copies of its last face
            if n % size:
                batch = np.concatenate([batch, np.repeat(batch[-1:], size - n % size, axis=0)])
            parts = [backend.run({name: batch[i:i + size]}) for i in range(0, len(batch), size)]
            # one row per face (an output squeezed to (values,) by a batch-1 model too), the padding cut off
            return {k: np.concatenate([p[k].reshape(size, -1) for p in parts])[:n] for k in parts[0]}
        return backend.run({name: batch})

    def _check_single(self, what: str) -> None:
        if self.parts:
            raise ConfigError(f"{what} takes one model's crops, but this Runtime runs an ensemble whose members cut "
                              "their own; call infer(frame, boxes=...) instead")

    def _check_open(self) -> None:
        if self._closed:
            raise EdgePoseError("this Runtime is closed (close() was called, or its `with` block ended); create a new "
                                "Runtime to run more frames")

    def close(self) -> None:
        """Close every thread's engines (call it once no thread is running inference); later calls raise
        EdgePoseError. Closing twice is harmless."""
        self._closed = True
        for rt, _ in self.parts:
            rt.close()
        for engine in self._engines:
            for instance in engine.instances():
                instance.close()
        self._detectors = None  # detectors hold no OS resources beyond memory: dropping them frees it

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _box_list(boxes) -> list:
    """The caller's boxes as a list, refusing a single box or a non-sequence with a message that says so."""
    if isinstance(boxes, (str, bytes, dict)) or not hasattr(boxes, "__iter__"):
        raise InputError(f"boxes must be a list of (x1, y1, x2, y2) face boxes, got {type(boxes).__name__} {boxes!r}")
    items = list(boxes)
    if items and isinstance(items[0], (int, float, np.number)):
        raise InputError(f"boxes must be a list of boxes, got one box {boxes!r}; pass [box]")
    return items
