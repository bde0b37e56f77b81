"""Locating bundles: a model file plus its manifest.json, either packaged ('default') or on disk."""
from __future__ import annotations

from pathlib import Path

from .errors import ModelFormatError
from .manifest import Manifest, load_manifest, verify_model_file

BUNDLED = ("default",)


def bundled_dir(name: str) -> Path:
    return Path(__file__).resolve().parent / "bundles" / name


def resolve_bundle(model: str | Path) -> tuple[Manifest, Path]:
    """(manifest, model file path) for 'default', a bundle folder, or a manifest JSON path; checksum verified.

    Raises:
        ModelFormatError: nothing there, no manifest, or the model file is missing or fails its checksum.
    """
    text = str(model)
    path = bundled_dir(text) if text in BUNDLED else Path(text)
    if path.is_dir():
        path = path / "manifest.json"
    if not path.exists():
        raise ModelFormatError(f"no bundle at '{model}': expected 'default', a bundle folder holding manifest.json, "
                               "or the path of a manifest JSON")
    if path.suffix != ".json":
        raise ModelFormatError(f"'{path}' is not a manifest; pass the bundle folder or its manifest.json "
                               "(a bare model file needs a manifest saying how to feed and decode it)")
    manifest = load_manifest(path)
    model_path = (path.parent / manifest.model_file).resolve()
    verify_model_file(manifest, model_path)
    return manifest, model_path
