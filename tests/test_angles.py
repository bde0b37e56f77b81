"""Property tests of the angle conventions (random angles, exact matrix comparisons)."""
import numpy as np
import pytest

from edgepose import angles as A
from edgepose.decode import decode_outputs

rng = np.random.default_rng(0)
YAW = rng.uniform(-89, 89, 500)
PITCH = rng.uniform(-89, 89, 500)
ROLL = rng.uniform(-179, 179, 500)


def test_euler_matrix_round_trip():
    m = A.euler_to_matrix(YAW, PITCH, ROLL)
    np.testing.assert_allclose(A.matrix_to_euler(m), np.stack([YAW, PITCH, ROLL], 1), atol=1e-9)


def test_matrices_are_rotations():
    m = A.euler_to_matrix(YAW, PITCH, ROLL)
    np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-12)


def test_convention_is_rz_ry_rx():
    m = A.euler_to_matrix(30.0, 0.0, 0.0)
    # pure yaw is a rotation about y: R[2, 0] = -sin(yaw)
    assert m[2, 0] == pytest.approx(-np.sin(np.deg2rad(30)))
    composed = A.euler_to_matrix(0, 0, 20.0) @ A.euler_to_matrix(40.0, 0, 0) @ A.euler_to_matrix(0, -15.0, 0)
    np.testing.assert_allclose(composed, A.euler_to_matrix(40.0, -15.0, 20.0), atol=1e-12)


def test_rot6d_round_trip_and_gram_schmidt():
    m = A.euler_to_matrix(YAW, PITCH, ROLL)
    six = A.matrix_to_rot6d(m)
    np.testing.assert_allclose(A.rot6d_to_matrix(six), m, atol=1e-12)
    noisy = six * rng.uniform(0.5, 2.0, (len(six), 1)) + rng.normal(0, 1e-3, six.shape)
    back = A.rot6d_to_matrix(noisy)
    np.testing.assert_allclose(np.linalg.det(back), 1.0, atol=1e-9)
    assert A.geodesic_degrees(back, m).max() < 0.5


def test_scalar_rot6d_decoding_equals_the_array_one():
    """The one-face Python path (angles.rot6d_to_pose, used by the rot6d decoding for small batches) gives the array
    path's angles and matrices, for raw network outputs (unnormalised, any sign) and a degenerate zero vector."""
    six = np.concatenate([rng.normal(0, 3, (200, 6)), np.zeros((1, 6))]).astype(np.float32)
    want_m = A.rot6d_to_matrix(six)
    want_a = A.matrix_to_euler(want_m)
    got = [A.rot6d_to_pose(row) for row in six.tolist()]
    np.testing.assert_allclose([g[0] for g in got], want_a, atol=1e-9)
    np.testing.assert_allclose([g[1] for g in got], want_m, atol=1e-12)
    for n in (1, 4, 5, 9):  # either side of decode.SCALAR_BATCH: the same result
        angles, matrices = decode_outputs({"pose": six[:n]}, {"type": "rot6d", "name": "pose"})
        assert angles.shape == (n, 3) and matrices.shape == (n, 3, 3)
        np.testing.assert_allclose(angles, want_a[:n], atol=1e-9)
    angles, matrices = decode_outputs({"pose": six[:0]}, {"type": "rot6d", "name": "pose"})
    assert angles.shape == (0, 3) and matrices.shape == (0, 3, 3)


def test_flip_negates_yaw_and_roll_and_is_an_involution():
    m = A.euler_to_matrix(YAW, PITCH, ROLL)
    flipped = A.flip_matrix(m)
    np.testing.assert_allclose(A.matrix_to_euler(flipped), np.stack([-YAW, PITCH, -ROLL], 1), atol=1e-9)
    np.testing.assert_allclose(A.flip_matrix(flipped), m, atol=1e-12)
    y, p, r = A.flip_euler(YAW, PITCH, ROLL)
    np.testing.assert_allclose(A.euler_to_matrix(y, p, r), flipped, atol=1e-12)


def test_in_plane_rotation_of_a_frontal_face_shifts_roll_and_undoes():
    d = rng.uniform(-30, 30, 500)
    frontal = A.euler_to_matrix(np.zeros(500), np.zeros(500), ROLL)
    e = A.matrix_to_euler(A.rotate_in_plane(frontal, d))
    np.testing.assert_allclose(e[:, :2], 0, atol=1e-9)
    np.testing.assert_allclose(A.wrap_degrees(e[:, 2] - ROLL - d), 0, atol=1e-9)
    m = A.euler_to_matrix(YAW, PITCH, ROLL)
    np.testing.assert_allclose(A.rotate_in_plane(A.rotate_in_plane(m, d), -d), m, atol=1e-12)


