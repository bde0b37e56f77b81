"""Head-pose accuracy metrics: MAE per angle, AUC@5 deg, failure rate above 15 deg, per-|yaw| bins."""
from __future__ import annotations

import numpy as np

from ..angles import wrap_degrees

YAW_BINS = ((0.0, 30.0), (30.0, 60.0), (60.0, 99.0))


def angle_errors(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N, 3) absolute errors in degrees of yaw, pitch, roll, wrapped so 179 vs -179 counts as 2."""
    return np.abs(wrap_degrees(np.asarray(pred, np.float64) - np.asarray(truth, np.float64)))


def summarize(pred: np.ndarray, truth: np.ndarray) -> dict:
    """Accuracy summary of predictions against labels, both (N, 3) yaw, pitch, roll in degrees.

    Returns a dict with `n`, `yaw`, `pitch`, `roll`, `mean` (MAE in degrees), `auc5` (share of samples whose
    mean angle error is below 5 deg), `failure15` (share whose mean angle error exceeds 15 deg) and `bins`:
    {"0-30": {"n", "mean", "yaw", "pitch", "roll"}, ...} by the label's |yaw|.
    """
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    if pred.shape != truth.shape or pred.ndim != 2 or pred.shape[1] != 3:
        raise ValueError(f"pred {pred.shape} and truth {truth.shape} must both be (N, 3)")
    err = angle_errors(pred, truth)
    per_sample = err.mean(1)
    out = {"n": int(len(err))}
    out.update(_mae(err))
    out["auc5"] = float((per_sample < 5.0).mean()) if len(err) else float("nan")
    out["failure15"] = float((per_sample > 15.0).mean()) if len(err) else float("nan")
    abs_yaw = np.abs(truth[:, 0])
    out["bins"] = {}
    for lo, hi in YAW_BINS:
        sel = (abs_yaw >= lo) & ((abs_yaw < hi) if hi < YAW_BINS[-1][1] else (abs_yaw <= hi))
        out["bins"][f"{lo:.0f}-{hi:.0f}"] = {"n": int(sel.sum()), **_mae(err[sel])}
    return out


def manifest_metrics(summary: dict) -> dict:
    """The part of a `summarize` result a bundle manifest records: MAE per angle, AUC@5, failures, bin means."""
    out = {k: summary[k] for k in ("n", "yaw", "pitch", "roll", "mean", "auc5", "failure15")}
    out["bins"] = {k: round(v["mean"], 3) for k, v in summary["bins"].items()}
    return out


def _mae(err: np.ndarray) -> dict:
    if len(err) == 0:
        return {"yaw": float("nan"), "pitch": float("nan"), "roll": float("nan"), "mean": float("nan")}
    m = err.mean(0)
    return {"yaw": float(m[0]), "pitch": float(m[1]), "roll": float(m[2]), "mean": float(m.mean())}


def format_summary(summary: dict, title: str = "") -> str:
    """A plain-text table of a `summarize` result."""
    lines = [title] if title else []
    lines.append(f"{'':10s} {'n':>5s} {'yaw':>7s} {'pitch':>7s} {'roll':>7s} {'mean':>7s}")
    lines.append(f"{'all':10s} {summary['n']:5d} {summary['yaw']:7.2f} {summary['pitch']:7.2f} "
                 f"{summary['roll']:7.2f} {summary['mean']:7.2f}")
    for name, b in summary["bins"].items():
        lines.append(f"{'|yaw| ' + name:10s} {b['n']:5d} {b['yaw']:7.2f} {b['pitch']:7.2f} {b['roll']:7.2f} {b['mean']:7.2f}")
    lines.append(f"AUC@5deg {summary['auc5'] * 100:.1f}%   failure rate (>15deg) {summary['failure15'] * 100:.1f}%")
    if summary.get("protocol") == "detector":
        lines.append(f"detector protocol: {summary['missed']} of {summary['images']} images had no matching face (misses)")
    return "\n".join(lines)
