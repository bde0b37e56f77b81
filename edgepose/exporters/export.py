"""One export entry: checkpoint + platform -> bundle (artifact + manifest), measured where the backend runs here."""
from __future__ import annotations

import dataclasses
import platform as host_platform
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..atomic import check_output_folder, publish, stale_stages, staged_folder
from ..backends import backend_available
from ..errors import BackendUnavailableError, ConfigError, did_you_mean
from ..manifest import CropSpec, InputSpec, Manifest, save_manifest, sha256_file
from ..platform import Platform, load_platform
from ..train.checkpoint import crop_spec, dev_crops, input_spec, load_trained, predict_degrees, read_checkpoint
from .calibration import calibration_inputs
from .formats import ExportFormat, format_for
from .onnx_export import OUTPUT_NAME, write_onnx
from .record_accuracy import record_accuracy

DEFAULT_CALIBRATION_SIZE = 256
QAT_FORMATS = ("weights", "nncf-qdq")  # how a QAT checkpoint becomes int8 (see export_bundle)
def export_bundle(checkpoint: str | Path, platform: str = "cpu", out_dir: str | Path | None = None, *,
                  precision: str | None = None, calibration: str | None = None,
                  calibration_size: int = DEFAULT_CALIBRATION_SIZE, dev_root: str | None = None,
                  qat_format: str = "weights", quantizer: str | None = None, measure: bool = True) -> Path:
    """Export a training checkpoint for a platform; returns the manifest path.

    Args:
        platform: packaged platform name or YAML path; decides format (via its backend) and precision.
        precision: override the platform's precision. An explicit precision is exported as asked; the platform's
            own int8 is timed against fp32 first when the platform sets `int8_if_faster` (see speed_choice).
        calibration: images for int8 (the training pool, a folder with index.csv, by default).
        dev_root: AFLW2000 folder for the parity and accuracy figures recorded in the manifest (default: the
            recipe's eval root). Measured only when this machine can run the platform's backend.
        qat_format: for quantization-aware checkpoints: "weights" (QAT weights + the target's static
            quantizer, the default: fastest here) or "nncf-qdq" (ONNX only: NNCF's own QDQ graph).
        quantizer: the int8 quantizer (one of the format's; default: the platform's `quantizer`, else the
            format's first; a QAT checkpoint without one takes the format's first, the static one it trained for).
            A platform with `int8_if_faster` that lists several has each built and timed; the fastest is used.
        measure: record the dev accuracy and PyTorch parity in the manifest (skipped for throwaway exports).
    """
    if dev_root and not Path(dev_root).is_dir():  # named but missing: an error, not a manifest without figures
        raise ConfigError(f"--dev-root '{dev_root}' is not a folder; give your AFLW2000 folder, or leave it out")
    plat = load_platform(platform)
    speed_check = plat.int8_if_faster and precision is None
    precision = precision or plat.precision
    fmt: ExportFormat = format_for(plat.backend, precision)
    if speed_check and (fmt.on_device or "fp32" not in fmt.precisions):
        raise ConfigError(f"platform '{plat.name}' sets int8_if_faster, but {fmt.name} has no fp32 artifact to time "
                          "against here; remove int8_if_faster from the platform file or pass --precision int8")
    usable, why = backend_available(plat.backend)  # can this machine run the artifact (time it, measure it)?
    state = read_checkpoint(checkpoint)
    model, recipe = load_trained(checkpoint, state=state)
    from ..train.qat import is_quantized

    quantized = is_quantized(model)
    quantizers = _quantizers(fmt, precision, quantizer, plat, str(platform), quantized)
    quantizer = quantizers[0] if quantizers else ""  # the one used unless another is built or timed faster
    if quantized and precision != "int8":
        raise ConfigError(f"'{checkpoint}' is a quantization-aware (int8) checkpoint; export it with an int8 "
                          f"platform or --precision int8, or export its fp32 parent (qat.init) for {precision}")
    if qat_format not in QAT_FORMATS:
        raise ConfigError(f"qat_format '{qat_format}' is unknown; use one of {', '.join(QAT_FORMATS)}")
    if quantized and qat_format == "nncf-qdq" and fmt.name != "onnx":
        raise ConfigError("qat_format 'nncf-qdq' is an ONNX graph; use qat_format 'weights' for "
                          f"{fmt.name} (the target's own quantizer on the QAT weights)")
    if quantized and qat_format == "weights":
        # the QAT weights rounded onto their int8 grid, then the target's own static quantizer calibrates the
        # activations (ORT QDQ with u8 activations / LiteRT PT2E): NNCF's QDQ graph ran 5-8x slower in ORT here
        from ..train.models import create_for
        from ..train.qat import bake_weights, fold_batchnorm

        model = bake_weights(model, fold_batchnorm(create_for(recipe.model).eval()), recipe.model.input_size)

    spec = input_spec(recipe)
    # a platform that ships the faster of int8 and fp32 does not know which before timing: its folder is its name
    out = check_output_folder(out_dir or (f"runs/export/{plat.name}" if speed_check
                                          else f"runs/export/{plat.name}-{precision}"))
    previous = _bundle_model(out)  # the model file of a bundle this export replaces (another format's is removed)
    calib_source = calibration or recipe.data.root
    calib_cache: dict = {}

    def calibration_batch() -> np.ndarray:
        if "x" not in calib_cache:
            calib_cache["x"] = calibration_inputs(calib_source, spec, calibration_size, crop_spec(recipe))
        return calib_cache["x"]

    base = Manifest(model_file="model.onnx", format="onnx", precision="fp32", input=spec,
                    crop=crop_spec(recipe),
                    output=model.head.decoding(OUTPUT_NAME), name=recipe.name,
                    source={"recipe": recipe.name, "checkpoint_sha256": sha256_file(checkpoint), "edgepose": __version__,
                            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "host": host_platform.machine(), "platform": plat.name,
                            **_provenance(state)})
    remove_stale_work(out)
    # the bundle is built and measured in a hidden folder inside `out` and moved in when whole: a failed or killed
    # export changes no file of `out`; the work folder lives in the system's temporary folder
    with staged_folder(out) as stage:
        with tempfile.TemporaryDirectory(prefix="edgepose-export-") as tmp:
            work = Path(tmp)
            onnx32 = write_onnx(model, spec, work / "fp32.onnx")
            base = dataclasses.replace(base, sha256=sha256_file(onnx32))
            ctx = {"model": model, "spec": spec, "precision": precision, "work": work, "onnx32": onnx32,
                   "calibration": calibration_batch, "manifest": base, "out": out,
                   "qat": qat_format if quantized else "", "quantizer": quantizer}
            untimed = (why or ("an NNCF QDQ graph has no fp32 artifact" if ctx["qat"] == "nncf-qdq" else "")
                       if speed_check else "")
            builds: dict[str, tuple] = {}
            not_built: dict[str, str] = {}
            if quantizers:  # every listed candidate when they are to be timed, else the first that builds
                builds, not_built = _build_int8(fmt, ctx, quantizers, every=speed_check and not untimed,
                                                tolerate=calibration is None)
                quantizer = next(iter(builds))
                artifact, artifact_spec, output_name = builds[quantizer]
            else:
                artifact, artifact_spec, output_name = fmt.build(ctx)
            choice = None
            if speed_check:
                choice, fp32_build, untimed = _speed_choice(plat, fmt, ctx, builds, untimed)
            if choice:
                quantizer = choice.quantizer  # the fastest int8, shipped or (when fp32 ships) the one to force
                if choice.shipped == "fp32":
                    precision = "fp32"
                artifact, artifact_spec, output_name = fp32_build if choice.shipped == "fp32" else builds[quantizer]
            final = stage / f"model{fmt.suffix}"
            shutil.copyfile(artifact, final)
        source = dict(base.source)
        if "x" in calib_cache and precision == "int8" and quantizer not in fmt.uncalibrated:
            # (a shipped fp32 artifact, or an uncalibrated int8 one timed beside a calibrated candidate, used none)
            source["calibration"] = {"source": str(calib_source), "images": int(len(calib_cache["x"]))}
        if choice:
            source["speed_choice"] = choice.record(_force_int8_command(
                checkpoint, platform, quantizer, fmt, calibration, calibration_size, qat_format if quantized else ""))
        elif untimed:
            source["speed_choice"] = {"shipped": precision, "untimed": untimed, "quantizer": quantizer}
        if not_built and "speed_choice" in source:
            source["speed_choice"]["not_built"] = not_built
        elif not_built:
            source["not_built"] = not_built
        if quantized and precision == "fp32":
            source["quantization"] = "NNCF QAT weights (int8 grid) in an fp32 graph: int8 ran slower here"
        elif quantized:
            source["quantization"] = ("NNCF QAT, NNCF's QDQ graph" if qat_format == "nncf-qdq" else
                                      "NNCF QAT weights (int8 grid) + " + fmt.quantizers[quantizer])
        elif precision == "int8":
            source["quantization"] = "post-training: " + fmt.quantizers[quantizer]
        manifest = dataclasses.replace(base, model_file=final.name, format=fmt.name, precision=precision,
                                       input=artifact_spec, output=model.head.decoding(output_name),
                                       sha256=sha256_file(final), source=source)
        save_manifest(manifest, stage / "manifest.json")
        if usable and measure:
            measure_bundle(stage, str(platform), model, recipe, dev_root or recipe.eval.aflw2000_root)
        elif measure:
            print(f"not measured here: {why}")
        publish(stage, out, [final.name, "manifest.json"])  # the manifest, which vouches for the model, last
        _remove_replaced_model(out, previous, final.name)
    return out / "manifest.json"


