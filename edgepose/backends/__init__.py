"""Inference-engine backends behind one protocol, imported lazily by name (never at `import edgepose`)."""
from __future__ import annotations

import importlib
from typing import Protocol

import numpy as np

from ..errors import BackendUnavailableError, PlatformError, did_you_mean


class Backend(Protocol):
    """What every engine offers. `run` takes {input name: array} and returns {output name: array}.
    thread_safe: whether `run` may be called from several threads at once on one loaded instance; when False the
    Runtime loads one instance per calling thread."""

    name: str
    thread_safe: bool

    def load(self, path: str, options: dict) -> None: ...

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...

    def describe(self) -> dict: ...


# name -> (module, class, the package that provides the engine, the extra that installs it)
BACKENDS: dict[str, tuple[str, str, str, str]] = {
    "onnxruntime": ("edgepose.backends.onnxruntime_backend", "OnnxRuntimeBackend", "onnxruntime", "onnx"),
    "litert": ("edgepose.backends.litert_backend", "LiteRTBackend", "ai-edge-litert", "tflite"),
    "tensorrt": ("edgepose.backends.tensorrt_backend", "TensorRTBackend", "tensorrt + pycuda", "tensorrt"),
}


def create_backend(name: str) -> Backend:
    """Instantiate the backend registered as `name`.

    Raises:
        PlatformError: unknown backend name.
        BackendUnavailableError: the engine is not installed; the message names the extra to install.
    """
    if name not in BACKENDS:
        raise PlatformError(f"unknown backend '{name}'.{did_you_mean(name, BACKENDS)} Available: {sorted(BACKENDS)}")
    module, cls, package, extra = BACKENDS[name]
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backend '{name}' needs the '{package}' package, which is not importable here ({exc}). "
            f"Install it with: pip install 'edgepose[{extra}]'") from None
    return getattr(mod, cls)()


def backend_available(name: str) -> tuple[bool, str]:
    """(usable here?, why not) without loading a model."""
    try:
        create_backend(name)
    except BackendUnavailableError as exc:
        return False, str(exc)
    return True, ""
