"""Golden numbers: the shipped default bundle on all 300 aflw2000-dev images, measured through Runtime('cpu')."""
import pytest

from edgepose.evaluation.evaluate import evaluate


def test_default_bundle_accuracy_matches_its_manifest(runtime, dev_root):
    summary, _, _ = evaluate(runtime, "aflw2000", str(dev_root), progress=False)
    recorded = runtime.manifest.metrics["aflw2000-dev"]
    assert summary["n"] == 300
    # the manifest holds the exporter's figure on the training crop (crop.square_crop, INTER_AREA); the runtime cuts
    # the same square with 2x2 means and one bilinear resize (crop.square_warp), which moves the mean by about 0.02
    assert summary["mean"] == pytest.approx(recorded["mean"], abs=0.03)
    assert summary["mean"] <= 8.0  # issue 2's bar for the first shipped model
    assert summary["auc5"] == pytest.approx(recorded["auc5"], abs=0.01)
