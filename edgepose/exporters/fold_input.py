"""Normalisation folded into an ONNX model: the graph takes the crop's raw pixels (uint8, NHWC, BGR) and does
what `preprocess.to_input` would do on the host (cast, layout, colour order, (x - mean) / std) as its first nodes.

The runtime then hands the crop to the engine as it is (a view, no float copy): on the cpu bundle this takes about
0.03 ms off the per-face path outside the engine (docs/detection.md). Outputs match the float model's to float32
rounding (tests/test_fold_input.py).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..atomic import atomic_path
from ..errors import ConfigError, ModelFormatError
from ..manifest import InputSpec, Manifest, load_manifest, model_files, save_manifest, sha256_file

PIXELS = "pixels"  # the folded model's input: (N, H, W, 3) uint8 BGR, as OpenCV gives crops


def pixel_spec(spec: InputSpec) -> InputSpec:
    """The manifest input of a folded model: raw BGR uint8 pixels in NHWC, identity normalisation."""
    return dataclasses.replace(spec, name=PIXELS, layout="NHWC", color="BGR", mean=(0.0,) * 3, std=(1.0,) * 3,
                               dtype="uint8")


def fold_normalisation(model: onnx.ModelProto, spec: InputSpec) -> onnx.ModelProto:
    """`model` (float input described by `spec`) with the host preprocessing prepended; a new ModelProto."""
    if spec.dtype != "float32":
        raise ModelFormatError(f"input '{spec.name}' is {spec.dtype}, not float32: nothing to fold (already folded?)")
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    graph = folded.graph
    inputs = [i for i in graph.input if i.name == spec.name]
    if not inputs:
        raise ModelFormatError(f"the model has no input '{spec.name}' (inputs: {[i.name for i in graph.input]}); fix "
                               "input.name in the manifest")
    old = inputs[0]
    taken = {n for node in graph.node for n in (*node.input, *node.output)} | {t.name for t in graph.initializer} \
        | {i.name for i in graph.input}
    if any(name == PIXELS or name.startswith(PIXELS + "_") for name in taken):
        raise ModelFormatError(f"the model already uses the tensor name '{PIXELS}' or '{PIXELS}_*' (folded already, "
                               "or a name clash); fold the float model it came from")
    batch = old.type.tensor_type.shape.dim[0]
    batch_dim = batch.dim_param or (batch.dim_value if batch.HasField("dim_value") else "batch")
    h, w = spec.size
    nchw = spec.layout == "NCHW"
    channel_shape = (1, 3, 1, 1) if nchw else (1, 1, 1, 3)
    names = {k: f"{PIXELS}_{k}" for k in ("float", "layout", "colour", "centred", "bgr", "mean", "scale")}
    nodes = [helper.make_node("Cast", [PIXELS], [names["float"]], to=TensorProto.FLOAT)]
    x = names["float"]
    if nchw:
        nodes.append(helper.make_node("Transpose", [x], [names["layout"]], perm=[0, 3, 1, 2]))
        x = names["layout"]
    inits = [numpy_helper.from_array(np.asarray(spec.mean, np.float32).reshape(channel_shape), names["mean"]),
             numpy_helper.from_array((1 / np.asarray(spec.std, np.float32)).reshape(channel_shape), names["scale"])]
    if spec.color == "RGB":
        inits.append(numpy_helper.from_array(np.array([2, 1, 0], np.int64), names["bgr"]))
        nodes.append(helper.make_node("Gather", [x, names["bgr"]], [names["colour"]], axis=1 if nchw else 3))
        x = names["colour"]
    nodes.append(helper.make_node("Sub", [x, names["mean"]], [names["centred"]]))
    nodes.append(helper.make_node("Mul", [names["centred"], names["scale"]], [spec.name]))
    pixels = helper.make_tensor_value_info(PIXELS, TensorProto.UINT8, [batch_dim, h, w, 3])
    position = list(graph.input).index(old)
    graph.input.remove(old)
    graph.input.insert(position, pixels)
    for i, node in enumerate(nodes):
        graph.node.insert(i, node)
    graph.initializer.extend(inits)
    onnx.checker.check_model(folded)
    return folded


def fold_into_quantized_input(model: onnx.ModelProto, spec: InputSpec) -> onnx.ModelProto | None:
    """A static-int8 (QDQ) model whose float input is only quantized and fed to one convolution, rewritten to take
    the crop's uint8 BGR pixels AS that quantized tensor: input scale 1 / std and zero point round(mean), the colour
    order folded into the convolution's weights, the half-step offset round(mean) - mean folded into its int32 bias
    (exact away from the frame's border, where the padding now stands for pixel round(mean)). No float op touches the
    pixels (a tenth of the int8 model's time here went to cast, normalise and quantize).
    Returns None when the graph has another shape (the float fold then applies).
    """
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    users = [n for n in g.node if spec.name in n.input]
    mean, std = spec.mean[0], spec.std[0]
    if (len(users) != 1 or users[0].op_type != "QuantizeLinear" or len(set(spec.mean)) != 1 or len(set(spec.std)) != 1
            or not 0 <= round(mean) <= 255 or spec.layout != "NCHW"):
        return None
    quant = users[0]
    dq = [n for n in g.node if quant.output[0] in n.input]
    convs = [n for n in g.node if dq and dq[0].output[0] in n.input]
    if len(dq) != 1 or dq[0].op_type != "DequantizeLinear" or len(convs) != 1 or convs[0].op_type != "Conv" \
            or len(convs[0].input) != 3:
        return None
    conv = convs[0]
    producers = {o: n for n in g.node for o in n.output}
    w_dq, b_dq = producers.get(conv.input[1]), producers.get(conv.input[2])
    if w_dq is None or b_dq is None or not all(name in inits for name in (*w_dq.input, *b_dq.input)):
        return None
    q_w = numpy_helper.to_array(inits[w_dq.input[0]]).astype(np.float64)
    s_w = numpy_helper.to_array(inits[w_dq.input[1]]).astype(np.float64)
    zp_w = numpy_helper.to_array(inits[w_dq.input[2]]).astype(np.float64) if len(w_dq.input) > 2 else 0.0
    b_q = numpy_helper.to_array(inits[b_dq.input[0]]).astype(np.float64)
    s_b = numpy_helper.to_array(inits[b_dq.input[1]]).astype(np.float64)
    if q_w.ndim != 4 or q_w.shape[1] != 3:
        return None
    per = lambda v: np.broadcast_to(np.reshape(v, (-1,) if np.ndim(v) else ()), (q_w.shape[0],))  # noqa: E731
    weights = (q_w - np.reshape(per(zp_w), (-1, 1, 1, 1))) * np.reshape(per(s_w), (-1, 1, 1, 1))
    s_in, zero = 1.0 / std, int(round(mean))
    offset = (zero - mean) / std  # x = (p - mean) / std = (p - zero) * s_in + offset
    bias = b_q * per(s_b) + offset * weights.sum((1, 2, 3))
    new_s_b = s_in * per(s_w)
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    g = folded.graph
    inits = {t.name: t for t in g.initializer}

    def put(name: str, array: np.ndarray) -> None:
        inits[name].CopyFrom(numpy_helper.from_array(array, name))

    if spec.color == "RGB":  # the pixels come BGR: the convolution reads its input channels in reverse
        put(w_dq.input[0], numpy_helper.to_array(inits[w_dq.input[0]])[:, ::-1].copy())
    put(b_dq.input[0], np.round(bias / new_s_b).astype(np.int32))
    put(b_dq.input[1], new_s_b.astype(np.float32).reshape(numpy_helper.to_array(inits[b_dq.input[1]]).shape))
    scale_name, zero_name = f"{PIXELS}_scale", f"{PIXELS}_zero"
    g.initializer.extend([numpy_helper.from_array(np.array(s_in, np.float32), scale_name),
                          numpy_helper.from_array(np.array(zero, np.uint8), zero_name)])
    node_dq = next(n for n in g.node if n.name == dq[0].name and n.output == dq[0].output)
    layout = helper.make_node("Transpose", [PIXELS], [f"{PIXELS}_nchw"], perm=[0, 3, 1, 2])
    node_dq.input[:] = [f"{PIXELS}_nchw", scale_name, zero_name]
    g.node.remove(next(n for n in g.node if n.output == quant.output))
    g.node.insert(0, layout)
    used = {name for n in g.node for name in n.input}
    for t in [t for t in g.initializer if t.name in quant.input and t.name not in used]:
        g.initializer.remove(t)  # the input quantizer's own scale and zero point
    old = next(i for i in g.input if i.name == spec.name)
    batch = old.type.tensor_type.shape.dim[0]
    batch_dim = batch.dim_param or (batch.dim_value if batch.HasField("dim_value") else "batch")
    position = list(g.input).index(old)
    g.input.remove(old)
    g.input.insert(position, helper.make_tensor_value_info(PIXELS, TensorProto.UINT8, [batch_dim, *spec.size, 3]))
    onnx.checker.check_model(folded)
    return folded


def _check_same_outputs(source: Path, folded: onnx.ModelProto, spec: InputSpec, tolerance: float = 1e-3) -> None:
    """Both models in ONNX Runtime on the same random pixels (through `to_input` for the float one): the outputs
    must agree, else nothing is written."""
    import onnxruntime as ort

    from ..preprocess import to_input

    crops = np.random.default_rng(0).integers(0, 256, (2, *spec.size, 3), dtype=np.uint8)
    float_model = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    pixel_model = ort.InferenceSession(folded.SerializeToString(), providers=["CPUExecutionProvider"])
    want = float_model.run(None, {spec.name: to_input(crops, spec)})
    got = pixel_model.run(None, {PIXELS: to_input(crops, pixel_spec(spec))})
    for a, b in zip(want, got):
        if not np.allclose(a, b, rtol=tolerance, atol=tolerance * max(1.0, float(np.abs(a).max()))):
            raise ModelFormatError(f"the folded model's outputs differ from '{source.name}' (max {np.abs(a - b).max()}"
                                   "); nothing was written — report this with the model")


def fold_bundle(manifest_path: str | Path, out: str | Path, models_dir: str | Path | None = None) -> Path:
    """A new bundle folder `out` holding the manifest's ONNX model with normalisation folded in, and its manifest
    (input: raw pixels; sha256 of the new file; metrics and provenance kept: the outputs are the same for a float
    model, within an int8 step for a static-int8 one, which `edgepose manifest fold-input --dev-root` re-measures). A
    model named by a bare file name is looked up in `models_dir` too, as for peers.

    Raises:
        ConfigError: `out` exists and is not empty, or is the source folder.
        ModelFormatError: not a single ONNX model with float input.
    """
    manifest_path, out = Path(manifest_path), Path(out)
    manifest: Manifest = load_manifest(manifest_path)
    if manifest.format != "onnx" or manifest.ensemble:
        kind = f"{manifest.format} bundle" + (" ensemble" if manifest.ensemble else "")
        raise ModelFormatError(f"'{manifest_path}' is a {kind}; folding the normalisation applies to single ONNX "
                               "models")
    if out.exists() and (not out.is_dir() or out.resolve() == manifest_path.parent.resolve() or any(out.iterdir())):
        raise ConfigError(f"--out '{out}' already exists and is not an empty folder; give a new folder (the source "
                          "bundle stays as it is)")
    (source,) = model_files(manifest, manifest_path.parent, models_dir)
    folded = fold_into_quantized_input(onnx.load(str(source)), manifest.input)
    how = "the pixels are the int8 model's quantized input"
    if folded is not None:  # requantising the input moves outputs by about an int8 step: a looser check
        _check_same_outputs(source, folded, manifest.input, tolerance=0.05)
    else:
        how = "normalisation inside the model"
        folded = fold_normalisation(onnx.load(str(source)), manifest.input)
        _check_same_outputs(source, folded, manifest.input)
    out.mkdir(parents=True, exist_ok=True)
    target = out / Path(manifest.model_file).name
    with atomic_path(target) as tmp:
        onnx.save(folded, tmp)
    new = dataclasses.replace(manifest, model_file=target.name, input=pixel_spec(manifest.input),
                              sha256=sha256_file(target),
                              source={**manifest.source, "input_folded": f"from {source.name} by edgepose manifest "
                                                                        f"fold-input ({how})"})
    save_manifest(new, out / "manifest.json")
    return out / "manifest.json"

