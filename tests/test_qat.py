"""Quantization-aware training with NNCF: BN folding, QAT through the trainer, resume, int8 exports that run."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("nncf", reason="QAT needs NNCF: pip install 'edgepose[qat]'")

from edgepose.train import qat  # noqa: E402
from edgepose.train.models import create  # noqa: E402
from edgepose.train.recipe import load_recipe  # noqa: E402

SMOKE = ["data.limit=400", "train.batch_size=16", "model.input_size=64", "eval.aflw2000_root=", "data.profiled=",
         "data.labels=", "train.epochs=1", "train.max_steps_per_epoch=3", "train.checkpoint_every=0"]


@pytest.mark.slow
def test_batchnorm_folding_keeps_the_outputs():
    model = create("mobilenetv3_small", "rot6d").eval()
    for m in model.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
        after = qat.fold_batchnorm(model)(x)
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


@pytest.fixture(scope="module")
def qat_run(tmp_path_factory, pool_root):
    from edgepose.train.trainer import train

    base = tmp_path_factory.mktemp("fp32")
    train(load_recipe("recipes/student_mbv3s_rot6d.yaml", SMOKE + [f"data.root={pool_root}"]), base)
    out = tmp_path_factory.mktemp("qat")
    overrides = SMOKE + [f"data.root={pool_root}", "data.profiled=", f"qat.init={base / 'last.pt'}",
                         "qat.calibration_size=8"]
    metrics = train(load_recipe("research/labels3ddfa/qat_mbv3.yaml", overrides), out)
    return out, metrics, overrides


@pytest.mark.slow
def test_qat_trains_checkpoints_and_reloads_with_its_quantizers(qat_run):
    from edgepose.train.checkpoint import load_trained

    out, metrics, _ = qat_run
    assert np.isfinite(metrics["train_loss"])
    state = torch.load(out / "last.pt", weights_only=True)
    assert "nncf_config" in state
    model, _ = load_trained(out / "last.pt")
    assert qat.is_quantized(model)
    levels = [len(torch.unique(w[0])) for w in _conv_weights(qat.bake_weights(
        model, qat.fold_batchnorm(create("mobilenetv3_small", "rot6d").eval()), 64))]
    # baked conv weights sit on an int8 grid (NNCF leaves a few layers, e.g. squeeze-excite FCs, in float)
    assert sum(n <= 255 for n in levels) >= 0.75 * len(levels)


def _conv_weights(model):
    return [m.weight.detach() for m in model.modules() if isinstance(m, torch.nn.Conv2d)]


@pytest.mark.slow
def test_qat_resume_continues(qat_run, tmp_path, pool_root):
    from edgepose.train.trainer import train

    out, _, overrides = qat_run
    resumed = train(load_recipe("research/labels3ddfa/qat_mbv3.yaml", overrides[:-1] + ["train.epochs=2"]), out, resume=True)
    assert resumed["epoch"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("platform,qat_format", [("cpu-int8", "weights"), ("cpu-int8", "nncf-qdq")])
def test_qat_checkpoint_exports_int8_that_runs(qat_run, tmp_path, platform, qat_format, dev_root):
    import onnx

    from edgepose.exporters.export import export_bundle
    from edgepose.runtime import Runtime

    out, _, _ = qat_run
    manifest = export_bundle(out / "last.pt", platform, tmp_path / "b", calibration_size=16, dev_root="",
                             qat_format=qat_format, precision="int8")
    graph = onnx.load(str(manifest.parent / "model.onnx")).graph
    assert sum(n.op_type == "QuantizeLinear" for n in graph.node) > 10
    with Runtime(platform, model=str(manifest.parent)) as rt:
        pred = rt.infer_crops(np.random.default_rng(0).integers(0, 255, (2, 64, 64, 3), np.uint8))
    assert pred.shape == (2, 3) and np.isfinite(pred).all()


@pytest.mark.slow
def test_qat_checkpoint_through_the_speed_choice_says_what_shipped(qat_run, tmp_path):
    """cpu-int8's own precision: QAT's int8 graph timed against the fp32 graph of the same (int8-grid) weights."""
    import onnx

    from edgepose.exporters.export import export_bundle

    manifest = json.loads(export_bundle(qat_run[0] / "last.pt", "cpu-int8", tmp_path / "b", calibration_size=16,
                                        dev_root="").read_text())
    choice = manifest["source"]["speed_choice"]
    quantized = sum(n.op_type == "QuantizeLinear" for n in onnx.load(str(tmp_path / "b" / "model.onnx")).graph.node)
    assert manifest["precision"] == choice["shipped"] and (quantized > 10) == (choice["shipped"] == "int8")
    assert manifest["source"]["quantization"].startswith(
        "NNCF QAT weights (int8 grid) " + ("in an fp32 graph" if choice["shipped"] == "fp32" else "+ ONNX Runtime"))
    # NNCF's own QDQ graph has no fp32 twin to time: int8 ships, untimed, and the manifest says why
    qdq = json.loads(export_bundle(qat_run[0] / "last.pt", "cpu-int8", tmp_path / "q", calibration_size=16,
                                   dev_root="", qat_format="nncf-qdq").read_text())
    assert qdq["precision"] == "int8" and "NNCF QDQ graph" in qdq["source"]["speed_choice"]["untimed"]


@pytest.mark.slow
def test_qat_checkpoint_refuses_fp32_export(qat_run, tmp_path):
    from edgepose.errors import ConfigError
    from edgepose.exporters.export import export_bundle

    with pytest.raises(ConfigError, match="quantization-aware"):
        export_bundle(qat_run[0] / "last.pt", "cpu", tmp_path / "b", dev_root="")
