"""Property tests of the angle conventions (random angles, exact matrix comparisons)."""
import numpy as np
import pytest

from edgepose import angles as A

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


def test_flip_negates_yaw_and_roll_and_is_an_involution():
    m = A.euler_to_matrix(YAW, PITCH, ROLL)
    flipped = A.flip_matrix(m)
    np.testing.assert_allclose(A.matrix_to_euler(flipped), np.stack([-YAW, PITCH, -ROLL], 1), atol=1e-9)
    np.testing.assert_allclose(A.flip_matrix(flipped), m, atol=1e-12)
    y, p, r = A.flip_euler(YAW, PITCH, ROLL)
    np.testing.assert_allclose(A.euler_to_matrix(y, p, r), flipped, atol=1e-12)


def test_in_plane_rotation_shifts_roll_and_undoes():
    m = A.euler_to_matrix(YAW, PITCH, ROLL)
    d = rng.uniform(-30, 30, 500)
    rotated = A.rotate_in_plane(m, d)
    e = A.matrix_to_euler(rotated)
    np.testing.assert_allclose(e[:, :2], np.stack([YAW, PITCH], 1), atol=1e-9)
    np.testing.assert_allclose(A.wrap_degrees(e[:, 2] - ROLL - d), 0, atol=1e-9)
    np.testing.assert_allclose(A.rotate_in_plane(rotated, -d), m, atol=1e-12)


def test_geodesic_of_known_rotation():
    a = A.euler_to_matrix(10.0, 0, 0)
    b = A.euler_to_matrix(35.0, 0, 0)
    assert A.geodesic_degrees(a, b) == pytest.approx(25.0)