def _build_int8(fmt: ExportFormat, ctx: dict, quantizers: tuple[str, ...], every: bool,
                tolerate: bool) -> tuple[dict, dict]:
    """The int8 artifacts, quantizer -> (artifact, input spec, output name), each built in its own work folder:
    every quantizer listed (`every`: they are to be timed) or the first that builds. With `tolerate` (calibration
    from the recipe's own pool, not named by the user) a quantizer that cannot be built here (ConfigError, e.g. no
    calibration images) is left out and returned with why, also on stderr.

    Raises:
        ConfigError: a failed build where not tolerated, or none built.
    """
    builds, not_built = {}, {}
    for name in quantizers:
        (ctx["work"] / name).mkdir()
        try:
            builds[name] = fmt.build({**ctx, "quantizer": name, "work": ctx["work"] / name})
        except ConfigError as exc:
            if not tolerate:
                raise
            not_built[name] = str(exc)
            print(f"int8 quantizer {name} left out: {exc}", file=sys.stderr)
            continue
        if not every:
            break
    if not builds:
        raise ConfigError("no int8 graph could be built: " + "; ".join(f"{q}: {w}" for q, w in not_built.items()))
    return builds, not_built


def _speed_choice(plat, fmt: ExportFormat, ctx: dict, int8: dict, untimed: str):
    """(choice, fp32 build, ""): the int8 artifacts (quantizer -> build, see _build_int8) timed against the fp32 one
    of the same weights here; (None, None, why), with the note on stderr too, where they cannot be timed (`untimed`:
    the platform's engine cannot run here, or the int8 graph has no fp32 twin; or the engine fails to open them):
    the first int8 ships untimed."""
    from .speed_choice import choose_faster

    choice = fp32_build = None
    why = untimed
    if not why:
        (ctx["work"] / "fp32").mkdir()
        fp32_build = fmt.build({**ctx, "precision": "fp32", "work": ctx["work"] / "fp32"})
        try:
            choice = choose_faster({q: b[:2] for q, b in int8.items()}, fp32_build[:2], plat.backend,
                                   plat.backend_options)
        except BackendUnavailableError as exc:  # e.g. an execution provider this machine lacks
            why = str(exc)
    if choice is None:
        print(f"int8 kept without timing it against fp32: {why}", file=sys.stderr)
        return None, None, why
    note = ("" if choice.shipped == "int8" else "; --precision int8 forces int8" +
            (" (this is a QAT checkpoint: its fp32 parent, the recipe's qat.init, is the more accurate fp32)"
             if ctx["qat"] else ""))
    others = "".join(f", {q} int8/fp32 {c['over_fp32']:.2f}" for q, c in choice.candidates.items()
                     if q != choice.quantizer)
    print(f"{plat.name}: int8 ({choice.quantizer}) p50 {choice.int8_p50_ms:.3f} ms vs fp32 {choice.fp32_p50_ms:.3f} ms "
          f"(int8/fp32 {choice.int8_over_fp32:.2f}{others}; batch 1, 1 thread, {choice.rounds} interleaved rounds): "
          f"ships {choice.shipped}{note}", file=sys.stderr)
    return choice, fp32_build, ""


