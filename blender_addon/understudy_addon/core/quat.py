"""Quaternion maths, wxyz, batched over leading axes. numpy only (no scipy in Blender)."""

from __future__ import annotations

import numpy as np

IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


def unit(v: np.ndarray) -> np.ndarray:
    """``v / |v|`` along the last axis; zero vectors stay zero."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 1e-12, n, 1.0)


def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` ``(..., 4)``, broadcast."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    out[..., 0] = aw * bw - ax * bx - ay * by - az * bz
    out[..., 1] = aw * bx + ax * bw + ay * bz - az * by
    out[..., 2] = aw * by - ax * bz + ay * bw + az * bx
    out[..., 3] = aw * bz + ax * by - ay * bx + az * bw
    return out


def inv(q: np.ndarray) -> np.ndarray:
    """Inverse of unit quaternions (the conjugate) ``(..., 4)``."""
    return np.asarray(q, dtype=float) * np.array([1.0, -1.0, -1.0, -1.0])


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``q v q^-1`` for vectors ``(..., 3)``, broadcast."""
    q, v = np.asarray(q, dtype=float), np.asarray(v, dtype=float)
    w, u = q[..., :1], q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Quaternions ``(..., 4)`` turning ``angle`` radians ``(...)`` about unit ``axis`` ``(..., 3)``."""
    angle = np.asarray(angle, dtype=float)[..., None]
    axis = np.asarray(axis, dtype=float)
    return np.concatenate([np.cos(angle / 2) + 0 * axis[..., :1], np.sin(angle / 2) * axis], axis=-1)


def from_euler(E: np.ndarray, order: str) -> np.ndarray:
    """Quaternions ``(..., 4)`` from intrinsic Euler angles ``(..., len(order))`` in radians:
    order ``"ZXY"`` is ``R = Rz @ Rx @ Ry`` (BVH's channel order)."""
    E = np.asarray(E, dtype=float)
    q = np.broadcast_to(IDENTITY, E.shape[:-1] + (4,)).copy()
    for k, a in enumerate(order.upper()):
        ax = np.zeros(3)
        ax["XYZ".index(a)] = 1.0
        q = mul(q, axis_angle(np.broadcast_to(ax, E.shape[:-1] + (3,)), E[..., k]))
    return q


def from_matrix(R: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(..., 4)``, ``w >= 0``, from rotation matrices ``(..., 3, 3)``
    (Shepperd's method: the largest of w, x, y, z is computed first)."""
    R = np.asarray(R, dtype=float)
    shp = R.shape[:-2]
    M = R.reshape(-1, 3, 3)
    tr = M[:, 0, 0] + M[:, 1, 1] + M[:, 2, 2]
    cand = np.stack([tr, M[:, 0, 0], M[:, 1, 1], M[:, 2, 2]], axis=1)
    k = np.argmax(cand, axis=1)
    q = np.empty((len(M), 4))
    for case in range(4):
        s = k == case
        if not np.any(s):
            continue
        m = M[s]
        if case == 0:
            r = np.sqrt(1.0 + tr[s]) * 2
            q[s] = np.stack([0.25 * r, (m[:, 2, 1] - m[:, 1, 2]) / r, (m[:, 0, 2] - m[:, 2, 0]) / r,
                             (m[:, 1, 0] - m[:, 0, 1]) / r], axis=1)
        elif case == 1:
            r = np.sqrt(1.0 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2]) * 2
            q[s] = np.stack([(m[:, 2, 1] - m[:, 1, 2]) / r, 0.25 * r, (m[:, 0, 1] + m[:, 1, 0]) / r,
                             (m[:, 0, 2] + m[:, 2, 0]) / r], axis=1)
        elif case == 2:
            r = np.sqrt(1.0 + m[:, 1, 1] - m[:, 0, 0] - m[:, 2, 2]) * 2
            q[s] = np.stack([(m[:, 0, 2] - m[:, 2, 0]) / r, (m[:, 0, 1] + m[:, 1, 0]) / r, 0.25 * r,
                             (m[:, 1, 2] + m[:, 2, 1]) / r], axis=1)
        else:
            r = np.sqrt(1.0 + m[:, 2, 2] - m[:, 0, 0] - m[:, 1, 1]) * 2
            q[s] = np.stack([(m[:, 1, 0] - m[:, 0, 1]) / r, (m[:, 0, 2] + m[:, 2, 0]) / r,
                             (m[:, 1, 2] + m[:, 2, 1]) / r, 0.25 * r], axis=1)
    q = unit(q)
    q = np.where(q[:, :1] < 0, -q, q)
    return q.reshape(shp + (4,))


def swing(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The smallest rotation ``(..., 4)`` taking unit ``x`` onto unit ``y`` (``(..., 3)``,
    broadcast); a half turn about a perpendicular axis when they are opposite."""
    x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    c = np.sum(x * y, axis=-1, keepdims=True)
    q = np.concatenate([1.0 + c, np.cross(x, y)], axis=-1)
    opposite = (1.0 + c[..., 0]) < 1e-9
    if np.any(opposite):
        xo = x[opposite]
        e = np.eye(3)[np.argmin(np.abs(xo), axis=-1)]
        q[opposite] = np.concatenate([np.zeros((len(xo), 1)), unit(np.cross(xo, e))], axis=-1)
    return unit(q)


def continuous(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """``q`` with signs flipped so consecutive quaternions along ``axis`` (frames) lie in
    the same hemisphere: the F-curves then interpolate the short way."""
    q = np.moveaxis(np.array(q, dtype=float), axis, 0)
    if len(q) > 1:
        d = np.sum(q[1:] * q[:-1], axis=-1)
        flips = np.cumsum(d < 0, axis=0) % 2
        q[1:] *= np.where(flips[..., None] == 1, -1.0, 1.0)
    return np.moveaxis(q, 0, axis)


def fk(parents: np.ndarray, offsets: np.ndarray, rotations: np.ndarray,
       root_positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World positions ``(T, J, 3)`` and global rotations ``(T, J, 4)`` from local
    rotations ``(T, J, 4)``, rest offsets ``(J, 3)`` and root positions ``(T, 3)``.
    Parents come before their children (``parents[0] == -1``)."""
    T, J = rotations.shape[:2]
    P = np.empty((T, J, 3))
    G = np.empty((T, J, 4))
    for j in range(J):
        p = int(parents[j])
        if p < 0:
            G[:, j] = rotations[:, j]
            P[:, j] = root_positions
        else:
            G[:, j] = mul(G[:, p], rotations[:, j])
            P[:, j] = P[:, p] + rotate(G[:, p], offsets[j])
    return P, G
