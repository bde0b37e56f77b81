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


def record_folded_accuracy(folded: str | Path, source: Path, dev_root: str, models_dir=None) -> dict:
    """Re-measure the bundle folder `folded` (`edgepose manifest fold-input` of the manifest `source`) on AFLW2000 and
    record it, keeping the source's parity to PyTorch (it describes the graph before the fold, as `parity_source`
    says) and adding how far the folded model's poses are from the source bundle's on the same faces (an int8 model
    whose pixels became its quantized input moves by about an int8 step); per face, the folded model's distance to
    PyTorch is at most the sum of the two. Returns the metrics written."""
    import json

    import numpy as np

    from ..angles import euler_to_matrix, geodesic_degrees
    from ..evaluation.evaluate import evaluate
    from ..runtime import Runtime

    before = {k: v for k, v in json.loads(source.read_text()).get("metrics", {}).items() if k.startswith("parity")}
    with Runtime("cpu", str(source), models_dir=models_dir) as rt:
        _, ref, _ = evaluate(rt, "aflw2000", dev_root, progress=False)

    def versus_source(rt) -> dict:
        _, pred, _ = evaluate(rt, "aflw2000", dev_root, progress=False)
        turn = geodesic_degrees(euler_to_matrix(*pred.T), euler_to_matrix(*ref.T))
        return {**before, "parity_source": f"the graph before fold-input ({source})" if before else "none recorded",
                "folded_vs_source_geodesic_max_deg": float(turn.max()),
                "folded_vs_source_geodesic_mean_deg": float(np.mean(turn))}

    return record_accuracy(folded, "cpu", dev_root, versus_source)
