"""PyTorch -> ONNX (fp32), and ONNX -> fp16 / int8 (ONNX Runtime static quantization, QDQ)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path
from ..manifest import InputSpec

OUTPUT_NAME = "pose"


def write_onnx(model: torch.nn.Module, spec: InputSpec, path: Path, opset: int = 17) -> Path:
    """Export with the TorchScript exporter (dynamic batch); the file appears only when complete."""
    from ..train import qat

    if qat.is_quantized(model):  # NNCF fake quantizers -> QuantizeLinear/DequantizeLinear pairs
        model = qat.strip(model, spec.size[0])
    with atomic_path(path) as tmp:
        torch.onnx.export(model, (torch.zeros(1, 3, *spec.size),), tmp, dynamo=False, opset_version=opset,
                          input_names=[spec.name], output_names=[OUTPUT_NAME],
                          dynamic_axes={spec.name: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    return path


def onnx_to_fp16(src: Path, dst: Path) -> Path:
    """fp16 weights and activations, float32 inputs/outputs kept so the runtime contract does not change."""
    import onnx
    from onnxconverter_common import float16

    model = float16.convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))
    return dst


# static int8 quantizes the compute ops AND the pass-through ops between them: a float ReLU or pool left between two
# Q/DQ pairs breaks ONNX Runtime's int8 chain (MobileNetV1 x0.5 at 120 px ran at 0.87x its fp32 with only
# Conv/Gemm/MatMul quantized, 1.40x with these; research/born_again/README.md). Ops outside the list (hard-swish,
# squeeze-excite's Mul) stay float, so MobileNetV3's accuracy is not risked on them.
STATIC_INT8_OPS = ("Conv", "Gemm", "MatMul", "Relu", "Clip", "GlobalAveragePool", "AveragePool", "MaxPool", "Flatten",
                   "Reshape")


def onnx_to_int8(src: Path, dst: Path, inputs: np.ndarray, input_name: str) -> Path:
    """Static int8 (QDQ, per-channel weights, u8 activations) of STATIC_INT8_OPS, calibrated on `inputs` (N, ...)
    float32."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(np.array_split(inputs, max(1, len(inputs) // 32)))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {input_name: batch}

    import onnx

    with tempfile.TemporaryDirectory() as work, atomic_path(dst) as tmp:  # dst appears only when complete
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(str(prepared)).graph
        outputs = {o.name for o in graph.output}
        # the layer that writes the pose stays float: an int8 output grid of a few values costs accuracy for no time
        last = [n.name for n in graph.node if set(n.output) & outputs and n.op_type in ("Gemm", "MatMul")]
        quantize_static(str(prepared), tmp, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=list(STATIC_INT8_OPS),
                        nodes_to_exclude=last)
    return dst


def onnx_to_int8_nncf(src: Path, dst: Path, inputs: np.ndarray, input_name: str) -> Path:
    """NNCF post-training quantization of the ONNX graph (NNCF's own op placement and fusions, fast bias
    correction), calibrated on `inputs`; needs `pip install 'edgepose[qat]'`."""
    import onnx

    from ..train.qat import require_nncf

    nncf = require_nncf()
    data = nncf.Dataset([inputs[i:i + 1] for i in range(len(inputs))], lambda x: {input_name: x})
    quantized = nncf.quantize(onnx.load(str(src)), data, subset_size=len(inputs),
                              preset=nncf.QuantizationPreset.PERFORMANCE)
    onnx.save(quantized, str(dst))
    return dst


def onnx_to_int8_dynamic(src: Path, dst: Path) -> Path:
    """Dynamic int8: weights of the fully connected layers (MatMul / Gemm) stored as int8, activations quantized
    per call; convolutions stay fp32. No calibration. The deployable ONNX form of torch.ao dynamic quantization."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
    return dst


def torch_dynamic_int8(model: torch.nn.Module) -> torch.nn.Module:
    """torch.ao dynamic int8 of the Linear layers, for PyTorch-on-CPU inference (host side; not an export artifact)."""
    from torch.ao.quantization import quantize_dynamic

    return quantize_dynamic(model.eval(), {torch.nn.Linear}, dtype=torch.qint8)
