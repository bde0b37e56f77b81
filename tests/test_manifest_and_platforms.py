"""Manifests, bundles and platform files: validation and clear errors."""
import json
import shutil

import pytest

from edgepose.bundle import bundled_dir, resolve_bundle
from edgepose.errors import ConfigError, ModelFormatError, PlatformError
from edgepose.manifest import load_manifest, manifest_from_dict
from edgepose.platform import load_platform, platform_names


def test_default_bundle_is_self_describing():
    manifest, (model,) = resolve_bundle("default")
    assert model.is_file() and model.stat().st_size < 10e6
    assert manifest.output["type"] == "rot6d" and manifest.input.layout == "NHWC" and manifest.input.dtype == "uint8"
    assert manifest.metrics["aflw2000-dev"]["mean"] <= 8.0
    assert manifest.source["recipe"]


def test_manifest_unknown_key_suggests(tmp_path):
    data = json.loads((bundled_dir("default") / "manifest.json").read_text())
    data["input"]["colour"] = "RGB"
    with pytest.raises(ModelFormatError, match="Did you mean 'color'"):
        manifest_from_dict(data)


def test_corrupt_and_missing_model_files(tmp_path):
    bundle = tmp_path / "b"
    shutil.copytree(bundled_dir("default"), bundle)
    model = bundle / "model.onnx"
    model.write_bytes(model.read_bytes()[:1000])
    with pytest.raises(ModelFormatError, match="checksum"):
        resolve_bundle(bundle)
    model.unlink()
    with pytest.raises(ModelFormatError, match="does not exist"):
        resolve_bundle(bundle)
    (bundle / "manifest.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        load_manifest(bundle / "manifest.json")
    with pytest.raises(ModelFormatError, match="no bundle"):
        resolve_bundle(tmp_path / "nowhere")
    with pytest.raises(ModelFormatError, match="training checkpoint.*edgepose export"):
        resolve_bundle("weights/student_mbv3s_128_3ddfa_yaw2.pt")


def test_corrupt_model_with_matching_checksum_fails_at_load(tmp_path):
    from edgepose import Runtime
    from edgepose.manifest import sha256_file

    bundle = tmp_path / "b"
    shutil.copytree(bundled_dir("default"), bundle)
    (bundle / "model.onnx").write_bytes(b"\x00garbage" * 100)
    data = json.loads((bundle / "manifest.json").read_text())
    data["sha256"] = sha256_file(bundle / "model.onnx")
    (bundle / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelFormatError, match="cannot load"):
        Runtime("cpu", model=str(bundle))


@pytest.mark.parametrize("name", platform_names())
def test_every_platform_loads_and_names_a_known_backend(name):
    from edgepose.backends import BACKENDS

    p = load_platform(name)
    assert p.name == name and p.backend in BACKENDS
    if p.quantizer:  # checked by the exporter only (the device half does not import it): held here for ours
        from edgepose.exporters.formats import format_for

        assert set(p.quantizer) <= set(format_for(p.backend, p.precision).quantizers)


@pytest.mark.parametrize("line, refused", [
    ("quantizer: [ort-dynamic, ort-dynamic]", "must be one name or a list of different, non-empty names"),
    ("quantizer: [ort-dynamic, '']", "must be one name or a list of different, non-empty names"),
    ("quantizer: [[ort-static]]", "must be one name or a list of different, non-empty names"),
    ("quantizer: 5", "quantizer"),
])
def test_a_platform_quantizer_is_one_name_or_a_list_of_different_names(tmp_path, line, refused):
    mine = tmp_path / "mine.yaml"
    mine.write_text(f"name: mine\nbackend: onnxruntime\nprecision: int8\n{line}\n")
    with pytest.raises(ConfigError, match=refused):
        load_platform(mine)
    mine.write_text("name: mine\nbackend: onnxruntime\nprecision: int8\nquantizer: ort-static\n")
    assert load_platform(mine).quantizer == ("ort-static",)


def test_device_built_bundles_live_in_the_users_edgepose_folder(tmp_path, monkeypatch):
    import subprocess
    import sys
    from pathlib import Path

    monkeypatch.setenv("EDGEPOSE_HOME", str(tmp_path / "home"))
    assert load_platform("jetson").model == str(tmp_path / "home" / "bundles" / "jetson-fp16")
    assert load_platform("jetson-int8").model == str(tmp_path / "home" / "bundles" / "jetson-int8")
    monkeypatch.delenv("EDGEPOSE_HOME")
    assert load_platform("jetson").model == str(Path.home() / ".cache" / "edgepose" / "bundles" / "jetson-fp16")
    mine = tmp_path / "mine.yaml"
    mine.write_text("name: mine\nbackend: onnxruntime\nmodel: ~/bundles/x\n")
    assert load_platform(mine).model == str(Path.home() / "bundles" / "x")
    # export/jetson.py writes, by default, where the platform reads
    r = subprocess.run([sys.executable, "export/jetson.py", "--help"], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parent.parent)
    assert r.returncode == 0 and "$EDGEPOSE_HOME/bundles/jetson-<precision>" in " ".join(r.stdout.split())


def test_the_tensorrt_message_names_where_tensorrt_comes_from():
    from edgepose.backends import BACKENDS

    assert "JetPack" in BACKENDS["tensorrt"].how_to_install
    assert BACKENDS["onnxruntime"].how_to_install == "pip install 'edgepose[onnx]'"


def test_every_backend_entry_names_its_module_and_a_declared_extra():
    import importlib.util
    import tomllib
    from pathlib import Path

    from edgepose.backends import BACKENDS

    extras = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for name, entry in BACKENDS.items():
        assert importlib.util.find_spec(entry.module) is not None, name  # found without importing the engine
        assert entry.extra in extras and entry.package and entry.cls.endswith("Backend")


def test_unknown_platform_lists_known_ones():
    with pytest.raises(PlatformError, match="Did you mean 'cpu'.*Known platforms"):
        load_platform("cpuu")


def test_user_platform_file_and_bad_key(tmp_path):
    good = tmp_path / "mine.yaml"
    good.write_text("name: mine\nbackend: onnxruntime\nthreads: 1\n")
    assert load_platform(good).threads == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nbackend: onnxruntime\nthread: 1\n")
    with pytest.raises(ConfigError, match="Did you mean 'threads'"):
        load_platform(bad)
    with pytest.raises(PlatformError, match="does not exist"):
        load_platform(tmp_path / "none.yaml")
    flag = tmp_path / "flag.yaml"
    flag.write_text("name: flag\nbackend: onnxruntime\nint8_if_faster: 'yes'\n")
    with pytest.raises(ConfigError, match="int8_if_faster' must be true or false, got 'yes'"):
        load_platform(flag)


def test_atomic_writes_never_collide_and_never_leave_half_a_file(tmp_path):
    from pathlib import Path

    from edgepose.atomic import atomic_path

    target = tmp_path / "cache" / "faces.npy"
    # two writers of the same file at once (two training runs building one cache): each has its own temporary file
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second
        Path(first).write_bytes(b"first")
        Path(second).write_bytes(b"second")
    assert target.read_bytes() == b"first"  # the outer writer finished last; neither rename failed
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "cache" / "broken.npy") as tmp:
        Path(tmp).write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert sorted(p.name for p in target.parent.iterdir()) == ["faces.npy"]


