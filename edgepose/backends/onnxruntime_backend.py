"""ONNX Runtime backend: ordered execution providers with per-provider options; reports the providers in use."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort

from ..errors import BackendUnavailableError, ModelFormatError

_OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


class OnnxRuntimeBackend:
    """Runs an .onnx file. Options: threads (0 = ORT default), providers ([name | [name, {options}]]),
    graph_optimization (disable/basic/extended/all)."""

    name = "onnxruntime"
    thread_safe = True  # InferenceSession.run may be called from several threads at once

    def __init__(self) -> None:
        self.session: ort.InferenceSession | None = None

    def load(self, path: str, options: dict) -> None:
        so = ort.SessionOptions()
        threads = int(options.get("threads", 0) or 0)
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = _OPT_LEVELS[options.get("graph_optimization", "all")]
        so.log_severity_level = 3
        providers = [p if isinstance(p, str) else (p[0], dict(p[1])) for p in options.get("providers", ["CPUExecutionProvider"])]
        available = ort.get_available_providers()
        names = [p if isinstance(p, str) else p[0] for p in providers]
        missing = [n for n in names if n not in available]
        if missing:
            raise BackendUnavailableError(
                f"ONNX Runtime here lacks execution providers {missing} (available: {available}). Install the "
                "onnxruntime build that has them (e.g. onnxruntime-gpu), or list only available providers")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=so, providers=providers)
        except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf types
            raise ModelFormatError(f"ONNX Runtime cannot load '{path}': {exc}. Re-export the model or check the file") from None

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self.session.run(None, inputs)
        return {o.name: v for o, v in zip(self.session.get_outputs(), outs)}

    def describe(self) -> dict:
        return {"engine": f"onnxruntime {ort.__version__}", "providers": self.session.get_providers() if self.session else []}

    def close(self) -> None:
        self.session = None
