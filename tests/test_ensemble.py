"""Ensemble manifests: member bundles with their own crops, weights and flip TTA; the Runtime returns the weighted
rotation mean, checked against the same mean computed by hand from each member alone."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgepose import Runtime
from edgepose.angles import flip_matrix, geodesic_degrees, mean_rotation
from edgepose.bundle import bundled_dir
from edgepose.errors import ConfigError, ModelFormatError

from .conftest import SHARED, need


@pytest.fixture(scope="module")
def ensemble_dir(tmp_path_factory):
    """default (weight 0.7) + 3DDFA_V2 with flip TTA (weight 0.3): two crop protocols, two decodings."""
    root = tmp_path_factory.mktemp("ensemble")
    shutil.copytree(bundled_dir("default"), root / "default")
    (root / "tddfa").mkdir()
    shutil.copy(need(SHARED / "models" / "peers" / "3ddfa-v2-mb05.onnx"), root / "tddfa")
    shutil.copy("benchmarks/peers/3ddfa_v2.json", root / "tddfa" / "manifest.json")
    write(root, [{"bundle": "default", "weight": 0.7}, {"bundle": "tddfa", "weight": 0.3, "flip_tta": True}])
    return root


def write(root, members, **extra) -> str:
    path = root / "manifest.json"
    path.write_text(json.dumps({"schema": 1, "name": "test-ensemble", "members": members, **extra}))
    return str(path)


def test_rotation_mean_of_members(ensemble_dir, dev_samples):
    import cv2

    samples = dev_samples[:6]
    with Runtime("cpu", str(ensemble_dir), threads=1) as rt, \
            Runtime("cpu", str(ensemble_dir / "default"), threads=1) as a, \
            Runtime("cpu", str(ensemble_dir / "tddfa"), threads=1) as b, \
            Runtime("cpu", str(ensemble_dir / "tddfa"), threads=1, flip_tta=True) as b_flip:
        for s in samples:
            frame = cv2.imread(str(s.image))
            got = rt.infer(frame, boxes=[s.box])[0]
            ma, mb = a.infer(frame, boxes=[s.box])[0].rotation, b_flip.infer(frame, boxes=[s.box])[0].rotation
            # by hand: b's flip TTA is the mean of its pose and its mirrored crop's pose mirrored back
            mirrored = frame[:, ::-1].copy()
            w = frame.shape[1]
            x1, y1, x2, y2 = s.box
            mb_hand = mean_rotation(b.infer(frame, boxes=[s.box])[0].rotation,
                                    flip_matrix(b.infer(mirrored, boxes=[(w - x2, y1, w - x1, y2)])[0].rotation))
            assert geodesic_degrees(mb_hand, mb) < 0.05
            want = mean_rotation(ma, mb_hand, weights=np.array([0.7, 0.3]))
            assert geodesic_degrees(want, got.rotation) < 0.05
            assert geodesic_degrees(ma, got.rotation) > 1e-3  # both members count
        described = rt.describe()
        assert [m["weight"] for m in described["members"]] == [0.7, 0.3]
        assert [m["flip_tta"] for m in described["members"]] == [False, True]
        assert len(rt.model_paths) == 2
        rt.run_pose_model()  # every member's model on its own input


def test_ensemble_refuses_single_model_calls(ensemble_dir):
    with Runtime("cpu", str(ensemble_dir), threads=1) as rt:
        with pytest.raises(ConfigError, match="ensemble"):
            rt.infer_crops(np.zeros((1, 128, 128, 3), np.uint8))
        with pytest.raises(ConfigError, match="ensemble"):
            rt.predict(np.zeros((1, 3, 128, 128), np.float32))


@pytest.mark.parametrize("members, message", [
    ([], "non-empty"),
    ([{"bundle": "../default", "weight": 1}], "inside the manifest's folder"),
    ([{"bundle": "default", "weight": 0}], "weight"),
    ([{"bundle": "default", "weight": float("nan")}], "weight"),
    ([{"bundle": "default", "flip_tta": "yes"}], "flip_tta"),
    ([{"bundle": "default", "scale": 2}], "bundle"),
    ([{"bundle": "missing"}], "not a bundle"),
    ([{"bundle": "nested"}], "itself an ensemble"),
])
def test_bad_ensembles_are_refused(ensemble_dir, tmp_path, members, message):
    root = tmp_path / "e"
    root.mkdir()
    shutil.copytree(ensemble_dir / "default", root / "default")
    (root / "nested").mkdir()
    write(root / "nested", [{"bundle": "x"}])
    with pytest.raises(ModelFormatError, match=message):
        Runtime("cpu", write(root, members), threads=1)


def test_unknown_key_is_refused(ensemble_dir, tmp_path):
    shutil.copytree(ensemble_dir / "default", tmp_path / "default")
    with pytest.raises(ModelFormatError, match="unknown key"):
        Runtime("cpu", write(tmp_path, [{"bundle": "default"}], crop={}), threads=1)


def test_manifest_ensemble_command_builds_a_bundle_that_runs(tmp_path, dev_samples, capsys):
    """`edgepose manifest ensemble` copies each member (a peer's model found through --models-dir, with its licence)
    into one self-contained folder whose Runtime equals the hand-made ensemble above."""
    import cv2

    from edgepose.cli import main

    out = tmp_path / "acc"
    peers = str(need(SHARED / "models" / "peers"))
    assert main(["manifest", "ensemble", "acc", "--member", "default=0.7", "--member",
                 "benchmarks/peers/3ddfa_v2.json=0.3:flip", "--models-dir", peers, "--out", str(out)]) == 0
    assert (out / "3ddfa_v2" / "3ddfa-v2-mb05.onnx").is_file() and (out / "3ddfa_v2" / "LICENSE-3ddfa-v2").is_file()
    data = json.loads((out / "manifest.json").read_text())
    assert data["members"] == [{"bundle": "default", "weight": 0.7, "flip_tta": False},
                               {"bundle": "3ddfa_v2", "weight": 0.3, "flip_tta": True}]
    frame = cv2.imread(str(dev_samples[0].image))
    with Runtime("cpu", str(out), threads=1) as rt:
        assert len(rt.infer(frame, boxes=[dev_samples[0].box])) == 1
    capsys.readouterr()
    assert main(["manifest", "ensemble", "acc", "--member", "default", "--out", str(out)]) == 2  # not empty
    assert "not empty" in capsys.readouterr().err
    for bad in ("default=0", "default=x", "=1"):
        assert main(["manifest", "ensemble", "a", "--member", bad, "--out", str(tmp_path / "b")]) == 2
        assert "BUNDLE[=WEIGHT][:flip]" in capsys.readouterr().err
    assert main(["manifest", "ensemble", "a", "--member", "default", "--member", "default", "--out",
                 str(tmp_path / "c")]) == 2
    assert "distinct names" in capsys.readouterr().err
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_a_member_trained_on_levelled_crops_is_refused(ensemble_dir, tmp_path):
    """An ensemble hands its members no eye landmarks: a member whose manifest says crop.aligned would silently run
    unlevelled, so the ensemble refuses it when built."""
    shutil.copytree(ensemble_dir / "default", tmp_path / "levelled")
    path = tmp_path / "levelled" / "manifest.json"
    data = json.loads(path.read_text())
    data["crop"]["aligned"] = True
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="crop.aligned"):
        Runtime("cpu", write(tmp_path, [{"bundle": "levelled"}]), threads=1, detector="yunet:"
                + str(need(SHARED / "models" / "detectors" / "yunet.onnx")))


def test_built_ensemble_keeps_a_members_model_file_names(tmp_path, dev_samples):
    """A member manifest naming its model in a subfolder is copied under that name, and the built bundle runs."""
    import cv2

    from edgepose.ensemble import build_ensemble
    from edgepose.manifest import sha256_file

    member = tmp_path / "member"
    (member / "models").mkdir(parents=True)
    shutil.copy(bundled_dir("default") / "model.onnx", member / "models" / "net.onnx")
    data = json.loads((bundled_dir("default") / "manifest.json").read_text())
    data.update(model_file="models/net.onnx", sha256=sha256_file(member / "models" / "net.onnx"))
    (member / "manifest.json").write_text(json.dumps(data))
    path = build_ensemble([(str(member), 1.0, False)], tmp_path / "out")
    assert (tmp_path / "out" / "member" / "models" / "net.onnx").is_file()
    assert json.loads(path.read_text())["source"]["members"][0]["bundle"] == "member"
    with Runtime("cpu", str(path.parent), threads=1) as rt:
        assert len(rt.infer(cv2.imread(str(dev_samples[0].image)), boxes=[dev_samples[0].box])) == 1
    with pytest.raises(ConfigError, match="weight"):
        build_ensemble([(str(member), 0.0, False)], tmp_path / "zero")
    assert not (tmp_path / "zero").exists()
