"""Accuracy of a Runtime on a labelled dataset, with label boxes (the published protocol) or the runtime's detector."""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from ..datasets.aflw2000 import read_aflw2000
from ..datasets.biwi import read_biwi
from ..errors import ConfigError, did_you_mean
from .metrics import summarize
from ..video.tracking import box_iou

DATASETS = {"aflw2000": read_aflw2000, "biwi": read_biwi}
PROTOCOLS = ("label", "label68", "detector")
LABEL_BOXES = {"label": "box", "label68": "box68"}  # protocols that take the face box from the labels: which box
MIN_MATCH_IOU = 0.4


def evaluate(runtime, dataset: str, root: str, limit: int = 0, progress: bool = True,
             protocol: str = "label") -> tuple[dict, np.ndarray, np.ndarray]:
    """Score `runtime` on a dataset.

    protocol "label": one pose per label box (`infer(image, boxes=[box])`), the published protocol.
    protocol "label68": the same with the box of the 68 3D landmarks (AFLW2000-3D), a wider convention.
    protocol "detector": `infer(image)`; the detection overlapping the face box best (IoU >= 0.4) is scored, or the
    largest face when the dataset has no boxes (BIWI); images without a match count as misses (summary["missed"]).
    The face box is the box of the 68 landmarks where the dataset has them (AFLW2000-3D): detectors' boxes are mapped
    to that convention, while the visible-points label box of a profile covers only its near half.

    Returns:
        (summary as edgepose.evaluation.metrics.summarize gives it, (N, 3) predictions, (N, 3) labels) over scored faces.
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol '{protocol}'; use one of {PROTOCOLS}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ConfigError(f"limit must be a whole number >= 0 (0 = every image), got {limit!r}")
    samples = _samples(dataset, root, limit, LABEL_BOXES.get(protocol))
    preds, truth, missed = [], [], 0
    for s in tqdm(samples, desc=f"eval {dataset}", unit="img", disable=not progress, mininterval=2):
        image = s.load()
        if protocol in LABEL_BOXES:
            pose = runtime.infer(image, boxes=[getattr(s, LABEL_BOXES[protocol])])[0]
        else:
            pose = _match(runtime.infer(image), detection_box(s))
            if pose is None:
                missed += 1
                continue
        preds.append([pose.yaw, pose.pitch, pose.roll])
        truth.append([s.yaw, s.pitch, s.roll])
    preds_arr, truth_arr = np.array(preds).reshape(-1, 3), np.array(truth).reshape(-1, 3)
    summary = summarize(preds_arr, truth_arr)
    summary.update(protocol=protocol, missed=missed, images=len(samples))
    return summary, preds_arr, truth_arr


def _samples(dataset: str, root: str, limit: int, box: str | None):
    """The first `limit` samples (0 = all) of a dataset; every one must have the face box attribute `box` if given.

    Raises:
        ConfigError: an unknown dataset, or samples without that box.
    """
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset '{dataset}'.{did_you_mean(dataset, DATASETS)} Available: {sorted(DATASETS)}")
    samples = DATASETS[dataset](root)[: limit or None]
    if box and any(getattr(s, box) is None for s in samples):
        kind = "face boxes" if box == "box" else "68-point landmarks to box"
        raise ConfigError(f"{dataset} has no {kind}; evaluate it with protocol='detector' (--protocol detector)")
    return samples


def detection_box(sample):
    """The box a detection is matched against: the 68-landmark box when the sample has one, else its label box."""
    return getattr(sample, "box68", None) or sample.box


def _match(poses, box):
    if not poses:
        return None
    if box is None:
        return max(poses, key=lambda p: (p.box[2] - p.box[0]) * (p.box[3] - p.box[1]))
    best = max(poses, key=lambda p: box_iou(p.box, box))
    return best if box_iou(best.box, box) >= MIN_MATCH_IOU else None


def evaluate_route(route, dataset: str, root: str, limit: int = 0, progress: bool = True) -> tuple[dict, np.ndarray]:
    """Score a landmark route (an object with `estimate(image, box)` -> pose or None, e.g. keypoint_pose.FaceMeshRoute)
    on a dataset with face boxes. The summary covers the faces it returns; `missed` counts the others.

    Returns:
        (summary, indices of the scored samples in dataset order).
    """
    samples = _samples(dataset, root, limit, "box")
    preds, found = [], []
    for i, s in enumerate(tqdm(samples, desc=f"eval {dataset} (landmark route)", unit="img", disable=not progress,
                               mininterval=2)):
        pose = route.estimate(s.load(), s.box)
        if pose is not None:
            preds.append([pose.yaw, pose.pitch, pose.roll])
            found.append(i)
    truth = np.array([[s.yaw, s.pitch, s.roll] for s in samples])[found].reshape(-1, 3)
    summary = summarize(np.array(preds).reshape(-1, 3), truth)
    summary.update(missed=len(samples) - len(found), images=len(samples))
    return summary, np.array(found, int)
