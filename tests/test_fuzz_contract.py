"""Fuzzing the public API (Hypothesis, bounded): random manifests, frames, boxes and recipe overrides give results or
EdgePoseError subclasses, never another exception, and no file outside the test's temporary folder is opened for
writing, nor any file outside it (and the installed code) for reading."""
import copy
import json
import os
import shutil
import sys
import sysconfig
from importlib.resources import files

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz test needs hypothesis (the dev extra)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import edgepose  # noqa: E402
from edgepose import Runtime  # noqa: E402
from edgepose.bundle import bundled_dir  # noqa: E402
from edgepose.errors import EdgePoseError  # noqa: E402
from edgepose.train.recipe import recipe_from_yaml  # noqa: E402

FUZZ = settings(deadline=None, database=None, derandomize=True, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
INSTALLED = [os.path.realpath(str(p)) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, *sysconfig.get_paths().values(),
                                                os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                os.path.dirname(edgepose.__file__), files("edgepose.platforms")}]
SYSTEM = ("/dev/", "/proc/", "/sys/", "/usr/", "/lib", "/etc/ld.so", "/opt/")


class FileWatch:
    """An audit hook (installed once; hooks cannot be removed) recording every `open` while armed that writes
    outside `root`, or reads outside `root`, the installed code and system libraries."""

    def __init__(self):
        self.root, self.armed, self.violations = "", False, []
        sys.addaudithook(self._hook)

    def _hook(self, event, args):
        if not self.armed or event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        path, mode, flags = args
        real = os.path.realpath(os.fsdecode(path))
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                 (isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND))
        if real.startswith(self.root) or (real.endswith(".pyc") and "__pycache__" in real):
            return
        if writes or not (any(real.startswith(p + os.sep) for p in INSTALLED) or real.startswith(SYSTEM)):
            self.violations.append((real, mode, flags))


WATCH = FileWatch()


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """A bundle folder to fuzz manifests in, a canary model file outside it, and the original manifest."""
    root = tmp_path_factory.mktemp("fuzz")
    outside = tmp_path_factory.mktemp("outside") / "secret.onnx"
    shutil.copyfile(bundled_dir("default") / "model.onnx", outside)
    folder = root / "bundle"
    shutil.copytree(bundled_dir("default"), folder)
    with Runtime("cpu", model=str(folder), threads=1) as rt:  # imports and engine set up before the watch arms
        rt.infer(np.zeros((64, 64, 3), np.uint8))
    base = json.loads((folder / "manifest.json").read_text())
    return root, folder, outside, base


def _watched(root, call):
    WATCH.root, WATCH.violations, WATCH.armed = str(root) + os.sep, [], True
    try:
        return call()
    except EdgePoseError as exc:
        return exc
    finally:
        WATCH.armed = False
        assert not WATCH.violations, WATCH.violations


ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(), st.text(max_size=6),
                      st.lists(st.one_of(st.integers(-3, 300), st.floats(-2, 2)), max_size=5),
                      st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))
KEYS = [("schema",), ("model_file",), ("format",), ("precision",), ("sha256",), ("ensemble",), ("name",), ("source",),
        ("input",), ("input", "name"), ("input", "size"), ("input", "layout"), ("input", "color"), ("input", "mean"),
        ("input", "std"), ("input", "batch"), ("input", "dtype"), ("crop",), ("crop", "protocol"), ("crop", "scale"),
        ("crop", "margins"), ("crop", "aligned"), ("output",), ("output", "type"), ("output", "name"), ("extra",),
        ("input", "extra")]


def _paths(outside):
    rel = os.path.relpath(outside, "/")
    return st.sampled_from(["../../../../etc/passwd", "/etc/passwd", str(outside), "../../" + "../" * 8 + rel,
                            "~/model.onnx", "model.onnx/..", "", "./model.onnx", "sub/model.onnx", "C:\\model.onnx",
                            "model.onnx\x00", "..", "model.tflite"])


