"""cpu-int8 ships what is faster: the fastest of its int8 graphs, only where it measures faster than the fp32 graph of
the same weights."""
import json
from pathlib import Path

import numpy as np
import pytest

from edgepose.bundle import bundled_dir
from edgepose.errors import ConfigError
from edgepose.exporters.speed_choice import choose_faster
from edgepose.manifest import InputSpec

onnx = pytest.importorskip("onnx", reason="building test models needs onnx: pip install 'edgepose[train]'")

WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "student_mbv3s_128_3ddfa_yaw2.pt"
# the fully connected layers of the shipped network (its rot6d head), as its fp32 graph holds them
# the shipped cpu-int8 bundle's network (the same weights as the default bundle): its fully connected layers
SHIPPED_FC_LAYERS = sum(n.op_type == "Gemm" for n in onnx.load(str(bundled_dir("default") / "model.onnx")).graph.node)


def _fc_layers() -> int:
    """The fully connected layers of WEIGHTS' network (what dynamic int8 quantizes), counted on the network itself."""
    import torch

    from edgepose.train.checkpoint import load_trained

    return sum(isinstance(m, torch.nn.Linear) for m in load_trained(WEIGHTS)[0].modules())


def _chain(path: Path, convs: int) -> tuple[Path, InputSpec]:
    """A float model of `convs` chained 3x3 convolutions on a 3x32x32 input (its cost grows with the count)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array((rng.standard_normal((3, 3, 3, 3)) / 9).astype(np.float32), f"w{i}")
             for i in range(convs)]
    nodes = [helper.make_node("Conv", ["x" if i == 0 else f"h{i}", f"w{i}"], ["y" if i == convs - 1 else f"h{i + 1}"],
                              pads=[1, 1, 1, 1]) for i in range(convs)]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 32, 32])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path, InputSpec(name="x", size=(32, 32))


def _quantize_nodes(path: Path) -> int:
    """Static int8 (QDQ): one QuantizeLinear per quantized tensor."""
    return sum(n.op_type == "QuantizeLinear" for n in onnx.load(str(path)).graph.node)


def _dynamic_int8_layers(path: Path) -> int:
    """Dynamic int8 of the fully connected layers: int8 weights fed to MatMulInteger."""
    return sum(n.op_type == "MatMulInteger" for n in onnx.load(str(path)).graph.node)


def test_the_faster_artifact_ships_whichever_it_is(tmp_path):
    """Real ORT sessions: 1-, 30- and 60-conv models swap the int8 and fp32 roles; the choice follows speed, and of
    several int8 candidates the fastest is the one named (and shipped where it beats fp32)."""
    small, mid, large = (_chain(tmp_path / f"{n}.onnx", n) for n in (1, 30, 60))
    slow_int8 = choose_faster({"a": large}, small, "onnxruntime", {}, rounds=3, calls=20)
    assert slow_int8.shipped == "fp32" and slow_int8.int8_over_fp32 > 1 and slow_int8.quantizer == "a"
    assert slow_int8.int8_p50_ms > slow_int8.fp32_p50_ms
    fast_int8 = choose_faster({"slow": large, "fast": small}, mid, "onnxruntime", {}, rounds=3, calls=20)
    assert fast_int8.shipped == "int8" and fast_int8.quantizer == "fast" and fast_int8.int8_over_fp32 < 1
    assert fast_int8.candidates["slow"]["over_fp32"] > 1 > fast_int8.candidates["fast"]["over_fp32"]
    assert fast_int8.int8_over_fp32 == fast_int8.candidates["fast"]["over_fp32"]
    record = fast_int8.record("edgepose export X --precision int8")
    assert record["threads"] == 1 and record["batch"] == 1 and record["rounds"] == 3
    assert record["force_int8"].endswith("--precision int8") and set(record["candidates"]) == {"slow", "fast"}
    with pytest.raises(ValueError, match="at least one int8 artifact"):
        choose_faster({}, mid, "onnxruntime", {})


def test_the_shipped_cpu_int8_bundle_says_what_it_is_and_why():
    """The bundled default-cpu-int8 carries the timing that chose it, and its graph is the precision it names."""
    manifest = json.loads((bundled_dir("default-cpu-int8") / "manifest.json").read_text())
    choice = manifest["source"]["speed_choice"]
    assert manifest["precision"] == choice["shipped"]
    assert (choice["int8_over_fp32"] <= 1) == (choice["shipped"] == "int8")
    # both of the platform's int8 forms were timed, and the one named is the fastest of them
    assert set(choice["candidates"]) == {"ort-dynamic", "ort-static"}
    assert choice["int8_over_fp32"] == choice["candidates"][choice["quantizer"]]["over_fp32"]
    assert choice["int8_over_fp32"] == min(c["over_fp32"] for c in choice["candidates"].values())
    model = bundled_dir("default-cpu-int8") / manifest["model_file"]
    shipped = choice["quantizer"] if manifest["precision"] == "int8" else "fp32"
    assert (_dynamic_int8_layers(model) == SHIPPED_FC_LAYERS) == (shipped == "ort-dynamic")
    assert (_quantize_nodes(model) > 10) == (shipped == "ort-static")
    assert ("quantization" in manifest["source"]) == (shipped != "fp32")
    assert ("calibration" in manifest["source"]) == (shipped == "ort-static")  # dynamic int8 calibrates nothing


@pytest.mark.slow
def test_cpu_int8_export_times_int8_unless_int8_is_asked_for(tmp_path, pool_root, monkeypatch):
    pytest.importorskip("torch", reason="exporting needs torch: pip install 'edgepose[train]'")
    from edgepose.exporters.export import export_bundle

    monkeypatch.chdir(tmp_path)  # the default folders: named by the platform, and by the precision where it is asked
    written = export_bundle(WEIGHTS, "cpu-int8", None, calibration=str(pool_root), calibration_size=16, measure=False)
    assert written == Path("runs/export/cpu-int8/manifest.json")
    chosen = json.loads(written.read_text())
    choice, source = chosen["source"]["speed_choice"], chosen["source"]
    assert chosen["precision"] == choice["shipped"] and choice["int8_p50_ms"] > 0 and choice["fp32_p50_ms"] > 0
    # both int8 forms the platform lists were built and timed; the shipped file is the fastest one's (or fp32)
    assert set(choice["candidates"]) == {"ort-dynamic", "ort-static"} and "not_built" not in choice
    model = written.parent / "model.onnx"
    shipped = choice["quantizer"] if choice["shipped"] == "int8" else "fp32"
    assert (_dynamic_int8_layers(model) == _fc_layers()) == (shipped == "ort-dynamic")
    assert (_quantize_nodes(model) > 10) == (shipped == "ort-static")
    assert ("quantization" in source) == (shipped != "fp32") and ("calibration" in source) == (shipped == "ort-static")
    # the command that forces int8 rebuilds the fastest int8: its quantizer named, calibration only if it uses it
    assert f"--quantizer {choice['quantizer']}" in choice["force_int8"]
    assert ("--calibration" in choice["force_int8"]) == (choice["quantizer"] == "ort-static")
    # where the recipe's pool is not on this machine (its data.root is relative: not found from here) the static
    # candidate is left out, and the manifest says why; a --calibration folder the user names must exist
    bare = json.loads(export_bundle(WEIGHTS, "cpu-int8", tmp_path / "bare", measure=False).read_text())
    assert set(bare["source"]["speed_choice"]["candidates"]) == {"ort-dynamic"}
    assert "no calibration images" in bare["source"]["speed_choice"]["not_built"]["ort-static"]
    with pytest.raises(ConfigError, match="no calibration images"):
        export_bundle(WEIGHTS, "cpu-int8", tmp_path / "typo", calibration=str(tmp_path / "my_pol"), measure=False)
    assert not (tmp_path / "typo" / "manifest.json").exists()
    written = export_bundle(WEIGHTS, "cpu-int8", None, precision="int8", calibration=str(pool_root),
                            calibration_size=16, measure=False)
    assert written == Path("runs/export/cpu-int8-int8/manifest.json")
    forced = json.loads(written.read_text())
    assert forced["precision"] == "int8" and "speed_choice" not in forced["source"]
    assert _dynamic_int8_layers(written.parent / "model.onnx") == _fc_layers() and "dynamic" in forced["source"]["quantization"]
    # --quantizer overrides the platform's: static QDQ int8 of every layer, calibrated
    static = json.loads(export_bundle(WEIGHTS, "cpu-int8", tmp_path / "static", precision="int8",
                                      quantizer="ort-static", calibration=str(pool_root), calibration_size=16,
                                      measure=False).read_text())
    assert _quantize_nodes(tmp_path / "static" / "model.onnx") > 10
    assert static["source"]["calibration"]["images"] == 16 and "static QDQ" in static["source"]["quantization"]


def test_the_force_command_names_what_was_timed():
    """An explicit quantizer on a platform whose own is another: the command must name it, or it rebuilds the
    platform's; calibration flags only where the quantizer calibrates."""
    pytest.importorskip("torch", reason="exporting needs torch: pip install 'edgepose[train]'")
    from edgepose.exporters.export import _force_int8_command
    from edgepose.exporters.formats import FORMATS

    static = _force_int8_command("m.pt", "cpu-int8", "ort-static", FORMATS["onnx"], "pool", 64, "")
    assert static == "edgepose export m.pt --platform cpu-int8 --precision int8 --quantizer ort-static " \
                     "--calibration pool --calibration-size 64"
    dynamic = _force_int8_command("my model.pt", "cpu-int8", "ort-dynamic", FORMATS["onnx"], "pool", 64, "")
    assert dynamic == "edgepose export 'my model.pt' --platform cpu-int8 --precision int8 --quantizer ort-dynamic"


