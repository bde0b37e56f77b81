"""PyTorch -> TFLite / LiteRT without TensorFlow (litert-torch): fp32, fp16 weights, or PT2E int8.

The exported model takes NHWC input (a transpose folded in at the front), which is what mobile delegates and
camera pipelines hand over; the manifest says so.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path
from ..errors import BackendUnavailableError
from ..manifest import InputSpec


def _litert_torch():
    try:
        import litert_torch
    except ImportError as exc:
        raise BackendUnavailableError(f"TFLite export needs litert-torch ({exc}): pip install 'edgepose[tflite-export]'") from None
    return litert_torch


def torch_to_tflite(model: torch.nn.Module, spec: InputSpec, precision: str, dst: Path,
                    calibration: np.ndarray | None = None) -> tuple[Path, InputSpec, str]:
    """Convert `model` (NCHW float input) to a .tflite at `dst`.

    Args:
        calibration: (N, 3, H, W) float32 inputs, required for int8 (PT2E static, per-channel weights).

    Returns:
        (path, the NHWC input spec of the artifact, its output tensor name).
    """
    litert_torch = _litert_torch()
    wrapped = litert_torch.to_channel_last_io(model.eval(), args=[0]).eval()
    sample = (torch.zeros(1, *spec.size, 3),)
    if precision == "fp32":
        edge = litert_torch.convert(wrapped, sample)
    elif precision == "fp16":
        from litert_torch.generative.quantize import quant_recipes

        edge = litert_torch.convert(wrapped, sample, quant_config=quant_recipes.full_fp16_recipe())
    elif precision == "int8":
        if calibration is None:
            raise ValueError("int8 TFLite export needs calibration inputs")
        from litert_torch.quantize import pt2e_quantizer, quant_config
        from torchao.quantization.pt2e import quantize_pt2e

        quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
            pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
        graph = quantize_pt2e.prepare_pt2e(torch.export.export(wrapped, sample).module(), quantizer)
        nhwc = np.ascontiguousarray(calibration.transpose(0, 2, 3, 1))
        with torch.no_grad():
            for i in range(len(nhwc)):  # the exported graph has batch 1
                graph(torch.from_numpy(nhwc[i:i + 1]))
        graph = quantize_pt2e.convert_pt2e(graph, fold_quantize=False)
        edge = litert_torch.convert(graph, sample, quant_config=quant_config.QuantConfig(pt2e_quantizer=quantizer))
    else:
        raise ValueError(f"unsupported TFLite precision '{precision}'")
    with atomic_path(dst) as tmp:
        edge.export(tmp)
    input_name, output_name = _io_names(dst)
    return dst, dataclasses.replace(spec, name=input_name, layout="NHWC", batch=1), output_name


def _io_names(path: Path) -> tuple[str, str]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    return it.get_input_details()[0]["name"], it.get_output_details()[0]["name"]
