"""Bundle manifests: the JSON beside every model file that says how to feed it, decode it, and what it scored."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .atomic import atomic_write_bytes
from .decode import DECODINGS
from .errors import ModelFormatError
from .typed import from_mapping

SCHEMA_VERSION = 1
CROP_PROTOCOLS = ("square", "expand", "roi")


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
    size: tuple[int, int] = (112, 112)
    layout: str = "NCHW"
    color: str = "RGB"
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (127.5, 127.5, 127.5)
    batch: int = 0
    dtype: str = "float32"

    def shape(self, batch: int) -> tuple[int, int, int, int]:
        """The input tensor shape for `batch` images in this layout."""
        h, w = self.size
        return (batch, 3, h, w) if self.layout == "NCHW" else (batch, h, w, 3)


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
    scale: float = 1.6
    margins: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    shift: tuple[float, float] = (0.0, 0.0)
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
    schema: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return asdict(self)


def manifest_from_dict(data: dict) -> Manifest:
    """Validate and build a Manifest from its JSON form.

    Raises:
        ModelFormatError: unknown keys, a missing section, or values outside what the runtime supports.
    """
    if isinstance(data, dict) and data.get("schema", SCHEMA_VERSION) > SCHEMA_VERSION:
        raise ModelFormatError(f"manifest schema {data['schema']} is newer than this edgepose ({SCHEMA_VERSION}); upgrade edgepose")
    manifest = from_mapping(Manifest, data, "manifest", ModelFormatError)
    for member in manifest.ensemble:
        if not isinstance(member, dict) or "model_file" not in member:
            raise ModelFormatError("manifest.ensemble entries must be {'model_file': ..., 'sha256': ...}")
    if manifest.input.layout not in ("NCHW", "NHWC"):
        raise ModelFormatError(f"manifest.input.layout '{manifest.input.layout}' must be NCHW or NHWC")
    if manifest.input.color not in ("RGB", "BGR"):
        raise ModelFormatError(f"manifest.input.color '{manifest.input.color}' must be RGB or BGR")
    if manifest.crop.protocol not in CROP_PROTOCOLS:
        raise ModelFormatError(f"manifest.crop.protocol '{manifest.crop.protocol}' must be one of {CROP_PROTOCOLS}")
    if manifest.output.get("type") not in DECODINGS:
        raise ModelFormatError(f"manifest.output.type '{manifest.output.get('type')}' must be one of {DECODINGS}")
    return manifest


def load_manifest(path: str | Path) -> Manifest:
    """Read a manifest JSON file.

    Raises:
        ModelFormatError: the file is missing, is not JSON, or fails validation.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"manifest '{path}' does not exist; a bundle is a model file plus its manifest.json")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"manifest '{path}' is not valid JSON ({exc}); re-export the bundle") from None
    return manifest_from_dict(data)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_manifest(manifest: Manifest, path: str | Path) -> None:
    atomic_write_bytes(path, (json.dumps(manifest.to_dict(), indent=2) + "\n").encode())


def model_files(manifest: Manifest, folder: Path) -> list[Path]:
    """Every model file of a manifest (the primary, then ensemble members), resolved and checksum-verified."""
    pairs = [(manifest.model_file, manifest.sha256)] + [(m["model_file"], m.get("sha256", "")) for m in manifest.ensemble]
    paths = []
    for name, digest in pairs:
        path = (folder / Path(name).expanduser()).resolve()
        verify_model_file(path, digest)
        paths.append(path)
    return paths


def verify_model_file(model_path: Path, digest: str) -> None:
    """Raise ModelFormatError when the model file is missing or its checksum differs from `digest`."""
    if not model_path.is_file():
        raise ModelFormatError(f"model file '{model_path}' named by the manifest does not exist")
    if digest and sha256_file(model_path) != digest:
        raise ModelFormatError(f"model file '{model_path}' does not match the manifest checksum (corrupt or replaced); "
                               "re-export the bundle or restore the file")