def _force_int8_command(checkpoint, platform, quantizer: str, fmt: ExportFormat, calibration, calibration_size: int,
                        qat_format: str) -> str:
    """The export command that builds the int8 graph the speed choice timed, without the choice. It names the
    quantizer always (the default depends on the platform file and on QAT), and calibration only where it is used."""
    words = ["edgepose", "export", str(checkpoint), "--platform", str(platform), "--precision", "int8",
             "--quantizer", quantizer]
    if qat_format and qat_format != QAT_FORMATS[0]:
        words += ["--qat-format", qat_format]
    if quantizer not in fmt.uncalibrated:
        if calibration:
            words += ["--calibration", str(calibration)]
        if calibration_size != DEFAULT_CALIBRATION_SIZE:
            words += ["--calibration-size", str(calibration_size)]
    return " ".join(shlex.quote(w) for w in words)


def remove_stale_work(out: Path) -> list[Path]:
    """Remove what a killed export left in bundle folder `out`: its staging folder (.staged-PID-*, once that process
    is gone), and what older versions left, the hidden temporary files of their atomic writes (.model.*.tmp,
    .manifest.json.*.tmp) and tmpXXXXXXXX work folders (recognised by their fp32.onnx). Returns what was removed."""
    stale = stale_stages(out)
    if out.is_dir():
        stale += [p for p in out.glob(".model.*.tmp") if p.is_file()] + [p for p in out.glob(".manifest.json.*.tmp")]
        stale += [p for p in out.glob("tmp*") if p.is_dir() and len(p.name) == 11 and (p / "fp32.onnx").exists()]
    for path in stale:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    return stale