def test_dummy_inputs_follow_the_spec():
    from edgepose.manifest import InputSpec

    pixels = InputSpec(size=(8, 6), layout="NHWC", dtype="uint8").dummy(2)
    assert pixels.dtype == "uint8" and pixels.shape == (2, 8, 6, 3) and pixels.max() > 200  # the 0..255 range
    values = InputSpec(size=(8, 6)).dummy(1)
    assert values.dtype == "float32" and values.shape == (1, 3, 8, 6) and values.min() < 0 < values.max()
    assert (InputSpec(dtype="int8").dummy(1) < 0).any()


def test_a_bundle_on_a_platform_whose_engine_reads_another_format_is_refused_by_name():
    from edgepose import Runtime

    with pytest.raises(ModelFormatError, match="bundle of onnx format, but platform 'raspberry-pi' runs litert.*cpu"):
        Runtime("raspberry-pi", model="default")
    with pytest.raises(ModelFormatError, match="bundle of tflite format, but platform 'cpu'.*android"):
        Runtime("cpu", model="default-android")


def test_a_manifest_precision_and_a_non_utf8_platform_file_are_refused(tmp_path):
    bundle = tmp_path / "b"
    shutil.copytree(bundled_dir("default"), bundle)
    data = json.loads((bundle / "manifest.json").read_text())
    (bundle / "manifest.json").write_text(json.dumps({**data, "precision": "int4"}))
    with pytest.raises(ModelFormatError, match="manifest.precision 'int4' must be one of fp32, fp16, int8"):
        load_manifest(bundle / "manifest.json")
    mine = tmp_path / "mine.yaml"
    mine.write_bytes("name: mine\nbackend: onnxruntime\ndescription: caf\xe9\n".encode("latin-1"))
    with pytest.raises(PlatformError, match="not UTF-8 text.*save it as UTF-8"):
        load_platform(mine)
    mine.write_text("name: mine\nbackend: onnxruntime\nprecision: fp13\n")
    with pytest.raises(ConfigError, match="'precision' = 'fp13' is not one of fp32, fp16, int8"):
        load_platform(mine)


