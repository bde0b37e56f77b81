"""Calibration images for post-training quantization: face crops as model inputs, deterministic and counted."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import ConfigError
from ..manifest import CropSpec, InputSpec
from ..preprocess import to_input


def calibration_crops(source: str | Path, size: int, count: int, crop: CropSpec | float = 1.6,
                      seed: int = 0) -> np.ndarray:
    """(count, size, size, 3) BGR uint8 face crops.

    `source` is the training pool (a folder with index.csv: rows drawn at random, the stored 1.6x crops re-cut to
    a square of scale `crop`, or cut around the row's face box with the model's CropSpec `crop`) or any folder of
    face-crop images already cut with the model's crop protocol.

    Raises:
        ConfigError: the folder does not exist or holds no images.
    """
    root = Path(source)
    if (root / "index.csv").is_file():
        from ..datasets.faces_pool import read_pool_index
        from ..crop import square_crop

        table = read_pool_index(root)
        rows = np.random.default_rng(seed).permutation(len(table))[:count]
        crops = []
        for i in rows:
            img = cv2.imread(str(root / table.paths[i]))
            if isinstance(crop, CropSpec) and crop.protocol != "square":
                from ..preprocess import crop_face

                crops.append(crop_face(img, table.boxes[i], crop, InputSpec(size=(size, size))))
                continue
            scale = crop.scale if isinstance(crop, CropSpec) else crop
            side, c = img.shape[0], img.shape[0] / 2  # the stored crop is 1.6x the face box, centred
            box = (c - side / 3.2, c - side / 3.2, c + side / 3.2, c + side / 3.2)
            crops.append(square_crop(img, box, scale, size))
        return np.stack(crops)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")) if root.is_dir() else []
    if not files:
        raise ConfigError(f"no calibration images under '{root}'; pass the training pool (folder with index.csv) "
                          "or a folder of face crops")
    pick = np.random.default_rng(seed).permutation(len(files))[:count]
    return np.stack([cv2.resize(cv2.imread(str(files[i])), (size, size), interpolation=cv2.INTER_AREA) for i in pick])


def calibration_inputs(source: str | Path, spec: InputSpec, count: int, crop: CropSpec | float = 1.6) -> np.ndarray:
    """Calibration crops turned into model inputs with the manifest's preprocessing (`preprocess.to_input`)."""
    return to_input(calibration_crops(source, spec.size[0], count, crop), spec)
