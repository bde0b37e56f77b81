"""The command line and the benchmark scripts, run as a user runs them."""
import json
import subprocess
import sys

import cv2
import pytest

from edgepose.bundle import bundled_dir


def run(*args, **kw):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, **kw)


def test_infer_json_and_annotated_output(tmp_path, dev_samples):
    s = next(s for s in dev_samples if abs(s.yaw) < 20)
    out = tmp_path / "annotated.png"
    r = run("-m", "edgepose", "infer", str(s.image), "--json", "--out", str(out), "--threads", "1")
    assert r.returncode == 0, r.stderr
    poses = json.loads(r.stdout)
    assert poses and {"yaw", "pitch", "roll", "box", "score"} <= set(poses[0])
    assert cv2.imread(str(out)).shape == cv2.imread(str(s.image)).shape


def test_eval_prints_table_with_bins(dev_root):
    r = run("-m", "edgepose", "eval", "--dataset", "aflw2000", "--root", str(dev_root), "--limit", "30", "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert "|yaw| 0-30" in r.stdout and "AUC@5deg" in r.stdout


@pytest.mark.slow
def test_eval_and_infer_take_a_training_checkpoint(tmp_path, dev_root, dev_samples):
    # the default bundle is exported from these weights, so the checkpoint route must score the same
    scores = {}
    for name, model in (("checkpoint", "weights/gen1_more_mb05_camera.pt"), ("bundle", "edgepose/bundles/default")):
        out = tmp_path / f"{name}.json"
        r = run("-m", "edgepose", "eval", "--root", str(dev_root), "--limit", "24", "--threads", "1", "--model", model,
                "--json", str(out))
        assert r.returncode == 0, r.stderr
        scores[name] = json.loads(out.read_text())["summary"]
    assert scores["checkpoint"]["n"] == 24
    for key in ("yaw", "pitch", "roll", "mean"):
        assert abs(scores["checkpoint"][key] - scores["bundle"][key]) < 0.01
    s = next(s for s in dev_samples if abs(s.yaw) < 20)
    r = run("-m", "edgepose", "infer", str(s.image), "--json", "--model", "weights/gen1_more_mb05_camera.pt")
    assert r.returncode == 0, r.stderr
    assert abs(json.loads(r.stdout)[0]["yaw"] - s.yaw) < 15
    r = run("-m", "edgepose", "eval", "--root", str(dev_root), "--model", str(tmp_path / "missing.pt"))
    assert r.returncode == 2 and "checkpoint" in r.stderr and "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_cli_errors_are_messages_not_tracebacks(tmp_path):
    r = run("-m", "edgepose", "infer", str(tmp_path / "missing.jpg"))
    assert r.returncode == 2 and "cannot read image" in r.stderr and "Traceback" not in r.stderr
    r = run("-m", "edgepose", "eval", "--root", str(tmp_path), "--platform", "jetsonn")
    assert r.returncode == 2 and "unknown platform" in r.stderr


def test_platforms_lists_cpu():
    r = run("-m", "edgepose", "platforms")
    assert r.returncode == 0 and "cpu" in r.stdout and "usable here" in r.stdout


def test_accuracy_benchmark_runs(tmp_path, dev_root):
    r = run("benchmarks/accuracy.py", "--root", str(dev_root), "--limit", "20", "--out-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "| cpu |" in r.stdout


def test_op_profile_shows_what_the_int8_graph_runs():
    """ORT's per-node profile of the shipped cpu bundles: cpu-int8's convolutions run as int8 (QLinearConv) where it
    ships int8; a LiteRT bundle is refused in one line."""
    precision = json.loads((bundled_dir("default-cpu-int8") / "manifest.json").read_text())["precision"]
    r = run("benchmarks/op_profile.py", "default", "default-cpu-int8", "--runs", "3")
    assert r.returncode == 0, r.stderr
    fp32, int8 = r.stdout.split("default-cpu-int8:")
    assert "| Gemm |" in fp32 and "| Conv |" in fp32 and "| DynamicQuantizeMatMul |" not in fp32
    assert ("| QLinearConv |" in int8) == (precision == "int8") != ("| Conv |" in int8)
    shares = [float(line.split("|")[3]) for line in fp32.splitlines() if line.startswith("| ") and "share" not in line]
    assert abs(sum(shares) - 100) < 0.5
    bad = run("benchmarks/op_profile.py", "default-android", "--runs", "1")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "tflite bundle" in bad.stderr


def test_eval_compare_scores_peers_in_the_same_run(dev_root, capsys):
    from pathlib import Path

    from edgepose.cli import main

    peer = Path(__file__).resolve().parent.parent / "benchmarks" / "peers" / "fsanet.json"
    models = Path(__file__).resolve().parent.parent.parent / "shared" / "models" / "peers"
    assert main(["eval", "--root", str(dev_root), "--limit", "12", "--compare", str(peer), "--threads", "1",
                 "--models-dir", str(models)]) == 0
    out = capsys.readouterr().out
    ours = next(ln for ln in out.splitlines() if ln.startswith("| this model | 12 |"))
    theirs = next(ln for ln in out.splitlines() if ln.startswith("| FSA-Net"))
    assert ours != theirs and "| 12 |" in theirs


def test_large_yaw_report_splits_the_gimbal_direction(dev_root):
    import numpy as np

    sys.path.insert(0, "benchmarks")
    try:
        from large_yaw import gimbal_split
    finally:
        sys.path.pop(0)
    truth = np.array([[81.0, 55.0, 54.0], [-70.0, -40.0, 38.0], [10.0, 5.0, -3.0]])
    along = np.array([[0.0, -30.0, -30.0], [0.0, 12.0, -12.0], [0.0, 2.0, 2.0]])  # pitch + sign(yaw) roll together
    across = np.array([[2.0, 3.0, -3.0], [-1.0, 4.0, 4.0], [0.0, 0.0, 0.0]])
    split = gimbal_split(truth + along + across, truth)
    np.testing.assert_allclose(split["along"], [-30.0, 12.0, 2.0])
    np.testing.assert_allclose(split["fixed"], across, atol=1e-9)  # removing the along part leaves the rest
    r = run("benchmarks/large_yaw.py", "--root", str(dev_root), "--limit", "40")
    assert r.returncode == 0, r.stderr
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith("| default |")]
    assert rows and all(len(ln.split("|")) == 12 for ln in rows)


def test_large_yaw_mesh_fit_to_the_labels_own_points_reproduces_them_and_the_camera_side_fit_uses_fewer(dev_root):
    import numpy as np

    from .conftest import SHARED, need

    sys.path.insert(0, "benchmarks")
    try:
        from large_yaw import mesh_fits
    finally:
        sys.path.pop(0)
    fits, truth = mesh_fits(str(need(SHARED / "models" / "mesh" / "bfm_mean_3ddfa")), str(dev_root), 40)
    assert set(fits) == {"all 68", "camera side"} and truth.shape == (40, 3)
    whole, side = (np.abs(fits[k] - truth).mean() for k in ("all 68", "camera side"))
    assert whole < 2.5  # the labels are a 3D face fitted to these very points
    assert side > whole  # half the points (the hidden side dropped) pin the pose down less
