"""`edgepose bench`: every platform usable here (and any extra model manifests) in one table — status, size,
accuracy, latency — with a failing entry reported, never stopping the others (Ultralytics' benchmark() as the bar)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .bench import demo_frame, environment, time_calls
from .errors import BackendUnavailableError, EdgePoseError

RAN, EVAL_FAILED, UNAVAILABLE = "✅ ran", "❎ eval failed", "❌ unavailable"
COLUMNS = ["model", "platform", "backend", "precision", "status", "size MB", "MAE", "|yaw| 60-99", "AUC@5 %",
           "pose p50 ms", "± std", "FPS (infer, box)"]
REASON_CHARS = 110


def bench_one(label: str, platform: str, model: str | None, dataset: str, root: str, protocol: str, threads: int,
              runs: int, detector=None) -> tuple[dict, tuple | None]:
    """One row of the table, plus (pred, truth) when the evaluation ran."""
    from .evaluate import evaluate
    from .runtime import Runtime

    row = {"model": label, "platform": platform}
    try:
        rt = Runtime(platform, model=model, threads=threads, detector=detector)
    except (BackendUnavailableError, EdgePoseError, ImportError) as exc:
        return {**row, "status": f"{UNAVAILABLE}: {_short(exc)}", "reason": str(exc)}, None
    with rt:
        row.update(backend=rt.backend.name, precision=rt.manifest.precision,
                   **{"size MB": sum(p.stat().st_size for p in rt.model_paths) / 1e6})
        try:
            summary, pred, truth = evaluate(rt, dataset, root, progress=False, protocol=protocol)
        except Exception as exc:  # an exported model that fails evaluation is a result, not a crash
            return {**row, "status": f"{EVAL_FAILED}: {_short(exc)}", "reason": f"{type(exc).__name__}: {exc}"}, None
        spec = rt.manifest.input
        x = np.zeros((1, 3, *spec.size) if spec.layout == "NCHW" else (1, *spec.size, 3), np.float32)
        pose = time_calls(lambda: [m.run({spec.name: x}) for m in rt.members], runs, max(5, runs // 10))
        frame = demo_frame(640, 480)
        box = [(250.0, 80.0, 330.0, 165.0)]
        e2e = time_calls(lambda: rt.infer(frame, boxes=box), runs, max(5, runs // 10))
    row.update({"status": RAN, "MAE": summary["mean"], "|yaw| 60-99": summary["bins"]["60-99"]["mean"],
                "AUC@5 %": summary["auc5"] * 100, "pose p50 ms": pose["p50_ms"], "± std": pose["std_ms"],
                "FPS (infer, box)": e2e["per_s"], "yaw": summary["yaw"], "pitch": summary["pitch"],
                "roll": summary["roll"], "missed": summary.get("missed", 0)})
    return row, (pred, truth)


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS - 1] + "…"


def run_bench(platforms: list[str], models: list[str], dataset: str, root: str, protocol: str = "label",
              threads: int = 1, runs: int = 200, model_platform: str = "cpu", detector=None,
              plots_dir: str | None = None) -> dict:
    """Bench each platform's own bundle and each extra manifest (on `model_platform`); returns rows + environment."""
    rows, curves = [], {}
    entries = [("default", p, None) for p in platforms] + [(Path(m).stem, model_platform, m) for m in models]
    for label, platform, model in entries:
        row, curve = bench_one(label, platform, model, dataset, root, protocol, threads, runs, detector)
        rows.append(row)
        if curve is not None:
            curves[f"{label} / {platform}"] = curve
    plots = []
    if plots_dir and curves:
        from .plots import plot_errors

        plots = [str(p) for p in plot_errors(curves, plots_dir, f"{dataset} ({protocol} boxes)")]
    return {"environment": environment(), "dataset": dataset, "root": root, "protocol": protocol,
            "threads": threads, "rows": rows, "plots": plots}
