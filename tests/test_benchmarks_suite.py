"""Benchmark suite: BIWI readers on synthetic copies, detector protocol, `edgepose bench`, latency --compare, plots."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edgepose.angles import euler_to_matrix, flip_matrix
from edgepose.datasets.biwi import read_biwi, read_biwi_npz


def write_biwi(root, samples):
    """A tiny BIWI-layout copy: dev images as frame_XXXXX_rgb.png with pose files encoding their labels."""
    for i, s in enumerate(samples):
        folder = root / "hpdb" / "01"
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"frame_{i:05d}_rgb.png"), cv2.imread(str(s.image)))
        rot = flip_matrix(euler_to_matrix(s.yaw, s.pitch, s.roll)).T  # inverse of the reader's conversion
        lines = [" ".join(f"{v:.6f}" for v in row) for row in rot] + ["12.0 -40.0 900.0"]
        (folder / f"frame_{i:05d}_pose.txt").write_text("\n".join(lines) + "\n")


def test_biwi_folder_reader_round_trips_angles(tmp_path, dev_samples):
    picked = dev_samples[:5]
    write_biwi(tmp_path, picked)
    read = read_biwi(tmp_path)
    assert len(read) == 5 and all(r.box is None for r in read)
    np.testing.assert_allclose([[r.yaw, r.pitch, r.roll] for r in read],
                               [[s.yaw, s.pitch, s.roll] for s in picked], atol=1e-4)


def test_biwi_npz_reader(tmp_path, dev_samples):
    from edgepose.crop import square_crop

    picked = dev_samples[:4]
    crops = np.stack([square_crop(cv2.imread(str(s.image)), s.box, 1 / 0.6, 64)[..., ::-1] for s in picked])
    np.savez(tmp_path / "biwi.npz", image=crops, pose=np.array([[s.yaw, s.pitch, s.roll] for s in picked]))
    read = read_biwi_npz(tmp_path / "biwi.npz")
    assert len(read) == 4 and read[0].pixels.shape == (64, 64, 3)
    assert read[0].box == pytest.approx((12.8, 12.8, 51.2, 51.2))
    np.testing.assert_array_equal(read[0].load()[..., ::-1], crops[0])


def test_detector_protocol_on_biwi_counts_misses(tmp_path, dev_samples, runtime):
    from edgepose.evaluation.evaluate import evaluate

    picked = [s for s in dev_samples if abs(s.yaw) < 30][:6]
    write_biwi(tmp_path, picked)
    (tmp_path / "hpdb" / "01" / "frame_00099_rgb.png").write_bytes(cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))[1])
    (tmp_path / "hpdb" / "01" / "frame_00099_pose.txt").write_text("1 0 0\n0 1 0\n0 0 1\n0 0 0\n")
    summary, pred, truth = evaluate(runtime, "biwi", str(tmp_path), progress=False, protocol="detector")
    assert summary["images"] == 7 and summary["missed"] >= 1 and summary["n"] + summary["missed"] == 7
    with pytest.raises(Exception, match="protocol='detector'"):
        evaluate(runtime, "biwi", str(tmp_path), progress=False, protocol="label")


@pytest.mark.slow
def test_edgepose_bench_one_table(tmp_path, dev_root):
    r = subprocess.run([sys.executable, "-m", "edgepose", "bench", "--platform", "cpu,android,jetson", "--model",
                        "benchmarks/peers/fsanet.json", "--models-dir", "../shared/models/peers", "--model",
                        "weights/gen1_more_mb05_camera.pt", "--root", str(dev_root), "--runs", "5", "--plots",
                        str(tmp_path / "plots"), "--json", str(tmp_path / "bench.json"), "--flip-tta", "cpu",
                        "--rounds", "6", "--span", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stdout.splitlines() if l.startswith("| ")]
    assert len(lines) == 1 + 6  # header + cpu, android, jetson, fsanet, the checkpoint, cpu with flip TTA
    assert "✅ ran" in r.stdout and ("❌ unavailable" in r.stdout or "tensorrt" not in r.stdout)
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    fsanet = next(row for row in rows if row["model"] == "fsanet")
    assert fsanet["MAE"] == pytest.approx(5.19, abs=0.3)
    plain = next(row for row in rows if row["model"] == "default" and row["platform"] == "cpu")
    checkpoint = next(row for row in rows if row["model"] == "gen1_more_mb05_camera")  # exported on the fly
    assert checkpoint["MAE"] == pytest.approx(plain["MAE"], abs=0.01)  # the default bundle is exported from it
    tta = next(row for row in rows if row["model"] == "default + flip TTA")
    assert tta["platform"] == "cpu" and tta["MAE"] != plain["MAE"] and abs(tta["MAE"] - plain["MAE"]) < 1.0
    for name in ("error_vs_yaw.png", "error_cdf.png"):
        img = cv2.imread(str(tmp_path / "plots" / name))
        assert img is not None and img.shape[0] > 200 and img.std() > 10
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["rounds"] == 6  # 5 after the evaluations of the 5 runnable entries, 1 more after them
    for row in rows:
        if row["status"] == "✅ ran":
            assert len(row["pose rounds ms"]) == 6
            lo, hi = row["spread_ms"]
            assert lo <= row["pose p50 ms"] <= hi


def test_models_are_named_by_their_bundle_folder_run_or_file(tmp_path):
    from edgepose.bundle import model_name

    bundle = tmp_path / "student_mbv3l_128"
    bundle.mkdir()
    (bundle / "manifest.json").write_text("{}")
    assert model_name(str(bundle)) == model_name(str(bundle / "manifest.json")) == "student_mbv3l_128"
    assert model_name("benchmarks/peers/fsanet.json") == "fsanet"
    assert model_name("runs/student_r2/best.pt") == model_name("runs/student_r2/last.pt") == "student_r2"
    assert model_name("weights/student_mbv3s_rot6d.pt") == "student_mbv3s_rot6d"


@pytest.mark.slow
def test_bench_reproducibility_check(tmp_path):
    from edgepose.evaluation.bench_suite import RAN, reproducibility

    def result(mae, p50, spread):
        return {"rows": [{"model": "default", "platform": "cpu", "status": RAN, "MAE": mae, "pose p50 ms": p50,
                          "spread_ms": spread, "rounds min..max": f"{spread[0]}..{spread[1]}", "× first": 1.0},
                         {"model": "default", "platform": "jetson", "status": "❌ unavailable: no GPU"}]}

    rows, verdict = reproducibility(result(5.0, 0.40, [0.38, 0.42]), result(5.0, 0.41, [0.40, 0.43]))
    assert [r["inside"] for r in rows] == ["yes"] and rows[0]["MAE same"] == "yes"
    assert "1 entries in both runs: MAE identical for 1, pose p50 inside the previous run's round spread for 1" in verdict
    rows, verdict = reproducibility(result(5.0, 0.40, [0.38, 0.42]), result(5.1, 0.45, [0.44, 0.46]))
    assert rows[0]["inside"] == "NO" and rows[0]["MAE same"] == "NO" and "identical for 0" in verdict
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    r = subprocess.run([sys.executable, "-m", "edgepose", "bench", "--platform", "cpu", "--root", str(tmp_path),
                        "--against", str(bad)],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "--against" in r.stderr and "edgepose bench --json" in r.stderr


@pytest.mark.slow
def test_latency_stages_and_compare(tmp_path):
    cmd = [sys.executable, "benchmarks/latency.py", "--platform", "cpu", "--threads", "1,0", "--runs", "6", "--warmup", "1",
           "--rounds", "3"]
    for name in ("a", "b"):
        r = subprocess.run(cmd + ["--out-dir", str(tmp_path / name)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    a, b = (next((tmp_path / n).glob("latency-*.json")) for n in ("a", "b"))
    data = json.loads(a.read_text())
    stages = {row["stage"] for row in data["results"]}
    assert {"detect", "crop + normalise (1 face)", "pose model, batch 1", "decode"} <= stages
    assert {row["threads"] for row in data["results"]} == {1, "all"}  # both thread counts, interleaved in one run
    pose = [row for row in data["results"] if row["stage"] == "pose model, batch 1"]
    assert all(len(row["round_p50_ms"]) == 3 and row["runs"] == 6 for row in pose)
    assert all(min(row["round_p50_ms"]) <= row["p50_ms"] <= max(row["round_p50_ms"]) for row in pose)
    r = subprocess.run(cmd[:-2] + ["--rounds", "0"], capture_output=True, text=True)
    assert r.returncode == 2 and "--rounds must be at least 1" in r.stderr
    assert data["environment"]["cores"] >= 1 and data["peak_rss_mb"] > 0 and "onnxruntime" in data["environment"]["versions"]
    r = subprocess.run([sys.executable, "benchmarks/latency.py", "--compare", str(a), str(b)], capture_output=True, text=True)
    assert r.returncode == 0 and "B/A" in r.stdout and "pose model, batch 1" in r.stdout
