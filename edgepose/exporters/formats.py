"""The one table of export formats: which precisions each supports, which backend runs it, where it is built."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class ExportFormat:
    """An artifact kind. `on_device`: must be built on the target itself (TensorRT engines are not portable)."""

    name: str
    suffix: str
    precisions: tuple[str, ...]
    backend: str
    extra: str
    on_device: bool = False


FORMATS: dict[str, ExportFormat] = {
    "onnx": ExportFormat("onnx", ".onnx", ("fp32", "fp16", "int8"), "onnxruntime", "train"),
    "tflite": ExportFormat("tflite", ".tflite", ("fp32", "fp16", "int8"), "litert", "tflite-export"),
    "tensorrt": ExportFormat("tensorrt", ".engine", ("fp16", "int8"), "tensorrt", "tensorrt", on_device=True),
}


def format_for(backend: str, precision: str) -> ExportFormat:
    """The format a platform's backend runs, checked against the precisions that format supports.

    Raises:
        ConfigError: no format for that backend, or the precision is not offered for it.
    """
    matches = [f for f in FORMATS.values() if f.backend == backend]
    if not matches:
        raise ConfigError(f"no export format produces models for backend '{backend}'; formats: "
                          + ", ".join(f"{f.name} ({f.backend})" for f in FORMATS.values()))
    fmt = matches[0]
    if precision not in fmt.precisions:
        raise ConfigError(f"{fmt.name} export supports precisions {fmt.precisions}, not '{precision}'")
    return fmt
