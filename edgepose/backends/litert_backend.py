"""LiteRT (TFLite) backend: ai_edge_litert first, tflite_runtime as fallback; XNNPACK threads; int8 I/O scaling."""
from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from . import ModelIO, TensorInfo

try:
    from ai_edge_litert.interpreter import Interpreter

    ENGINE = "ai-edge-litert"
except ImportError:
    try:
        from tflite_runtime.interpreter import Interpreter  # numpy<2 only; a fallback

        ENGINE = "tflite-runtime"
    except ImportError as exc:
        raise ImportError(f"neither ai_edge_litert nor tflite_runtime is installed ({exc})") from None


class LiteRTBackend:
    """Options: threads (XNNPACK threads; 0 = all cores).

    Quantized (int8/uint8) inputs are quantized with the tensor's scale and zero point, and quantized outputs
    dequantized, so callers always exchange float32.
    """

    name = "litert"
    thread_safe = False  # an Interpreter holds its tensors: one per thread

    def __init__(self) -> None:
        self.interpreter = None

    def load(self, path: str, options: dict) -> None:
        import os

        threads = int(options.get("threads", 0) or 0) or os.cpu_count() or 1
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelFormatError(f"LiteRT cannot load '{path}': {exc}. Re-export the model or check the file") from None
        self.threads = threads
        self.inputs = {d["name"]: d for d in self.interpreter.get_input_details()}
        self.outputs = self.interpreter.get_output_details()
        self._batch = {name: int(d["shape"][0]) for name, d in self.inputs.items()}

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        it = self.interpreter
        for name, array in inputs.items():
            detail = self._input_detail(name)
            if array.shape[0] != self._batch[detail["name"]]:
                it.resize_tensor_input(detail["index"], list(array.shape))
                it.allocate_tensors()
                self._batch[detail["name"]] = array.shape[0]
                self.outputs = it.get_output_details()
            it.set_tensor(detail["index"], _quantize(array, detail))
        it.invoke()
        return {d["name"]: _dequantize(it.get_tensor(d["index"]), d) for d in self.outputs}

    def _input_detail(self, name: str) -> dict:
        if name in self.inputs:
            return self.inputs[name]
        if len(self.inputs) == 1:  # converters rename inputs (e.g. 'serving_default_args_0:0')
            return next(iter(self.inputs.values()))
        raise ModelFormatError(f"model has no input '{name}'; inputs are {sorted(self.inputs)}")

    def io(self) -> ModelIO:
        """The batch dimension is reported dynamic: `run` resizes it to the batch given."""
        inputs = tuple(TensorInfo(name, (None, *(int(x) for x in d["shape_signature"][1:])), np.dtype(d["dtype"]).name,
                                  np.dtype(d["dtype"]) in (np.int8, np.uint8) and bool(d["quantization"][0]))
                       for name, d in self.inputs.items())
        return ModelIO(inputs, tuple(d["name"] for d in self.outputs))

    def describe(self) -> dict:
        return {"engine": ENGINE, "threads": getattr(self, "threads", 0)}

    def close(self) -> None:
        self.interpreter = None


def _quantize(array: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype in (np.int8, np.uint8):
        scale, zero = detail["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(array / scale + zero), info.min, info.max).astype(dtype)
    return array.astype(dtype, copy=False)


def _dequantize(array: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] in (np.int8, np.uint8):
        scale, zero = detail["quantization"]
        return (array.astype(np.float32) - zero) * scale
    return array.astype(np.float32, copy=True)
