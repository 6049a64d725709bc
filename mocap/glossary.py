"""The house conventions, written once. Every module follows them.

Units and axes
--------------
* Lengths in **metres**, times in **seconds**, angles in **radians** inside the code
  (degrees only in user-facing reports and options, and the name says so: ``*_deg``).
* World frame: **right-handed, +Y up, the character faces +Z** (glTF). A performer
  facing the camera therefore has their *left* on the image's *right* (+X).
* Camera frame (the frame of a take's metric landmarks): the glTF camera frame,
  +X image right, +Y image up, +Z from the scene *towards* the camera; the camera looks
  down -Z.
* Image frame (pixel landmarks): origin at the top-left pixel corner of the **upright**
  frame (rotation metadata already applied), +x right, +y down, in pixels. MediaPipe's
  normalised image coordinates and its z-into-the-screen axes exist only inside
  :mod:`mocap.tracking`, where :func:`mp_norm_to_px` and :func:`mp_world_to_camera` convert
  them at the edge.
* Blender is Z-up, facing -Y: :func:`yup_to_blender` / :func:`blender_to_yup` are the only
  conversions, used only at the Blender edge (``blender_addon/``).

Names (fairmotion-style, each function takes one item or a batch ``(..., k)``)
-----------------------------------------------------------------------------
==========  ===================================================================
``p``       position, ``(..., 3)`` metres
``Q``       unit quaternion, ``(..., 4)`` **wxyz** (Blender's order, real part first)
``R``       rotation matrix, ``(..., 3, 3)``, acting on column vectors
``A``       axis-angle (rotation vector), ``(..., 3)``, angle = norm in radians
``E``       Euler angles, ``(..., k)`` radians, with an ``order`` string such as
            ``"ZXY"``: **intrinsic**, as listed, ``R = Rz(e0) @ Rx(e1) @ Ry(e2)``
            (BVH's channel order; scipy's upper-case sequences)
``T``       rigid transform, ``(..., 4, 4)``
==========  ===================================================================

So ``Q2R`` turns quaternions into matrices, ``R2Q`` back. scipy uses xyzw unless asked:
convert only at that boundary with ``scalar_first=True`` (see :func:`Q2scipy`).

Shapes are always stated in docstrings, e.g. ``(T, J, 4) wxyz`` for a motion's local
rotations: T frames, J joints.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "UP",
    "FORWARD",
    "Q_IDENTITY",
    "Q2R",
    "R2Q",
    "A2Q",
    "Q2A",
    "E2Q",
    "Q2E",
    "Q_mul",
    "Q_inv",
    "Q_normalize",
    "Q_apply",
    "Q2scipy",
    "scipy2Q",
    "mp_norm_to_px",
    "mp_world_to_camera",
    "yup_to_blender",
    "blender_to_yup",
]

UP = np.array([0.0, 1.0, 0.0])
"""World up, +Y."""
FORWARD = np.array([0.0, 0.0, 1.0])
"""The direction a character faces in its rest pose, +Z (glTF)."""
Q_IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])
"""The identity rotation, wxyz."""


def Q_normalize(Q: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(..., 4)`` wxyz; zero-length input raises ``ValueError``."""
    Q = np.asarray(Q, dtype=float)
    n = np.linalg.norm(Q, axis=-1, keepdims=True)
    if np.any(n < 1e-12):
        raise ValueError("cannot normalise a zero-length quaternion")
    return Q / n


def Q_mul(Q1: np.ndarray, Q2: np.ndarray) -> np.ndarray:
    """Hamilton product ``Q1 * Q2`` (apply Q2 first, then Q1); ``(..., 4)`` wxyz, broadcast."""
    Q1 = np.asarray(Q1, dtype=float)
    Q2 = np.asarray(Q2, dtype=float)
    w1, x1, y1, z1 = np.moveaxis(Q1, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(Q2, -1, 0)
    return np.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        axis=-1,
    )


