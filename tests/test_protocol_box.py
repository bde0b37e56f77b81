"""augment.protocol_box: the visible-AFLW-21 box predicted from a 3D face model and a label pose, and the reframing."""
from __future__ import annotations

import numpy as np
import pytest

from edgepose.errors import ConfigError

from .conftest import SHARED, need


@pytest.fixture(scope="module")
def frames_of():
    from edgepose.train.face_model import load_face_model
    from edgepose.train.protocol_box import ProtocolFrames

    return ProtocolFrames(load_face_model(need(SHARED / "models" / "mesh" / "bfm_mean_3ddfa"))).frames


@pytest.mark.slow
def test_ears_widen_a_frontal_box_and_pull_a_profile_toward_the_back_of_the_head(frames_of):
    f = frames_of(np.array([[0, 0, 0], [80, 0, 0], [-80, 0, 0], [0, 25, 0]], float))
    assert abs(f[0, 0]) < 0.01 and abs(f[0, 1]) < 0.01 and 1.02 < f[0, 2] < 1.2  # centred, wider (two ears)
    assert f[1, 0] > 0.02  # yaw > 0 faces the image left: the visible ear is on the right
    assert f[2, 0] == pytest.approx(-f[1, 0], abs=0.01) and f[2, 2] == pytest.approx(f[1, 2], abs=0.01)
    assert abs(f[3, 0]) < 0.01  # pitch alone moves nothing sideways


def test_label_poses_turn_the_face_as_a_fit_of_that_pose_would():
    from edgepose.train.face_model import Fit
    from edgepose.train.protocol_box import camera_rotations

    angles = np.random.default_rng(0).uniform([-90, -60, -60], [90, 60, 60], (20, 3))
    back = [Fit(1.0, r, np.zeros(2), 0.0).angles() for r in camera_rotations(angles)]
    np.testing.assert_allclose(back, angles, atol=1e-6)


def test_a_model_without_ears_and_bad_settings_are_refused():
    from edgepose.train.face_model import load_face_model
    from edgepose.train.protocol_box import ProtocolFrames, training_frames

    mask = load_face_model(need(SHARED / "models" / "mesh" / "surrey_face_model_3448"))
    with pytest.raises(ConfigError, match="jaw-line|ears"):
        ProtocolFrames(mask)
    angles = np.zeros((2, 3))
    assert training_frames(0.0, "", angles) is None
    with pytest.raises(ConfigError, match="probability"):
        training_frames(1.5, "x", angles)
    with pytest.raises(ConfigError, match="protocol_box_model"):
        training_frames(0.5, "", angles)


def test_reframing_moves_and_scales_the_crop_and_keeps_the_labels():
    from edgepose.train.pool_data import augment_batch
    from edgepose.train.recipe import AugmentConfig

    x = np.arange(128, dtype=np.float64)
    image = np.repeat(np.stack(np.meshgrid(x, x), -1).mean(-1, keepdims=True), 3, -1)[None].astype(np.uint8)
    image[0, :, :, 1] = np.arange(128, dtype=np.uint8)[None, :]  # green = column
    mats = np.eye(3, dtype=np.float32)[None]
    still = {"flip": 0, "rotate_deg": 0, "scale_jitter": 0, "shift_jitter": 0, "lowres": 0}
    frames = np.array([[0.25, 0.0, 1.0]], np.float32)  # a quarter of the 80-px box to the right
    plain, m0 = augment_batch(image, mats, np.array([0]), 128, 1.6, AugmentConfig(**still), np.random.default_rng(0))
    moved, m1 = augment_batch(image, mats, np.array([0]), 128, 1.6, AugmentConfig(**still, protocol_box=1.0),
                              np.random.default_rng(0), frames=frames)
    off, _ = augment_batch(image, mats, np.array([0]), 128, 1.6, AugmentConfig(**still, protocol_box=0.0),
                           np.random.default_rng(0), frames=frames)
    np.testing.assert_array_equal(off, plain)
    np.testing.assert_array_equal(m0, m1)
    assert np.abs(moved[0, 64, 30:90, 1].astype(int) - plain[0, 64, 50:110, 1].astype(int)).max() <= 1  # 20 px
    wide, _ = augment_batch(image, mats, np.array([0]), 128, 1.6, AugmentConfig(**still, protocol_box=1.0),
                            np.random.default_rng(0), frames=np.array([[0.0, 0.0, 1.25]], np.float32))
    span = np.ptp(wide[0, 64, 20:108, 1].astype(int))
    assert span == pytest.approx(88 * 1.25, abs=2)  # 88 output px now cover 1.25x as many source columns
