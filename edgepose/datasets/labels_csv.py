"""Reading a labels CSV written by `edgepose label` (the data engine): the poses a recipe trains on (`data.labels`)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..errors import ConfigError

ANGLES = ("yaw", "pitch", "roll")


def _read(path: Path, columns: tuple[str, ...]) -> tuple[list[str], list[dict]]:
    """(column names, rows) of a labels CSV that has `columns`, as UTF-8 text (ConfigError otherwise)."""
    if not path.is_file():
        raise ConfigError(f"labels file '{path}' does not exist; make one with `edgepose label` (each recipe that "
                          "reads one names the command in its header comment)")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            names, rows = list(reader.fieldnames or []), list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"labels file '{path}' is not a CSV that `edgepose label` wrote ({exc})") from None
    missing = [c for c in columns if c not in names]
    if missing:
        raise ConfigError(f"labels file '{path}' has no column(s) {missing} (it has {names[:12]}); give a file that "
                          "`edgepose label` wrote")
    return names, rows


def _number(row: dict, key: str, path: Path, line: int, empty_ok: bool = True) -> float:
    """A number of a labels CSV; an empty cell is NaN (a missing vote) where `empty_ok`, an error otherwise."""
    text = row[key]
    try:
        value = float(text or "nan")
    except (TypeError, ValueError):
        raise ConfigError(f"labels file '{path}' line {line}: {key} = {text!r} is not a number") from None
    if not empty_ok and value != value:
        raise ConfigError(f"labels file '{path}' line {line}: a kept row has no {key}; relabel it with `edgepose label`")
    return value


def read_labels(path: str | Path, min_confidence: float = 0.0) -> dict[str, np.ndarray]:
    """{pool path: (yaw, pitch, roll)} of the kept rows of a labels file at or above `min_confidence`."""
    path = Path(path).expanduser()
    _, rows = _read(path, ("path", *ANGLES, "confidence", "keep"))
    out = {}
    for line, row in enumerate(rows, 2):
        if row["keep"] == "1" and _number(row, "confidence", path, line, False) >= min_confidence:
            out[row["path"]] = np.array([_number(row, a, path, line, False) for a in ANGLES], np.float32)
    return out


def read_vote_table(path: str | Path) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    """(row paths, (N, 3) consensus yaw/pitch/roll, {vote: (N, 3)} with NaN where a vote is missing) of a labels
    file, every row in file order.

    Raises:
        ConfigError: the file is missing.
    """
    path = Path(path).expanduser()
    columns, rows = _read(path, ("path", *ANGLES))
    names = [c[:-4] for c in columns if c.endswith("_yaw") and c != "yaw"]

    def angles(prefix: str) -> np.ndarray:
        return np.array([[_number(r, f"{prefix}{a}", path, line) for a in ANGLES]
                         for line, r in enumerate(rows, 2)]).reshape(-1, 3)

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
    if len(paths) and (index < 0).all():
        raise ConfigError(f"labels file '{Path(path).expanduser()}' shares no row with the pool (its paths are not the "
                          f"pool's, e.g. '{rows[0] if rows else ''}' vs '{paths[0]}'); give the labels of this pool")
    out = {}
    for n in names:
        column = np.vstack([votes[n], np.full((1, 3), np.nan)])  # row -1: paths the file does not have
        out[n] = column[index]
        out[n][~np.isfinite(out[n]).all(1)] = np.nan  # a partly empty vote is no vote
    return out
