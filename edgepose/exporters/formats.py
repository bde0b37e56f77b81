"""The one table of export formats: which precisions each supports, which backend runs it, its int8 quantizers, the
builder that makes it, and where it is built. Builders import their toolchains lazily (torch, LiteRT, TensorRT)."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..manifest import InputSpec


def _build_onnx(ctx: dict) -> tuple[Path, InputSpec, str]:
    from .onnx_export import OUTPUT_NAME, onnx_to_fp16, onnx_to_int8, onnx_to_int8_dynamic, onnx_to_int8_nncf

    precision, work, onnx32 = ctx["precision"], ctx["work"], ctx["onnx32"]
    if precision == "fp32":
        return onnx32, ctx["spec"], OUTPUT_NAME
    if precision == "fp16":
        return onnx_to_fp16(onnx32, work / "fp16.onnx"), ctx["spec"], OUTPUT_NAME
    if ctx["qat"] == "nncf-qdq":  # NNCF's own QDQ graph (onnx32 was written from the fake-quantized model)
        return onnx32, ctx["spec"], OUTPUT_NAME
    if ctx["quantizer"] == "ort-dynamic":
        return onnx_to_int8_dynamic(onnx32, work / "int8.onnx"), ctx["spec"], OUTPUT_NAME
    quantize = onnx_to_int8_nncf if ctx["quantizer"] == "nncf-ptq" else onnx_to_int8
    return quantize(onnx32, work / "int8.onnx", ctx["calibration"](), ctx["spec"].name), ctx["spec"], OUTPUT_NAME


def _build_tflite(ctx: dict) -> tuple[Path, InputSpec, str]:
    from .tflite_export import torch_to_tflite

    calib = ctx["calibration"]() if ctx["precision"] == "int8" else None
    model = ctx["model"]
    return torch_to_tflite(model, ctx["spec"], ctx["precision"], ctx["work"] / "model.tflite", calib)


def _build_tensorrt(ctx: dict) -> tuple[Path, InputSpec, str]:
    from .onnx_export import OUTPUT_NAME
    from .tensorrt_export import build_engine, calibration_batches

    calib = calibration_batches(ctx["calibration"]()) if ctx["precision"] == "int8" else None
    manifest_path = build_engine(ctx["manifest"], ctx["onnx32"], ctx["work"] / "trt", ctx["precision"], calib,
                                 timing_cache=ctx["out"] / "edgepose-trt-timing.cache")
    return manifest_path.parent / "model.engine", dataclasses.replace(ctx["spec"], batch=0), OUTPUT_NAME


@dataclass(frozen=True)
class ExportFormat:
    """An artifact kind. `quantizers`: int8 quantizer name -> how it quantizes (recorded in the manifest), the first
    the default. `build(ctx) -> (artifact path, input spec, output name)` makes the artifact from the export context
    (see `export_bundle`). `on_device`: must be built on the target itself (TensorRT engines are not portable).
    `uncalibrated`: the quantizers that need no calibration images."""

    name: str
    suffix: str
    precisions: tuple[str, ...]
    backend: str
    extra: str
    build: Callable[[dict], tuple[Path, InputSpec, str]]
    quantizers: dict[str, str] = field(default_factory=dict)
    on_device: bool = False
    uncalibrated: tuple[str, ...] = ()


FORMATS: dict[str, ExportFormat] = {
    "onnx": ExportFormat("onnx", ".onnx", ("fp32", "fp16", "int8"), "onnxruntime", "train", _build_onnx, {
        "ort-static": "ONNX Runtime static QDQ (per-channel int8 weights, u8 activations, MinMax calibration)",
        "nncf-ptq": "NNCF post-training quantization of the ONNX graph (QDQ, fast bias correction)",
        "ort-dynamic": "ONNX Runtime dynamic int8 of MatMul/Gemm weights (no calibration; convolutions fp32)"},
        uncalibrated=("ort-dynamic",)),
    "tflite": ExportFormat("tflite", ".tflite", ("fp32", "fp16", "int8"), "litert", "tflite-export", _build_tflite, {
        "pt2e": "PT2E static int8 (XNNPACK quantizer) through litert-torch"}),
    "tensorrt": ExportFormat("tensorrt", ".engine", ("fp16", "int8"), "tensorrt", "tensorrt", _build_tensorrt, {
        "tensorrt": "TensorRT int8 calibration (or the QDQ scales of a QAT graph)"}, on_device=True),
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
