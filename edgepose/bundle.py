"""Locating bundles: a model file plus its manifest.json, either packaged ('default') or on disk."""
from __future__ import annotations

from pathlib import Path

from .errors import ModelFormatError
from .manifest import Manifest, load_manifest, model_files

BUNDLES_DIR = Path(__file__).resolve().parent / "bundles"


def bundled_dir(name: str) -> Path:
    """Folder of a bundle shipped inside the package ('default', 'default-android', ...)."""
    return BUNDLES_DIR / name


def bundled_names() -> list[str]:
    return sorted(p.name for p in BUNDLES_DIR.iterdir() if (p / "manifest.json").is_file())


def resolve_bundle(model: str | Path, models_dir: str | Path | None = None) -> tuple[Manifest, list[Path]]:
    """(manifest, model file paths) for a packaged bundle, a bundle folder, or a manifest JSON; checksums verified.

    Args:
        models_dir: a folder to look for the model files in when they are not beside the manifest (third-party
            models kept outside the repository, e.g. ../shared/models/peers for benchmarks/peers/*.json).

    Raises:
        ModelFormatError: nothing there, no manifest, a model file name escaping its folder, or a model file that
            is missing, has no checksum, or fails it.
    """
    path = locate_manifest(model)
    if models_dir is not None and not Path(models_dir).expanduser().is_dir():
        raise ModelFormatError(f"models folder '{models_dir}' does not exist; give the folder holding the model files "
                               "the manifest names")
    from .ensemble import is_ensemble_file

    if is_ensemble_file(path):
        raise ModelFormatError(f"'{model}' is an ensemble manifest (it lists member bundles); open it with "
                               "edgepose.Runtime, which runs each member, or pass one member's bundle")
    manifest = load_manifest(path)
    return manifest, model_files(manifest, path.parent, models_dir, f"manifest '{path}'")


def locate_manifest(model: str | Path) -> Path:
    """The manifest JSON of a packaged bundle name, a bundle folder or a manifest path.

    Raises:
        ModelFormatError: nothing there, a training checkpoint, or a file that is not a manifest.
    """
    text = str(model)
    path = bundled_dir(text) if (bundled_dir(text) / "manifest.json").is_file() else Path(text).expanduser()
    if path.is_dir():
        path = path / "manifest.json"
    if not path.exists():
        raise ModelFormatError(f"no bundle at '{model}': expected a packaged bundle ({', '.join(bundled_names())}), "
                               "a bundle folder holding manifest.json, or the path of a manifest JSON. Create one "
                               "with `edgepose export CHECKPOINT --platform NAME` (TensorRT: python export/jetson.py "
                               "on the device)")
    if path.suffix == ".pt":
        raise ModelFormatError(f"'{model}' is a training checkpoint; the runtime runs exported bundles. Export it "
                               f"(`edgepose export {model} --platform NAME`), or open it through a temporary export with "
                               "`edgepose.exporters.checkpoint_runtime.open_runtime(PLATFORM, PATH)` (needs edgepose[train]; the CLI's "
                               "--model does this for you)")
    if path.suffix != ".json":
        raise ModelFormatError(f"'{path}' is not a manifest; pass the bundle folder or its manifest.json "
                               "(a bare model file needs a manifest saying how to feed and decode it)")
    return path


def model_name(model: str | Path) -> str:
    """A short name for a model given as `--model` takes it (table rows, label-file columns, weight-average members):
    the bundle folder for a folder or its manifest.json, the run folder for runs/<name>/best.pt and last.pt, else the
    file stem (benchmarks/peers/fsanet.json -> fsanet)."""
    p = Path(model)
    if p.is_dir():
        return p.resolve().name
    if p.name == "manifest.json" or (p.suffix == ".pt" and p.stem in ("best", "last")):
        return p.resolve().parent.name
    return p.stem