@pytest.mark.parametrize("key,value,int8_yaml,refused", [
    ("int8_if_faster", "true", "name: trt\nbackend: tensorrt\nprecision: int8\nint8_if_faster: true\n",
     "tensorrt has no fp32 artifact to time against"),
    ("quantizer", "ort-dynamic", "name: typo\nbackend: onnxruntime\nprecision: int8\nquantizer: ort-dynamc\n",
     r"platform '.*mine.yaml' names quantizer 'ort-dynamc'.*Did you mean 'ort-dynamic'\? Set its quantizer to one "
     r"of: ort-static, nncf-ptq, ort-dyn"),
])
def test_int8_platform_fields_are_refused_where_they_cannot_apply(tmp_path, key, value, int8_yaml, refused):
    """Each is for int8 platforms (refused on an fp32 one when the file loads) and must fit the platform's format
    (refused at export, before anything is written): int8_if_faster needs an fp32 artifact to time against, a
    quantizer must be one the format offers."""
    from edgepose.platform import load_platform

    assert load_platform("cpu-int8").quantizer == ("ort-dynamic", "ort-static") and load_platform("cpu").quantizer == ()
    fp32 = tmp_path / "fp32.yaml"
    fp32.write_text(f"name: mine\nbackend: onnxruntime\nprecision: fp32\n{key}: {value}\n")
    with pytest.raises(ConfigError, match=f"{key} applies to int8 platforms, this one is fp32"):
        load_platform(fp32)
    pytest.importorskip("torch", reason="exporting needs torch: pip install 'edgepose[train]'")
    from edgepose.exporters.export import export_bundle

    mine = tmp_path / "mine.yaml"
    mine.write_text(int8_yaml)
    with pytest.raises(ConfigError, match=refused):
        export_bundle(WEIGHTS, str(mine), tmp_path / "b", measure=False)
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_a_litert_platform_times_its_own_int8_and_fp32_files(tmp_path, pool_root):
    """The flag on a LiteRT platform: two .tflite files (NHWC input), each fed its own input, one of them ships."""
    pytest.importorskip("torch", reason="exporting needs torch: pip install 'edgepose[train]'")
    from edgepose.backends import backend_available
    from edgepose.exporters.export import export_bundle

    ok, why = backend_available("litert")
    if not ok:
        pytest.skip(why)
    pytest.importorskip("litert_torch", reason="LiteRT export needs litert-torch: pip install 'edgepose[tflite-export]'")
    from ai_edge_litert.interpreter import Interpreter

    platform = tmp_path / "arm.yaml"
    platform.write_text("name: arm\nbackend: litert\nprecision: int8\nint8_if_faster: true\n")
    manifest = json.loads(export_bundle(WEIGHTS, str(platform), tmp_path / "b", calibration=str(pool_root),
                                        calibration_size=16, measure=False).read_text())
    choice = manifest["source"]["speed_choice"]
    assert manifest["format"] == "tflite" and manifest["precision"] == choice["shipped"]
    assert ("quantization" in manifest["source"]) == (choice["shipped"] == "int8")
    # the shipped file is the precision the manifest names (the int8 build takes int8 pixels, the fp32 one floats)
    dtype = Interpreter(model_path=str(tmp_path / "b" / "model.tflite")).get_input_details()[0]["dtype"]
    assert (dtype == np.int8) == (manifest["precision"] == "int8")


