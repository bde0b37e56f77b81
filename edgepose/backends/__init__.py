"""Inference-engine backends behind one protocol, imported lazily by name (never at `import edgepose`)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import BackendUnavailableError, PlatformError, did_you_mean


@dataclass(frozen=True)
class TensorInfo:
    """One model input as the engine opened it. shape: ints, None for a dynamic (or engine-resizable) dimension.
    dtype: numpy dtype name. quantized: the backend converts float32 to this integer type itself (scale, zero)."""

    name: str
    shape: tuple
    dtype: str
    quantized: bool = False


@dataclass(frozen=True)
class ModelIO:
    """What an opened model takes and gives, for checking it against its manifest (edgepose.model_check)."""

    inputs: tuple[TensorInfo, ...]
    outputs: tuple[str, ...]


class Backend(Protocol):
    """What every engine offers. `run` takes {input name: array} and returns {output name: array}.
    thread_safe: whether `run` may be called from several threads at once on one loaded instance; when False the
    Runtime loads one instance per calling thread."""

    name: str
    thread_safe: bool

    def load(self, path: str, options: dict) -> None: ...

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def io(self) -> ModelIO: ...

    def close(self) -> None: ...

    def describe(self) -> dict: ...


@dataclass(frozen=True)
class BackendEntry:
    """A registered engine: the module and class implementing `Backend` (imported only when a platform needs it),
    the package that provides the engine, and the pip extra that installs it (`install`: how to get the engine where
    the extra alone does not bring it); `format`: the manifest format of the model files it reads."""

    module: str
    cls: str
    package: str
    extra: str
    options: tuple[str, ...]
    format: str
    install: str = ""

    @property
    def how_to_install(self) -> str:
        return self.install or f"pip install 'edgepose[{self.extra}]'"


BACKENDS: dict[str, BackendEntry] = {
    "onnxruntime": BackendEntry("edgepose.backends.onnxruntime_backend", "OnnxRuntimeBackend", "onnxruntime", "onnx",
                                ("threads", "providers", "graph_optimization"), "onnx"),
    "litert": BackendEntry("edgepose.backends.litert_backend", "LiteRTBackend", "ai-edge-litert", "tflite", ("threads",),
                           "tflite"),
    "tensorrt": BackendEntry("edgepose.backends.tensorrt_backend", "TensorRTBackend", "tensorrt + pycuda", "tensorrt",
                             ("threads", "device", "expect_trt_version", "expect_gpu"), "tensorrt",
                             install="TensorRT 10 comes with JetPack on a Jetson (on another NVIDIA GPU machine: pip "
                                     "install tensorrt); then pycuda: pip install 'edgepose[tensorrt]'"),
}


def check_backend_options(name: str, options: dict, where: str) -> None:
    """Raise PlatformError for an unknown backend `name` or an option it does not know (with the closest known one)."""
    if name not in BACKENDS:
        raise PlatformError(f"unknown backend '{name}'.{did_you_mean(name, BACKENDS)} Available: {sorted(BACKENDS)}")
    known = BACKENDS[name].options
    for key in options:
        if key not in known:
            raise PlatformError(f"{where}: unknown backend option '{key}' for {name}.{did_you_mean(str(key), known)} "
                                f"Options of {name}: {', '.join(o for o in known if not o.startswith('expect_'))}")


def check_format(model_format: str, platform, model: str) -> None:
    """Raise ModelFormatError when a bundle's format is not what the platform's engine reads (before loading it)."""
    from ..errors import ModelFormatError
    from ..platform import load_platform, platform_names

    engine = BACKENDS[platform.backend]
    if model_format != engine.format:
        readers = [n for n in platform_names() if BACKENDS[load_platform(n).backend].format == model_format]
        raise ModelFormatError(f"'{model}' is a bundle of {model_format} format, but platform '{platform.name}' runs {platform.backend}, "
                               f"which reads {engine.format} bundles; run it on {' or '.join(readers) or 'no platform'}, "
                               f"or export one for this platform: edgepose export CHECKPOINT --platform {platform.name}")


def create_backend(name: str) -> Backend:
    """Instantiate the backend registered as `name`.

    Raises:
        PlatformError: unknown backend name.
        BackendUnavailableError: the engine is not installed; the message names the extra to install.
    """
    if name not in BACKENDS:
        raise PlatformError(f"unknown backend '{name}'.{did_you_mean(name, BACKENDS)} Available: {sorted(BACKENDS)}")
    entry = BACKENDS[name]
    try:
        mod = importlib.import_module(entry.module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backend '{name}' needs the '{entry.package}' package, which is not importable here ({exc}). "
            f"Install it: {entry.how_to_install}") from None
    return getattr(mod, entry.cls)()


def backend_available(name: str) -> tuple[bool, str]:
    """(usable here?, why not) without loading a model."""
    try:
        create_backend(name)
    except BackendUnavailableError as exc:
        return False, str(exc)
    return True, ""
