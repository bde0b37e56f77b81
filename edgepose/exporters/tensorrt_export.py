"""ONNX bundle -> TensorRT 10 engine bundle (fp16 / int8). Run ON the target device: engines are not portable.

INT8 uses either an entropy calibrator over the calibration images (implicit quantization) or, when the ONNX
already holds Q/DQ nodes (QAT / static-quantized export), TensorRT's explicit quantization.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes
from ..errors import BackendUnavailableError, ConfigError
from ..manifest import Manifest, save_manifest, sha256_file

WORKSPACE_BYTES = 1 << 30


def _import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as exc:
        from ..backends import BACKENDS

        raise BackendUnavailableError(f"building a TensorRT engine needs tensorrt ({exc}); run this on the Jetson / "
                                      f"GPU machine. {BACKENDS['tensorrt'].how_to_install}") from None
    return trt


def make_int8_calibrator(trt, batches: np.ndarray, cache_path: Path, memory):
    """An IInt8EntropyCalibrator2 feeding `batches` (the model inputs: float32, or uint8 pixels for a bundle folded
    by `edgepose manifest fold-input`) one calibration batch at a time."""

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            super().__init__()
            self.index = 0

        def get_batch_size(self):
            return batches.shape[1]

        def get_batch(self, names):
            if self.index >= len(batches):
                return None
            batch = np.ascontiguousarray(batches[self.index])  # float32, or uint8 pixels for a folded model
            self.index += 1
            ptr = memory.buffer(names[0], batch.shape, batch.dtype)
            memory.to_device(names[0], batch)
            memory.sync()
            return [ptr]

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache):
            atomic_write_bytes(cache_path, bytes(cache))

    return Calibrator()


def build_engine(onnx_manifest: Manifest, onnx_path: Path, out_dir: Path, precision: str,
                 calibration: np.ndarray | None = None, max_batch: int = 8, timing_cache: Path | None = None) -> Path:
    """Build `out_dir/model.engine` + manifest from an ONNX bundle; returns the manifest path.

    Args:
        precision: "fp16" or "int8" (int8 also enables fp16 for layers left unquantized).
        calibration: (num_batches, batch, ...) model inputs (as `preprocess.to_input` makes them) for implicit INT8;
            unused with Q/DQ ONNX.
        timing_cache: file reused across builds to cut build time (created if absent).
    """
    if precision not in ("fp16", "int8"):
        raise ConfigError(f"TensorRT precision '{precision}' is not supported; use fp16 or int8")
    trt = _import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: always explicit batch
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ConfigError(f"TensorRT cannot parse '{onnx_path}': {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    config.set_flag(trt.BuilderFlag.FP16)
    name = onnx_manifest.input.name
    shape = network.get_input(0).shape
    profile = builder.create_optimization_profile()
    chw = tuple(shape[1:])
    profile.set_shape(name, (1, *chw), (1, *chw), (max_batch, *chw))
    config.add_optimization_profile(profile)
    memory = None
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        if onnx_manifest.precision != "int8":  # an int8 ONNX bundle carries Q/DQ nodes: explicit quantization
            if calibration is None:
                raise ConfigError("int8 without Q/DQ nodes needs calibration images (--calibration DIR)")
            from ..backends.cuda_memory import PycudaMemory

            memory = PycudaMemory()
            config.int8_calibrator = make_int8_calibrator(trt, calibration, out_dir / "calibration.cache", memory)
            config.set_calibration_profile(profile)
    cache_bytes = timing_cache.read_bytes() if timing_cache and timing_cache.is_file() else b""
    config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ConfigError("TensorRT failed to build the engine; see the TensorRT log above")
    out_dir.mkdir(parents=True, exist_ok=True)
    engine_path = out_dir / "model.engine"
    atomic_write_bytes(engine_path, bytes(serialized))
    if timing_cache:
        atomic_write_bytes(timing_cache, bytes(config.get_timing_cache().serialize()))
    if memory is not None:
        memory.free()
    gpu = _gpu_name()
    manifest = dataclasses.replace(
        onnx_manifest, model_file=engine_path.name, format="tensorrt", precision=precision,
        sha256=sha256_file(engine_path), input=dataclasses.replace(onnx_manifest.input, batch=0),
        source={**onnx_manifest.source, "onnx_sha256": onnx_manifest.sha256, "tensorrt": trt.__version__, "gpu": gpu,
                "int8_mode": ("explicit-qdq" if precision == "int8" and memory is None else
                              "entropy-calibrator" if precision == "int8" else None),
                "calibration_images": int(np.prod(calibration.shape[:2])) if calibration is not None else 0},
        metrics={},
    )
    save_manifest(manifest, out_dir / "manifest.json")
    return out_dir / "manifest.json"


def _gpu_name() -> str:
    try:
        import pycuda.driver as cuda

        cuda.init()
        return cuda.Device(0).name()
    except Exception:  # the name is informative only
        return "unknown"


def calibration_batches(inputs: np.ndarray, batch: int = 8) -> np.ndarray:
    """Calibration inputs (N, ...) as whole batches (N // batch, batch, ...) for the int8 calibrator."""
    return inputs[: len(inputs) // batch * batch].reshape(-1, batch, *inputs.shape[1:])


def export_tensorrt_bundle(bundle: str | Path, out_dir: str | Path, precision: str = "fp16",
                           calibration: str | None = None, calibration_size: int = 512,
                           dev_root: str | None = None, platform: str | None = None) -> Path:
    """Build an engine bundle from an ONNX bundle, ON the device; needs no torch. Returns the manifest path.

    With `dev_root`, the engine's AFLW2000 accuracy is measured through Runtime(platform) and recorded.
    """
    from ..bundle import resolve_bundle
    from .calibration import calibration_inputs
    from .record_accuracy import record_accuracy

    manifest, (onnx_path,) = resolve_bundle(bundle)
    if manifest.format != "onnx":
        raise ConfigError(f"'{bundle}' is a {manifest.format} bundle; TensorRT engines are built from ONNX bundles")
    calib = None
    if precision == "int8" and manifest.precision != "int8":
        if not calibration:
            raise ConfigError("int8 from an fp32 ONNX bundle needs --calibration (the faces pool or a folder of face crops)")
        calib = calibration_batches(calibration_inputs(calibration, manifest.input, calibration_size,
                                                       manifest.crop))
    out = Path(out_dir).expanduser()
    manifest_path = build_engine(manifest, onnx_path, out, precision, calib, timing_cache=out / "timing.cache")
    if dev_root:
        record_accuracy(manifest_path.parent, platform or ("jetson-int8" if precision == "int8" else "jetson"), dev_root)
    return manifest_path
