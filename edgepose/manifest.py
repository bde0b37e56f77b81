"""Bundle manifests: the JSON beside every model file that says how to feed it, decode it, and what it scored."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from .atomic import atomic_write_bytes
from .decode import check_decoding
from .errors import ModelFormatError
from .typed import at_least, between, from_mapping

SCHEMA_VERSION = 1
CROP_PROTOCOLS = ("square", "expand", "roi")
INPUT_DTYPES = ("float32", "uint8", "int8")
MODEL_FORMATS = ("onnx", "tflite", "tensorrt")
PRECISIONS = ("fp32", "fp16", "int8")
HASH_COMMAND = "edgepose manifest hash MANIFEST [--models-dir FOLDER]"


@dataclass(frozen=True)
class InputSpec:
    """How to build the model input from a face crop.

    Attributes:
        name: input tensor name. size: (height, width) in pixels. layout: "NCHW" or "NHWC".
        color: "RGB" or "BGR". mean, std: per-channel, applied as (pixel - mean) / std on 0..255 values.
        batch: fixed batch size of the model, or 0 when the batch dimension is dynamic.
        dtype: "float32" or "uint8"/"int8" for quantized inputs (the backend applies scale and zero point).
    """

    name: str = "input"
    size: tuple[int, int] = field(default=(112, 112), metadata=between(1, 8192, whole=True))
    layout: str = "NCHW"
    color: str = "RGB"
    mean: tuple[float, float, float] = field(default=(127.5, 127.5, 127.5), metadata=between(-1e6, 1e6))
    std: tuple[float, float, float] = field(default=(127.5, 127.5, 127.5), metadata=between(1e-12, 1e6))
    batch: int = field(default=0, metadata=between(0, 1 << 16, whole=True))
    dtype: str = "float32"

    def shape(self, batch: int) -> tuple[int, int, int, int]:
        """The input tensor shape for `batch` images in this layout."""
        h, w = self.size
        return (batch, 3, h, w) if self.layout == "NCHW" else (batch, h, w, 3)

    def dummy(self, batch: int, seed: int = 0) -> np.ndarray:
        """A random input of `batch` crops for timing: pixels 0..255 for a uint8 input (a model that normalises
        itself), the int8 range for int8, else standard-normal values (already normalised), in this dtype."""
        rng = np.random.default_rng(seed)
        if self.dtype in ("uint8", "int8"):
            info = np.iinfo(self.dtype)
            return rng.integers(info.min, info.max + 1, self.shape(batch)).astype(self.dtype)
        return rng.standard_normal(self.shape(batch)).astype(self.dtype)


@dataclass(frozen=True)
class CropSpec:
    """How to cut the face out of the frame.

    protocol "square": a square of side `scale` * max(w, h) on the box centre, border replicated (edgepose models).
    protocol "expand": the box grown by `margins` (left, top, right, bottom) as fractions of w and h, clipped to the
    frame without padding, coordinates truncated with int() (FSA-Net / WHENet data preparation).
    protocol "roi": a square of side int(`scale` * (w + h) / 2) centred on the box centre moved by `shift` (dx, dy as
    fractions of (w + h) / 2), corners rounded, zero padding outside the frame, bilinear resize (3DDFA / 3DDFA_V2's
    `parse_roi_box_from_bbox` + `crop_img`: scale 1.58, shift (0, 0.14)).
    """

    protocol: str = "square"
    scale: float = field(default=1.6, metadata=between(0.5, 10.0))  # below half the face there is no face to pose
    margins: tuple[float, float, float, float] = field(default=(0.0, 0.0, 0.0, 0.0), metadata=between(0.0, 5.0))
    shift: tuple[float, float] = field(default=(0.0, 0.0), metadata=between(-1.0, 1.0))
    aligned: bool = False  # trained on eye-levelled crops: the runtime must level them (needs detector landmarks)


@dataclass(frozen=True)
class Manifest:
    """Everything a runtime needs to run a pose model file, plus where it came from and what it scored."""

    model_file: str
    format: str
    precision: str
    input: InputSpec
    crop: CropSpec
    output: dict
    sha256: str = ""
    name: str = ""
    ensemble: tuple = ()  # more members {"model_file", "sha256"}; decoded angles are averaged over all
    source: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    schema: int = field(default=SCHEMA_VERSION, metadata=at_least(1, whole=True))

    def to_dict(self) -> dict:
        return asdict(self)


def manifest_from_dict(data: dict) -> Manifest:
    """Validate and build a Manifest from its JSON form.

    Raises:
        ModelFormatError: unknown keys, a missing section, a wrongly typed or out-of-range value, a model file name
            that is not a plain file name inside the manifest's folder, or values the runtime does not support.
    """
    if isinstance(data, dict) and "schema" in data:
        schema = data["schema"]
        if isinstance(schema, bool) or not isinstance(schema, int):
            raise ModelFormatError(f"manifest.schema must be a whole number (e.g. 1), got {schema!r}; write "
                                   f'"schema": {SCHEMA_VERSION} without quotes')
        if schema > SCHEMA_VERSION:
            raise ModelFormatError(f"manifest schema {schema} is newer than this edgepose ({SCHEMA_VERSION}); upgrade edgepose")
    manifest = from_mapping(Manifest, data, "manifest", ModelFormatError)
    check_model_name(manifest.model_file, "manifest.model_file")
    for i, member in enumerate(manifest.ensemble):
        if not isinstance(member, dict) or set(member) - {"model_file", "sha256"} or "model_file" not in member:
            raise ModelFormatError(f"manifest.ensemble[{i}] must be {{'model_file': NAME, 'sha256': HEX}}, got {member!r}")
        check_model_name(member["model_file"], f"manifest.ensemble[{i}].model_file")
        if not isinstance(member.get("sha256", ""), str):
            raise ModelFormatError(f"manifest.ensemble[{i}].sha256 must be a hex string, got {member['sha256']!r}")
    _check_choice(manifest.format, MODEL_FORMATS, "format")
    _check_choice(manifest.precision, PRECISIONS, "precision")
    _check_choice(manifest.input.layout, ("NCHW", "NHWC"), "input.layout")
    _check_choice(manifest.input.color, ("RGB", "BGR"), "input.color")
    _check_choice(manifest.input.dtype, INPUT_DTYPES, "input.dtype")
    _check_choice(manifest.crop.protocol, CROP_PROTOCOLS, "crop.protocol")
    for key, count in (("size", 2), ("mean", 3), ("std", 3)):
        if len(getattr(manifest.input, key)) != count:
            raise ModelFormatError(f"manifest.input.{key} must have {count} entries, got {list(getattr(manifest.input, key))}")
    if len(manifest.crop.shift) != 2:
        raise ModelFormatError(f"manifest.crop.shift must have 2 entries (dx, dy), got {list(manifest.crop.shift)}")
    if max(map(abs, manifest.crop.shift)) >= manifest.crop.scale / 2:
        raise ModelFormatError(f"manifest.crop.shift {list(manifest.crop.shift)} moves the crop (side {manifest.crop.scale}"
                               " x the box size) off the face's centre; each shift must be below half the crop scale")
    if len(manifest.crop.margins) != 4:
        raise ModelFormatError(f"manifest.crop.margins must have 4 entries (left, top, right, bottom), got "
                               f"{list(manifest.crop.margins)}")
    check_decoding(manifest.output)
    return manifest


def _check_choice(value: str, choices: tuple, key: str) -> None:
    if value not in choices:
        raise ModelFormatError(f"manifest.{key} '{value}' must be one of {', '.join(choices)}")


def check_model_name(name, key: str) -> None:
    """A model file a manifest names must be a relative path inside the manifest's folder: no '..', no absolute path,
    no '~'. Models kept elsewhere are reached through a models folder the user gives (Runtime(models_dir=...),
    --models-dir), never through the manifest.

    Raises:
        ModelFormatError: the name could point outside the folder.
    """
    if not isinstance(name, str) or not name.strip():
        raise ModelFormatError(f"{key} must be the model's file name, got {name!r}")
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if (PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or PureWindowsPath(name).drive
            or ".." in parts or name.startswith("~") or "\0" in name):
        raise ModelFormatError(f"{key} '{name}' must name a file inside the manifest's folder (no '..', '~' or absolute "
                               "path); for models kept elsewhere write just the file name and pass the folder "
                               "holding them as --models-dir FOLDER (Runtime(..., models_dir=FOLDER))")


def load_manifest(path: str | Path) -> Manifest:
    """Read a manifest JSON file.

    Raises:
        ModelFormatError: the file is missing, is not JSON, or fails validation.
    """
    return manifest_from_dict(_read_json(Path(path)))


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ModelFormatError(f"manifest '{path}' does not exist; a bundle is a model file plus its manifest.json")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"manifest '{path}' is not valid JSON ({exc}); fix it or re-export the bundle") from None


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_manifest(manifest: Manifest, path: str | Path) -> None:
    atomic_write_bytes(path, (json.dumps(manifest.to_dict(), indent=2) + "\n").encode())


def model_files(manifest: Manifest, folder: Path, models_dir: str | Path | None = None,
                where: str = "the manifest") -> list[Path]:
    """Every model file of a manifest (the primary, then ensemble members), resolved and checksum-verified.

    A name is looked up in the manifest's `folder`, then in `models_dir` when one is given; the resolved file (links
    followed) must lie inside the folder it was found in.

    Raises:
        ModelFormatError: a name escaping its folder, a missing file, a missing checksum (the message names the
            command that writes one) or a checksum that does not match.
    """
    pairs = [(manifest.model_file, manifest.sha256)] + [(m["model_file"], m.get("sha256", "")) for m in manifest.ensemble]
    roots = model_roots(folder, models_dir)
    paths = []
    for name, digest in pairs:
        path = locate_model_file(name, roots, where)
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
            raise ModelFormatError(f"{where} gives model file '{name}' no sha256 checksum (got {digest!r}); every model "
                                   f"file needs one: write it with `{HASH_COMMAND}` after checking the file is the one "
                                   "you mean")
        verify_model_file(path, digest)
        paths.append(path)
    return paths


def model_roots(folder: str | Path, models_dir: str | Path | None) -> list[Path]:
    """Where a manifest's file names are looked up: its own folder, then the user's models folder if given."""
    return [Path(folder)] + ([Path(models_dir).expanduser()] if models_dir else [])


def locate_model_file(name: str, roots: list[Path], where: str = "the manifest") -> Path:
    """The first `root / name` that exists, resolved, and checked to stay inside its root (no symlink escape).

    Raises:
        ModelFormatError: the name escapes, or the file is in none of the roots.
    """
    check_model_name(name, f"{where}: model_file")
    for root in roots:
        base = root.resolve()
        path = (base / name).resolve()
        if not (root / name).exists() and not path.exists():
            continue
        if not path.is_relative_to(base):
            raise ModelFormatError(f"model file '{root / name}' named by {where} resolves to '{path}', outside "
                                   f"'{base}' (a link leaving the folder); copy the file into the folder instead")
        return path
    searched = " or ".join(f"'{r}'" for r in roots)
    hint = "" if len(roots) > 1 else "; if the model files live elsewhere, pass their folder as --models-dir FOLDER " \
                                      "(Runtime(..., models_dir=FOLDER))"
    raise ModelFormatError(f"model file '{name}' named by {where} does not exist in {searched}{hint}")


def verify_model_file(model_path: Path, digest: str) -> None:
    """Raise ModelFormatError when the model file is missing or its checksum differs from `digest`."""
    if not model_path.is_file():
        raise ModelFormatError(f"model file '{model_path}' named by the manifest does not exist")
    if sha256_file(model_path) != digest.lower():
        raise ModelFormatError(f"model file '{model_path}' does not match the manifest checksum (corrupt or replaced); "
                               "re-export the bundle or restore the file")


def hash_manifest(path: str | Path, models_dir: str | Path | None = None) -> list[Path]:
    """Write the sha256 of every model file a manifest names into it (atomically); returns the files hashed.

    This is how a user describing their own model (or a third-party one) gives it the checksum the runtime requires.

    Raises:
        ModelFormatError: the manifest is invalid, or a model file escapes its folder or is missing.
    """
    path = Path(path)
    data = _read_json(path)
    manifest_from_dict(data)
    roots = model_roots(path.parent, models_dir)
    entries = [data] + list(data.get("ensemble", []))
    files = []
    for entry in entries:
        file = locate_model_file(entry["model_file"], roots, f"manifest '{path}'")
        entry["sha256"] = sha256_file(file)
        files.append(file)
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())
    return files
