"""Reading a labels CSV written by `edgepose label` (the data engine): the poses a recipe trains on (`data.labels`)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..errors import ConfigError

ANGLES = ("yaw", "pitch", "roll")


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


def read_vote_table(path: str | Path) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    """(row paths, (N, 3) consensus yaw/pitch/roll, {vote: (N, 3)} with NaN where a vote is missing) of a labels
    file, every row in file order.

    Raises:
        ConfigError: the file is missing.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"labels file '{path}' does not exist; make one with `edgepose label`")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        names = [c[:-4] for c in reader.fieldnames or [] if c.endswith("_yaw") and c != "yaw"]
        rows = list(reader)

    def angles(prefix: str) -> np.ndarray:
        return np.array([[float(r[f"{prefix}{a}"] or "nan") for a in ANGLES] for r in rows]).reshape(-1, 3)

    return [r["path"] for r in rows], angles(""), {n: angles(f"{n}_") for n in names}


def read_vote_columns(path: str | Path, names: list[str], paths: list[str]) -> dict[str, np.ndarray]:
    """{vote: (len(paths), 3) yaw/pitch/roll} of the named vote columns of a labels file, in the order of `paths`
    (NaN where the file has no row or no value), so a new consensus can reuse votes without re-running teachers.

    Raises:
        ConfigError: the file is missing, or a named vote is not one of its columns.
    """
    rows, _, votes = read_vote_table(path)
    missing = [n for n in names if n not in votes]
    if missing:
        raise ConfigError(f"labels file '{Path(path).expanduser()}' has no vote column(s) {missing}; its votes: "
                          f"{', '.join(votes)}")
    where = {p: i for i, p in enumerate(rows)}
    index = np.array([where.get(p, -1) for p in paths], int)
    out = {}
    for n in names:
        column = np.vstack([votes[n], np.full((1, 3), np.nan)])  # row -1: paths the file does not have
        out[n] = column[index]
        out[n][~np.isfinite(out[n]).all(1)] = np.nan  # a partly empty vote is no vote
    return out
