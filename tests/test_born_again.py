"""3DDFA_V2's released weights as a warm start: the loaded network reproduces the public ONNX model, training cuts
its roi crop from pool crops as the runtime cuts it from frames, BatchNorm statistics can be frozen."""
from __future__ import annotations

import numpy as np
import pytest

from .conftest import SHARED, need

PTH = SHARED / "models" / "peers" / "3ddfa-v2-mb05.pth"
PEER = "benchmarks/peers/3ddfa_v2.json"
ROI = dict(protocol="roi", scale=1.58, shift=(0.0, 0.14))


@pytest.fixture(scope="module")
def tddfa():
    torch = pytest.importorskip("torch", reason="the training extra (torch) loads the PyTorch weights")
    from edgepose.train.checkpoint import load_weights
    from edgepose.train.models import create

    model = create("mobilenetv1_x050", head="camera").eval()
    load_weights(model, str(need(PTH)), "train.init")
    return torch, model


def test_loaded_weights_reproduce_the_onnx_peer(tddfa, dev_root):
    """The .pth in edgepose's MobileNetV1 x0.5 (RGB input, (x - 127.5) / 127.5, its first conv adapted) gives the
    ONNX peer's pose within 1e-3 deg on dev crops, decoded the same way (SVD of the two camera rows it keeps, up to
    the one common factor that decoding ignores); the head's own 6D decoding (Gram-Schmidt of the same two rows)
    stays within a degree on average."""
    torch, model = tddfa
    from edgepose import Runtime
    from edgepose.angles import matrix_to_euler
    from edgepose.decode import decode_affine_camera, decode_outputs
    from edgepose.manifest import CropSpec, InputSpec
    from edgepose.train.checkpoint import dev_crops, to_tensor

    crops, _ = dev_crops(str(dev_root), InputSpec(size=(120, 120)), CropSpec(**ROI))
    with torch.no_grad():
        six = model(to_tensor(crops)).numpy()
    params = np.zeros((len(six), 12))
    params[:, [0, 1, 2, 4, 5, 6]] = six  # the camera's first two rows; translation and third row are not decoded
    with Runtime("cpu", PEER, models_dir=str(SHARED / "models" / "peers"), threads=1) as rt:
        peer = rt.infer_crops(crops)
    mine = matrix_to_euler(decode_affine_camera(params))
    assert np.abs(mine - peer).max() < 1e-3
    gram_schmidt = decode_outputs({"pose": six}, model.head.decoding("pose"))[0]
    assert np.abs(gram_schmidt - peer).mean() < 1.0


def test_3ddfa_weights_need_its_backbone():
    pytest.importorskip("torch", reason="the training extra (torch) loads the PyTorch weights")
    from edgepose.errors import ConfigError
    from edgepose.train.checkpoint import load_weights
    from edgepose.train.models import create

    with pytest.raises(ConfigError, match="mobilenetv1_x050"):
        load_weights(create("mobilenetv3_small", head="camera"), str(need(PTH)), "train.init")


def test_other_head_gets_the_backbone_only(tddfa):
    torch, loaded = tddfa
    from edgepose.train.checkpoint import load_weights
    from edgepose.train.models import create

    model = create("mobilenetv1_x050", head="rot6d")
    fresh = {k: v.clone() for k, v in model.head.state_dict().items()}
    load_weights(model, str(PTH), "train.init")
    assert torch.equal(model.backbone.features[3][0].weight, loaded.backbone.features[3][0].weight)
    assert all(torch.equal(v, model.head.state_dict()[k]) for k, v in fresh.items())


