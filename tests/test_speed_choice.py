"""cpu-int8 ships what is faster: int8 only where it measures faster than the fp32 graph of the same weights."""
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgepose.bundle import bundled_dir
from edgepose.exporters.speed_choice import choose_faster

WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "student_mbv3s_128_3ddfa.pt"


def _chain(path: Path, matmuls: int) -> Path:
    """A float model of `matmuls` chained 256x256 MatMuls (its cost grows with the count)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array((rng.standard_normal((256, 256)) / 16).astype(np.float32), f"w{i}")
             for i in range(matmuls)]
    nodes = [helper.make_node("MatMul", ["x" if i == 0 else f"h{i}", f"w{i}"],
                              ["y" if i == matmuls - 1 else f"h{i + 1}"]) for i in range(matmuls)]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 256])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _quantize_nodes(path: Path) -> int:
    return sum(n.op_type == "QuantizeLinear" for n in onnx.load(str(path)).graph.node)


def test_the_faster_artifact_ships_whichever_it_is(tmp_path):
    """Real ORT sessions: a 1-MatMul and a 40-MatMul model swap the int8 and fp32 roles; the choice follows speed."""
    small, large = _chain(tmp_path / "small.onnx", 1), _chain(tmp_path / "large.onnx", 40)
    feed = np.ones((1, 256), np.float32)
    slow_int8 = choose_faster(large, small, "onnxruntime", {}, feed, rounds=3, calls=20)
    assert slow_int8.shipped == "fp32" and slow_int8.int8_over_fp32 > 1 and slow_int8.int8_p50_ms > slow_int8.fp32_p50_ms
    fast_int8 = choose_faster(small, large, "onnxruntime", {}, feed, rounds=3, calls=20)
    assert fast_int8.shipped == "int8" and fast_int8.int8_over_fp32 < 1
    record = fast_int8.record("edgepose export X --precision int8")
    assert record["threads"] == 1 and record["batch"] == 1 and record["rounds"] == 3 and "--precision int8" in \
        record["force_int8"]


def test_the_shipped_cpu_int8_bundle_says_what_it_is_and_why():
    """The bundled default-cpu-int8 carries the timing that chose it, and its graph is the precision it names."""
    manifest = json.loads((bundled_dir("default-cpu-int8") / "manifest.json").read_text())
    choice = manifest["source"]["speed_choice"]
    assert manifest["precision"] == choice["shipped"]
    assert (choice["int8_over_fp32"] <= 1) == (choice["shipped"] == "int8")
    quantized = _quantize_nodes(bundled_dir("default-cpu-int8") / manifest["model_file"])
    assert (quantized > 10) == (manifest["precision"] == "int8")
    assert ("calibration" in manifest["source"]) == (manifest["precision"] == "int8")


@pytest.mark.slow
def test_cpu_int8_export_times_int8_unless_int8_is_asked_for(tmp_path, pool_root):
    pytest.importorskip("torch", reason="exporting needs torch: pip install 'edgepose[train]'")
    from edgepose.exporters.export import export_bundle

    chosen = json.loads(export_bundle(WEIGHTS, "cpu-int8", tmp_path / "chosen", calibration=str(pool_root),
                                      calibration_size=16, measure=False).read_text())
    choice = chosen["source"]["speed_choice"]
    assert chosen["precision"] == choice["shipped"] and choice["int8_p50_ms"] > 0 and choice["fp32_p50_ms"] > 0
    assert (_quantize_nodes(tmp_path / "chosen" / "model.onnx") > 10) == (choice["shipped"] == "int8")
    forced = json.loads(export_bundle(WEIGHTS, "cpu-int8", tmp_path / "forced", precision="int8",
                                      calibration=str(pool_root), calibration_size=16, measure=False).read_text())
    assert forced["precision"] == "int8" and "speed_choice" not in forced["source"]
    assert _quantize_nodes(tmp_path / "forced" / "model.onnx") > 10
    assert forced["source"]["calibration"]["images"] == 16
