"""`edgepose bench`: every platform usable here (and any extra model manifests) in one table — status, size,
accuracy, latency — with a failing entry reported, never stopping the others (Ultralytics' benchmark() as the bar).

Latency is measured in rounds interleaved across all entries and spread over the whole run, so a machine that slows
down for a while (shared or frequency-scaled CPUs) slows every entry alike: the per-round ratio to the first entry is
the robust figure, and the min..max of the round medians, taken over a minute or more, is the spread of the absolute
one. `reproducibility` checks a re-run against an earlier result.
"""
from __future__ import annotations

import time
from contextlib import ExitStack

import numpy as np

from .bench import demo_frame, environment, time_calls
from ..bundle import model_name
from ..errors import BackendUnavailableError, EdgePoseError

RAN, EVAL_FAILED, UNAVAILABLE = "✅ ran", "❎ eval failed", "❌ unavailable"
COLUMNS = ["model", "platform", "backend", "precision", "status", "size MB", "MAE", "|yaw| 60-99", "AUC@5 %",
           "pose p50 ms", "rounds min..max", "× first", "FPS (infer, box)"]
REASON_CHARS = 110


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS - 1] + "…"


def open_bundle(platform: str, model=None, **runtime_options):
    """The device half's opener: `Runtime(platform, model=...)` for bundles and manifests (a context manager)."""
    from ..runtime import Runtime

    return Runtime(platform, model=model, **runtime_options)


def _open(stack: ExitStack, label, platform, model, threads, detector, flip_tta=False, opener=open_bundle):
    """(row, runtime or None): backend, precision and size of one entry, or why it is unavailable. The runtime (and
    whatever `opener` made for it, e.g. a checkpoint's temporary export) lives as long as `stack`."""
    row = {"model": label, "platform": platform}
    try:
        rt = stack.enter_context(opener(platform, model, threads=threads, detector=detector, flip_tta=flip_tta))
    except (BackendUnavailableError, EdgePoseError, ImportError) as exc:
        return {**row, "status": f"{UNAVAILABLE}: {_short(exc)}", "reason": str(exc)}, None
    row.update(backend=rt.backend.name, precision=rt.manifest.precision,
               **{"size MB": sum(p.stat().st_size for p in rt.model_paths) / 1e6})
    return row, rt


def _score(row: dict, rt, dataset, root, protocol):
    """Accuracy into `row`; returns (pred, truth), or None when the model fails evaluation (status says why)."""
    from .evaluate import evaluate

    try:
        summary, pred, truth = evaluate(rt, dataset, root, progress=False, protocol=protocol)
    except Exception as exc:  # an exported model that fails evaluation is a result, not a crash
        row.update(status=f"{EVAL_FAILED}: {_short(exc)}", reason=f"{type(exc).__name__}: {exc}")
        return None
    row.update({"status": RAN, "MAE": summary["mean"], "|yaw| 60-99": summary["bins"]["60-99"]["mean"],
                "AUC@5 %": summary["auc5"] * 100, "yaw": summary["yaw"], "pitch": summary["pitch"],
                "roll": summary["roll"], "missed": summary.get("missed", 0)})
    return pred, truth


