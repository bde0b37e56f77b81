"""The one accuracy recorder of every export: score a bundle on AFLW2000 through its platform's Runtime and write the
figures into its manifest. Torch-free, so the engine build on a Jetson (export/jetson.py) records the same way."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path


def record_accuracy(bundle: str | Path, platform: str, dev_root: str,
                    extra: Callable[[object], dict] | None = None) -> dict:
    """Evaluate the bundle folder `bundle` on the AFLW2000 folder `dev_root` through `Runtime(platform)` and store
    `metrics` in its manifest: {"aflw2000-dev": summary} plus whatever `extra(runtime)` returns (e.g. the exporter's
    parity against PyTorch). Returns the metrics written."""
    from ..evaluation.evaluate import evaluate
    from ..manifest import load_manifest, save_manifest
    from ..evaluation.metrics import manifest_metrics
    from ..runtime import Runtime

    from ..atomic import atomic_write_json
    from ..ensemble import is_ensemble_file

    path = Path(bundle) / "manifest.json"
    with Runtime(platform, model=str(bundle)) as rt:
        summary, _, _ = evaluate(rt, "aflw2000", dev_root, progress=False)
        metrics = {"aflw2000-dev": manifest_metrics(summary), **(extra(rt) if extra else {})}
    if is_ensemble_file(path):  # an ensemble manifest keeps its members; only its metrics change
        import json

        atomic_write_json(path, {**json.loads(path.read_text()), "metrics": metrics})
        return metrics
    save_manifest(dataclasses.replace(load_manifest(path), metrics=metrics), path)
    return metrics
