"""Ensemble manifests: a manifest that lists member bundles (each with its own crop, input and decoding), a weight
and flip TTA per member; the runtime returns the weighted rotation mean of the members' poses.

    {"schema": 1, "name": "accurate", "members": [
        {"bundle": "born", "weight": 0.5, "flip_tta": true},
        {"bundle": "3ddfa_v2", "weight": 0.5, "flip_tta": true}],
     "source": {...}, "metrics": {...}}

A member's `bundle` is a folder (or manifest JSON) inside the ensemble manifest's own folder, like every file a
manifest names; members are ordinary bundles (a third-party model's manifest included) but not ensembles themselves.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ModelFormatError
from .manifest import SCHEMA_VERSION, check_model_name


@dataclass(frozen=True)
class EnsembleMember:
    """One member: its bundle (resolved path), its weight in the rotation mean (> 0) and whether it also runs mirrored."""

    bundle: Path
    weight: float = 1.0
    flip_tta: bool = False


@dataclass(frozen=True)
class EnsembleManifest:
    name: str
    members: tuple[EnsembleMember, ...]
    path: Path
    source: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)


def valid_weight(weight) -> bool:
    """A member weight: a finite number > 0 (not a bool)."""
    return not isinstance(weight, bool) and isinstance(weight, (int, float)) and math.isfinite(weight) and weight > 0


def is_ensemble_file(path: Path) -> bool:
    """True when the manifest JSON at `path` lists members (read errors are left to the ordinary manifest reader)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "members" in data


def load_ensemble(path: str | Path) -> EnsembleManifest:
    """Read and check an ensemble manifest.

    Raises:
        ModelFormatError: unknown keys, no members, a weight that is not a finite number > 0, a flip_tta that is not
            true/false, a member bundle outside the manifest's folder or missing, or a member that is an ensemble.
    """
    path = Path(path)
    where = f"ensemble manifest '{path}'"
    data = json.loads(path.read_text())
    unknown = set(data) - {"schema", "name", "members", "source", "metrics"}
    if unknown:
        raise ModelFormatError(f"{where}: unknown key(s) {sorted(unknown)}; an ensemble manifest has schema, name, "
                               "members, source and metrics (model settings live in each member's own manifest)")
    schema = data.get("schema", SCHEMA_VERSION)
    if isinstance(schema, bool) or not isinstance(schema, int) or schema > SCHEMA_VERSION:
        raise ModelFormatError(f"{where}: schema {schema!r} is not one this edgepose reads (<= {SCHEMA_VERSION})")
    raw = data["members"]
    if not isinstance(raw, list) or not raw:
        raise ModelFormatError(f"{where}: 'members' must be a non-empty list of {{\"bundle\": FOLDER, \"weight\": W, "
                               "\"flip_tta\": true/false}}")
    members = []
    for i, m in enumerate(raw):
        key = f"{where}: members[{i}]"
        if not isinstance(m, dict) or "bundle" not in m or set(m) - {"bundle", "weight", "flip_tta"}:
            raise ModelFormatError(f"{key} must be {{\"bundle\": FOLDER, \"weight\": W, \"flip_tta\": true/false}}, "
                                   f"got {m!r}")
        check_model_name(m["bundle"], f"{key}.bundle")
        weight, flip = m.get("weight", 1.0), m.get("flip_tta", False)
        if not valid_weight(weight):
            raise ModelFormatError(f"{key}.weight {weight!r} must be a finite number > 0")
        if not isinstance(flip, bool):
            raise ModelFormatError(f"{key}.flip_tta {flip!r} must be true or false")
        bundle = (path.parent / m["bundle"]).resolve()
        if not bundle.is_relative_to(path.parent.resolve()):
            raise ModelFormatError(f"{key}.bundle '{m['bundle']}' resolves outside the ensemble's folder; copy the "
                                   "member bundle into it")
        manifest = bundle / "manifest.json" if bundle.is_dir() else bundle
        if not manifest.is_file():
            raise ModelFormatError(f"{key}.bundle '{m['bundle']}' is not a bundle folder or manifest JSON inside "
                                   f"'{path.parent}'")
        if is_ensemble_file(manifest):
            raise ModelFormatError(f"{key}.bundle '{m['bundle']}' is itself an ensemble; list its members instead")
        members.append(EnsembleMember(bundle, float(weight), flip))
    for what in ("source", "metrics"):
        if not isinstance(data.get(what, {}), dict):
            raise ModelFormatError(f"{where}: '{what}' must be a mapping")
    return EnsembleManifest(str(data.get("name", path.parent.name)), tuple(members), path, data.get("source", {}),
                            data.get("metrics", {}))


