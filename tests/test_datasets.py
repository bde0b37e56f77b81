"""Readers on the real shared files: AFLW2000 protocol and the training pool's label fusion."""
import numpy as np
import pytest

from edgepose.datasets.aflw2000 import read_aflw2000, read_mat_sample
from edgepose.datasets.faces_pool import fuse_labels, holdout_mask, read_pool_index
from edgepose.errors import ConfigError


def test_aflw2000_dev_protocol(dev_samples):
    assert len(dev_samples) == 300
    angles = np.array([[s.yaw, s.pitch, s.roll] for s in dev_samples])
    assert np.abs(angles).max() <= 99.0
    abs_yaw = np.abs(angles[:, 0])
    assert [(abs_yaw < 30).sum(), ((abs_yaw >= 30) & (abs_yaw < 60)).sum(), (abs_yaw >= 60).sum()] == [200, 58, 42]
    for s in dev_samples:
        x1, y1, x2, y2 = s.box
        assert 0 <= x1 < x2 <= 450 and 0 <= y1 < y2 <= 450


def test_box_ignores_invisible_points(dev_root):
    from scipy.io import loadmat

    for mat in sorted(dev_root.glob("*.mat")):
        pts = loadmat(str(mat))["pt2d"]
        if (pts < 0).any():
            sample = read_mat_sample(mat)
            vis = pts[:, (pts >= 0).all(0)]
            assert sample.box == pytest.approx((vis[0].min(), vis[1].min(), vis[0].max(), vis[1].max()))
            return
    pytest.skip("no dev sample has invisible points")


def test_box68_is_the_box_of_the_68_3d_points_and_is_wider(dev_root, dev_samples, runtime):
    from scipy.io import loadmat

    from edgepose.evaluation.evaluate import evaluate

    mat = sorted(dev_root.glob("*.mat"))[0]
    p68 = loadmat(str(mat))["pt3d_68"]
    assert read_mat_sample(mat).box68 == pytest.approx((p68[0].min(), p68[1].min(), p68[0].max(), p68[1].max()))
    np.testing.assert_allclose(read_mat_sample(mat).points68, p68[:2].T)  # the points the box is made of
    wider = [(s.box68[2] - s.box68[0]) / (s.box[2] - s.box[0]) for s in dev_samples]
    assert np.median(wider) > 1.05  # the 68 points include the jaw line; the visible pt2d points do not
    a, pa, _ = evaluate(runtime, "aflw2000", str(dev_root), limit=20, progress=False, protocol="label")
    b, pb, _ = evaluate(runtime, "aflw2000", str(dev_root), limit=20, progress=False, protocol="label68")
    assert a["n"] == b["n"] == 20 and not np.allclose(pa, pb)


def test_yaw_sign_matches_nose_offset(dev_samples):
    """yaw > 0 means the face turns to the image left: the nose tip sits left of the jaw centre."""
    from scipy.io import loadmat

    yaws, offsets = [], []
    for s in dev_samples[:80]:
        p = loadmat(str(s.image.with_suffix(".mat")))["pt3d_68"]
        offsets.append(p[0, 30] - p[0, :17].mean())
        yaws.append(s.yaw)
    assert np.corrcoef(yaws, offsets)[0, 1] < -0.9


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="--root"):
        read_aflw2000(tmp_path)


def test_pool_fusion(pool_root):
    table = read_pool_index(pool_root)
    assert len(table) == 37814
    labels, keep = fuse_labels(table)
    assert labels.shape == (37814, 3) and np.isfinite(labels).all()
    assert np.abs(labels).max() <= 99.0
    assert 0.97 < keep.mean() < 1.0
    # coarse_yaw vetoes wrong signs: no kept profile row has a yaw of the wrong sign
    coarse = np.nan_to_num(table.coarse_yaw)
    prof = keep & (np.abs(coarse) == 2) & (np.abs(labels[:, 0]) > 5)
    assert (np.sign(labels[prof, 0]) == np.sign(coarse[prof])).all()
    # near-frontal, well-fitted rows blend in Face Mesh: the label sits between mp and the teachers
    row = np.flatnonzero(np.isfinite(table.mp[:, 0]) & (table.mp_fit < 0.4) & (np.abs(table.fsa[:, 0]) < 10))[0]
    teachers = (table.fsa[row] + table.whenet[row]) / 2
    np.testing.assert_allclose(labels[row], (teachers + table.mp[row]) / 2, atol=1e-4)


def test_holdout_is_identity_disjoint(pool_root):
    table = read_pool_index(pool_root)
    held = holdout_mask(table, 0.05)
    named = table.identity != ""
    assert not set(table.identity[held & named]) & set(table.identity[~held & named])
    assert 0.02 < held.mean() < 0.08