class _Rounds:
    """Latency rounds over all open runtimes: each round times every entry (pose model batch 1, and infer with a
    box). Rounds are spread over the whole run (one after each evaluation, the rest spaced to fill a minimum span),
    so the spread of the round medians covers the machine's drift over a minute or more, not one burst of calls."""

    def __init__(self, runtimes: list, per_round: int):
        frame = demo_frame(640, 480)
        box = [(250.0, 80.0, 330.0, 165.0)]
        self.calls = []
        for rt in runtimes:  # the pose model(s) on one face (flip TTA: the crop and its mirror; ensembles: each member)
            self.calls.append((rt.run_pose_model, lambda rt=rt: rt.infer(frame, boxes=box)))
        self.per_round = per_round
        self.pose: list[list[float]] = [[] for _ in runtimes]
        self.e2e: list[list[float]] = [[] for _ in runtimes]
        self.stamps: list[float] = []

    def run(self, active: list[int]) -> None:
        first = not self.stamps
        self.stamps.append(time.perf_counter())
        for i in active:
            pose_fn, e2e_fn = self.calls[i]
            self.pose[i].append(time_calls(pose_fn, self.per_round, 5 if first else 2)["p50_ms"])
            self.e2e[i].append(time_calls(e2e_fn, max(5, self.per_round // 2), 2)["p50_ms"])

    def fill(self, rows: list[dict], ran: list[int]) -> None:
        """Pose p50 (median of the round medians), their min..max, the per-round ratio to the first entry that ran,
        and end-to-end FPS, into the rows of the entries in `ran` (timed in every round)."""
        pose = np.array([self.pose[i] for i in ran]).T  # (rounds, entries)
        e2e = np.array([self.e2e[i] for i in ran]).T
        ratio = pose / pose[:, :1]
        for j, i in enumerate(ran):
            lo, hi = pose[:, j].min(), pose[:, j].max()
            rows[i].update({"pose p50 ms": float(np.median(pose[:, j])), "rounds min..max": f"{lo:.2f}..{hi:.2f}",
                            "spread_ms": [float(lo), float(hi)], "× first": float(np.median(ratio[:, j])),
                            "FPS (infer, box)": 1e3 / float(np.median(e2e[:, j])),
                            "pose rounds ms": pose[:, j].tolist(), "ratio rounds": ratio[:, j].tolist()})


def run_bench(platforms: list[str], models: list[str], dataset: str, root: str, protocol: str = "label",
              threads: int = 1, runs: int = 200, model_platform: str = "cpu", detector=None,
              plots_dir: str | None = None, rounds: int = 15, flip_tta: list[str] = (), span: float = 60.0,
              opener=open_bundle) -> dict:
    """Bench each platform's own bundle, each extra manifest (on `model_platform`) and, for the platforms named in
    `flip_tta`, the bundle again with flip test-time augmentation; returns rows + environment.

    Every entry is opened first; then a latency round over all of them follows each evaluation, and further rounds
    follow, spread evenly so that the rounds cover at least `span` seconds, until there are `rounds` (at least one
    per entry); `runs` calls per entry are split evenly over the rounds. `opener(platform, model, **options)` opens
    each entry as a context manager: the device half opens bundles; the CLI passes the host-side
    `edgepose.exporters.checkpoint_runtime.open_runtime`, which also takes training checkpoints.
    """
    entries = [("default", p, None, False) for p in platforms] + [(model_name(m), model_platform, m, False) for m in models]
    entries += [("default + flip TTA", p, None, True) for p in flip_tta]
    rows, curves, opened = [], {}, []
    with ExitStack() as exports:
        for label, platform, model, tta in entries:
            row, rt = _open(exports, label, platform, model, threads, detector, tta, opener)
            rows.append(row)
            if rt is not None:
                opened.append((len(rows) - 1, rt))
        timer = _Rounds([rt for _, rt in opened], max(10, runs // max(rounds, len(opened), 1)))
        active = list(range(len(opened)))
        for k, (i, rt) in enumerate(opened):
            curve = _score(rows[i], rt, dataset, root, protocol)
            if curve is None:
                active.remove(k)
            else:
                curves[f"{rows[i]['model']} / {rows[i]['platform']}"] = curve
            timer.run(active)
        while active and len(timer.stamps) < rounds:  # the rest spread evenly to fill `span` seconds
            left = span - (time.perf_counter() - timer.stamps[0])
            time.sleep(max(0.0, left / (rounds - len(timer.stamps))))
            timer.run(active)
        if active:
            timer.fill([rows[i] for i, _ in opened], active)
    plots = []
    if plots_dir and curves:
        from .plots import plot_errors

        plots = [str(p) for p in plot_errors(curves, plots_dir, f"{dataset} ({protocol} boxes)")]
    first = rows[opened[active[0]][0]] if opened and active else None
    span = timer.stamps[-1] - timer.stamps[0] if opened and timer.stamps else 0.0
    return {"environment": environment(), "dataset": dataset, "root": root, "protocol": protocol,
            "threads": threads, "rounds": len(timer.stamps) if opened else 0, "rounds_span_s": span,
            "ratio_reference": f"{first['model']} / {first['platform']}" if first else "", "rows": rows,
            "plots": plots, "platforms": list(platforms), "models": list(models)}  # rows name models, not files


def reproducibility(previous: dict, current: dict) -> tuple[list[dict], str]:
    """Compare two `run_bench` results entry by entry: is the MAE identical, and does this run's pose p50 fall inside
    the previous run's round spread? Returns rows for a table and a one-line verdict."""
    before = {(r["model"], r["platform"]): r for r in previous["rows"] if r.get("status") == RAN}
    out, same_mae, inside, both = [], 0, 0, 0
    for r in current["rows"]:
        old = before.get((r["model"], r["platform"]))
        needed = ("MAE", "pose p50 ms", "spread_ms", "rounds min..max", "× first")
        if r.get("status") != RAN or old is None or "pose p50 ms" not in r or not all(k in old for k in needed):
            continue  # not measured in both runs (or an entry of an older file without the figures)
        both += 1
        lo, hi = old["spread_ms"]
        mae_ok, p50_ok = round(r["MAE"], 4) == round(old["MAE"], 4), lo <= r["pose p50 ms"] <= hi
        same_mae, inside = same_mae + mae_ok, inside + p50_ok
        out.append({"model": r["model"], "platform": r["platform"], "MAE then": old["MAE"], "MAE now": r["MAE"],
                    "MAE same": "yes" if mae_ok else "NO", "p50 then": old["pose p50 ms"],
                    "spread then": old["rounds min..max"], "p50 now": r["pose p50 ms"],
                    "inside": "yes" if p50_ok else "NO", "× first then": old["× first"], "× first now": r["× first"]})
    verdict = (f"{both} entries in both runs: MAE identical for {same_mae}, pose p50 inside the previous run's "
               f"round spread for {inside}")
    return out, verdict