@pytest.mark.slow
@pytest.mark.parametrize("shipped, fastest", [("int8", "ort-dynamic"), ("int8", "ort-static"), ("fp32", "ort-static")])
def test_the_manifest_follows_either_outcome(tmp_path, pool_root, monkeypatch, shipped, fastest):
    """Every branch on any machine: the timing is replaced by a fixed outcome (which int8 is fastest, and whether it
    beats fp32); the shipped file and the manifest's fields must follow."""
    pytest.importorskip("torch", reason="exporting needs torch: pip install 'edgepose[train]'")
    from edgepose.exporters import speed_choice
    from edgepose.exporters.export import export_bundle

    seen = []

    def fixed(int8, fp32, backend, options, rounds=5, calls=100):
        seen.append(({q: (_dynamic_int8_layers(p), _quantize_nodes(p)) for q, (p, _) in int8.items()},
                     _dynamic_int8_layers(fp32[0]) + _quantize_nodes(fp32[0]), len({p for p, _ in int8.values()})))
        ratio = 0.8 if shipped == "int8" else 1.3
        return speed_choice.SpeedChoice(shipped, ratio, 1.0, ratio, rounds, calls, "test CPU", quantizer=fastest,
                                        candidates={q: {"p50_ms": ratio, "over_fp32": ratio} for q in int8})

    monkeypatch.setattr(speed_choice, "choose_faster", fixed)
    manifest = json.loads(export_bundle(WEIGHTS, "cpu-int8", tmp_path / "b", calibration=str(pool_root),
                                        calibration_size=16, measure=False).read_text())
    (int8_graphs, fp32_nodes, files), = seen  # each candidate its own (temporary) file, the fp32 one plain
    assert int8_graphs["ort-dynamic"] == (_fc_layers(), 0) and int8_graphs["ort-static"][1] > 10
    assert fp32_nodes == 0 and files == 2
    source, model = manifest["source"], tmp_path / "b" / "model.onnx"
    assert manifest["precision"] == shipped and source["speed_choice"]["host"] == "test CPU"
    form = fastest if shipped == "int8" else "fp32"  # what the shipped file must be
    assert (_dynamic_int8_layers(model) == _fc_layers()) == (form == "ort-dynamic")
    assert (_quantize_nodes(model) > 10) == (form == "ort-static")
    assert ("quantization" in source) == (form != "fp32") and ("calibration" in source) == (form == "ort-static")
    assert ("static QDQ" in source.get("quantization", "")) == (form == "ort-static")
    force = source["speed_choice"]["force_int8"]  # rebuilds the fastest int8, calibrated as it was
    assert f"--precision int8 --quantizer {fastest}" in force
    assert force.endswith("--calibration-size 16" if fastest == "ort-static" else f"--quantizer {fastest}")
