"""ONNX Runtime backend: ordered execution providers with per-provider options; reports the providers in use."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort

from ..errors import BackendUnavailableError, ConfigError, ModelFormatError
from . import ModelIO, TensorInfo

_OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}

_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(uint8)": "uint8", "tensor(int8)": "int8"}


class OnnxRuntimeBackend:
    """Runs an .onnx file. Options: threads (0 = ORT default), providers ([name | [name, {options}]]),
    graph_optimization (disable/basic/extended/all)."""

    name = "onnxruntime"
    thread_safe = True  # InferenceSession.run may be called from several threads at once

    def __init__(self) -> None:
        self.session: ort.InferenceSession | None = None
        self._outputs: list[str] = []

    def load(self, path: str, options: dict) -> None:
        so = ort.SessionOptions()
        threads = int(options.get("threads", 0) or 0)
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        level = options.get("graph_optimization", "all")
        if level not in _OPT_LEVELS:
            raise ConfigError(f"backend option graph_optimization '{level}' must be one of {', '.join(_OPT_LEVELS)}")
        so.graph_optimization_level = _OPT_LEVELS[level]
        so.log_severity_level = 3
        given = options.get("providers", ["CPUExecutionProvider"])
        if not isinstance(given, (list, tuple)) or not all(
                isinstance(p, str) or (isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], str)
                                       and isinstance(p[1], dict)) for p in given):
            raise ConfigError(f"backend option providers must be a list of provider names or [name, {{options}}] pairs, "
                              f"e.g. [CUDAExecutionProvider, CPUExecutionProvider]; got {given!r}")
        providers = [p if isinstance(p, str) else (p[0], dict(p[1])) for p in given]
        available = ort.get_available_providers()
        names = [p if isinstance(p, str) else p[0] for p in providers]
        missing = [n for n in names if n not in available]
        if missing:
            raise BackendUnavailableError(
                f"ONNX Runtime here lacks execution providers {missing} (available: {available}). Install the "
                "onnxruntime build that has them (e.g. onnxruntime-gpu), or list only available providers")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=so, providers=providers)
            self._outputs = [o.name for o in self.session.get_outputs()]  # asked once, not per call
        except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf types
            raise ModelFormatError(f"ONNX Runtime cannot load '{path}': {exc}. Re-export the model or check the file") from None

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self._outputs, self.session.run(self._outputs, inputs)))

    def io(self) -> ModelIO:
        inputs = tuple(TensorInfo(i.name, tuple(d if isinstance(d, int) and d >= 0 else None for d in i.shape),
                                  _ORT_TYPES.get(i.type, i.type)) for i in self.session.get_inputs())
        return ModelIO(inputs, tuple(o.name for o in self.session.get_outputs()))

    def describe(self) -> dict:
        return {"engine": f"onnxruntime {ort.__version__}", "providers": self.session.get_providers() if self.session else []}

    def close(self) -> None:
        self.session = None
