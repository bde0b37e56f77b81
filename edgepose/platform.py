"""Platform files: one YAML per deployment target naming backend, precision, threads, model and detector."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import yaml

from .errors import ConfigError, PlatformError, did_you_mean
from .home import expand_home
from .typed import at_least, between, from_mapping, one_of, read_utf8


MAX_THREADS = 256  # engine threads a platform or Runtime may ask for (more only oversubscribes, and can hang)


@dataclass(frozen=True)
class DetectorConfig:
    """type: 'auto' (BlazeFace once `edgepose detectors fetch` stored it, else Haar with a warning), 'haar' (OpenCV
    cascades, bundled), 'yunet' (cv2.FaceDetectorYN) or 'blazeface' (LiteRT); the last two need `model`, the path of
    their model file (not shipped). min_size: smallest face side in frame pixels.
    max_faces: the most confident this many faces, 0 = all. score_threshold: 0..1, None = the detector's own default.
    detect_width: frames wider than this are downscaled for detection (speed; boxes are mapped back); 0 = never.
    scale_factor: image-pyramid step (> 1). profile: also run the profile cascade (both directions; slower).
    box_map: (dcx, dcy, sw, sh) mapping the detector box onto the tight-face-box convention of the models (centre
    shift and side scales, as fractions of the box; sw, sh > 0); None = the detector's own fitted default."""

    type: str = "haar"
    model: str = ""
    min_size: int = field(default=40, metadata=at_least(0, whole=True))
    detect_width: int = field(default=320, metadata=at_least(0, whole=True))
    scale_factor: float = field(default=1.15, metadata=between(1.0, 4.0, lo_open=True))
    profile: bool = True
    max_faces: int = field(default=0, metadata=at_least(0, whole=True))
    score_threshold: float | None = field(default=None, metadata=between(0.0, 1.0))
    box_map: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class Platform:
    """A deployment target. model: 'default' (bundled) or a path to a manifest / bundle folder (a leading
    $EDGEPOSE_HOME is the user's edgepose folder, default ~/.cache/edgepose; in a user's platform file a relative path,
    like detector.model, is relative to that file's folder).
    int8_if_faster: an int8 export for this platform (its own precision, not an explicit --precision) is timed
    against the fp32 artifact of the same weights on the exporting machine, and ships only if it is not slower;
    otherwise the fp32 artifact ships; the manifest records every timing (edgepose.exporters.speed_choice).
    quantizer: the int8 quantizer(s) of this platform's post-training int8 exports, one name or a list (none = the
    format's default; names as `edgepose export --quantizer`, which overrides it; QAT checkpoints keep the static
    quantizer they were trained for). With int8_if_faster every one listed is built and timed against fp32 and the
    fastest ships (if not slower than fp32); otherwise the first is used."""

    name: str
    backend: str
    precision: str = field(default="fp32", metadata=one_of("fp32", "fp16", "int8"))
    description: str = ""
    model: str = "default"
    threads: int = field(default=0, metadata=between(0, MAX_THREADS, whole=True))
    backend_options: dict = field(default_factory=dict)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    requires: str = ""
    int8_if_faster: bool = False
    quantizer: tuple = ()


def _platform_dir():
    """The packaged platform YAMLs (the repository's platforms/ folder, installed as edgepose.platforms).

    In a source checkout its own platforms/ folder wins, so an editable install of another checkout cannot shadow it.
    """
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "platforms" / "cpu.yaml").is_file():
        return checkout / "platforms"
    try:
        return resources.files("edgepose.platforms")
    except ModuleNotFoundError:  # running from a source checkout that was not pip-installed
        return Path(__file__).resolve().parent.parent / "platforms"


def platform_names() -> list[str]:
    """Names of the platform files packaged with edgepose."""
    return sorted(p.name[:-5] for p in _platform_dir().iterdir() if p.name.endswith(".yaml"))


def platform_from_dict(data: dict, where: str) -> Platform:
    """Validate and build a Platform; backend options are checked against what its backend accepts.

    Raises:
        ConfigError: unknown keys or wrongly typed values. PlatformError: an unknown backend option.
    """
    from .backends import BACKENDS, check_backend_options

    if isinstance(data, dict) and isinstance(data.get("quantizer"), str):  # one name is a list of one
        data = {**data, "quantizer": [data["quantizer"]] if data["quantizer"] else []}
    try:
        platform = from_mapping(Platform, data, "", ConfigError)
    except ConfigError as exc:
        raise ConfigError(f"platform file {where}: {exc}") from None
    platform = replace(platform, model=expand_home(platform.model))  # $EDGEPOSE_HOME/bundles/..., ~/...
    names = platform.quantizer
    if not all(isinstance(q, str) and q for q in names) or len(set(names)) != len(names):
        raise ConfigError(f"platform file {where}: quantizer {list(names)} must be one name or a list of different, "
                          "non-empty names, e.g. quantizer: [ort-dynamic, ort-static]")
    for key in ("int8_if_faster", "quantizer"):
        if getattr(platform, key) and platform.precision != "int8":
            raise ConfigError(f"platform file {where}: {key} applies to int8 platforms, this one is "
                              f"{platform.precision}; remove it or set precision: int8")
    if platform.backend in BACKENDS:  # an unknown backend is reported (with suggestions) when the Runtime builds it
        check_backend_options(platform.backend, platform.backend_options, f"platform file {where}")
    return platform


def load_platform(name_or_path: str | Path) -> Platform:
    """A packaged platform by name (`cpu`, ...) or a user's platform YAML by path.

    Raises:
        PlatformError: unknown name (lists the known ones, suggests the closest).
        ConfigError: the YAML has unknown keys or is malformed.
    """
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or Path(text).is_file():
        path = Path(text)
        if not path.is_file():
            raise PlatformError(f"platform file '{path}' does not exist")
        source, where = read_utf8(path, "platform file", PlatformError), f"'{path}'"
        folder = path.parent
    else:
        names = platform_names()
        if text not in names:
            raise PlatformError(f"unknown platform '{text}'.{did_you_mean(text, names)} Known platforms: {', '.join(names)}; "
                                "or pass the path of your own platform YAML")
        source, where = (_platform_dir() / f"{text}.yaml").read_text(), f"'{text}.yaml'"
        folder = None
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise ConfigError(f"platform file {where} is not valid YAML: {exc}") from None
    platform = platform_from_dict(data, where)
    return platform if folder is None else _beside(platform, folder)


def _beside(platform: Platform, folder: Path) -> Platform:
    """A user's platform file: relative `model` and `detector.model` paths are relative to the file's own folder
    (as in the file, wherever it is run from); a packaged bundle name ('default', ...) stays a name."""
    from .bundle import bundled_names

    def beside(path: str) -> str:
        return path if not path or Path(path).is_absolute() or path in bundled_names() else str(folder / path)

    detector = replace(platform.detector, model=beside(expand_home(platform.detector.model)))
    return replace(platform, model=beside(platform.model), detector=detector)