def build_ensemble(members: list[tuple[str, float, bool]], out: str | Path, name: str = "",
                   models_dir: str | Path | None = None, source: dict | None = None) -> Path:
    """Write an ensemble bundle: each member bundle (packaged name, folder or manifest; its model files found beside
    it or in `models_dir`, checksums verified) copied into `out/<member name>` with its manifest and any LICENSE*
    file beside its model, then `out/manifest.json`. `out` must be new or empty; it appears whole or not at all.

    Returns:
        the ensemble manifest's path.

    Raises:
        ConfigError: `out` holds files, two members share a name, or a weight or flip value is invalid.
        ModelFormatError: a member is missing, fails its checksum or is itself an ensemble.
    """
    import os
    import shutil
    import tempfile

    from .atomic import atomic_write_json, check_output_folder
    from .bundle import locate_manifest, model_name, resolve_bundle
    from .errors import ConfigError

    out = check_output_folder(out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out '{out}' is not empty; an ensemble bundle is written into a new or empty folder")
    for spec, weight, flip in members:
        if not valid_weight(weight):
            raise ConfigError(f"member '{spec}': weight {weight!r} must be a finite number > 0")
        if not isinstance(flip, bool):
            raise ConfigError(f"member '{spec}': flip_tta {flip!r} must be True or False")
    names = [model_name(spec) for spec, _, _ in members]
    if not members or len(set(names)) != len(names):
        raise ConfigError(f"an ensemble needs members with distinct names (bundle folder or manifest stem), got {names}")
    entries, provenance = [], []
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staged-"))
    try:
        for (spec, weight, flip), member in zip(members, names):
            manifest, files = resolve_bundle(spec, models_dir)  # refuses a member that is itself an ensemble
            folder = stage / member
            folder.mkdir()
            names_in_manifest = [manifest.model_file] + [m["model_file"] for m in manifest.ensemble]
            for path, file_name in zip(files, names_in_manifest):  # under the names its manifest gives them
                (folder / file_name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, folder / file_name)
                for licence in path.parent.glob("LICENSE*"):
                    shutil.copy2(licence, folder / licence.name)
            data = json.loads(locate_manifest(spec).read_text())
            atomic_write_json(folder / "manifest.json", data)
            entries.append({"bundle": member, "weight": weight, "flip_tta": flip})
            provenance.append({"bundle": member, **{k: data.get("source", {}).get(k) for k in
                                                    ("recipe", "checkpoint_sha256", "origin") if
                                                    data.get("source", {}).get(k)}})
        atomic_write_json(stage / "manifest.json", {
            "schema": SCHEMA_VERSION, "name": name or out.name, "members": entries, "metrics": {},
            "source": {"built_by": "edgepose manifest ensemble", "members": provenance, **(source or {})}})
        for m in load_ensemble(stage / "manifest.json").members:  # what it wrote reads back and every file verifies
            resolve_bundle(m.bundle)
        if out.exists():
            out.rmdir()
        os.replace(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out / "manifest.json"


def parse_member(text: str) -> tuple[str, float, bool]:
    """'BUNDLE[=WEIGHT][:flip]' -> (bundle, weight, flip_tta), e.g. 'default=0.5:flip'.

    Raises:
        ConfigError: a weight that is not a finite number > 0, or a suffix other than ':flip'.
    """
    from .errors import ConfigError

    spec, flip = (text[:-5], True) if text.endswith(":flip") else (text, False)
    weight = 1.0
    if "=" in spec:
        spec, raw = spec.rsplit("=", 1)
        try:
            weight = float(raw)
        except ValueError:
            weight = -1.0
    if not spec or not valid_weight(weight):
        raise ConfigError(f"--member '{text}': give BUNDLE[=WEIGHT][:flip] with a weight > 0, e.g. default=0.5:flip")
    return spec, weight, flip