def test_a_checksum_in_capitals_is_the_same_checksum(tmp_path):
    bundle = tmp_path / "b"
    shutil.copytree(bundled_dir("default"), bundle)
    data = json.loads((bundle / "manifest.json").read_text())
    (bundle / "manifest.json").write_text(json.dumps({**data, "sha256": data["sha256"].upper()}))
    assert resolve_bundle(bundle)[1][0].name == "model.onnx"


def test_relative_paths_in_a_users_platform_file_are_relative_to_that_file(tmp_path, monkeypatch):
    from edgepose import Runtime

    configs = tmp_path / "configs"
    shutil.copytree(bundled_dir("default"), configs / "bundles" / "kiosk")
    (configs / "kiosk.yaml").write_text("name: kiosk\nbackend: onnxruntime\nmodel: bundles/kiosk\n"
                                        "detector:\n  type: yunet\n  model: det/yunet.onnx\n")
    monkeypatch.chdir(tmp_path / "..")  # run from anywhere
    platform = load_platform(configs / "kiosk.yaml")
    assert platform.model == str(configs / "bundles" / "kiosk")
    assert platform.detector.model == str(configs / "det" / "yunet.onnx")
    (configs / "default.yaml").write_text("name: d\nbackend: onnxruntime\nmodel: default-cpu-int8\n")
    assert load_platform(configs / "default.yaml").model == "default-cpu-int8"  # a packaged bundle stays a name
    (configs / "kiosk.yaml").write_text("name: kiosk\nbackend: onnxruntime\nmodel: bundles/kiosk\n")
    with Runtime(str(configs / "kiosk.yaml"), threads=1) as rt:
        assert rt.model_path == configs / "bundles" / "kiosk" / "model.onnx"


@pytest.mark.parametrize("crop, words", [
    ({"protocol": "roi", "scale": 1.58, "shift": [0.0, 0.9]}, "moves the crop"),
    ({"protocol": "square", "scale": 0.001}, "crop.scale"),
])
def test_a_crop_that_misses_the_face_is_refused(tmp_path, crop, words):
    data = json.loads((bundled_dir("default") / "manifest.json").read_text())
    with pytest.raises(ModelFormatError, match=words):
        manifest_from_dict({**data, "crop": crop})