def Q_inv(Q: np.ndarray) -> np.ndarray:
    """Inverse of unit quaternions (the conjugate), ``(..., 4)`` wxyz."""
    Q = np.asarray(Q, dtype=float)
    return Q * np.array([1.0, -1.0, -1.0, -1.0])


def Q2R(Q: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` from unit quaternions ``(..., 4)`` wxyz."""
    Q = Q_normalize(Q)
    w, x, y, z = np.moveaxis(Q, -1, 0)
    R = np.empty(Q.shape[:-1] + (3, 3))
    R[..., 0, 0] = 1 - 2 * (y * y + z * z)
    R[..., 0, 1] = 2 * (x * y - w * z)
    R[..., 0, 2] = 2 * (x * z + w * y)
    R[..., 1, 0] = 2 * (x * y + w * z)
    R[..., 1, 1] = 1 - 2 * (x * x + z * z)
    R[..., 1, 2] = 2 * (y * z - w * x)
    R[..., 2, 0] = 2 * (x * z - w * y)
    R[..., 2, 1] = 2 * (y * z + w * x)
    R[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return R


def R2Q(R: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(..., 4)`` wxyz with w >= 0 from rotation matrices ``(..., 3, 3)``."""
    from scipy.spatial.transform import Rotation

    R = np.asarray(R, dtype=float)
    flat = R.reshape(-1, 3, 3)
    Q = scipy2Q(Rotation.from_matrix(flat).as_quat())
    Q = np.where(Q[:, :1] < 0, -Q, Q)
    return Q.reshape(R.shape[:-2] + (4,))


def A2Q(A: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(..., 4)`` wxyz from rotation vectors ``(..., 3)`` (radians)."""
    A = np.asarray(A, dtype=float)
    angle = np.linalg.norm(A, axis=-1, keepdims=True)
    half = 0.5 * angle
    # sin(half)/angle, with its limit 0.5 at angle -> 0
    k = np.where(angle > 1e-12, np.sin(half) / np.maximum(angle, 1e-12), 0.5)
    return np.concatenate([np.cos(half), A * k], axis=-1)


def Q2A(Q: np.ndarray) -> np.ndarray:
    """Rotation vectors ``(..., 3)`` (radians, angle in [0, pi]) from quaternions ``(..., 4)`` wxyz."""
    Q = Q_normalize(Q)
    Q = np.where(Q[..., :1] < 0, -Q, Q)
    v = Q[..., 1:]
    s = np.linalg.norm(v, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, Q[..., :1])
    k = np.where(s > 1e-12, angle / np.maximum(s, 1e-12), 2.0)
    return v * k


_AXIS_INDEX = {"X": 1, "Y": 2, "Z": 3}


def _check_order(order: str, *, lengths: tuple[int, ...]) -> str:
    up = order.upper() if isinstance(order, str) else ""
    if not up or len(up) not in lengths or any(c not in _AXIS_INDEX for c in up):
        want = " or ".join(str(n) for n in lengths)
        raise ValueError(f"Euler order must be {want} letters from X, Y, Z (e.g. 'ZXY'), got {order!r}")
    return up


def E2Q(E: np.ndarray, order: str) -> np.ndarray:
    """Unit quaternions ``(..., 4)`` wxyz from Euler angles ``(..., k)`` in radians.

    ``order`` names the axis of each angle, 1 to 3 letters (case ignored), and is read
    **intrinsically as listed**: ``E2Q([a, b, c], "ZXY")`` is ``Rz(a) @ Rx(b) @ Ry(c)``
    acting on column vectors. That is the meaning of a BVH line
    ``CHANNELS 3 Zrotation Xrotation Yrotation`` and of scipy's ``from_euler("ZXY", ...)``.
    Vectorised: one pass of :func:`Q_mul` per letter, whatever the batch size.
    """
    up = _check_order(order, lengths=(1, 2, 3))
    E = np.asarray(E, dtype=float)
    if E.shape[-1:] != (len(up),):
        raise ValueError(f"Euler order {order!r} needs (..., {len(up)}) angles, got shape {E.shape}")
    Q = None
    for k, axis in enumerate(up):
        half = 0.5 * E[..., k]
        q = np.zeros(E.shape[:-1] + (4,))
        q[..., 0] = np.cos(half)
        q[..., _AXIS_INDEX[axis]] = np.sin(half)
        Q = q if Q is None else Q_mul(Q, q)
    return Q


def Q2E(Q: np.ndarray, order: str) -> np.ndarray:
    """Euler angles ``(..., 3)`` in radians from quaternions ``(..., 4)`` wxyz; inverse of
    :func:`E2Q` for a 3-letter ``order`` (intrinsic, as listed, e.g. ``"ZXY"``).

    The first and last angles are in [-pi, pi]; the middle one in [-pi/2, pi/2] (distinct
    axes) or [0, pi] (repeated axis, e.g. ``"ZXZ"``). At gimbal lock the split between the
    first and last angle is arbitrary (scipy sets the last to zero) but the rotation is exact.
    """
    import warnings

    up = _check_order(order, lengths=(3,))
    Q = np.asarray(Q, dtype=float)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Gimbal lock detected")
        E = Q2scipy(Q).as_euler(up)
    return E.reshape(Q.shape[:-1] + (3,))


def Q_apply(Q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors ``(..., 3)`` by quaternions ``(..., 4)`` wxyz (broadcast)."""
    return np.einsum("...ij,...j->...i", Q2R(Q), np.asarray(v, dtype=float))


def Q2scipy(Q: np.ndarray):
    """A ``scipy.spatial.transform.Rotation`` from wxyz quaternions ``(..., 4)``."""
    from scipy.spatial.transform import Rotation

    Q = np.asarray(Q, dtype=float)
    return Rotation.from_quat(Q[..., [1, 2, 3, 0]].reshape(-1, 4))


def scipy2Q(xyzw: np.ndarray) -> np.ndarray:
    """wxyz quaternions ``(..., 4)`` from scipy's scalar-last ``as_quat()`` output."""
    xyzw = np.asarray(xyzw, dtype=float)
    return xyzw[..., [3, 0, 1, 2]]


def mp_norm_to_px(xyz: np.ndarray, width: int, height: int) -> np.ndarray:
    """MediaPipe normalised image landmarks -> pixels of the upright frame.

    ``xyz`` is ``(..., 3)``: x and y in [0, 1] of the image width/height, z MediaPipe's
    relative depth on the scale of x (smaller = nearer the camera). Returns ``(..., 3)``:
    x, y in pixels (+x right, +y down) and z in pixels on the same scale as x.
    """
    xyz = np.asarray(xyz, dtype=float)
    out = np.empty_like(xyz)
    out[..., 0] = xyz[..., 0] * width
    out[..., 1] = xyz[..., 1] * height
    out[..., 2] = xyz[..., 2] * width
    return out


def mp_world_to_camera(xyz: np.ndarray) -> np.ndarray:
    """MediaPipe metric world landmarks -> our camera frame, ``(..., 3)`` metres.

    MediaPipe: +x image right, +y image *down*, +z *away* from the camera, origin
    between the hips. Ours (glTF camera frame): +x right, +y up, +z towards the camera.
    That is a 180-degree turn about X: ``(x, -y, -z)``, still right-handed.
    """
    xyz = np.asarray(xyz, dtype=float)
    return xyz * np.array([1.0, -1.0, -1.0])


def yup_to_blender(p: np.ndarray) -> np.ndarray:
    """Our +Y-up, facing +Z positions ``(..., 3)`` -> Blender's +Z-up, facing -Y: ``(x, -z, y)``."""
    p = np.asarray(p, dtype=float)
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


def blender_to_yup(p: np.ndarray) -> np.ndarray:
    """Blender's +Z-up positions ``(..., 3)`` -> ours (+Y up, facing +Z): ``(x, z, -y)``."""
    p = np.asarray(p, dtype=float)
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], axis=-1)
