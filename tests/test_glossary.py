"""The conventions module: quaternion order, rotations, and the axis edges."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from mocap import glossary as G


def test_quaternion_order_is_wxyz_and_matches_scipy():
    rng = np.random.default_rng(0)
    R = Rotation.random(50, random_state=rng)
    Q = G.scipy2Q(R.as_quat())
    np.testing.assert_allclose(G.Q2R(Q), R.as_matrix(), atol=1e-12)
    # a 90 deg turn about +Y takes +Z (facing) to +X
    Qy = G.A2Q(np.array([0, np.pi / 2, 0]))
    np.testing.assert_allclose(Qy, [np.cos(np.pi / 4), 0, np.sin(np.pi / 4), 0], atol=1e-12)
    np.testing.assert_allclose(G.Q_apply(Qy, G.FORWARD), [1, 0, 0], atol=1e-12)


def test_round_trips_and_products():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(100, 3))
    A *= (np.pi * 0.99 / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-9)) * rng.random((100, 1))
    Q = G.A2Q(A)
    np.testing.assert_allclose(G.Q2A(Q), A, atol=1e-9)
    np.testing.assert_allclose(G.R2Q(G.Q2R(Q)) * np.sign(Q[:, :1]), Q, atol=1e-9)
    Q2 = G.A2Q(rng.normal(size=(100, 3)))
    np.testing.assert_allclose(G.Q2R(G.Q_mul(Q, Q2)), G.Q2R(Q) @ G.Q2R(Q2), atol=1e-12)
    np.testing.assert_allclose(G.Q_mul(Q, G.Q_inv(Q)), np.tile(G.Q_IDENTITY, (100, 1)), atol=1e-12)
    with pytest.raises(ValueError):
        G.Q_normalize(np.zeros(4))


def test_mediapipe_world_to_camera_is_a_proper_rotation_to_y_up():
    # MediaPipe: a point above the hips has negative y; a point nearer the camera negative z
    p = G.mp_world_to_camera(np.array([[0.1, -0.5, -0.2]]))
    np.testing.assert_allclose(p, [[0.1, 0.5, 0.2]])
    M = np.diag([1.0, -1.0, -1.0])
    assert np.isclose(np.linalg.det(M), 1.0)  # right-handedness kept


def test_blender_axes_round_trip():
    p = np.array([[0.3, 1.7, 0.25]])  # 1.7 m up, 25 cm in front
    b = G.yup_to_blender(p)
    np.testing.assert_allclose(b, [[0.3, -0.25, 1.7]])  # Blender: Z up, front is -Y
    np.testing.assert_allclose(G.blender_to_yup(b), p)


def test_norm_to_px():
    px = G.mp_norm_to_px(np.array([0.5, 0.25, -0.1]), 640, 480)
    np.testing.assert_allclose(px, [320, 120, -64])
