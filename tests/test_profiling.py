"""Face profiling: 3D model loading and fitting, exact labels of rotated views, the profiled set in training."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scipy")

from edgepose.angles import euler_to_matrix, geodesic_degrees  # noqa: E402
from edgepose.train.face_model import FaceModel, fit_pose, load_face_model  # noqa: E402
from edgepose.train.profiling import camera_rotation, profile_view, rotated_label  # noqa: E402

from .conftest import SHARED, need  # noqa: E402

MESH = SHARED / "models" / "mesh"


@pytest.fixture(scope="module")
def bfm() -> FaceModel:
    return load_face_model(need(MESH / "bfm_mean_3ddfa"))


def _pose_of(fit) -> np.ndarray:
    return fit.angles()


@pytest.mark.parametrize("folder", ["bfm_mean_3ddfa", "surrey_face_model_3448"])
def test_face_models_load_into_the_canonical_frame(folder):
    m = load_face_model(need(MESH / folder))
    np.testing.assert_allclose(m.landmarks[36], [-0.5, 0, 0], atol=0.01)
    np.testing.assert_allclose(m.landmarks[45], [0.5, 0, 0], atol=0.01)
    assert m.landmarks[30, 2] == np.nanmin(m.landmarks[:, 2])  # the nose tip is the nearest landmark
    assert m.landmarks[57, 1] > m.landmarks[33, 1] > m.landmarks[30, 1] > 0  # y runs down the face


def test_unsupported_face_model_folder_is_a_clear_error(tmp_path):
    from edgepose.errors import ConfigError

    with pytest.raises(ConfigError, match="not a supported 3D face model"):
        load_face_model(tmp_path)


def test_fit_recovers_a_known_pose(bfm):
    rot = euler_to_matrix(35.0, -12.0, 8.0)
    pts = 90.0 * bfm.landmarks @ rot.T
    fit = fit_pose(bfm, pts[:, :2] + [64, 60])
    assert abs(fit.scale - 90.0) < 0.01 and fit.rms < 1e-3
    assert geodesic_degrees(fit.rotation, rot) < 0.01


@pytest.mark.slow
def test_rotated_label_matches_the_rendered_geometry(bfm):
    """The label change claimed for a view equals the pose change of the 3D fit to the view's own landmarks."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (128, 128, 3), np.uint8)
    src = 48.0 * bfm.landmarks @ euler_to_matrix(10.0, 5.0, -4.0).T
    pts = src[:, :2] + [64, 56]
    before = _pose_of(fit_pose(bfm, pts))
    for d_yaw, d_pitch in [(40.0, 0.0), (-55.0, 8.0), (20.0, -10.0)]:
        view = profile_view(img, pts, bfm, d_yaw, d_pitch)
        after = _pose_of(fit_pose(bfm, view.landmarks))
        expect = rotated_label(before, d_yaw, d_pitch)
        assert geodesic_degrees(euler_to_matrix(*after), euler_to_matrix(*expect)) < 0.5, (d_yaw, d_pitch)


def test_camera_rotation_turns_the_nose_toward_the_image_left_for_positive_yaw():
    nose = np.array([0.0, 0.0, -1.0])  # toward the camera
    assert (camera_rotation(30.0) @ nose)[0] < 0  # image left
    assert (camera_rotation(0.0, 20.0) @ nose)[1] < 0  # up (image y runs down)


def test_zero_turn_reproduces_the_source(bfm, pool_root):
    import cv2

    from edgepose.datasets.faces_pool import read_pool_index

    table = read_pool_index(pool_root)
    row = next(i for i, p in enumerate(table.landmarks) if p is not None and len(p) == 68)
    img = cv2.imread(str(pool_root / table.paths[row]))
    view = profile_view(img, table.landmarks[row], bfm, 0.0)
    assert view.image.shape == (128, 128, 3)
    pts = table.landmarks[row]
    side = np.ptp(pts, 0).max() * 1.6
    assert abs(view.box[2] - view.box[0] - np.ptp(pts[:, 0]) * 128 / side) < 1.0
    turned = profile_view(img, pts, bfm, 50.0)
    assert np.abs(turned.image.astype(int) - view.image.astype(int)).mean() > 10  # the turn changes the picture
    # the untouched view is the source re-cropped: compare it to the source warped by the same crop
    x1, y1 = pts.min(0)
    x2, y2 = pts.max(0)
    x0, y0 = round((x1 + x2) / 2 - side / 2), round((y1 + y2) / 2 - side / 2)
    m = np.array([[128 / side, 0, -x0 * 128 / side], [0, 128 / side, -y0 * 128 / side]])
    ref = cv2.warpAffine(img, m, (128, 128), borderMode=cv2.BORDER_REPLICATE)
    assert np.abs(ref.astype(int) - view.image.astype(int))[20:108, 20:108].mean() < 6


