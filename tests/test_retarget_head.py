"""retarget.retarget: the retargeted head looks where the source's head looks.

The head has no bone vector (a CMU head's end site points up the skull, a glTF head is a
leaf node), so its rest alignment cannot come from a direction; before the fix it
inherited the neck's, and the MakeHuman characters walked with the chin ~17 deg up
(their necks lean further forward in the rest pose than the CMU performer's). Measured
here as a user would: the face's forward (+Z) and up (+Y) in the world, source vs
target, on the rigs of test_retarget, a generated character and a rig with a strongly
leaning neck; for the glTF characters through the exported node rotations."""

from __future__ import annotations

import numpy as np
import pytest

from mocap.glossary import A2Q, Q_inv, Q_mul
from mocap.motion import Skeleton, quat_rotate
from retarget.character import generate_character
from retarget.retarget import retarget
from retarget.rig import Rig, motion_to_node_rotations

from .test_retarget import TARGETS, cached, mixamo_skeleton, result, source, target

_FORWARD, _UP = np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])
_TOL_DEG = 5.0


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles (deg) between the rows of ``(T, 3)`` ``a`` and ``b``."""
    c = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


def _elevation_deg(v: np.ndarray) -> np.ndarray:
    return np.degrees(np.arcsin(np.clip(v[:, 1] / np.linalg.norm(v, axis=-1), -1.0, 1.0)))


def _head_axes(motion, joint: str) -> tuple[np.ndarray, np.ndarray]:
    """World face forward and up ``(T, 3)`` of ``joint`` on a world-aligned motion (its
    global rotation applied to +Z and +Y: identity is the rest pose, facing +Z)."""
    _, G = motion.fk()
    g = G[:, motion.skeleton.index(joint)]
    return quat_rotate(g, _FORWARD), quat_rotate(g, _UP)


def _node_head_axes(rig: Rig, motion, joint: str) -> tuple[np.ndarray, np.ndarray]:
    """The same measured on the rig's exported node rotations: the head node's new global
    orientation (its parent node's, which follows the parent joint, times the exported
    local rotation) times the inverse of its rest global orientation, applied to +Z, +Y."""
    j = rig.skeleton.index(joint)
    p = int(rig.skeleton.parents[j])
    _, G = motion.fk()
    q = motion_to_node_rotations(rig, motion)[:, j]
    node_global = Q_mul(Q_mul(G[:, p], rig.parent_rest_rotations[j]), q)
    g = Q_mul(node_global, Q_inv(rig.rest_global_rotations[j]))
    return quat_rotate(g, _FORWARD), quat_rotate(g, _UP)


def _target(name: str):
    if name == "ben":
        return cached(("target", "ben"), lambda: generate_character(preset="ben").skeleton)
    return target(name)


def _result(src: str, tgt: str):
    if tgt == "ben":
        return cached(("result", src, "ben"), lambda: retarget(source(src), _target("ben")))
    return result(src, tgt)


@pytest.mark.parametrize("tgt", [*TARGETS, "ben"])
@pytest.mark.parametrize("src", ["walk", "salsa"])
def test_the_head_looks_where_the_sources_head_looks(src, tgt):
    res = _result(src, tgt)
    s_joint, t_joint = res.map_used["head"]
    fs, us = _head_axes(source(src), s_joint)
    ft, ut = _head_axes(res.motion, t_joint)
    assert _angle_deg(fs, ft).max() < _TOL_DEG
    assert _angle_deg(us, ut).max() < _TOL_DEG
    # the symptom as reported: mean pitch of the face, source vs target (deg)
    assert abs(_elevation_deg(ft).mean() - _elevation_deg(fs).mean()) < 1.0
    rig = _target(tgt)
    if isinstance(rig, Rig):  # what the exported glTF/VRM shows
        fn, un = _node_head_axes(rig, res.motion, t_joint)
        assert _angle_deg(fs, fn).max() < _TOL_DEG
        assert _angle_deg(us, un).max() < _TOL_DEG


def _leaning_neck_mixamo(deg: float) -> Skeleton:
    """The Mixamo test rig with its neck and head tipped ``deg`` forward about the
    shoulder line (the neck's offset above the chest and everything above turned)."""
    sk = mixamo_skeleton()
    off = sk.offsets.copy()
    tip = A2Q(np.radians(deg) * np.array([1.0, 0.0, 0.0]))
    neck = sk.index("mixamorig:Neck")
    for j in range(len(sk)):
        a = j
        while a >= 0 and a != neck:
            a = int(sk.parents[a])
        if a == neck and j != neck:
            off[j] = quat_rotate(tip, off[j])
    return Skeleton(sk.names, sk.parents, off)


@pytest.mark.parametrize("deg", [-20.0, 30.0])
def test_a_neck_leaning_in_the_rest_pose_does_not_tip_the_face(deg):
    walk = source("walk")
    sk = _leaning_neck_mixamo(deg)

    def lean(s: Skeleton) -> float:  # deg forward from vertical, neck -> head
        v = s.rest_positions()[s.index("mixamorig:Head")] - s.rest_positions()[s.index("mixamorig:Neck")]
        return float(np.degrees(np.arctan2(v[2], v[1])))

    assert abs(lean(sk) - (lean(mixamo_skeleton()) + deg)) < 0.1  # Mixamo's own leans 11.3 deg forward
    res = retarget(walk, sk, foot_ik=False)
    fs, us = _head_axes(walk, res.map_used["head"][0])
    ft, ut = _head_axes(res.motion, "mixamorig:Head")
    assert _angle_deg(fs, ft).max() < _TOL_DEG
    assert _angle_deg(us, ut).max() < _TOL_DEG
    # the neck itself still points where the source's neck points
    Ps, Pt = walk.positions(), res.motion.positions()
    ns, hs = (walk.skeleton.index(res.map_used[c][0]) for c in ("neck", "head"))
    nt, ht = sk.index("mixamorig:Neck"), sk.index("mixamorig:Head")
    assert _angle_deg(Ps[:, hs] - Ps[:, ns], Pt[:, ht] - Pt[:, nt]).max() < _TOL_DEG


def test_a_turned_target_faces_where_the_source_faces():
    """A target rig facing +X in its rest pose: the head's rest alignment is the turn
    between the two facings, so the face still looks where the source's looks."""
    walk = source("walk")
    turn = A2Q(np.radians(90.0) * _UP)
    sk = mixamo_skeleton()
    turned = Skeleton(sk.names, sk.parents, quat_rotate(turn, sk.offsets))
    res = retarget(walk, turned, foot_ik=False)
    assert res.alignment.twist_ref["head"] == "facing"
    fs, us = _head_axes(walk, res.map_used["head"][0])
    _, G = res.motion.fk()
    g = G[:, turned.index("mixamorig:Head")]
    # the target's own face direction at rest is +X: G_t turns it onto the source's
    ft, ut = quat_rotate(g, quat_rotate(turn, _FORWARD)), quat_rotate(g, _UP)
    assert _angle_deg(fs, ft).max() < _TOL_DEG
    assert _angle_deg(us, ut).max() < _TOL_DEG

