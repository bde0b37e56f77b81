"""The host half for real: a short training run on the pool, resume, export to ONNX, parity with PyTorch."""
import csv
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the training half needs torch: pip install 'edgepose[train]'")

from edgepose.errors import ConfigError  # noqa: E402
from edgepose.train.recipe import load_recipe  # noqa: E402

RECIPE = "recipes/student_mbv3s_rot6d.yaml"
# the recipes a user starts from, and the default model's ladder and ablations kept under research/
RECIPE_FILES = sorted(str(p) for d in ("recipes", "research/ladder", "research/ablations", "research/labels3ddfa")
                      for p in __import__("pathlib").Path(d).glob("*.yaml"))
SMOKE = ["data.limit=800", "train.batch_size=16", "train.max_steps_per_epoch=3", "model.input_size=64"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, pool_root, dev_root):
    from edgepose.train.trainer import train

    out = tmp_path_factory.mktemp("run")
    overrides = SMOKE + [f"data.root={pool_root}", f"eval.aflw2000_root={dev_root}"]
    first = train(load_recipe(RECIPE, overrides + ["train.epochs=2"]), out)
    resumed = train(load_recipe(RECIPE, overrides + ["train.epochs=3"]), out, resume=True)
    return out, first, resumed


@pytest.mark.slow
def test_training_writes_checkpoint_log_and_recipe(trained):
    out, first, resumed = trained
    assert first["epoch"] == 2 and resumed["epoch"] == 3 and resumed["step"] == 9
    rows = list(csv.DictReader(open(out / "log.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert all(float(r["dev_mae"]) > 0 for r in rows)
    assert load_recipe(out / "recipe.yaml").model.input_size == 64
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["epoch"] == 3 and state["i"] == 0 and "optimizer" in state and "ema" in state
    assert (out / "best.pt").is_file()


@pytest.mark.slow
def test_a_run_is_neither_overwritten_nor_resumed_with_another_recipe(trained, pool_root, dev_root):
    from edgepose.train.trainer import train

    out = trained[0]
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    overrides = SMOKE + [f"data.root={pool_root}", f"eval.aflw2000_root={dev_root}", "train.epochs=3"]
    with pytest.raises(ConfigError, match="already holds a training run .* --resume"):
        train(load_recipe(RECIPE, overrides), out)
    with pytest.raises(ConfigError, match=r"recipe differs .*model.input_size: 64 -> 96.*train.lr"):
        train(load_recipe(RECIPE, overrides + ["model.input_size=96", "train.lr=0.5"]), out, resume=True)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # recipe.yaml included


@pytest.mark.slow
def test_release_copy_keeps_the_ema_model_and_drops_training_state(trained, tmp_path, capsys):
    from edgepose.cli import main
    from edgepose.train.checkpoint import load_trained

    out, _, _ = trained
    assert main(["release", str(out / "last.pt"), "--out", str(tmp_path / "w.pt")]) == 0
    assert "release weights written" in capsys.readouterr().out
    slim = torch.load(tmp_path / "w.pt", weights_only=True)
    assert "optimizer" not in slim and slim["epoch"] == 3 and slim["recipe"]
    assert (tmp_path / "w.pt").stat().st_size < (out / "last.pt").stat().st_size
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():  # the same (EMA) model as the training checkpoint's
        torch.testing.assert_close(load_trained(tmp_path / "w.pt")[0](x), load_trained(out / "last.pt")[0](x))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    for argv in (["release", str(tmp_path / "junk.pt"), "--out", str(tmp_path / "j.pt")],
                 ["release", str(out / "last.pt"), "--out", str(out / "last.pt")]):
        assert main(argv) == 2
    assert main(["release", str(out / "last.pt"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cannot read checkpoint" in err and "is the checkpoint itself" in err and "is a folder" in err
    assert not (tmp_path / "j.pt").exists()
    # a weight average keeps its members through the release (bundles and the model card list them)
    assert main(["average", str(out / "last.pt"), str(out / "best.pt"), "--out", str(tmp_path / "avg.pt")]) == 0
    assert main(["release", str(tmp_path / "avg.pt"), "--out", str(tmp_path / "avg_w.pt")]) == 0
    members = torch.load(tmp_path / "avg_w.pt", weights_only=True)["averaged_from"]
    assert len(members) == 2


@pytest.mark.slow
def test_export_onnx_parity_with_torch(trained, tmp_path, dev_root, dev_samples):
    from edgepose import Runtime
    from edgepose.exporters.export import export_bundle
    from edgepose.train.checkpoint import crop_spec, dev_crops, input_spec, load_trained, predict_degrees

    out, _, _ = trained
    manifest_path = export_bundle(out / "last.pt", "cpu", tmp_path / "bundle", dev_root=str(dev_root))
    manifest = json.loads(manifest_path.read_text())
    assert manifest["input"]["size"] == [64, 64] and manifest["sha256"]
    model, recipe = load_trained(out / "last.pt")
    crops, _ = dev_crops(str(dev_root), input_spec(recipe), crop_spec(recipe))
    with Runtime("cpu", model=str(tmp_path / "bundle"), threads=1) as rt:
        onnx_deg = rt.infer_crops(crops)
    diff = np.abs(onnx_deg - predict_degrees(model, crops))
    assert diff.max() <= 0.05, diff.max()
    assert manifest["metrics"]["parity_vs_torch_max_abs_deg"] <= 0.05


def test_recipe_errors_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'epochs'"):
        load_recipe(RECIPE, ["train.epoch=3"])
    with pytest.raises(ConfigError, match="must be a number"):
        load_recipe(RECIPE, ["train.lr=fast"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_recipe(tmp_path / "none.yaml")
    from edgepose.train.trainer import train

    for name in ("../../outside", "/abs", ".hidden", "a b"):  # the name becomes runs/<name>: a plain name only
        with pytest.raises(ConfigError, match="must be a plain name"):
            train(load_recipe(RECIPE, [f"name={name}"]), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_resume_without_checkpoint_or_missing_inputs_are_clear(tmp_path, pool_root):
    from edgepose.train.trainer import train

    with pytest.raises(ConfigError, match="without --resume"):
        train(load_recipe(RECIPE, SMOKE + [f"data.root={pool_root}"]), tmp_path, resume=True)
    run = tmp_path / "run"
    with pytest.raises(ConfigError, match="labels file .* does not exist; make one with `edgepose label`"):
        train(load_recipe(RECIPE, SMOKE + [f"data.root={pool_root}", f"data.labels={tmp_path / 'none.csv'}"]), run)
    with pytest.raises(ConfigError, match="eval.aflw2000_root .* is not a folder"):  # not silently without dev figures
        train(load_recipe(RECIPE, SMOKE + [f"data.root={pool_root}", f"eval.aflw2000_root={tmp_path / 'nope'}"]), run)
    with pytest.raises(ConfigError, match="fewer than one batch"):  # no step would train: nothing to save as best
        train(load_recipe(RECIPE, SMOKE + [f"data.root={pool_root}", "data.limit=40", "train.batch_size=64",
                                           "eval.aflw2000_root="]), run)
    with pytest.raises(ConfigError, match="unknown backbone"):  # the model is built before the run folder
        train(load_recipe(RECIPE, SMOKE + [f"data.root={pool_root}", "model.backbone=mobilenetv9"]), run)
    assert not run.exists()  # nothing written for a run that cannot start


def test_data_roots_are_arguments_not_lab_paths():
    from edgepose.train.pool_data import PoolData
    from edgepose.train.recipe import DataConfig, EvalConfig

    assert "shared" not in DataConfig().root and EvalConfig().aflw2000_root == ""
    with pytest.raises(ConfigError, match="data.root is empty: set it to the training pool folder"):
        PoolData(DataConfig())


def test_every_recipe_parses():
    from pathlib import Path

    assert len(list(Path("recipes").glob("*.yaml"))) <= 8  # the few a user starts from; research/ holds the rest
    assert len(RECIPE_FILES) >= 30
    for path in RECIPE_FILES:
        load_recipe(path)


BACKBONE_NAMES = sorted(__import__("edgepose.train.models", fromlist=["BACKBONES"]).BACKBONES)
TINY = 64  # every backbone reduces 64 px to a 2x2 map
SMALLEST = {"mobilefacenet": 112}  # its GDConv runs (and trains) only on the 7x7 map of 112 px


@pytest.mark.slow
@pytest.mark.parametrize("backbone", BACKBONE_NAMES)
def test_every_backbone_builds_trains_a_step_and_exports(backbone, tmp_path):
    from edgepose.manifest import InputSpec
    from edgepose.train.heads import geodesic_loss, rot6d_to_matrix
    from edgepose.train.models import create
    import onnxruntime as ort
    from edgepose.exporters.onnx_export import write_onnx

    model, size = create(backbone), SMALLEST.get(backbone, TINY)
    x = torch.randn(2, 3, size, size)
    loss = geodesic_loss(rot6d_to_matrix(model(x)), torch.eye(3).expand(2, 3, 3))
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters() if p.requires_grad)
    path = write_onnx(model.eval(), InputSpec(size=(size, size)), tmp_path / "m.onnx")
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(out, model(x).detach().numpy(), atol=1e-4)


@pytest.mark.slow  # two LiteRT conversions per backbone: ~45 s each
@pytest.mark.parametrize("backbone", BACKBONE_NAMES)
def test_every_backbone_exports_int8_and_litert(backbone, tmp_path, pool_root):
    """The student-search exports of every backbone: ONNX static int8, LiteRT fp32 (parity) and LiteRT PT2E int8."""
    from edgepose.backends import create_backend
    from edgepose.exporters.calibration import calibration_inputs
    from edgepose.exporters.onnx_export import onnx_to_int8, write_onnx
    from edgepose.exporters.tflite_export import torch_to_tflite
    from edgepose.manifest import InputSpec
    from edgepose.train.models import create

    torch.manual_seed(0)
    model, spec = create(backbone).eval(), InputSpec(size=(TINY, TINY))
    calib = calibration_inputs(pool_root, spec, 16)
    with torch.no_grad():
        expected = model(torch.from_numpy(calib)).numpy()
    outputs = {}
    int8 = onnx_to_int8(write_onnx(model, spec, tmp_path / "m.onnx"), tmp_path / "int8.onnx", calib, spec.name)
    ort = create_backend("onnxruntime")
    ort.load(str(int8), {"threads": 1})
    outputs["onnx int8"] = ort.run({"input": calib})["pose"]
    nhwc = np.ascontiguousarray(calib.transpose(0, 2, 3, 1))
    for precision in ("fp32", "int8"):
        path, tfl_spec, out_name = torch_to_tflite(model, spec, precision, tmp_path / f"{precision}.tflite", calib)
        assert tfl_spec.layout == "NHWC" and tfl_spec.batch == 1
        lite = create_backend("litert")
        lite.load(str(path), {"threads": 1})
        outputs[f"litert {precision}"] = np.concatenate([lite.run({"input": nhwc[i:i + 1]})[out_name] for i in range(4)])
    np.testing.assert_allclose(outputs["litert fp32"], expected[:4], atol=1e-4, rtol=1e-3)
    for name in ("onnx int8", "litert int8"):  # int8 follows fp32 (quantization noise, not a broken graph)
        got, ref = outputs[name], expected[: len(outputs[name])]
        assert got.shape == ref.shape and np.isfinite(got).all(), name
        assert np.corrcoef(got.ravel(), ref.ravel())[0, 1] > 0.95, name


KILL_SNIPPET = """
import os, signal, sys
import edgepose.train.trainer as t
from edgepose.train.recipe import load_recipe
saved = [0]
real = t.save_checkpoint
def dying_save(path, state):
    real(path, state)
    if path.name == "last.pt" and state["i"] > 0:
        saved[0] += 1
        if saved[0] == 2:  # the second mid-epoch checkpoint: die as a power cut would
            os.kill(os.getpid(), signal.SIGKILL)
t.save_checkpoint = dying_save
t.train(load_recipe(sys.argv[1], sys.argv[3:]), sys.argv[2], resume="--resume" in sys.argv)
"""


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path, pool_root):
    import subprocess
    import sys

    from edgepose.train.checkpoint import load_checkpoint
    from edgepose.train.trainer import train

    overrides = SMOKE + [f"data.root={pool_root}", "eval.aflw2000_root=", "train.epochs=2", "train.max_steps_per_epoch=6",
                         "train.checkpoint_every=2", "train.threads=1", "train.accumulate=2", "train.label_noise_deg=2"]
    killed = subprocess.run([sys.executable, "-c", KILL_SNIPPET, RECIPE, str(tmp_path / "killed"), *overrides],
                            capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr[-2000:]
    state = load_checkpoint(tmp_path / "killed" / "last.pt")
    assert state["epoch"] == 0 and state["i"] == 4  # died inside the first epoch
    train(load_recipe(RECIPE, overrides), tmp_path / "killed", resume=True)
    train(load_recipe(RECIPE, overrides), tmp_path / "straight")
    a, b = (load_checkpoint(tmp_path / d / "last.pt") for d in ("killed", "straight"))
    assert a["step"] == b["step"] == 12
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in a["ema"]:
        assert torch.equal(a["ema"][key], b["ema"][key]), key


@pytest.mark.slow
@pytest.mark.parametrize("head", sorted(__import__("edgepose.train.heads", fromlist=["HEADS"]).HEADS))
def test_every_head_trains_and_exports_with_one_decoding(head, tmp_path, pool_root, dev_root):
    import json

    from edgepose import Runtime
    from edgepose.exporters.export import export_bundle
    from edgepose.train.checkpoint import load_trained
    from edgepose.evaluation.metrics import angle_errors
    from edgepose.train.checkpoint import crop_spec, dev_crops, input_spec, predict_degrees
    from edgepose.train.trainer import train

    overrides = SMOKE + [f"data.root={pool_root}", f"eval.aflw2000_root={dev_root}", "train.epochs=1",
                         f"model.head={head}", "train.curriculum=[[0,45]]"]
    metrics = train(load_recipe(RECIPE, overrides), tmp_path / "run")
    assert np.isfinite(metrics["train_loss"]) and metrics["curriculum_max_deg"] == 45
    manifest = json.loads(export_bundle(tmp_path / "run" / "last.pt", "cpu", tmp_path / "b", dev_root=str(dev_root)).read_text())
    model, recipe = load_trained(tmp_path / "run" / "last.pt")
    assert manifest["output"] == model.head.decoding("pose")
    crops, _ = dev_crops(str(dev_root), input_spec(recipe), crop_spec(recipe))
    with Runtime("cpu", model=str(tmp_path / "b"), threads=1) as rt:
        assert angle_errors(rt.infer_crops(crops[:50]), predict_degrees(model, crops[:50])).max() < 0.1


@pytest.mark.slow
def test_large_yaw_emphasis_repeats_the_large_yaw_rows(tmp_path, pool_root):
    from edgepose.errors import ConfigError
    from edgepose.train.trainer import train

    base = SMOKE + [f"data.root={pool_root}", "eval.aflw2000_root=", "train.epochs=1", "train.max_steps_per_epoch=1"]
    rows = {}
    for repeat, deg in [(1, 60), (3, 0), (3, 60)]:
        recipe = load_recipe(RECIPE, base + [f"train.large_yaw_repeat={repeat}", f"train.large_yaw_deg={deg}"])
        rows[repeat, deg] = train(recipe, tmp_path / f"r{repeat}_{deg}")["epoch_rows"]
    assert rows[3, 0] == 3 * rows[1, 60]  # every row beyond 0 deg: each seen three times
    assert rows[1, 60] < rows[3, 60] < rows[3, 0]  # the pool has some faces beyond 60 deg, not only those
    with pytest.raises(ConfigError, match="large_yaw_repeat"):
        train(load_recipe(RECIPE, base + ["train.large_yaw_repeat=0"]), tmp_path / "bad")


@pytest.mark.slow
def test_early_stopping_on_the_holdout(tmp_path, pool_root):
    from edgepose.train.trainer import train

    overrides = SMOKE + [f"data.root={pool_root}", "eval.aflw2000_root=", "train.epochs=6", "train.patience=1",
                         "train.min_delta=1000"]  # no epoch can beat the first by 1000 deg
    metrics = train(load_recipe(RECIPE, overrides), tmp_path)
    assert metrics["epoch"] == 2


@pytest.mark.slow
def test_models_table_lists_params_and_macs():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "edgepose", "models", "--input-size", "112"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    line = next(l for l in r.stdout.splitlines() if l.startswith("| mobilenetv3_small |"))
    assert "1.5" in line and "15.9" in line  # 1.52 M parameters, 15.9 M MACs at 112 px
    assert "| resnet152 |" in r.stdout and "| mobilefacenet |" in r.stdout


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory, pool_root):
    """A teacher checkpoint trained for two steps (a stand-in for recipes' real teachers)."""
    from edgepose.train.trainer import train

    out = tmp_path_factory.mktemp("teacher")
    train(load_recipe(RECIPE, SMOKE + [f"data.root={pool_root}", "eval.aflw2000_root=", "train.epochs=1",
                                       "train.max_steps_per_epoch=2", "model.backbone=resnet18"]), out)
    return out / "last.pt"


@pytest.fixture(scope="module")
def tiny_profiled(tmp_path_factory, pool_root):
    """A profiled set from 6 pool faces (stands in for the recipes' full set, which takes ~15 min to render)."""
    from edgepose.train.profile_pool import ProfileSettings, generate

    from .conftest import SHARED, need

    return generate(pool_root, need(SHARED / "models" / "mesh" / "bfm_mean_3ddfa"),
                    tmp_path_factory.mktemp("profiled"), ProfileSettings(views=1), limit=6)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPE_FILES)
def test_every_recipe_runs_a_smoke(recipe, tmp_path, pool_root, tiny_teacher, tiny_profiled):
    from edgepose.train.trainer import train

    overrides = SMOKE + [f"data.root={pool_root}", "eval.aflw2000_root=", "train.epochs=1",
                         "train.max_steps_per_epoch=2", "train.checkpoint_every=0", "train.curriculum=[]"]
    original = load_recipe(recipe)
    if original.distill.teacher:
        overrides.append(f"distill.teacher={tiny_teacher}")
    if original.data.profiled:
        overrides.append(f"data.profiled={tiny_profiled}")
    if original.data.profiled_extra:
        overrides.append(f"data.profiled_extra=[{tiny_profiled}]")
    if original.data.labels:  # an `edgepose label` CSV (made from a parent run); the index's fused label stands in
        from edgepose.data_engine import LabelSettings, label_pool

        label_pool(pool_root, tmp_path / "labels.csv", [], ["fused"], settings=LabelSettings(flip=False), limit=400)
        overrides.append(f"data.labels={tmp_path / 'labels.csv'}")
    if original.train.select_by != "holdout":  # the 6 stand-in views need a larger holdout to have some held out
        overrides.append("data.holdout=0.5")
    if original.train.init:  # a ladder stage: its parent run is not here; fresh weights of its network stand in
        overrides.append(f"train.init={_fresh_weights(original, tmp_path / 'init.pt')}")
    if original.qat.init:
        pytest.importorskip("nncf")
        overrides.append("qat.calibration_size=8")
    metrics = train(load_recipe(recipe, overrides), tmp_path)
    assert metrics["epoch"] == 1 and np.isfinite(metrics["train_loss"]) and (tmp_path / "last.pt").is_file()


def _fresh_weights(recipe, path):
    from edgepose.train.models import create_for
    from edgepose.train.recipe import recipe_to_yaml
    from edgepose.train.trainer import release_state, save_checkpoint

    model = create_for(recipe.model)
    save_checkpoint(path, release_state(model.state_dict(), recipe_to_yaml(recipe), {}, 0, 0))
    return path


@pytest.mark.parametrize("head", sorted(__import__("edgepose.train.heads", fromlist=["HEADS"]).HEADS))
def test_every_head_names_a_device_decoding_that_matches_its_training_decode(head):
    """The head's manifest decoding is one the device half knows, and numpy decoding of its raw output gives the
    angles training computes (so an exported head needs no decoder of its own)."""
    from edgepose.decode import DECODINGS, decode_outputs
    from edgepose.train.heads import HEADS

    torch.manual_seed(0)
    module = HEADS[head](16).eval()
    decoding = module.decoding("pose")
    assert decoding["type"] in DECODINGS
    with torch.no_grad():
        raw = module(torch.randn(8, 16))
        expected = module.to_degrees(raw).numpy()
    degrees, _ = decode_outputs({"pose": raw.numpy()}, decoding)
    np.testing.assert_allclose(degrees, expected, atol=1e-3)


def test_warm_start_from_another_network_is_refused_clearly():
    from edgepose.train.models import create
    from edgepose.train.checkpoint import load_weights

    with pytest.raises(ConfigError, match="another network.*mobilenetv3_small"):
        load_weights(create("mobilenetv3_large", "rot6d"), "weights/student_mbv3s_rot6d.pt", "train.init")


def test_aligned_warm_start_carries_a_variant_across_dropped_blocks(capsys):
    """train.init_match=aligned: MobileNetV3-Small without squeeze-excite (and with ReLU) takes every tensor of the
    shipped network but the SE blocks', each where it belongs (the projection after a dropped SE moves up one
    place); a network sharing too little is refused."""
    import torch

    from edgepose.train.checkpoint import load_checkpoint, load_weights
    from edgepose.train.models import create

    src = load_checkpoint("weights/student_mbv3s_rot6d.pt")
    src = src["ema" if "ema" in src else "model"]
    model = load_weights(create("mobilenetv3_small_relu_nose", "rot6d"), "weights/student_mbv3s_rot6d.pt",
                         "train.init", "aligned")
    got = model.state_dict()
    assert "36 of its tensors unused" in capsys.readouterr().out  # 9 SE blocks x (2 weights + 2 biases)
    assert torch.equal(got["backbone.features.1.block.1.0.weight"], src["backbone.features.1.block.2.0.weight"])
    assert torch.equal(got["backbone.features.4.block.1.1.running_var"], src["backbone.features.4.block.1.1.running_var"])
    head = [k for k in got if k.startswith("head.")]
    assert head and all(torch.equal(got[k], src[k]) for k in head)
    with pytest.raises(ConfigError, match="another network"):  # exact stays exact
        load_weights(create("mobilenetv3_small_nose", "rot6d"), "weights/student_mbv3s_rot6d.pt", "train.init")
    with pytest.raises(ConfigError, match="counterpart"):
        load_weights(create("mobilenetv1_x025", "rot6d"), "weights/student_mbv3s_rot6d.pt", "train.init", "aligned")


@pytest.mark.slow
def test_distillation_caches_teacher_poses_and_resumes(tmp_path, pool_root, tiny_teacher, monkeypatch):
    from edgepose.train.checkpoint import load_checkpoint
    from edgepose.train.trainer import train

    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path / "cache"))
    overrides = SMOKE + [f"data.root={pool_root}", "eval.aflw2000_root=", f"distill.teacher={tiny_teacher}",
                         "distill.feature_weight=0.5", "train.epochs=1"]
    first = train(load_recipe(RECIPE, overrides), tmp_path / "run")
    cached = list((tmp_path / "cache").glob("teacher_poses_*.npy"))
    assert len(cached) == 1 and np.load(cached[0]).shape[1:] == (3, 3)
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert "adapter.weight" in state["distiller"] and np.isfinite(first["train_loss"])
    resumed = train(load_recipe(RECIPE, overrides[:-1] + ["train.epochs=2"]), tmp_path / "run", resume=True)
    assert resumed["epoch"] == 2 and len(list((tmp_path / "cache").glob("teacher_poses_*.npy"))) == 1


@pytest.mark.slow
def test_kl_distillation_needs_bins_heads_on_both(tmp_path, pool_root, tiny_teacher):
    from edgepose.train.trainer import train

    overrides = SMOKE + [f"data.root={pool_root}", "eval.aflw2000_root=", f"distill.teacher={tiny_teacher}",
                         "distill.kl_weight=1", "train.epochs=1", "model.head=bins"]
    with pytest.raises(ValueError, match="bins"):
        train(load_recipe(RECIPE, overrides), tmp_path)


@pytest.mark.slow
def test_ddp_two_cpu_processes_hold_identical_weights(tmp_path, pool_root):
    """torchrun --nproc_per_node=2 (gloo on CPU): sharded batches, averaged gradients, rank-0 files."""
    import csv
    import subprocess
    import sys

    from edgepose.train.checkpoint import load_checkpoint

    sets = SMOKE + [f"data.root={pool_root}", "eval.aflw2000_root=", "train.epochs=2", "train.threads=1"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
           "-m", "edgepose", "train", RECIPE, "--out", str(tmp_path)]
    for s in sets:
        cmd += ["--set", s]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [row["world_size"] for row in rows] == ["2", "2"]
    assert all(row["ranks_identical"] == "True" for row in rows)
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 6  # 3 global steps per epoch, each 2 x 16 images


def test_blur_and_occlusion_keep_labels_and_change_pixels():
    from edgepose.train.pool_data import augment_batch
    from edgepose.train.recipe import AugmentConfig

    rng_img = np.random.default_rng(0)
    images = rng_img.integers(0, 256, (4, 128, 128, 3), dtype=np.uint8)
    images[:] = cv2_smooth(images)
    mats = np.repeat(np.eye(3, dtype=np.float32)[None], 4, axis=0)
    still = AugmentConfig(flip=0, rotate_deg=0, scale_jitter=0, shift_jitter=0, lowres=0)
    busy = AugmentConfig(flip=0, rotate_deg=0, scale_jitter=0, shift_jitter=0, lowres=0, blur=1.0, occlusion=1.0)
    a, ma = augment_batch(images, mats, np.arange(4), 96, 1.6, still, np.random.default_rng(1))
    b, mb = augment_batch(images, mats, np.arange(4), 96, 1.6, busy, np.random.default_rng(1))
    np.testing.assert_array_equal(ma, mb)  # labels untouched
    changed = (np.abs(a.astype(int) - b.astype(int)).sum(-1) > 60).mean((1, 2))
    assert (changed > 0.03).all()  # every crop got an occluder


def cv2_smooth(images):
    import cv2

    return np.stack([cv2.GaussianBlur(i, (0, 0), 4) for i in images])


@pytest.mark.slow
def test_tensorboard_scalars(tmp_path, pool_root):
    pytest.importorskip("torch.utils.tensorboard", reason="needs tensorboard")
    from edgepose.train.trainer import train

    train(load_recipe(RECIPE, SMOKE + [f"data.root={pool_root}", "eval.aflw2000_root=", "train.epochs=1",
                                       "train.tensorboard=true"]), tmp_path)
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 100


@pytest.mark.slow
def test_landmark_branch_and_attention(tmp_path, pool_root, dev_root):
    """5-point landmark branch trained with the pose (0.7 / 0.3), spatial attention on; the export stays pose-only."""
    from edgepose import Runtime
    from edgepose.exporters.export import export_bundle
    from edgepose.train.trainer import train

    overrides = SMOKE + [f"data.root={pool_root}", f"eval.aflw2000_root={dev_root}", "train.epochs=1",
                         "model.landmarks=5", "model.attention=true"]
    metrics = train(load_recipe(RECIPE, overrides), tmp_path / "run")
    assert np.isfinite(metrics["train_loss"])
    export_bundle(tmp_path / "run" / "last.pt", "cpu", tmp_path / "b", dev_root=str(dev_root))
    with Runtime("cpu", model=str(tmp_path / "b"), threads=1) as rt:
        assert rt.infer(np.zeros((64, 64, 3), np.uint8), boxes=[(10, 10, 50, 50)])


def test_landmarks_follow_flips_and_rotations():
    """Warped landmarks land on the warped image's features: a bright dot moves with its point, flips swap eyes."""
    from edgepose.train.pool_data import augment_batch
    from edgepose.train.recipe import AugmentConfig

    img = np.zeros((1, 128, 128, 3), np.uint8)
    pts = np.array([[[40.0, 50.0], [88.0, 50.0], [64.0, 70.0], [48.0, 90.0], [80.0, 90.0]]], np.float32)
    img[0, 48:53, 38:43] = 255  # a dot on the image-left eye
    aug = AugmentConfig(flip=1.0, rotate_deg=20, scale_jitter=0.1, shift_jitter=0.05, lowres=0, color_jitter=0)
    out, _, warped = augment_batch(img, np.eye(3, dtype=np.float32)[None], np.array([0]), 96, 1.6, aug,
                                   np.random.default_rng(3), pts)
    ys, xs = np.nonzero(out[0, :, :, 0] > 128)
    dot = np.array([xs.mean(), ys.mean()]) / 96
    # after a flip the dot (originally the image-left eye) is the image-right eye: index 1
    assert np.abs(warped[0, 1] - dot).max() < 0.03 and warped[0, 1, 0] > warped[0, 0, 0]


def test_euler_term_sees_what_the_geodesic_loss_barely_sees():
    """At yaw 75, pitch = roll = 30 is 7.7 deg from pitch = roll = 0 (gimbal lock) but 60 deg of Euler error."""
    import torch

    from edgepose.angles import euler_to_matrix, matrix_to_euler
    from edgepose.train.heads import Rot6DHead, matrix_to_euler_torch

    rng = np.random.default_rng(0)
    angles = rng.uniform([-99, -60, -60], [99, 60, 60], (64, 3))
    mats = euler_to_matrix(*angles.T)
    assert np.allclose(matrix_to_euler_torch(torch.from_numpy(mats)).numpy(), matrix_to_euler(mats), atol=1e-4)

    truth = euler_to_matrix(np.array([75.0]), np.array([30.0]), np.array([30.0]))
    pred = euler_to_matrix(np.array([75.0]), np.array([0.0]), np.array([0.0]))
    out = torch.from_numpy(np.concatenate([pred[:, :, 0], pred[:, :, 1]], 1)).float()
    target_r, target_deg = torch.from_numpy(truth).float(), torch.tensor([[75.0, 30.0, 30.0]])
    head = Rot6DHead(8)
    geodesic = float(head.loss(out, target_r, target_deg))
    head.euler_weight = 1.0
    both = float(head.loss(out, target_r, target_deg))
    assert np.rad2deg(geodesic) == pytest.approx(7.74, abs=0.05)
    assert np.rad2deg(both - geodesic) == pytest.approx(20.0, abs=0.05)  # mean |error| over yaw, pitch, roll


@pytest.mark.slow
def test_warm_start_and_euler_weight(tmp_path, pool_root):
    import torch

    from edgepose.errors import ConfigError
    from edgepose.train.checkpoint import load_checkpoint
    from edgepose.train.trainer import train

    weights = "weights/student_mbv3s_rot6d.pt"
    base = SMOKE + [f"data.root={pool_root}", "eval.aflw2000_root=", "train.epochs=1", "train.max_steps_per_epoch=2",
                    "model.input_size=112"]
    train(load_recipe(RECIPE, base + [f"train.init={weights}", "train.lr=1e-12", "train.euler_weight=1"]), tmp_path / "a")
    start, end = load_checkpoint(weights)["ema"], load_checkpoint(tmp_path / "a" / "last.pt")["model"]
    convs = [k for k, v in start.items() if k.endswith(".weight") and v.dim() == 4]
    # lr 1e-12 (lr must be > 0): two steps leave the warm-start weights as they were, to float precision
    assert convs and all(torch.allclose(start[k], end[k], rtol=0, atol=1e-6) for k in convs)
    assert any(not torch.allclose(start[k], torch.zeros_like(start[k])) for k in convs)  # real weights were loaded
    with pytest.raises(ConfigError, match="train.init: no checkpoint at 'nope.pt'"):
        train(load_recipe(RECIPE, base + ["train.init=nope.pt"]), tmp_path / "b")
    with pytest.raises(ConfigError, match="rot6d head only"):
        train(load_recipe(RECIPE, base + ["train.euler_weight=1", "model.head=euler"]), tmp_path / "c")


@pytest.mark.slow
def test_extra_profiled_folders_add_their_views(pool_root, tiny_profiled):
    from edgepose.errors import ConfigError
    from edgepose.train.pool_data import PoolData
    from edgepose.train.recipe import DataConfig

    one = PoolData(DataConfig(root=str(pool_root), limit=80, profiled=str(tiny_profiled)))
    two = PoolData(DataConfig(root=str(pool_root), limit=80, profiled=str(tiny_profiled),
                              profiled_extra=(str(tiny_profiled),)))
    assert one.profiled > 0 and two.profiled == 2 * one.profiled
    assert len(two.images) == len(one.images) + one.profiled
    with pytest.raises(ConfigError, match="data.profiled_extra adds to data.profiled"):
        PoolData(DataConfig(root=str(pool_root), limit=80, profiled_extra=(str(tiny_profiled),)))


@pytest.mark.slow
def test_select_by_the_profiled_views_picks_best_by_their_exact_labels(tmp_path, pool_root, tiny_profiled):
    import torch

    from edgepose.train.checkpoint import load_checkpoint
    from edgepose.train.trainer import train

    base = SMOKE + [f"data.root={pool_root}", "eval.aflw2000_root=", "train.max_steps_per_epoch=2"]
    with pytest.raises(ConfigError, match="set data.profiled, or use train.select_by=holdout"):
        train(load_recipe(RECIPE, base + ["train.select_by=holdout_views"]), tmp_path / "a")
    with pytest.raises(ConfigError, match="is not one of holdout, holdout_views, holdout_pool"):
        load_recipe(RECIPE, base + ["train.select_by=dev"])
    out = tmp_path / "views"
    train(load_recipe(RECIPE, base + [f"data.profiled={tiny_profiled}", "data.holdout=0.5", "train.epochs=3",
                                      "train.select_by=holdout_views", "train.keep_epochs=true"]), out)
    log = list(csv.DictReader(open(out / "log.csv")))
    views = [float(r["holdout_views_mae"]) for r in log]
    assert len(log) == 3 and all(float(r["holdout_pool_mae"]) > 0 for r in log)
    best = load_checkpoint(out / "best.pt")["metrics"]
    assert best["holdout_views_mae"] == pytest.approx(min(views), abs=1e-6)
    kept = [load_checkpoint(out / f"epoch_{i}.pt") for i in (1, 2, 3)]  # train.keep_epochs: one file per epoch
    assert [k["metrics"]["holdout_views_mae"] for k in kept] == pytest.approx(views, abs=1e-6)
    assert "optimizer" not in kept[0] and kept[2]["ema"].keys() == load_checkpoint(out / "last.pt")["ema"].keys()
    assert all(torch.equal(kept[2]["ema"][k], v) for k, v in load_checkpoint(out / "last.pt")["ema"].items())
    assert not (out / "epoch_4.pt").exists()


@pytest.mark.slow
def test_holdout_benchmark_scores_any_checkpoint_as_the_trainer_scored_its_epochs(tmp_path, pool_root, tiny_profiled,
                                                                                 capsys):
    """benchmarks/holdout.py (how a default is chosen across runs without dev) gives each kept epoch the holdout
    figures the trainer logged for it, pool rows and views apart, and refuses a checkpoint of another input size."""
    import importlib.util

    from edgepose.train.trainer import train

    spec = importlib.util.spec_from_file_location("holdout_bench", "benchmarks/holdout.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "run"
    train(load_recipe(RECIPE, SMOKE + [f"data.root={pool_root}", "eval.aflw2000_root=", "train.max_steps_per_epoch=2",
                                       f"data.profiled={tiny_profiled}", "data.holdout=0.5", "train.epochs=2",
                                       "train.keep_epochs=true"]), out)
    log = list(csv.DictReader(open(out / "log.csv")))
    report = tmp_path / "holdout.json"
    assert bench.main(["--recipe", str(out / "recipe.yaml"), str(out / "epoch_1.pt"), str(out / "epoch_2.pt"),
                       "--json", str(report)]) == 0
    rows = json.loads(report.read_text())["rows"]
    assert len(rows) == len(log) == 2
    for row, logged in zip(rows, log):
        for key in ("holdout_mae", "holdout_pool_mae", "holdout_views_mae"):
            assert row[key] == pytest.approx(float(logged[key]), abs=1e-4)
    assert rows[0]["holdout_mae"] != rows[1]["holdout_mae"]
    for row in rows:  # by the labels' |yaw|: the bins split the holdout, their n-weighted means make its mean
        bins = row["holdout_bins"]
        assert list(bins) == ["0-30", "30-60", "60-99"]
        filled = [b for b in bins.values() if b["n"]]
        weighted = sum(b["n"] * b["mean"] for b in filled) / sum(b["n"] for b in filled)
        assert weighted == pytest.approx(row["holdout_mae"], abs=1e-6)
    assert "| holdout_mae | holdout_pool_mae | holdout_views_mae | \\|yaw\\| 0-30 (n=" in capsys.readouterr().out
    assert bench.main(["--recipe", str(out / "recipe.yaml"), "--set", "model.input_size=96",
                       str(out / "epoch_1.pt")]) == 2
    assert "takes 64 px crops (" in (err := capsys.readouterr().err) and "the recipe's holdout is 96 px" in err
    torch.save({"weights": {}}, tmp_path / "not_ours.pt")  # a .pt that is no edgepose checkpoint: a clear error
    assert bench.main(["--recipe", str(out / "recipe.yaml"), str(tmp_path / "not_ours.pt")]) == 2
    assert "is not an edgepose training checkpoint" in capsys.readouterr().err
    assert bench.main(["--recipe", str(out / "recipe.yaml"), str(out / "epoch_1.pt"), "--json",
                       str(tmp_path / "missing" / "h.json")]) == 2
    assert "its folder does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_profiled_relabel_composes_the_labels_file_source_pose_with_each_views_turn(tmp_path, pool_root,
                                                                                     tiny_profiled):
    from edgepose.angles import euler_to_matrix
    from edgepose.datasets.faces_pool import read_pool_index
    from edgepose.train.pool_data import PoolData
    from edgepose.train.profile_pool import load_profiled
    from edgepose.train.profiling import rotated_label
    from edgepose.train.recipe import DataConfig

    views = load_profiled(tiny_profiled)
    sources = sorted(set(views["source_path"]))
    relabelled, dropped = sources[1:], sources[0]  # one source left out of the labels file keeps its rendered labels
    new = {p: np.array([12.0 + i, -7.0, 4.0 - i]) for i, p in enumerate(relabelled)}
    paths = read_pool_index(pool_root).paths
    rows = ["path,yaw,pitch,roll,confidence,spread,votes,keep"]
    rows += [f"{p},{new[p][0]},{new[p][1]},{new[p][2]},1.0,0.0,2,1" for p in relabelled]
    rows += [f"{p},1.0,2.0,3.0,1.0,0.0,2,1" for p in paths[:80] if p not in sources]
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")

    cfg = {"root": str(pool_root), "profiled": str(tiny_profiled), "labels": str(labels)}
    plain = PoolData(DataConfig(**cfg))
    moved = PoolData(DataConfig(**cfg, profiled_relabel=True))
    n = plain.profiled
    assert n == len(views["angles"]) and moved.profiled == n
    np.testing.assert_allclose(plain.angles[-n:], views["angles"], atol=1e-4)  # default: as rendered
    for i, (src, turn) in enumerate(zip(views["source_path"], views["turn"])):
        want = views["angles"][i] if src == dropped else rotated_label(new[src], *turn)
        np.testing.assert_allclose(moved.angles[len(moved.angles) - n + i], want, atol=1e-3)
    assert not np.allclose(moved.angles[-n:], plain.angles[-n:], atol=1.0)
    assert np.allclose(moved.matrices[-n:], euler_to_matrix(*moved.angles[-n:].T), atol=1e-5)
    with pytest.raises(ConfigError, match="profiled_relabel takes the views' source labels from data.labels"):
        PoolData(DataConfig(root=str(pool_root), profiled=str(tiny_profiled), profiled_relabel=True))


@pytest.mark.slow
def test_profiled_fit_model_labels_each_view_with_the_geometry_it_was_rendered_from(pool_root, tiny_profiled):
    from edgepose.angles import euler_to_matrix, geodesic_degrees
    from edgepose.train.face_model import fit_pose, load_face_model
    from edgepose.train.pool_data import PoolData
    from edgepose.train.profile_pool import load_profiled
    from edgepose.train.recipe import DataConfig

    from .conftest import SHARED, need

    mesh = str(need(SHARED / "models" / "mesh" / "bfm_mean_3ddfa"))
    views = load_profiled(tiny_profiled)
    data = PoolData(DataConfig(root=str(pool_root), profiled=str(tiny_profiled), profiled_fit_model=mesh))
    n = data.profiled
    assert n == len(views["angles"]) > 0
    # the mesh fitted to each view's own rendered landmarks finds the view's label: label and pixels agree
    model = load_face_model(mesh)
    seen = np.array([fit_pose(model, pts.astype(np.float64)).angles() for pts in views["landmarks"]])
    off = {name: geodesic_degrees(euler_to_matrix(*a.T), euler_to_matrix(*seen.T))
           for name, a in (("fit", data.angles[-n:].astype(np.float64)), ("rendered", views["angles"]))}
    assert off["fit"].mean() < 3.0 and off["fit"].max() < 6.0 and off["fit"].mean() < off["rendered"].mean()
    with pytest.raises(ConfigError, match="choose one"):
        PoolData(DataConfig(root=str(pool_root), profiled=str(tiny_profiled), profiled_fit_model=mesh,
                            profiled_relabel=True, labels="unused.csv"))
    with pytest.raises(ConfigError, match="data.profiled_fit_model relabels the views of data.profiled"):
        PoolData(DataConfig(root=str(pool_root), profiled_fit_model=mesh))


@pytest.mark.slow
def test_pool_max_abs_yaw_leaves_out_real_rows_beyond_it_but_their_views_keep_their_relabelled_turns(
        tmp_path, pool_root, tiny_profiled):
    from edgepose.datasets.faces_pool import read_pool_index
    from edgepose.train.pool_data import PoolData
    from edgepose.train.profile_pool import load_profiled
    from edgepose.train.recipe import DataConfig

    sources = set(load_profiled(tiny_profiled)["source_path"])
    paths = read_pool_index(pool_root).paths[:80]
    far = {p for i, p in enumerate(paths) if i % 3 == 0} | sources  # the views' sources are beyond the bound too
    rows = ["path,yaw,pitch,roll,confidence,spread,votes,keep"]
    rows += [f"{p},{75.0 if p in far else -20.0},5.0,-3.0,1.0,0.0,2,1" for p in sorted(set(paths) | sources)]
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    cfg = {"root": str(pool_root), "profiled": str(tiny_profiled), "labels": str(labels), "profiled_relabel": True}
    everything, near = PoolData(DataConfig(**cfg)), PoolData(DataConfig(**cfg, pool_max_abs_yaw=60))
    n = near.profiled
    assert n == everything.profiled > 0
    real = near.angles[:-n]
    assert len(real) == len(everything.angles) - n - len(far) and len(real) > 0
    assert np.all(np.abs(real[:, 0]) <= 60)
    np.testing.assert_allclose(near.angles[-n:], everything.angles[-n:])  # views: still relabelled from 75 deg sources
    assert len(near.train_idx) + len(near.holdout_idx) == len(near.angles) == len(near.images)
    with pytest.raises(ConfigError, match="data.pool_max_abs_yaw is -5"):
        PoolData(DataConfig(**cfg, pool_max_abs_yaw=-5))


@pytest.mark.slow
def test_average_is_the_mean_of_the_weights_and_bundles_and_cards_name_its_members(tmp_path):
    import shutil

    from edgepose.cli import main
    from edgepose.manifest import load_manifest
    from edgepose.evaluation.model_card import build_card
    from edgepose.train.checkpoint import load_checkpoint

    a = tmp_path / "runs" / "round1" / "best.pt"
    b = tmp_path / "runs" / "round2" / "best.pt"
    a.parent.mkdir(parents=True), b.parent.mkdir(parents=True)
    shutil.copyfile("weights/student_mbv3s_rot6d.pt", a)
    state = load_checkpoint(a)
    ema = {k: v * 1.1 if v.is_floating_point() else v for k, v in state["ema"].items()}
    torch.save({**state, "ema": ema}, b)
    out = tmp_path / "weights" / "soup.pt"
    assert main(["average", str(a), str(b), "--out", str(out)]) == 0
    soup = load_checkpoint(out)
    for k, v in state["ema"].items():
        if v.is_floating_point():
            torch.testing.assert_close(soup["ema"][k], v * 1.05)
    assert "name: soup" in soup["recipe"] and [m["recipe"] for m in soup["averaged_from"]] == ["round1", "round2"]

    bundles = tmp_path / "bundles"
    assert main(["export", str(out), "--platform", "cpu", "--out", str(bundles / "default"), "--dev-root", ""]) == 0
    manifest = load_manifest(bundles / "default" / "manifest.json")
    assert manifest.name == "soup" and [m["checkpoint"] for m in manifest.source["averaged_from"]] == [str(a), str(b)]
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "round2.yaml").write_text("# round two\nname: round2\ntrain:\n  init: runs/round1/best.pt\n")
    (recipes / "round1.yaml").write_text("# round one\nname: round1\n")
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"rows": [{"model": "default", "platform": "cpu", "precision": "fp32",
                                           "status": "✅ ran", "size MB": 6.1, "MAE": 4.5, "yaw": 4, "pitch": 5,
                                           "roll": 4, "|yaw| 60-99": 12, "AUC@5 %": 70.0, "pose p50 ms": 0.4,
                                           "× first": 1.0}]}))
    provenance = tmp_path / "soup.md"
    provenance.write_text("## How it was chosen\n\nby its holdout\n\n## Data and terms\n\nours\n")
    card = build_card(bench, bundles, recipes, provenance)
    assert f"edgepose average {a} {b} --out weights/soup.pt" in card
    assert card.index(f"- `{recipes.as_posix()}/round2.yaml`: round two") < card.index(f"`{recipes.as_posix()}/round1.yaml`")

    with pytest.raises(ConfigError, match="at least two"):
        main_average([str(a)], tmp_path / "x.pt")
    with pytest.raises(ConfigError, match="different network"):
        main_average([str(a), "weights/student_mbv3s_128_soup.pt"], tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def main_average(paths, out):
    from edgepose.train.average import average_checkpoints

    return average_checkpoints(paths, out)