@pytest.fixture(scope="module")
def profiled_set(tmp_path_factory, pool_root):
    from edgepose.train.profile_pool import ProfileSettings, generate

    out = tmp_path_factory.mktemp("profiled")
    return generate(pool_root, need(MESH / "bfm_mean_3ddfa"), out, ProfileSettings(views=2), limit=12)


@pytest.mark.slow
def test_profiled_set_has_large_yaw_exact_labels_and_resumes(profiled_set, pool_root, tmp_path):
    from edgepose.errors import ConfigError
    from edgepose.train.profile_pool import ProfileSettings, generate, load_profiled

    with pytest.raises(ConfigError, match="no finished profiled set.*edgepose profile"):
        load_profiled(tmp_path / "missing")

    d = load_profiled(profiled_set)
    n = len(d["images"])
    assert n >= 12 and d["images"].shape[1:] == (128, 128, 3)
    assert (np.abs(d["angles"][:, 0]) >= 34.0).all() and (np.abs(d["angles"][:, 0]) <= 89.0).all()
    shard = next(profiled_set.glob("profiled_*.npz"))
    stamp = shard.stat().st_mtime_ns
    generate(pool_root, MESH / "bfm_mean_3ddfa", profiled_set, ProfileSettings(views=2), limit=12)
    assert shard.stat().st_mtime_ns == stamp  # finished shards are kept, not redone
    with pytest.raises(ConfigError, match="other inputs or settings .*yaw_max"):  # not a mix of two settings
        generate(pool_root, MESH / "bfm_mean_3ddfa", profiled_set, ProfileSettings(views=2, yaw_max=70), limit=12)


@pytest.mark.slow
def test_pool_data_appends_profiled_views_with_source_holdout(profiled_set, pool_root):
    from edgepose.train.pool_data import PoolData
    from edgepose.train.recipe import DataConfig

    plain = PoolData(DataConfig(root=str(pool_root), limit=300))
    data = PoolData(DataConfig(root=str(pool_root), limit=300, profiled=str(profiled_set)), landmarks=5)
    extra = data.profiled
    assert extra > 0 and len(data.images) == len(plain.images) + extra
    assert data.landmarks.shape == (len(data.images), 5, 2)
    np.testing.assert_allclose(euler_to_matrix(*data.angles[-extra:].T), data.matrices[-extra:], atol=1e-5)


def test_profile_command_rejects_a_bad_face_model(tmp_path):
    from edgepose.cli import main

    assert main(["profile", "--face-model", str(tmp_path), "--pool", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()  # inputs are checked before the folder is made


@pytest.mark.parametrize("flags", [["--yaw-min", "60", "--yaw-max", "40"], ["--yaw-max", "nan"], ["--yaw-max", "120"]])
def test_profile_command_rejects_a_bad_yaw_range_before_any_work(tmp_path, flags, capsys):
    from edgepose.cli import main

    assert main(["profile", "--face-model", str(tmp_path), "--pool", str(tmp_path), "--out", str(tmp_path / "o"),
                 *flags]) == 2
    assert "--yaw-min" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_augmentation_labels_follow_the_3d_fit_of_the_warped_landmarks(bfm, pool_root):
    """Rotate/scale/shift/flip augmentation: the pose fitted to the warped 68 points equals the warped label."""
    from edgepose.datasets.faces_pool import read_pool_index
    from edgepose.train.pool_data import augment_batch
    from edgepose.train.recipe import AugmentConfig

    table = read_pool_index(pool_root)
    rows = [i for i, p in enumerate(table.landmarks) if p is not None and len(p) == 68][:40]
    pts = np.array([table.landmarks[i] for i in rows])
    poses = np.array([euler_to_matrix(*_pose_of(fit_pose(bfm, p))) for p in pts])
    images = np.zeros((len(rows), 128, 128, 3), np.uint8)
    for flip, tol in ((0.0, 0.05), (1.0, 3.0)):  # a mirrored mean face is not exactly the mean face
        aug = AugmentConfig(flip=flip, rotate_deg=30, scale_jitter=0.1, shift_jitter=0.05, lowres=0, color_jitter=0)
        _, mats, warped = augment_batch(images, poses.astype(np.float32), np.arange(len(rows)), 112, 1.6, aug,
                                        np.random.default_rng(1), pts)
        refit = np.array([euler_to_matrix(*_pose_of(fit_pose(bfm, w * 112))) for w in warped])
        assert geodesic_degrees(mats.astype(np.float64), refit).mean() < tol, flip