def _aflw_fits(dev_root, turn_deg: float = 0.0, count: int = 120):
    """(label matrix, pose of a 3D face fitted to pt3d_68 turned in the image plane by turn_deg) per dev image."""
    import scipy.io as sio

    from edgepose.keypoint_pose import GL_FROM_CV, angles_from_camera_rotation, similarity_fit
    from edgepose.train.face_model import load_face_model

    from .conftest import SHARED, need

    model = load_face_model(need(SHARED / "models" / "mesh" / "bfm_mean_3ddfa")).landmarks.astype(np.float64)
    a = np.deg2rad(turn_deg)
    clockwise = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])  # image y runs down
    labels, fitted = [], []
    for mat in sorted(dev_root.glob("*.mat"))[:count]:
        d = sio.loadmat(mat)
        pitch, yaw, roll = np.rad2deg(d["Pose_Para"][0, :3])
        pts = d["pt3d_68"][:3].T * [1, 1, -1]  # x right, y down, depth into the scene
        _, rot, _ = similarity_fit(model, pts @ clockwise.T)
        labels.append(A.euler_to_matrix(yaw, pitch, roll))
        fitted.append(A.euler_to_matrix(*angles_from_camera_rotation(rot @ GL_FROM_CV)))
    return np.array(labels), np.array(fitted)


def test_label_convention_matches_aflw2000_3d_landmarks(dev_root):
    """AFLW2000's Pose_Para is the pose of its own pt3d_68 points: a 3D face fitted to them must give it back."""
    labels, fitted = _aflw_fits(dev_root)
    assert A.geodesic_degrees(labels, fitted).mean() < 3.0


def test_in_plane_rotation_matches_rotated_3d_landmarks(dev_root):
    """Turning the image turns the landmarks; the pose fitted to them is rotate_in_plane of the unturned pose."""
    _, before = _aflw_fits(dev_root, 0.0, 60)
    _, after = _aflw_fits(dev_root, 20.0, 60)
    assert A.geodesic_degrees(A.rotate_in_plane(before, 20.0), after).max() < 1e-3
    assert A.geodesic_degrees(A.euler_to_matrix(*np.moveaxis(A.matrix_to_euler(before) + [0, 0, 20.0], -1, 0)),
                              after).mean() > 3.0  # adding d to roll alone is wrong for non-frontal faces


def test_geodesic_of_known_rotation():
    a = A.euler_to_matrix(10.0, 0, 0)
    b = A.euler_to_matrix(35.0, 0, 0)
    assert A.geodesic_degrees(a, b) == pytest.approx(25.0)


def test_mean_rotation_is_the_midpoint_and_a_rotation():
    from edgepose.angles import euler_to_matrix, geodesic_degrees, mean_rotation

    r = euler_to_matrix(np.array([30.0, -70.0]), np.array([10.0, 5.0]), np.array([-5.0, 20.0]))
    a, b = r @ euler_to_matrix(0, 0, 12.0), r @ euler_to_matrix(0, 0, -12.0)
    m = mean_rotation(a, b)
    assert np.allclose(m, r, atol=1e-9)
    assert np.allclose(mean_rotation(r, r), r, atol=1e-12)
    assert np.allclose(np.linalg.det(m), 1.0) and np.allclose(geodesic_degrees(m, a), 12.0)


def test_affine_camera_decoding_recovers_the_rotation_from_a_scaled_noisy_camera():
    """3DMM-parameter models give P = [s R_cam | t]; decoding reads R from its rows, orthonormalises, transposes."""
    from edgepose.decode import decode_outputs

    rng = np.random.default_rng(3)
    angles = np.column_stack([rng.uniform(-80, 80, 50), rng.uniform(-60, 60, 50), rng.uniform(-60, 60, 50)])
    r_cam = np.transpose(A.euler_to_matrix(angles[:, 0], angles[:, 1], angles[:, 2]), (0, 2, 1))
    scale = rng.uniform(1e-4, 2e-3, (50, 1, 1))
    camera = np.concatenate([scale * r_cam, rng.normal(0, 50, (50, 3, 1))], 2)
    camera[:, :2, :3] += scale * rng.normal(0, 2e-3, (50, 2, 3))  # a fit's rows are only nearly orthogonal
    params = np.concatenate([camera.reshape(50, 12), rng.normal(0, 1, (50, 50))], 1).astype(np.float32)
    decoded, matrices = decode_outputs({"params": params}, {"type": "affine_camera", "name": "params"})
    assert np.allclose(np.linalg.det(matrices), 1.0) and np.allclose(matrices @ np.transpose(matrices, (0, 2, 1)),
                                                                     np.eye(3), atol=1e-9)
    truth = A.euler_to_matrix(angles[:, 0], angles[:, 1], angles[:, 2])
    assert A.geodesic_degrees(matrices, truth).max() < 0.5  # rows perturbed by ~0.2 %: a fraction of a degree
    assert np.abs(decoded - angles)[np.abs(angles[:, 0]) < 60].max() < 0.5


def test_affine_camera_decoding_names_a_too_short_output():
    from edgepose.decode import decode_outputs
    from edgepose.errors import ModelFormatError

    with pytest.raises(ModelFormatError, match="at least 12 values"):
        decode_outputs({"params": np.zeros((2, 6), np.float32)}, {"type": "affine_camera", "name": "params"})