@st.composite
def mutations(draw, outside):
    """(key path, value or DELETE) edits: random values anywhere, hostile model paths, checksums and schemas."""
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["value", "delete", "path", "member", "sha", "schema", "range"]))
        if kind == "value":
            edits.append((draw(st.sampled_from(KEYS)), draw(ANY_VALUE)))
        elif kind == "delete":
            edits.append((draw(st.sampled_from(KEYS)), "DELETE"))
        elif kind == "path":
            edits.append((("model_file",), draw(_paths(outside))))
        elif kind == "member":
            edits.append((("ensemble",), [{"model_file": draw(_paths(outside)), "sha256": draw(st.text(max_size=3))}]))
        elif kind == "sha":
            edits.append((("sha256",), draw(st.sampled_from(["", "0" * 64, 12, None, "DELETE"]))))
        elif kind == "schema":
            edits.append((("schema",), draw(st.sampled_from(["1", 1.0, 2, 0, -1, True, None]))))
        else:
            key = draw(st.sampled_from([("crop", "scale"), ("crop", "margins"), ("input", "size"), ("input", "std"),
                                        ("input", "batch"), ("input", "mean")]))
            number = draw(st.one_of(st.floats(), st.integers(-1000, 100000)))
            edits.append((key, [number] * draw(st.integers(0, 5)) if key[1] != "scale" and key[1] != "batch" else number))
    return edits


def _apply(base: dict, edits) -> dict:
    data = copy.deepcopy(base)
    for keys, value in edits:
        node = data
        for key in keys[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        if value == "DELETE":
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
    return data


@settings(FUZZ, max_examples=90)
@given(data=st.data())
def test_random_manifests(case, data):
    root, folder, outside, base = case
    manifest = _apply(base, data.draw(mutations(outside)))
    (folder / "manifest.json").write_text(json.dumps(manifest))
    frame = np.full((72, 96, 3), 128, np.uint8)

    def run():
        with Runtime("cpu", model=str(folder), threads=1) as rt:
            return rt.infer(frame, boxes=[(10, 10, 60, 60)])

    result = _watched(root, run)
    hypothesis.event(type(result).__name__)
    if str(outside) in json.dumps(manifest) or "etc/passwd" in json.dumps(manifest):
        assert isinstance(result, EdgePoseError)


FRAMES = st.one_of(
    st.tuples(st.integers(0, 80), st.integers(0, 80), st.sampled_from([None, 1, 3, 4]),
              st.sampled_from(["uint8", "float32", "int16", "bool", "float64"])),
    st.sampled_from([None, "frame.jpg", 3, [[1, 2, 3]], b"\x00"]))
COORD = st.one_of(st.floats(), st.integers(-10**9, 10**9))
BOXES = st.one_of(st.none(), st.lists(st.lists(COORD, min_size=0, max_size=5), max_size=3),
                  st.sampled_from(["box", 5, [None], {"x": 1}, np.zeros((2, 4)), np.full((1, 4), np.nan)]))


def _frame(spec):
    if not isinstance(spec, tuple):
        return spec
    h, w, c, dtype = spec
    shape = (h, w) if c is None else (h, w, c)
    return np.random.default_rng(h * 131 + w).integers(0, 255, shape).astype(dtype)


@settings(FUZZ, max_examples=60)
@given(frame=FRAMES, boxes=BOXES)
def test_random_frames_and_boxes(runtime, tmp_path, frame, boxes):
    result = _watched(tmp_path, lambda: runtime.infer(_frame(frame), boxes=boxes))
    if not isinstance(result, EdgePoseError):
        assert all(np.isfinite([p.yaw, p.pitch, p.roll]).all() for p in result)


RECIPE_KEYS = ["train.epochs", "train.batch_size", "train.lr", "data.holdout", "data.crop_scale", "model.input_size",
               "augment.flip", "train.curriculum", "distill.temperature", "model.backbone", "train", "train.epochs.x",
               "nope.key", "data", "", "qat.calibration_size", "train.seed"]
RAW = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats().map(repr), st.text(max_size=8),
                st.sampled_from(["[[0, 500]]", "{a: 1}", "[1, 2", "'x", ".nan", "-.inf", "null", "", ": :", "*x"]))


@settings(FUZZ, max_examples=60)
@given(overrides=st.lists(st.tuples(st.sampled_from(RECIPE_KEYS), RAW), min_size=1, max_size=3),
       text=st.sampled_from(["", "name: x\n", "- 1\n", "train: 3\n", "{"]))
def test_random_recipe_overrides(tmp_path, overrides, text):
    _watched(tmp_path, lambda: recipe_from_yaml(text, [f"{k}={v}" for k, v in overrides]))
