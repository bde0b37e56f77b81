"""Benchmark harness of the device half: timing loops, per-stage latency, environment capture, tables."""
from __future__ import annotations

import os
import platform as host
import time
from typing import Callable

import numpy as np


def sample_calls(fn: Callable[[], object], runs: int, warmup: int, min_time: float = 0.0) -> np.ndarray:
    """Milliseconds of each call of `fn` after `warmup` untimed calls, over at least `runs` calls and `min_time` s."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < runs or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return np.asarray(times)


def interleaved_medians(fns: dict[str, Callable[[], object]], calls: int, rounds: int = 5,
                        warmup: int = 3) -> dict[str, np.ndarray]:
    """Median milliseconds per round of each function, the functions taking turns in every round (the order
    reversed every other round), so a drift of a shared machine hits all of them alike. Compare entries by their
    per-round ratios."""
    medians: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns)
    for r in range(rounds):
        for name in (order if r % 2 == 0 else order[::-1]):
            medians[name].append(float(np.median(sample_calls(fns[name], calls, warmup))))
    return {name: np.asarray(v) for name, v in medians.items()}


def latency_stats(times: np.ndarray) -> dict:
    """p50/p90/p99, mean, std, min (ms) of call times and calls per second at the median."""
    arr = np.asarray(times, float)
    p50 = float(np.percentile(arr, 50))
    return {"runs": len(arr), "p50_ms": p50, "p90_ms": float(np.percentile(arr, 90)),
            "p99_ms": float(np.percentile(arr, 99)), "mean_ms": float(arr.mean()), "std_ms": float(arr.std()),
            "min_ms": float(arr.min()), "per_s": 1e3 / p50 if p50 > 0 else float("inf")}


def time_calls(fn: Callable[[], object], runs: int, warmup: int, min_time: float = 0.0) -> dict:
    """`latency_stats` of `sample_calls`."""
    return latency_stats(sample_calls(fn, runs, warmup, min_time))


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if host.system() != "Darwin" else peak / 2**20


def environment() -> dict:
    """CPU model and the SIMD flags that matter for inference, core count, OS and library versions."""
    from importlib import metadata

    cpu, flags = host.processor() or host.machine(), []
    try:
        info = open("/proc/cpuinfo").read()
        for line in info.splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith(("flags", "Features")):
                have = set(line.split(":", 1)[1].split())
                flags = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8",
                                     "asimd", "asimddp", "sve") if f in have]
                break
    except OSError:
        pass
    versions = {}
    for pkg in ("edgepose", "numpy", "opencv-python-headless", "onnxruntime", "ai-edge-litert", "tensorrt", "torch"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return {"cpu": cpu, "flags": flags, "cores": os.cpu_count(), "os": f"{host.system()} {host.release()}",
            "python": host.python_version(), "versions": versions}


def stage_calls(rt, frame: np.ndarray, batch: int = 0, all_faces: bool = False
                ) -> list[tuple[str, Callable[[], object], bool]]:
    """(stage name, call, slow) for one Runtime on one frame; slow stages run the detector and get fewer calls.

    The crop, model and decode stages take the detector's first face (`all_faces`: every face it finds), or a
    central box when it finds none; `batch` > 0 adds the pose model on a batch of that many copies.
    """
    from ..decode import decode_outputs
    from ..errors import ConfigError
    from ..preprocess import prepare_batch

    if rt.parts:
        raise ConfigError("per-stage latency times one model's crop, model and decode stages; an ensemble runs several: "
                          "time it end to end with `edgepose bench --model ENSEMBLE`")
    spec, crop = rt.manifest.input, rt.manifest.crop
    found = rt.detector.detect(frame)
    h, w = frame.shape[:2]
    boxes = [tuple(b) for b in (found.boxes if all_faces else found.boxes[:1])] or [(w * 0.4, h * 0.3, w * 0.6, h * 0.6)]
    inputs = prepare_batch(frame, boxes, crop, spec)
    raw = rt.members[0].run({spec.name: inputs})
    stages = [
        ("detect", lambda: rt.detector.detect(frame), True),
        ("crop + normalise" + ("" if all_faces else " (1 face)"), lambda: prepare_batch(frame, boxes, crop, spec), False),
        ("pose model" + ("" if all_faces else ", batch 1"), lambda: [m.run({spec.name: inputs}) for m in rt.members],
         False),
        ("decode", lambda: decode_outputs(raw, rt.manifest.output), False),
        ("end to end: infer(frame)", lambda: rt.infer(frame), True),
        ("end to end: infer(frame, boxes)", lambda: rt.infer(frame, boxes=boxes), False),
    ]
    if batch:
        many = np.repeat(inputs[:1], batch, axis=0)
        stages.insert(3, (f"pose model, batch {batch}", lambda: rt.predict(many), False))
    return stages


def stage_latency(runtimes: list, frame: np.ndarray, runs: int, warmup: int, min_time: float = 0.0, batch: int = 8,
                  rounds: int = 5) -> list[list[dict]]:
    """Per-stage latency of each Runtime on one frame: detect, crop, pose model (batch 1 and `batch`), decode, and
    end to end (with the detector, and with a given box); one list of stage rows per runtime.

    The calls are split into `rounds` rounds, and every round times every runtime in turn, so a machine that speeds
    up or slows down during the run shifts all runtimes alike instead of favouring whichever ran first. Each row has
    the statistics of all its calls plus the p50 of each round (`round_p50_ms`, whose min..max shows the drift).
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    calls = [stage_calls(rt, frame, batch) for rt in runtimes]
    times: list[list[list[np.ndarray]]] = [[[] for _ in c] for c in calls]
    for r in range(rounds):
        for k, stages in enumerate(calls):
            for j, (_, fn, slow) in enumerate(stages):
                total, first = (max(10, runs // 10), max(2, warmup // 5)) if slow else (runs, warmup)
                times[k][j].append(sample_calls(fn, -(-total // rounds), first if r == 0 else min(2, first),
                                                min_time / rounds))
    out = []
    for k, stages in enumerate(calls):
        rows = []
        for j, (name, _, _) in enumerate(stages):
            stats = latency_stats(np.concatenate(times[k][j]))
            stats["round_p50_ms"] = [float(np.median(t)) for t in times[k][j]]
            if name.startswith("pose model, batch") and name != "pose model, batch 1":
                stats["per_face_ms"] = stats["p50_ms"] / batch
            rows.append({"stage": name, **stats})
        out.append(rows)
    return out


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    """A markdown table of dict rows (floats to 2 decimals)."""
    def fmt(v):
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _skimage_data():
    """scikit-image's `data` module (the public-domain demo images), or an error naming the extra that brings it."""
    try:
        from skimage import data
    except ImportError as exc:
        from ..errors import BackendUnavailableError

        raise BackendUnavailableError("the demo frame needs scikit-image, which is not installed here: "
                                      "pip install 'edgepose[demo]'") from exc
    return data


def demo_frame(width: int = 640, height: int = 480) -> np.ndarray:
    """A width x height BGR frame holding one real face: scikit-image's public-domain NASA astronaut portrait."""
    import cv2

    data = _skimage_data()
    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    scale = min(width / img.shape[1], height / img.shape[0])
    img = cv2.resize(img, (int(img.shape[1] * scale), int(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    frame = np.full((height, width, 3), 40, np.uint8)
    y, x = (height - img.shape[0]) // 2, (width - img.shape[1]) // 2
    frame[y:y + img.shape[0], x:x + img.shape[1]] = img
    return frame


def demo_scene() -> np.ndarray:
    """A 960x480 BGR frame with two real faces: scikit-image's astronaut (frontal, public domain) and its cameraman
    (CC0, Lav Varshney), whose face is turned about 50 deg and tilted down: what `edgepose demo` shows."""
    import cv2

    data = _skimage_data()
    astronaut = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (480, 480), interpolation=cv2.INTER_AREA)
    camera = cv2.resize(cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR), (480, 480), interpolation=cv2.INTER_AREA)
    return np.concatenate([astronaut, camera], axis=1)
