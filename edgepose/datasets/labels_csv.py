"""Reading a labels CSV written by `edgepose label` (the data engine): the poses a recipe trains on (`data.labels`)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..errors import ConfigError


def read_labels(path: str | Path, min_confidence: float = 0.0) -> dict[str, np.ndarray]:
    """{pool path: (yaw, pitch, roll)} of the kept rows of a labels file at or above `min_confidence`."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"labels file '{path}' does not exist; make one with `edgepose label` (each recipe that "
                          "reads one names the command in its header comment)")
    out = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["keep"] == "1" and float(row["confidence"]) >= min_confidence:
                out[row["path"]] = np.array([float(row[a]) for a in ("yaw", "pitch", "roll")], np.float32)
    return out
