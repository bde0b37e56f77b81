"""`edgepose bench`: every platform usable here (and any extra model manifests) in one table — status, size,
accuracy, latency — with a failing entry reported, never stopping the others (Ultralytics' benchmark() as the bar).

Latency is measured in rounds interleaved across all entries, so a machine that slows down for a while (shared
or frequency-scaled CPUs) slows every entry alike: the per-round ratio to the first entry is the robust figure, and
the min..max of the round medians is the spread of the absolute one.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .bench import demo_frame, environment, time_calls
from .errors import BackendUnavailableError, EdgePoseError

RAN, EVAL_FAILED, UNAVAILABLE = "✅ ran", "❎ eval failed", "❌ unavailable"
COLUMNS = ["model", "platform", "backend", "precision", "status", "size MB", "MAE", "|yaw| 60-99", "AUC@5 %",
           "pose p50 ms", "rounds min..max", "× first", "FPS (infer, box)"]
REASON_CHARS = 110


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS - 1] + "…"


def _open_and_score(label, platform, model, dataset, root, protocol, threads, detector, flip_tta=False):
    """(row, runtime or None, (pred, truth) or None): status, size and accuracy of one entry."""
    from .evaluate import evaluate
    from .runtime import Runtime

    row = {"model": label, "platform": platform}
    try:
        rt = Runtime(platform, model=model, threads=threads, detector=detector, flip_tta=flip_tta)
    except (BackendUnavailableError, EdgePoseError, ImportError) as exc:
        return {**row, "status": f"{UNAVAILABLE}: {_short(exc)}", "reason": str(exc)}, None, None
    row.update(backend=rt.backend.name, precision=rt.manifest.precision,
               **{"size MB": sum(p.stat().st_size for p in rt.model_paths) / 1e6})
    try:
        summary, pred, truth = evaluate(rt, dataset, root, progress=False, protocol=protocol)
    except Exception as exc:  # an exported model that fails evaluation is a result, not a crash
        rt.close()
        return {**row, "status": f"{EVAL_FAILED}: {_short(exc)}", "reason": f"{type(exc).__name__}: {exc}"}, None, None
    row.update({"status": RAN, "MAE": summary["mean"], "|yaw| 60-99": summary["bins"]["60-99"]["mean"],
                "AUC@5 %": summary["auc5"] * 100, "yaw": summary["yaw"], "pitch": summary["pitch"],
                "roll": summary["roll"], "missed": summary.get("missed", 0)})
    return row, rt, (pred, truth)


def _interleaved_latency(entries: list[tuple[dict, object]], runs: int, rounds: int) -> None:
    """Fill pose p50 / spread / ratio and end-to-end FPS into each row, timing all runtimes round by round."""
    frame = demo_frame(640, 480)
    box = [(250.0, 80.0, 330.0, 165.0)]
    calls = []
    for row, rt in entries:
        spec = rt.manifest.input
        x = np.zeros(spec.shape(2 if rt.flip_tta else 1), np.float32)  # flip TTA runs each crop and its mirror
        calls.append((lambda rt=rt, x=x, name=spec.name: [m.run({name: x}) for m in rt.members],
                      lambda rt=rt: rt.infer(frame, boxes=box)))
    per_round = max(5, runs // rounds)
    pose = np.zeros((rounds, len(entries)))
    e2e = np.zeros((rounds, len(entries)))
    for r in range(rounds):
        for i, (pose_fn, e2e_fn) in enumerate(calls):
            pose[r, i] = time_calls(pose_fn, per_round, 5 if r == 0 else 2)["p50_ms"]
            e2e[r, i] = time_calls(e2e_fn, max(5, per_round // 2), 2)["p50_ms"]
    ratio = pose / pose[:, :1]
    for i, (row, _) in enumerate(entries):
        p50 = float(np.median(pose[:, i]))
        row.update({"pose p50 ms": p50, "rounds min..max": f"{pose[:, i].min():.2f}..{pose[:, i].max():.2f}",
                    "× first": float(np.median(ratio[:, i])), "FPS (infer, box)": 1e3 / float(np.median(e2e[:, i])),
                    "pose rounds ms": pose[:, i].tolist(), "ratio rounds": ratio[:, i].tolist()})


def run_bench(platforms: list[str], models: list[str], dataset: str, root: str, protocol: str = "label",
              threads: int = 1, runs: int = 200, model_platform: str = "cpu", detector=None,
              plots_dir: str | None = None, rounds: int = 5, flip_tta: list[str] = ()) -> dict:
    """Bench each platform's own bundle, each extra manifest (on `model_platform`) and, for the platforms named in
    `flip_tta`, the bundle again with flip test-time augmentation; returns rows + environment."""
    rows, curves, opened = [], {}, []
    entries = [("default", p, None, False) for p in platforms] + [(Path(m).stem, model_platform, m, False) for m in models]
    entries += [("default + flip TTA", p, None, True) for p in flip_tta]
    try:
        for label, platform, model, tta in entries:
            row, rt, curve = _open_and_score(label, platform, model, dataset, root, protocol, threads, detector, tta)
            rows.append(row)
            if rt is not None:
                opened.append((row, rt))
                curves[f"{label} / {platform}"] = curve
        if opened:
            _interleaved_latency(opened, runs, rounds)
    finally:
        for _, rt in opened:
            rt.close()
    plots = []
    if plots_dir and curves:
        from .plots import plot_errors

        plots = [str(p) for p in plot_errors(curves, plots_dir, f"{dataset} ({protocol} boxes)")]
    first = opened[0][0]["model"] + " / " + opened[0][0]["platform"] if opened else ""
    return {"environment": environment(), "dataset": dataset, "root": root, "protocol": protocol,
            "threads": threads, "rounds": rounds, "ratio_reference": first, "rows": rows, "plots": plots}
