"""The manifest checked against the model the engine opened: input name, shape, layout and dtype, output names."""
from __future__ import annotations

from .backends import ModelIO, TensorInfo
from .decode import output_names
from .errors import ModelFormatError
from .manifest import Manifest


def check_model_io(manifest: Manifest, io: ModelIO, path: str) -> None:
    """Raise ModelFormatError, naming what the manifest says and what the model has, when they disagree.

    Dynamic dimensions (None) match anything; a fixed batch must equal the manifest's `input.batch` (0 = dynamic
    needs a dynamic batch). A float32 manifest input matches an integer model input the backend quantizes itself.
    """
    spec = manifest.input
    expected = spec.shape(spec.batch or None)
    wanted = f"input '{spec.name}' {_dims(expected)} {spec.dtype} ({spec.layout})"
    have = ", ".join(f"'{t.name}' {_dims(t.shape)} {t.dtype}{' (quantized)' if t.quantized else ''}" for t in io.inputs)
    fix = "; fix the manifest's input section (or re-export the bundle) so both sides agree"
    if len(io.inputs) != 1:
        raise ModelFormatError(f"model '{path}' has {len(io.inputs)} inputs ({have}); the runtime feeds exactly one: "
                               f"the manifest's {wanted}")
    info: TensorInfo = io.inputs[0]
    problems = []
    if info.name != spec.name:
        problems.append("name")
    if len(info.shape) != 4:
        problems.append("rank")
    else:
        if any(m is not None and e is not None and m != e for m, e in zip(info.shape[1:], expected[1:])):
            problems.append("shape/layout")
        if info.shape[0] is not None and info.shape[0] != (spec.batch or None):
            problems.append(f"batch (manifest input.batch {spec.batch}{' = dynamic' if not spec.batch else ''})")
    if info.dtype != spec.dtype and not (spec.dtype == "float32" and info.quantized):
        problems.append("dtype")
    if problems:
        raise ModelFormatError(f"model '{path}' does not match its manifest ({', '.join(problems)} differ): the "
                               f"manifest says {wanted}, the model has {have}{fix}")
    missing = [n for n in output_names(manifest.output) if n not in io.outputs]
    if missing:
        raise ModelFormatError(f"model '{path}' does not match its manifest: the manifest decodes output(s) "
                               f"{missing} (output.type '{manifest.output['type']}'), the model's outputs are "
                               f"{list(io.outputs)}; fix the manifest's output names")


def _dims(shape) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"
