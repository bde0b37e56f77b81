"""The host half for real: a short training run on the pool, resume, export to ONNX, parity with PyTorch."""
import csv
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the training half needs torch: pip install 'edgepose[train]'")

from edgepose.errors import ConfigError  # noqa: E402
from edgepose.train.recipe import load_recipe  # noqa: E402

RECIPE = "recipes/student_mbv3s_rot6d.yaml"
SMOKE = ["data.limit=400", "train.batch_size=16", "train.max_steps_per_epoch=3", "model.input_size=64"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, pool_root, dev_root):
    from edgepose.train.trainer import train

    out = tmp_path_factory.mktemp("run")
    overrides = SMOKE + [f"data.root={pool_root}", f"eval.aflw2000_root={dev_root}"]
    first = train(load_recipe(RECIPE, overrides + ["train.epochs=2"]), out)
    resumed = train(load_recipe(RECIPE, overrides + ["train.epochs=3"]), out, resume=True)
    return out, first, resumed


def test_training_writes_checkpoint_log_and_recipe(trained):
    out, first, resumed = trained
    assert first["epoch"] == 2 and resumed["epoch"] == 3 and resumed["step"] == 9
    rows = list(csv.DictReader(open(out / "log.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert all(float(r["dev_mae"]) > 0 for r in rows)
    assert load_recipe(out / "recipe.yaml").model.input_size == 64
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["epoch"] == 2 and "optimizer" in state and "ema" in state


def test_export_onnx_parity_with_torch(trained, tmp_path, dev_root, dev_samples):
    from edgepose import Runtime
    from edgepose.exporters.export import export_bundle
    from edgepose.exporters.onnx_export import load_trained
    from edgepose.train.trainer import dev_crops, input_spec, predict_degrees

    out, _, _ = trained
    manifest_path = export_bundle(out / "last.pt", "cpu", tmp_path / "bundle", dev_root=str(dev_root))
    manifest = json.loads(manifest_path.read_text())
    assert manifest["input"]["size"] == [64, 64] and manifest["sha256"]
    model, recipe = load_trained(out / "last.pt")
    crops, _ = dev_crops(str(dev_root), input_spec(recipe), recipe.data.crop_scale)
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


def test_resume_without_checkpoint_is_clear(tmp_path, pool_root):
    from edgepose.train.trainer import train

    with pytest.raises(FileNotFoundError, match="without --resume"):
        train(load_recipe(RECIPE, SMOKE + [f"data.root={pool_root}"]), tmp_path, resume=True)


def test_every_recipe_parses():
    from pathlib import Path

    recipes = sorted(Path("recipes").glob("*.yaml"))
    assert recipes
    for path in recipes:
        load_recipe(path)


@pytest.mark.parametrize("backbone", sorted(__import__("edgepose.train.models", fromlist=["BACKBONES"]).BACKBONES))
def test_every_backbone_builds_trains_a_step_and_exports(backbone, tmp_path):
    from edgepose.manifest import InputSpec
    from edgepose.train.heads import geodesic_loss, rot6d_to_matrix
    from edgepose.train.models import create
    import onnxruntime as ort
    from edgepose.exporters.onnx_export import write_onnx

    model = create(backbone)
    x = torch.randn(2, 3, 64, 64)
    loss = geodesic_loss(rot6d_to_matrix(model(x)), torch.eye(3).expand(2, 3, 3))
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters() if p.requires_grad)
    path = write_onnx(model.eval(), InputSpec(size=(64, 64)), tmp_path / "m.onnx")
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(out, model(x).detach().numpy(), atol=1e-4)