def test_training_roi_crop_matches_the_runtime_crop(pool_root):
    """Without augmentation the training crop of a pool row is the runtime's roi crop of that stored image around the
    row's box (a few grey levels of resampling apart; the border differs only where the square leaves the image)."""
    import cv2

    from edgepose.crop import roi_crop
    from edgepose.datasets.faces_pool import read_pool_index
    from edgepose.manifest import CropSpec
    from edgepose.train.pool_data import augment_batch

    table = read_pool_index(pool_root)
    rows = [i for i, s in enumerate(table.source) if s == "w300"][:4]
    images = np.stack([cv2.imread(str(pool_root / table.paths[i])) for i in rows])
    boxes = table.boxes[rows]
    mats = np.repeat(np.eye(3, dtype=np.float32)[None], len(rows), 0)
    out, labels = augment_batch(images, mats, np.arange(len(rows)), 120, CropSpec(**ROI), None,
                                np.random.default_rng(0), boxes=boxes)
    for j in range(len(rows)):
        ref = roi_crop(images[j], boxes[j], 1.58, (0.0, 0.14), (120, 120))
        inner = slice(10, 100)  # away from the bottom border, where the runtime zero-pads and training replicates
        diff = np.abs(out[j, inner, inner].astype(int) - ref[inner, inner].astype(int))
        assert np.median(diff) <= 3, j
    np.testing.assert_array_equal(labels, mats)


def test_roi_training_crop_needs_boxes():
    from edgepose.errors import ConfigError
    from edgepose.manifest import CropSpec
    from edgepose.train.pool_data import augment_batch

    with pytest.raises(ConfigError, match="boxes"):
        augment_batch(np.zeros((1, 128, 128, 3), np.uint8), np.eye(3)[None], np.array([0]), 120, CropSpec(**ROI), None,
                      np.random.default_rng(0))


@pytest.mark.parametrize("override, message", [
    (["data.crop_shift=[0, 0.14]"], "square protocol"),
    (["data.crop_protocol=roi", "data.crop_shift=[0, 0.9]"], "below half"),
    (["data.crop_protocol=roi", "data.crop_shift=[0.1]"], r"\[dx, dy\]"),
    (["data.crop_protocol=rio"], "roi"),
])
def test_recipe_crop_settings_are_checked(override, message):
    from edgepose.errors import ConfigError
    from edgepose.train.recipe import recipe_from_yaml

    with pytest.raises(ConfigError, match=message):
        recipe_from_yaml("name: x\n", override)


def test_freeze_bn_keeps_running_statistics(tddfa):
    torch, loaded = tddfa
    import copy

    from edgepose.train.trainer import freeze_batchnorm

    model = copy.deepcopy(loaded).train()
    freeze_batchnorm(model)
    before = model.backbone.features[0][1].running_mean.clone()
    model(torch.randn(4, 3, 120, 120) * 3).sum().backward()
    assert torch.equal(before, model.backbone.features[0][1].running_mean)
    assert model.backbone.features[0][1].weight.grad is not None  # scale and shift still learn


def test_a_sideways_roi_shift_with_flips_is_refused():
    from edgepose.errors import ConfigError
    from edgepose.train.recipe import recipe_from_yaml

    with pytest.raises(ConfigError, match="shifted the other way"):
        recipe_from_yaml("name: x\n", ["data.crop_protocol=roi", "data.crop_shift=[0.1, 0.14]"])
    recipe_from_yaml("name: x\n", ["data.crop_protocol=roi", "data.crop_shift=[0.1, 0.14]", "augment.flip=0"])


def test_incomplete_3ddfa_weights_are_a_clear_error(tmp_path):
    torch = pytest.importorskip("torch", reason="the training extra (torch) loads the PyTorch weights")
    import shutil

    from edgepose.errors import ConfigError
    from edgepose.train.checkpoint import load_weights
    from edgepose.train.models import create

    state = torch.load(need(PTH), map_location="cpu", weights_only=True)
    del state["state_dict"]["module.dw3_1.bn_dw.running_var"]
    torch.save(state, tmp_path / "cut.pth")
    shutil.copy(PTH.parent / "3ddfa-v2-param-mean-std-62d.json", tmp_path)
    with pytest.raises(ConfigError, match="dw3_1.bn_dw.running_var"):
        load_weights(create("mobilenetv1_x050", head="camera"), str(tmp_path / "cut.pth"), "train.init")
    (tmp_path / "3ddfa-v2-param-mean-std-62d.json").write_text("{not json")
    torch.save(torch.load(need(PTH), map_location="cpu", weights_only=True), tmp_path / "whole.pth")
    with pytest.raises(ConfigError, match="not a JSON object"):
        load_weights(create("mobilenetv1_x050", head="camera"), str(tmp_path / "whole.pth"), "train.init")
