"""edgepose.Runtime: frame -> detector -> crop -> backend -> decode -> [FacePose], configured by a platform file."""
from __future__ import annotations


import numpy as np

from .backends import create_backend
from .bundle import resolve_bundle
from .crop import clip_box, validate_frame
from .decode import decode_outputs
from .platform import Platform, load_platform
from .pose import FacePose
from .preprocess import prepare_batch, to_input


class Runtime:
    """Head-pose estimation on one platform.

    Args:
        platform: a packaged platform name (see `edgepose platforms`) or the path of a platform YAML.
        model: 'default', a bundle folder or a manifest JSON; overrides the platform's model.
        threads: engine threads (0 = all cores); overrides the platform's.
        backend_options: merged over the platform's backend options.

    Example:
        >>> with Runtime("cpu") as rt:
        ...     poses = rt.infer(cv2.imread("face.jpg"))
    """

    def __init__(self, platform: str = "cpu", model: str | None = None, *, threads: int | None = None,
                 backend_options: dict | None = None):
        self.platform: Platform = load_platform(platform)
        self.manifest, self.model_path = resolve_bundle(model or self.platform.model)
        options = {**self.platform.backend_options, **(backend_options or {})}
        options["threads"] = self.platform.threads if threads is None else threads
        self.backend = create_backend(self.platform.backend)
        self.backend.load(str(self.model_path), options)
        self._detector = None
        self.batch_size = self.manifest.input.batch

    @property
    def detector(self):
        if self._detector is None:
            from .detectors import create_detector

            self._detector = create_detector(self.platform.detector)
        return self._detector

    def describe(self) -> dict:
        """What actually runs: platform, backend and engine details, precision, model file."""
        return {"platform": self.platform.name, "backend": self.backend.name, "precision": self.manifest.precision,
                "model": str(self.model_path), **self.backend.describe()}

    def infer(self, frame: np.ndarray, boxes=None) -> list[FacePose]:
        """Poses of the faces in a BGR uint8 H x W x 3 frame.

        Args:
            frame: the image, OpenCV's BGR uint8 convention.
            boxes: optional tight face boxes (x1, y1, x2, y2) in frame pixels; one FacePose per box, in order.
                Boxes reaching past the frame are clipped to it (FacePose.box is the clipped box); a box wholly
                outside the frame is an error. Without boxes, the platform's detector finds the faces.

        Raises:
            InputError: malformed frame or box.
        """
        frame = validate_frame(frame)
        h, w = frame.shape[:2]
        if boxes is None:
            found, scores = self.detector.detect(frame)
            clipped = [clip_box(b, w, h) for b in found]
        else:
            clipped = [clip_box(b, w, h) for b in boxes]
            scores = np.ones(len(clipped))
        if not clipped:
            return []
        angles, matrices = self.predict(prepare_batch(frame, clipped, self.manifest.crop, self.manifest.input))
        return [FacePose(float(a[0]), float(a[1]), float(a[2]), tuple(b), float(s), m)
                for a, b, s, m in zip(angles, clipped, scores, matrices)]

    def infer_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, 3) yaw/pitch/roll for BGR uint8 crops already cut with the manifest's crop protocol and size."""
        return self.predict(to_input(np.asarray(crops), self.manifest.input))[0]

    def predict(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decoded ((N, 3) degrees, (N, 3, 3) matrices) for a preprocessed input batch."""
        name = self.manifest.input.name
        if self.batch_size and len(batch) != self.batch_size:
            parts = [self.backend.run({name: batch[i:i + self.batch_size]}) for i in range(0, len(batch), self.batch_size)]
            outputs = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        else:
            outputs = self.backend.run({name: batch})
        return decode_outputs(outputs, self.manifest.output)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