def _bundle_model(out: Path) -> str:
    """The model file named by the manifest in folder `out`, if it holds a readable one ('' otherwise)."""
    import json

    try:
        name = json.loads((out / "manifest.json").read_text()).get("model_file", "")
    except (OSError, ValueError, AttributeError):
        return ""
    return name if isinstance(name, str) and name.startswith("model.") and "/" not in name else ""


def _remove_replaced_model(out: Path, previous: str, current: str) -> None:
    """Remove the model file of the bundle `out` held before this export when it has another name (another format):
    nothing reads it any more, and a stale model.onnx beside a model.tflite misleads."""
    if previous and previous != current:
        (out / previous).unlink(missing_ok=True)


def _provenance(state: dict) -> dict:
    """Manifest source fields a checkpoint carries beyond its recipe: the members of a weight average."""
    return {"averaged_from": state["averaged_from"]} if state.get("averaged_from") else {}


def _quantizers(fmt: ExportFormat, precision: str, quantizer: str | None, plat: Platform, where: str,
                qat: bool) -> tuple[str, ...]:
    """The int8 quantizers to build (none for float precisions), the first the one used unless they are timed: the
    one asked for, else the platform's (post-training only: a QAT checkpoint takes the format's first, the static
    quantizer it was trained for), else the format's first.

    Raises:
        ConfigError: a quantizer for a float precision, or one the format does not offer.
    """
    if precision != "int8":
        if quantizer:
            raise ConfigError(f"--quantizer applies to int8 exports; this export is {precision} (drop --quantizer "
                              "or add --precision int8)")
        return ()
    offered = fmt.quantizers
    if quantizer is None and plat.quantizer and not qat:
        for name in plat.quantizer:
            if name not in offered:
                raise ConfigError(f"platform '{where}' names quantizer '{name}', which {fmt.name} int8 does not "
                                  f"offer.{did_you_mean(name, offered)} Set its quantizer to one of: "
                                  f"{', '.join(offered)}")
        return tuple(plat.quantizer) if plat.int8_if_faster else tuple(plat.quantizer[:1])
    if quantizer is None:
        return (next(iter(offered)),)
    if quantizer not in offered:
        raise ConfigError(f"{fmt.name} int8 has no quantizer '{quantizer}'; choose one of: {', '.join(offered)}")
    return (quantizer,)


def measure_bundle(bundle: Path, platform: str, model, recipe, dev_root: str) -> dict:
    """Record in the manifest: dev accuracy through the platform's Runtime, and its distance from PyTorch: max and
    mean |degrees| per angle, and the rotation (geodesic) distance, which stays small where near |yaw| 90 pitch
    and roll trade against each other (an int8 face can move 25 deg in pitch and roll for 6 deg of rotation)."""
    from ..angles import euler_to_matrix, geodesic_degrees
    from ..evaluation.metrics import angle_errors

    if not dev_root or not Path(dev_root).is_dir():
        return {}

    def parity(rt) -> dict:
        crops, _ = dev_crops(dev_root, input_spec(recipe), crop_spec(recipe))
        pred, ref = rt.infer_crops(crops), predict_degrees(model, crops)
        diff = angle_errors(pred, ref)
        turn = geodesic_degrees(euler_to_matrix(*pred.T), euler_to_matrix(*ref.T))
        return {"parity_vs_torch_max_abs_deg": float(diff.max()), "parity_vs_torch_mean_abs_deg": float(diff.mean()),
                "parity_vs_torch_geodesic_max_deg": float(turn.max()),
                "parity_vs_torch_geodesic_mean_deg": float(turn.mean())}

    return record_accuracy(bundle, platform, dev_root, parity)
