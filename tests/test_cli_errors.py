"""The command line's failure contract: a user error exits 2 with one line naming the problem and the fix; a run in
which nothing ran exits non-zero; a missing optional package is named with the pip install that brings it."""
import json
import subprocess
import sys

import pytest

from .conftest import REPO


def edgepose(*args, block: str = "", timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m edgepose ARGS`, with the modules in `block` made unimportable (as if not installed)."""
    code = (f"import sys\nfor name in {block.split()!r}:\n    sys.modules[name] = None\n"
            "from edgepose.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)


def one_line_error(r: subprocess.CompletedProcess, *words: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout[-1000:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgepose: error: "), r.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_unknown_image_extension_is_refused_before_any_work(tmp_path, astronaut_bgr):
    import cv2

    cv2.imwrite(str(tmp_path / "face.jpg"), astronaut_bgr)
    one_line_error(edgepose("infer", str(tmp_path / "face.jpg"), "--out", str(tmp_path / "x.xyz")),
                   "unknown image extension '.xyz'", ".png")
    assert not (tmp_path / "x.xyz").exists()


def test_unknown_video_extension_and_bad_fps_are_refused(tmp_path):
    one_line_error(edgepose("video", "clip.mp4", "--out", str(tmp_path / "x.xyz")), "unknown video extension")
    one_line_error(edgepose("video", "clip.mp4", "--out", str(tmp_path / "x.mp4"), "--fps", "0"), "--fps 0.0")


def test_card_with_a_missing_bench_file(tmp_path):
    one_line_error(edgepose("card", "--bench", str(tmp_path / "missing.json"), "--out", str(tmp_path / "card.md")),
                   "missing.json' does not exist", "edgepose bench")
    assert not (tmp_path / "card.md").exists()


def test_demo_without_scikit_image_names_the_extra(tmp_path):
    one_line_error(edgepose("demo", "--out", str(tmp_path / "demo.jpg"), block="skimage"),
                   "scikit-image", "pip install 'edgepose[demo]'")


@pytest.mark.parametrize("args", [["train", "recipes/student_mbv3l_128.yaml", "--set", "train.epochs=1"],
                                  ["export", "weights/student_mbv3s_128_3ddfa_yaw2.pt"], ["models"]])
def test_host_commands_without_torch_name_the_train_extra(args, tmp_path):
    if args[0] in ("train", "export"):
        args = [*args, "--out", str(tmp_path / "out")]
    one_line_error(edgepose(*args, block="torch"), "needs the 'torch' package", "pip install 'edgepose[train]'")
    assert not (tmp_path / "out").exists()


def test_bench_of_an_unknown_platform_is_an_error():
    one_line_error(edgepose("bench", "--root", ".", "--platform", "nope", "--runs", "1", "--rounds", "1", "--span", "0"),
                   "unknown platform 'nope'")


def test_bench_where_nothing_ran_exits_non_zero(tmp_path):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here: the jetson entry could run")
    except ImportError:
        pass
    r = edgepose("bench", "--root", ".", "--platform", "jetson", "--runs", "1", "--rounds", "1", "--span", "0",
                 "--json", str(tmp_path / "bench.json"))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "nothing ran" in r.stderr and "Traceback" not in r.stderr
    assert json.loads((tmp_path / "bench.json").read_text())["rows"][0]["status"].startswith("❌")


@pytest.mark.parametrize("args, words", [
    (["eval", "--root", ".", "--limit", "-5"], ["--limit", ">= 0"]),
    (["bench", "--root", ".", "--runs", "0"], ["--runs", ">= 1"]),
    (["infer", "x.jpg", "--threads", "-1"], ["--threads"]),
])
def test_negative_counts_are_usage_errors(args, words):
    r = edgepose(*args)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert all(w in r.stderr for w in words), r.stderr


def test_evaluate_refuses_a_negative_limit(runtime, dev_root):
    from edgepose.errors import ConfigError
    from edgepose.evaluation.evaluate import evaluate

    with pytest.raises(ConfigError, match="limit"):
        evaluate(runtime, "aflw2000", str(dev_root), limit=-5)


def test_manifest_hash_of_a_missing_manifest(tmp_path):
    one_line_error(edgepose("manifest", "hash", str(tmp_path / "m.json")), "does not exist")


def test_negative_camera_index_on_the_command_line():
    one_line_error(edgepose("video", "-1"), "camera index -1")


def test_output_paths_that_cannot_be_written_are_one_line_errors(tmp_path, astronaut_bgr):
    import cv2

    cv2.imwrite(str(tmp_path / "face.jpg"), astronaut_bgr)
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "shot.jpg").mkdir()
    one_line_error(edgepose("infer", str(tmp_path / "face.jpg"), "--out", str(tmp_path / "a-file" / "x.jpg")),
                   "is a file, not a folder")
    one_line_error(edgepose("infer", str(tmp_path / "face.jpg"), "--out", str(tmp_path / "shot.jpg")), "is a folder")
    # an OSError from deep inside a command (here: a folder that cannot be made under a file) is one line too
    one_line_error(edgepose("release", "weights/student_mbv3s_128_3ddfa_yaw2.pt", "--out",
                            str(tmp_path / "a-file" / "w.pt")), "a-file", "check the paths")
    r = edgepose("infer", str(tmp_path / "face.jpg"), "--out", str(tmp_path / "new" / "deeper" / "x.png"))
    assert r.returncode == 0 and cv2.imread(str(tmp_path / "new" / "deeper" / "x.png")) is not None
    assert [p.name for p in (tmp_path / "new" / "deeper").iterdir()] == ["x.png"]  # no temporary left beside it


@pytest.mark.parametrize("args, words", [
    (["bench", "--platform", "cpu", "--root", "NOPE"], ["--root 'NOPE' is not a folder"]),
    (["bench", "--platform", "cpu", "--root", "tests", "--model", "nope.pt"], ["--model 'nope.pt' does not exist"]),
    (["bench", "--platform", "cpu", "--root", "tests", "--model", "nope"], ["no bundle at 'nope'"]),
    (["bench", "--platform", "cpu", "--root", "tests", "--span", "nan"], ["--span nan"]),
    (["label", "--images", "NOPE", "--teacher", "default", "--out", "l.csv"], ["--images 'NOPE' is not a folder"]),
    (["label", "--images", "tests", "--teacher", "default", "--out", "l.csv", "--max-spread", "nan"], ["max-spread"]),
    (["eval", "--root", "tests", "--compare", "nope.json"], ["no bundle at 'nope.json'"]),
    (["eval", "--root", "tests", "--compare-facemesh", "NOPE"], ["no face_landmark.tflite under 'NOPE'"]),
    (["eval", "--root", "tests", "--json", "l.txt"], ["unknown JSON extension"]),
    (["bench", "--platform", "cpu", "--root", "tests", "--against", "pyproject.toml"], ["--against", "cannot read"]),
    (["export", "weights/student_mbv3s_128_3ddfa_yaw2.pt", "--dev-root", "NOPE"], ["--dev-root 'NOPE' is not a folder"]),
    (["card", "--bench", "benchmarks/results_bench.json", "--recipes", "NOPE"], ["--recipes: no folder ['NOPE']"]),
    (["average", "weights/student_mbv3s_128_3ddfa_yaw2.pt", "weights/student_mbv3s_128_3ddfa_yaw2.pt", "--out",
      "my soup.pt"], ["'my soup' must be a plain name"]),
])
def test_inputs_are_checked_before_any_work(args, words, tmp_path):
    one_line_error(edgepose(*args), *words)
    assert not {"l.csv", "l.txt", "my soup.pt"} & {p.name for p in REPO.iterdir()}


@pytest.mark.parametrize("text, words", [
    ("not json", ["is not an `edgepose bench --json` result", "Expecting value"]),
    ('{"rows": 5}', ["needs a 'rows' list"]),
    ('{"rows": [{"status": "✅ ran", "model": "default"}]}', ["a measured row lacks", "MAE"]),
])
def test_card_refuses_a_file_that_is_not_a_bench_result(tmp_path, text, words):
    (tmp_path / "b.json").write_text(text)
    one_line_error(edgepose("card", "--bench", str(tmp_path / "b.json"), "--out", str(tmp_path / "card.md")), *words)
    assert not (tmp_path / "card.md").exists()


def test_damaged_and_foreign_checkpoints_and_non_utf8_recipes_are_one_line_errors(tmp_path):
    torch = pytest.importorskip("torch")
    (tmp_path / "damaged.pt").write_bytes(b"garbage")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    one_line_error(edgepose("average", str(tmp_path / "damaged.pt"), "weights/student_mbv3s_128_3ddfa_yaw2.pt",
                            "--out", str(tmp_path / "avg.pt")), "damaged.pt", "not a PyTorch file edgepose wrote")
    one_line_error(edgepose("release", str(tmp_path / "foreign.pt"), "--out", str(tmp_path / "r.pt")),
                   "not an edgepose training checkpoint")
    (tmp_path / "r.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    one_line_error(edgepose("train", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run")), "not UTF-8 text")
    assert not {"avg.pt", "r.pt", "run"} & {p.name for p in tmp_path.iterdir()}
