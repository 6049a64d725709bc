"""An armature as a retarget target, and retargeted world rotations back into pose-bone
channels. Conversions between Understudy's frame (+Y up, facing +Z) and Blender's
(+Z up, facing -Y) happen here and nowhere else in the add-on.

For bone ``b`` with armature-space rest rotation ``M_b`` (``bone.matrix_local``) and parent
``p``, a world-aligned rotation ``G_b`` (ours) becomes the armature-space delta
``D_b = W^-1 C G_b C^-1 W`` (``C`` ours -> Blender, a quarter turn about +X; ``W`` the
object's world rotation) and the pose channel ``rotation_quaternion`` is
``M_b^-1 D_p^-1 D_b M_b``, so the bone's posed armature matrix is ``D_b M_b``.
"""

from __future__ import annotations

import numpy as np

from .core import quat
from .core.errors import RigError
from .core.retarget import Target

Q_YUP_TO_BLENDER = np.array([np.sqrt(0.5), np.sqrt(0.5), 0.0, 0.0])
"""``C``: (x, y, z) ours -> (x, -z, y) Blender, a +90 deg turn about X."""


def yup_to_blender(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


def blender_to_yup(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], axis=-1)


def _world(obj) -> tuple[np.ndarray, np.ndarray, float]:
    """(4x4 world matrix, its rotation as a quaternion, its uniform scale)."""
    W = np.array(obj.matrix_world, dtype=float)
    s = np.linalg.norm(W[:3, :3], axis=0)
    if np.ptp(s) > 1e-4 * max(s.max(), 1e-12):
        raise RigError(f"armature {obj.name!r} has a non-uniform scale {tuple(np.round(s, 4))}; apply the scale "
                       "(Ctrl+A > Scale) first")
    return W, quat.from_matrix(W[:3, :3] / s), float(s[0])


def bone_order(arm) -> list:
    """The armature's bones, parents before children."""
    out, todo = [], [b for b in arm.data.bones if b.parent is None]
    while todo:
        b = todo.pop(0)
        out.append(b)
        todo.extend(b.children)
    return out


def _reference(arm, bones, use_pose: bool) -> np.ndarray:
    """Armature-space 4x4 matrices ``(J, 4, 4)`` of the reference pose: the rest pose
    (``bone.matrix_local``) or, with ``use_pose``, the pose the armature is in now
    (``pose_bone.matrix``; a glTF import whose node pose differs from its bind pose)."""
    if use_pose:
        return np.array([np.array(arm.pose.bones[b.name].matrix, dtype=float) for b in bones])
    return np.array([np.array(b.matrix_local, dtype=float) for b in bones])


def read_target(arm, use_pose: bool = False) -> tuple[Target, list]:
    """The armature's reference pose as a :class:`Target` (bone heads in world metres,
    ours) and its bones in that order."""
    bones = bone_order(arm)
    if not bones:
        raise RigError(f"armature {arm.name!r} has no bones")
    idx = {b.name: i for i, b in enumerate(bones)}
    W, _, _ = _world(arm)
    heads = _reference(arm, bones, use_pose)[:, :3, 3]
    world = heads @ W[:3, :3].T + W[:3, 3]
    parents = np.array([idx[b.parent.name] if b.parent else -1 for b in bones], dtype=np.int64)
    return Target(names=tuple(b.name for b in bones), parents=parents, rest=blender_to_yup(world)), bones


def _rot(M: np.ndarray) -> np.ndarray:
    """Quaternions of the rotation parts of 4x4 matrices ``(..., 4, 4)`` (scale removed)."""
    R = M[..., :3, :3] / np.linalg.norm(M[..., :3, :3], axis=-2, keepdims=True)
    return quat.from_matrix(R)


def pose_channels(arm, bones: list, G: np.ndarray, hips: np.ndarray, hips_index: int, use_pose: bool = False,
                  placed: dict | None = None):
    """Pose-bone channels from world-aligned rotations ``G`` ``(T, J, 4)`` (ours, bones in
    :func:`read_target` order, relative to the reference pose) and the hips' world path
    ``(T, 3)`` (ours), and world paths of ``placed`` bones by index: returns
    ``(rotation_quaternion (T, J, 4), {bone index: location (T, 3)})`` for the hips and the
    placed bones, quaternion signs continuous over frames.

    With rest matrices ``M`` and reference matrices ``F`` (``F = M`` for the rest pose),
    the posed armature rotation of bone ``b`` is ``D_b F_b`` and Blender's
    ``pose_b = pose_p M_p^-1 M_b basis_b`` gives ``basis_b = M_b^-1 M_p F_p^-1 D_p^-1 D_b F_b``."""
    W, qW, s = _world(arm)
    D = quat.mul(quat.mul(quat.inv(qW), quat.mul(Q_YUP_TO_BLENDER, quat.mul(G, quat.inv(Q_YUP_TO_BLENDER)))), qW)
    rest4 = np.array([np.array(b.matrix_local, dtype=float) for b in bones])
    ref4 = _reference(arm, bones, use_pose)
    M, F = _rot(rest4), _rot(ref4)
    idx = {b.name: i for i, b in enumerate(bones)}
    basis = np.empty_like(D)
    for j, b in enumerate(bones):
        right = quat.mul(D[:, j], F[j])
        if b.parent:
            p = idx[b.parent.name]
            left = quat.mul(quat.mul(quat.inv(M[j]), quat.mul(M[p], quat.inv(F[p]))), quat.inv(D[:, p]))
        else:
            left = quat.inv(M[j])
        basis[:, j] = quat.mul(left, right)
    basis = quat.continuous(basis, axis=0)
    # hips (and detached bones): their ancestors stay in the reference pose, so the posed
    # head is X @ location with X = F_p M_p^-1 M_b (4x4), or M_b for a root bone
    locs = {}
    for j, path in ({hips_index: hips, **(placed or {})}).items():
        b = bones[j]
        head_arm = (yup_to_blender(path) - W[:3, 3]) @ W[:3, :3] / s**2  # W^-1 for a uniformly scaled rotation
        if b.parent:
            p = idx[b.parent.name]
            X = ref4[p] @ np.linalg.inv(rest4[p]) @ rest4[j]
        else:
            X = rest4[j]
        locs[j] = np.linalg.solve(X[:3, :3], (head_arm - X[:3, 3]).T).T
    return basis, locs
