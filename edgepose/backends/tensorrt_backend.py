"""TensorRT 10 backend: deserialises an engine built on this GPU and runs it with name-based I/O.

Engines are not portable across GPUs or TensorRT versions; the bundle manifest records both and this backend
refuses a mismatch with a message saying to rebuild on the device (`python export/jetson.py ...`).
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from . import ModelIO, TensorInfo

try:
    import tensorrt as trt
except ImportError as exc:  # the registry turns this into an error naming the extra
    raise ImportError(f"tensorrt is not installed ({exc})") from None

from .cuda_memory import PycudaMemory


class TensorRTBackend:
    """Options: device (GPU index, default 0), expect_trt_version / expect_gpu (from the manifest, checked)."""

    name = "tensorrt"
    thread_safe = False  # an execution context and its buffers: one per thread

    def __init__(self) -> None:
        self.engine = None
        self.context = None
        self.memory: PycudaMemory | None = None

    def load(self, path: str, options: dict) -> None:
        expected = options.get("expect_trt_version")
        if expected and expected.split(".")[0] != trt.__version__.split(".")[0]:
            raise ModelFormatError(f"engine '{path}' was built with TensorRT {expected}, this is {trt.__version__}; "
                                   "rebuild it here: python export/jetson.py CHECKPOINT_OR_ONNX")
        self.memory = PycudaMemory(int(options.get("device", 0)))
        gpu = self.memory.cuda.Device(int(options.get("device", 0))).name()
        if options.get("expect_gpu") and options["expect_gpu"] != gpu:
            raise ModelFormatError(f"engine '{path}' was built for GPU '{options['expect_gpu']}', this is '{gpu}'; "
                                   "TensorRT engines are not portable: rebuild with python export/jetson.py")
        logger = trt.Logger(trt.Logger.WARNING)
        with open(path, "rb") as f:
            self.engine = trt.Runtime(logger).deserialize_cuda_engine(f.read())
        if self.engine is None:
            raise ModelFormatError(f"TensorRT could not deserialise '{path}' (corrupt, or built by another version)")
        self.context = self.engine.create_execution_context()
        self.gpu = gpu
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for name in self.inputs:
            array = np.ascontiguousarray(inputs[name], dtype=trt.nptype(self.engine.get_tensor_dtype(name)))
            self.context.set_input_shape(name, array.shape)
            self.context.set_tensor_address(name, self.memory.buffer(name, array.shape, array.dtype))
            self.memory.to_device(name, array)
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            self.context.set_tensor_address(name, self.memory.buffer(name, shape, dtype))
        if not self.context.execute_async_v3(self.memory.stream_handle):
            raise RuntimeError("TensorRT execute_async_v3 failed; see the TensorRT log above")
        results = {name: self.memory.to_host(name) for name in self.outputs}
        self.memory.sync()
        return {k: v.astype(np.float32, copy=True) for k, v in results.items()}

    def io(self) -> ModelIO:
        """TensorRT 10 name-based I/O: -1 dimensions are dynamic (an optimisation profile covers them)."""
        inputs = tuple(TensorInfo(n, tuple(d if d >= 0 else None for d in self.engine.get_tensor_shape(n)),
                                  np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))).name) for n in self.inputs)
        return ModelIO(inputs, tuple(self.outputs))

    def describe(self) -> dict:
        return {"engine": f"tensorrt {trt.__version__}", "gpu": getattr(self, "gpu", "")}

    def close(self) -> None:
        self.context = None
        self.engine = None
        if self.memory is not None:
            self.memory.free()
            self.memory = None
