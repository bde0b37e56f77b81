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


def read_vote_columns(path: str | Path, names: list[str], paths: list[str]) -> dict[str, np.ndarray]:
    """{vote: (len(paths), 3) yaw/pitch/roll} of the named vote columns of a labels file, in the order of `paths`
    (NaN where the file has no row or no value), so a new consensus can reuse votes without re-running teachers.

    Raises:
        ConfigError: the file is missing, or a named vote is not one of its columns.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"labels file '{path}' does not exist; make one with `edgepose label`")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        have = [c[:-4] for c in reader.fieldnames or [] if c.endswith("_yaw") and c != "yaw"]
        missing = [n for n in names if n not in have]
        if missing:
            raise ConfigError(f"labels file '{path}' has no vote column(s) {missing}; its votes: {', '.join(have)}")
        rows = {row["path"]: row for row in reader}
    out = {n: np.full((len(paths), 3), np.nan) for n in names}
    for i, p in enumerate(paths):
        row = rows.get(p)
        for n in names if row is not None else ():
            values = [row[f"{n}_{a}"] for a in ("yaw", "pitch", "roll")]
            if all(values):
                out[n][i] = [float(v) for v in values]
    return out
