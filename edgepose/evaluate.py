"""Accuracy of a Runtime on a labelled dataset, with the published protocol's face boxes."""
from __future__ import annotations

import cv2
import numpy as np
from tqdm import tqdm

from .datasets.aflw2000 import read_aflw2000
from .errors import ConfigError, did_you_mean
from .metrics import summarize

DATASETS = {"aflw2000": read_aflw2000}


def evaluate(runtime, dataset: str, root: str, limit: int = 0, progress: bool = True) -> tuple[dict, np.ndarray, np.ndarray]:
    """Run `runtime.infer(image, boxes=[label box])` over a dataset.

    Returns:
        (summary as edgepose.metrics.summarize gives it, (N, 3) predictions, (N, 3) labels).
    """
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset '{dataset}'.{did_you_mean(dataset, DATASETS)} Available: {sorted(DATASETS)}")
    samples = DATASETS[dataset](root)
    if limit:
        samples = samples[:limit]
    preds, truth = [], []
    for s in tqdm(samples, desc=f"eval {dataset}", unit="img", disable=not progress, mininterval=2):
        pose = runtime.infer(cv2.imread(str(s.image)), boxes=[s.box])[0]
        preds.append([pose.yaw, pose.pitch, pose.roll])
        truth.append([s.yaw, s.pitch, s.roll])
    preds_arr, truth_arr = np.array(preds), np.array(truth)
    return summarize(preds_arr, truth_arr), preds_arr, truth_arr
