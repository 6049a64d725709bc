"""Retargeting: a skeletal :class:`~mocap.motion.Motion` onto any humanoid rig, as named
passes over plain arrays (STYLE item 2). Each pass is a function that states its
precondition; :func:`retarget` runs them in order and times them.

==========================  ==============================================================
pass                        what it does
==========================  ==============================================================
:func:`map_bones`           resolve the source's and the target's bone maps (detected when
                            not given) and pair the canonical bones both have
:func:`rest_alignment`      the constant part: one rest-alignment rotation ``A`` per
                            paired bone, the bone vectors used, and the plan for the
                            target's unpaired joints
:func:`solve_rotations`     per frame: target global rotations from the source's, then
                            local rotations through the target hierarchy
:func:`root_translation`    the target's root path: the source's, scaled by the leg-length
                            ratio, lifted so the feet stand on the floor where the
                            source's do
:func:`foot_ik`             feet planted through the source's contacts
                            (:func:`mocap.contacts.lock_feet`)
:func:`hand_ik`             optional: hands to the source's hand positions scaled by arm
                            length
:func:`transfer_fingers`    finger rotations, hand-relative, when both sides have fingers
==========================  ==============================================================

Conventions: :mod:`mocap.glossary` (metres, +Y up, facing +Z, quaternions wxyz). T frames.

World-space transfer (the maths of :func:`rest_alignment` and :func:`solve_rotations`)
-------------------------------------------------------------------------------------
Both skeletons are **world-aligned**: identity local rotations are the rest pose and a
joint's global rotation ``G`` turns its rest neighbourhood rigidly in the world (a
:class:`~retarget.rig.Rig`'s skeleton is built that way whatever its bones' rolls). For a
paired bone ``c`` let ``d_s`` and ``d_t`` be its rest **bone vector** on each side: from the
joint to the next paired joint along the canonical chain (``leftUpperArm -> leftLowerArm``,
``spine -> chest`` or, without a paired chest, ``-> upperChest``/``neck``; the hand points
at its middle (else ring, index, little) knuckle; the hips' vector is the hip line
``rightUpperLeg -> leftUpperLeg``). Bones without one (head, toes, distal phalanges, a
hand without paired fingers) have none. The target's global rotation is

    G_t(c, t) = G_s(c, t) A_c,      A_c d_t = d_s  (rest directions, unit)

so the target bone points where the source bone points: ``G_t d_t = G_s d_s``. ``A_c``
also fixes the twist about the bone, which the direction alone leaves free:

* hips: the frame (hip line, world up): a T-pose source and an A-pose target both stand
  upright facing +Z, so ``A_hips`` is about identity and the pelvis is not tipped by the
  different spine curvature of the two rigs;
* forearm and hand: the frame (bone vector, palm line ``little -> index`` knuckles)
  when both sides have those fingers, so the palm faces where the source's palm faces
  and the forearm twists with it (pronation lives in the forearm, not at the wrist);
* any other bone: **parallel transport** from its paired parent,
  ``A_c = swing(A_parent d_t -> d_s) A_parent``: the smallest turn that lines the bone up
  once the parent is aligned. A T-pose source onto an A-pose target (the MakeHuman
  characters, arms about 45 deg down) thus turns each arm about the forward axis, and a
  bent-elbow rest (MakeHuman's forearms point forward) is straightened as the source's is;
* the head (no vector: a BVH head's end site points up the skull, a glTF head is a
  leaf): the **facing turn**, the rotation about +Y taking the target's hip line onto the
  source's (both rigs' faces look along their facing in the rest pose). Inheriting the
  neck's ``A`` would tip the face by the difference of the two necks' rest leans (the
  MakeHuman characters' necks lean 18 deg forward, the CMU walk's 0.5 deg, so the chin
  went up ~17 deg); with the facing turn the face's forward and up follow the source
  head's, and the lean difference is taken up between neck and head (by the head's
  local rotation, or shared over a trunk chain such as MakeHuman's ``Neck1``);
* any other bone without a vector inherits its paired parent's ``A``.

When the source's path from a bone to the end of its vector passes through joints that
are not paired (cgspeed's ``lowerneck`` between ``Chest2`` and ``Neck``, ``lhand`` between
the wrist and ``LFingers``; ``Chest2`` when the target has no upper chest), those joints
rotate the source's segment as well: :func:`solve_rotations` adds the per-frame swing
from ``G_s d_s`` onto the source's actual segment direction, so the target follows the
segment, not just its first joint.

The target's unpaired joints (the plan of :func:`rest_alignment`)
------------------------------------------------------------------
* On a **trunk chain** between two paired trunk bones (UE5's ``spine_02``/``spine_04``
  between ``spine_01``/``spine_03``/``spine_05``, ``neck_02``, MakeHuman's ``Neck1``,
  Rigify's ``DEF-spine.005``, a target upper chest the source lacks): each of the ``n``
  joints takes an equal share ``R^(1/(n+1))`` of the chain's relative rotation
  ``R = G_a^-1 G_d``, so a 5-bone spine bends smoothly under a 3-bone source; the chain's
  first bone is then re-aimed (three fixed-point rounds) so the chain's end still lies
  in the source's bone direction.
* On a **limb segment** between two paired bones of one limb, collinear in the rest pose
  (Rigify's ``DEF-upper_arm.L.001``, ``DEF-shin.L.001`` twist halves): an equal share of
  the twist of ``R`` about the segment, which moves no joint.
* Everything else (MakeHuman/cgspeed ``LHipJoint``, ``LeftFingerBase``, UE ``root``, eyes,
  twist and IK helper leaves, fingers the source lacks): its own local rotation is kept,
  identity from :func:`solve_rotations`, i.e. it moves rigidly with its parent.

Root, feet, hands, fingers
--------------------------
* :func:`root_translation`: ``hips_t(t) = k hips_s(t) + (0, h, 0)`` with ``k`` the ratio of
  the legs' lengths (thigh + shin, target / source, both sides averaged), ``h`` chosen so
  that while the source's feet are planted the target's feet are at their own rest
  heights above ``y = 0`` (median over the planted frames). The source's own floor offset
  is not copied: joint heights above the sole differ between rigs.
* :func:`foot_ik`: the source's contacts (:func:`mocap.contacts.motion_contacts`, then
  :func:`~mocap.contacts.planted_contacts`, which drops contacts where the source's foot
  really slides) lock the target's feet with :func:`~mocap.contacts.lock_feet` (ankle held
  at the contact's mean, foot orientation held, analytic knee IK, root lowered where a
  shorter leg cannot reach, no foot point below ``y = 0``). A target leg with joints
  between thigh, shin, foot and toes (Rigify's twist halves) is solved on the sub-skeleton
  without them, which have no positional effect, and they are refilled after.
* :func:`hand_ik` (off by default): two-bone IK so the hand reaches
  ``upperArm_t + k_arm (hand_s - upperArm_s)``, ``k_arm`` the arm-length ratio; the hand
  keeps its global orientation, the elbow its bend plane.
* :func:`transfer_fingers`: the fingers both sides have, relative to the hand:
  ``G_t(f) = G_t(hand) A_hand^-1 G_s(hand)^-1 G_s(f) A_f``, so they stay right whatever
  the hand IK did. Fingers only the target has keep their rest curl.

Everything is vectorised over frames; Python loops run over joints, chains and legs (the
leg computations run on the sub-skeleton of the legs and their root path). On one core,
an 18,000-frame walk retargets at 27,000-46,000 frames/s with foot IK (Mixamo, UE5,
Rigify test rigs and the shared characters), 40,000-75,000 without, 16,000-33,000 with
hand IK as well. Imports numpy only (scipy at first use, through :mod:`mocap.glossary`
and :mod:`mocap.contacts`).

Approximations (what is not done)
---------------------------------
* Bones are matched by direction; a rig whose rest twist differs from the source's
  around a bone with no twist reference (the upper arm, the thigh) gets parallel
  transport, which is right for T-pose vs A-pose rigs but not for arbitrary rolls of the
  mesh around the bone.
* A trunk chain's shares are equal, not weighted by bone length; a limb twist segment
  takes an equal share of the whole twist between its two paired bones.
* The root follows the hips: a UE ``root`` joint on the floor moves with the pelvis
  instead of carrying the ground projection, and IK helper bones are not driven.
* The floor is ``y = 0`` for both motions; the contacts come from the source only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from mocap.contacts import contact_segments, lock_feet, motion_contacts, planted_contacts
from mocap.errors import RigError, UsageError
from mocap.glossary import A2Q, FORWARD, Q2A, R2Q, UP, Q_inv, Q_mul
from mocap.motion import Motion, Skeleton, fk, quat_rotate

from .bonemap import BoneMap, builtin_profiles, detect_profile, require_core
from .rig import Rig

__all__ = [
    "BonePairs",
    "Alignment",
    "RetargetResult",
    "retarget",
    "map_bones",
    "rest_alignment",
    "solve_rotations",
    "assemble_locals",
    "source_contacts",
    "root_translation",
    "foot_ik",
    "hand_ik",
    "transfer_fingers",
    "leg_joints",
]

_I = np.array([1.0, 0.0, 0.0, 0.0])
_SIDES = ("left", "right")
_TRUNK = ("hips", "spine", "chest", "upperChest", "neck", "head")
_DIGITS = ("Thumb", "Index", "Middle", "Ring", "Little")
_MIN_LEN = 1e-3
"""Metres: a bone vector shorter than this (on either side) is not a direction."""


# -- canonical tables ---------------------------------------------------------------------


@lru_cache(maxsize=1)
def _tails() -> dict[str, tuple[str, ...]]:
    """Canonical bone -> where its bone vector may end, in order of preference."""
    t = {"spine": ("chest", "upperChest", "neck", "head"), "chest": ("upperChest", "neck", "head"),
         "upperChest": ("neck", "head"), "neck": ("head",)}
    for s in _SIDES:
        t[f"{s}Shoulder"] = (f"{s}UpperArm",)
        t[f"{s}UpperArm"] = (f"{s}LowerArm",)
        t[f"{s}LowerArm"] = (f"{s}Hand",)
        t[f"{s}Hand"] = tuple(f"{s}{d}Proximal" for d in ("Middle", "Ring", "Index", "Little"))
        t[f"{s}UpperLeg"] = (f"{s}LowerLeg",)
        t[f"{s}LowerLeg"] = (f"{s}Foot",)
        t[f"{s}Foot"] = (f"{s}Toes",)
        t[f"{s}ThumbMetacarpal"] = (f"{s}ThumbProximal", f"{s}ThumbDistal")
        t[f"{s}ThumbProximal"] = (f"{s}ThumbDistal",)
        for d in ("Index", "Middle", "Ring", "Little"):
            t[f"{s}{d}Proximal"] = (f"{s}{d}Intermediate", f"{s}{d}Distal")
            t[f"{s}{d}Intermediate"] = (f"{s}{d}Distal",)
    return t


@lru_cache(maxsize=1)
def _canonical() -> tuple[tuple[str, ...], dict[str, str | None]]:
    """Canonical names (parents first) and each one's canonical parent."""
    from mocap.skeleton import canonical_skeleton

    sk = canonical_skeleton()
    return sk.names, {n: (sk.names[p] if p >= 0 else None) for n, p in zip(sk.names, sk.parents)}


def _is_finger(c: str) -> bool:
    return any(d in c for d in _DIGITS)


def _limb(c: str) -> str | None:
    """``"leftArm"``, ``"rightLeg"`` ... for the limb bones, else None."""
    for s in _SIDES:
        if c in (f"{s}Shoulder", f"{s}UpperArm", f"{s}LowerArm", f"{s}Hand"):
            return f"{s}Arm"
        if c in (f"{s}UpperLeg", f"{s}LowerLeg", f"{s}Foot", f"{s}Toes"):
            return f"{s}Leg"
    return None


# -- small quaternion helpers (wxyz, batched) ------------------------------------------------


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 1e-12, n, 1.0)


def _qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`mocap.glossary.Q_mul` (``a * b``, wxyz, broadcast) written into one output
    array: about twice as fast on ``(T, 4)`` slices, which the per-joint loops use."""
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    out[..., 0] = aw * bw - ax * bx - ay * by - az * bz
    out[..., 1] = aw * bx + ax * bw + ay * bz - az * by
    out[..., 2] = aw * by - ax * bz + ay * bw + az * bx
    out[..., 3] = aw * bz + ax * by - ay * bx + az * bw
    return out


def _swing(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Quaternions ``(..., 4)``: the smallest rotation taking unit ``x`` onto unit ``y``
    (``(..., 3)``, broadcast); a half turn about a perpendicular axis when opposite."""
    x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    c = np.sum(x * y, axis=-1, keepdims=True)
    q = np.concatenate([1.0 + c, np.cross(x, y)], axis=-1)
    opposite = (1.0 + c[..., 0]) < 1e-9
    if np.any(opposite):
        xo = x[opposite]
        e = np.eye(3)[np.argmin(np.abs(xo), axis=-1)]
        q[opposite] = np.concatenate([np.zeros((len(xo), 1)), _unit(np.cross(xo, e))], axis=-1)
    return _unit(q)


def _qpow(Q: np.ndarray, w: float) -> np.ndarray:
    """``Q^w`` ``(..., 4)``: the same axis, ``w`` times the angle (shorter arc)."""
    return A2Q(w * Q2A(Q))


def _twist(Q: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """The twist of ``Q`` ``(..., 4)`` about unit ``axis`` ``(3,)`` (swing-twist split)."""
    v = np.sum(Q[..., 1:] * axis, axis=-1, keepdims=True) * axis
    t = np.concatenate([Q[..., :1], v], axis=-1)
    n = np.linalg.norm(t, axis=-1, keepdims=True)
    return np.where(n > 1e-9, t / np.where(n > 1e-9, n, 1.0), _I)


def _frame_rotation(p_t, s_t, p_s, s_s) -> np.ndarray | None:
    """The rotation ``(4,)`` taking frame (primary ``p_t``, secondary ``s_t``) onto
    (``p_s``, ``s_s``): ``A p_t = p_s`` and the secondaries, made perpendicular to their
    primaries, match. None when a secondary is within ~12 deg of its primary."""
    def frame(p, s):
        p = _unit(np.asarray(p, dtype=float))
        s = np.asarray(s, dtype=float)
        s = _unit(s - (s @ p) * p)
        return np.stack([p, s, np.cross(p, s)], axis=1)

    def ok(p, s):
        p, s = _unit(np.asarray(p, dtype=float)), _unit(np.asarray(s, dtype=float))
        return np.linalg.norm(np.cross(p, s)) > 0.2

    if not (ok(p_t, s_t) and ok(p_s, s_s)):
        return None
    Ft, Fs = frame(p_t, s_t), frame(p_s, s_s)
    return R2Q(Fs @ Ft.T)


# -- pass 1: bone maps ------------------------------------------------------------------------


@dataclass(frozen=True)
class BonePairs:
    """The canonical bones both sides have. ``pairs`` maps canonical name -> (source
    joint, target joint), in canonical order; ``source_only``/``target_only`` the
    canonical bones only one side maps; ``source_found``/``target_found`` everything each
    map finds in its skeleton (canonical -> joint)."""

    source_map: BoneMap
    target_map: BoneMap
    pairs: Mapping[str, tuple[str, str]]
    source_only: tuple[str, ...]
    target_only: tuple[str, ...]
    source_found: Mapping[str, str] = field(default_factory=dict)
    target_found: Mapping[str, str] = field(default_factory=dict)


def _as_bonemap(m: BoneMap | str | None, what: str) -> BoneMap | None:
    if m is None or isinstance(m, BoneMap):
        return m
    if isinstance(m, str):
        profiles = builtin_profiles()
        if m not in profiles:
            raise UsageError(f"{what}: no built-in bone map {m!r}; the built-in ones: {', '.join(profiles)}")
        return profiles[m]
    raise UsageError(f"{what} must be a BoneMap, a built-in profile name or None, got {type(m).__name__}")


def map_bones(
    source: Skeleton,
    target: Skeleton,
    *,
    source_map: BoneMap | str | None = None,
    target_map: BoneMap | str | None = None,
) -> BonePairs:
    """Pass 1: pair the canonical bones of the two skeletons.

    Precondition: none beyond two :class:`Skeleton` objects. A map left None is detected
    with :func:`~retarget.bonemap.detect_profile` (a :class:`~mocap.errors.RigError` names
    the closest profile and the core bones it misses); a given map must find every
    :data:`~retarget.bonemap.CORE_BONES` bone, else :class:`RigError` lists the missing
    ones. A map may be a :class:`BoneMap` or the name of a built-in profile.
    """
    source_map = _as_bonemap(source_map, "source_map")
    target_map = _as_bonemap(target_map, "target_map")
    maps = []
    for sk, m, what in ((source, source_map, "the source motion"), (target, target_map, "the target rig")):
        if m is None:
            try:
                m, _ = detect_profile(sk.names)
            except RigError as e:
                raise RigError(f"{what}: {e}") from None
        found = require_core(m, sk.names, what=what)
        maps.append((m, found))
    (sm, sf), (tm, tf) = maps
    names, _ = _canonical()
    pairs = {c: (sf[c], tf[c]) for c in names if c in sf and c in tf}
    return BonePairs(source_map=sm, target_map=tm, pairs=pairs,
                     source_only=tuple(c for c in names if c in sf and c not in tf),
                     target_only=tuple(c for c in names if c in tf and c not in sf),
                     source_found=sf, target_found=tf)


# -- pass 2: rest alignment --------------------------------------------------------------------


@dataclass(frozen=True)
class _Chain:
    kind: str  # "bend" (trunk: share the rotation) or "twist" (limb: share its twist)
    a: int  # paired joint at the top (target index)
    path: tuple[int, ...]  # unpaired joints between, top to bottom
    d: int  # paired joint at the bottom
    axis: np.ndarray  # unit rest direction a -> d


@dataclass(frozen=True, eq=False)
class Alignment:
    """What :func:`rest_alignment` works out once per (source, target) pair.

    ``rest_rotations`` canonical -> ``A`` ``(4,)`` wxyz; ``vectors`` canonical -> (head,
    tail) canonical names of the bone vector (absent for bones without one);
    ``twist_ref`` canonical -> what fixed the twist (``"hip line + up"``, ``"palm
    line"``, ``"parallel transport"``, ``"facing"`` (the head), ``"parent"``); ``body`` the paired bones
    :func:`solve_rotations` drives, ``fingers`` those :func:`transfer_fingers` drives;
    ``chains`` the target's unpaired joints that take a share of a chain's rotation.
    """

    source_skeleton: Skeleton
    target_skeleton: Skeleton
    pairs: BonePairs
    source_index: Mapping[str, int]
    target_index: Mapping[str, int]
    body: tuple[str, ...]
    fingers: tuple[str, ...]
    rest_rotations: Mapping[str, np.ndarray]
    vectors: Mapping[str, tuple[str, str]]
    twist_ref: Mapping[str, str]
    chains: tuple[_Chain, ...]
    notes: tuple[str, ...] = ()

    def body_mask(self) -> np.ndarray:
        """``(J_target,)`` bool: the target joints :func:`solve_rotations` drives."""
        m = np.zeros(len(self.target_skeleton), dtype=bool)
        m[[self.target_index[c] for c in self.body]] = True
        return m


def _rest_vector(P: np.ndarray, idx: Mapping[str, int], head: str, tail: str) -> np.ndarray:
    return P[idx[tail]] - P[idx[head]]


def _palm(c: str, have: set[str]) -> tuple[str, str] | None:
    side = "left" if c.startswith("left") else "right"
    for a, b in (("Little", "Index"), ("Ring", "Index"), ("Little", "Middle")):
        if f"{side}{a}Proximal" in have and f"{side}{b}Proximal" in have:
            return f"{side}{a}Proximal", f"{side}{b}Proximal"
    return None


def rest_alignment(source: Skeleton, target: Skeleton, pairs: BonePairs, *, fingers: bool = True) -> Alignment:
    """Pass 2: the rest-alignment rotations and the plan for unpaired target joints.

    Precondition: both skeletons are **world-aligned** (identity local rotations = rest
    pose, offsets in world axes, as :class:`~mocap.motion.Skeleton` and
    :attr:`Rig.skeleton <retarget.rig.Rig.skeleton>` are) and stand upright (+Y up);
    ``pairs`` came from :func:`map_bones` on these two skeletons. Facing need not agree:
    the hips' frame absorbs a turn about +Y. The maths is in the module docstring.
    """
    Ps, Pt = source.rest_positions(), target.rest_positions()
    si = {c: source.index(s) for c, (s, _) in pairs.pairs.items()}
    ti = {c: target.index(t) for c, (_, t) in pairs.pairs.items()}
    have = set(pairs.pairs)
    names, cparent = _canonical()
    notes: list[str] = []

    def paired_parent(c: str) -> str | None:
        p = cparent[c]
        while p is not None and p not in have:
            p = cparent[p]
        return p

    A: dict[str, np.ndarray] = {}
    vectors: dict[str, tuple[str, str]] = {}
    twist: dict[str, str] = {}
    for c in names:
        if c not in have:
            continue
        if c == "hips":
            head, tail = "rightUpperLeg", "leftUpperLeg"
            vectors[c] = (head, tail)
            q = _frame_rotation(_rest_vector(Pt, ti, head, tail), UP, _rest_vector(Ps, si, head, tail), UP)
            if q is None:
                raise RigError("the hip line is vertical in a rest pose: the skeletons do not stand upright")
            A[c], twist[c] = q, "hip line + up"
            # the turn about +Y between the two rigs' facings: up stays up exactly
            facing = _frame_rotation(UP, _rest_vector(Pt, ti, head, tail), UP, _rest_vector(Ps, si, head, tail))
            continue
        base = A[paired_parent(c)]
        vec = None
        for tail in _tails().get(c, ()):
            if tail in have:
                ds, dt = _rest_vector(Ps, si, c, tail), _rest_vector(Pt, ti, c, tail)
                if min(np.linalg.norm(ds), np.linalg.norm(dt)) > _MIN_LEN:
                    vec = (c, tail, _unit(ds), _unit(dt))
                    break
        if vec is None:
            if c == "head":  # the face looks where the source's does, not where the neck leans
                A[c], twist[c] = facing, "facing"
            else:
                A[c], twist[c] = base, "parent"
            continue
        vectors[c] = vec[:2]
        q = None
        palm = _palm(c, have) if c.endswith(("LowerArm", "Hand")) else None
        if palm is not None:
            q = _frame_rotation(vec[3], _rest_vector(Pt, ti, *palm), vec[2], _rest_vector(Ps, si, *palm))
        if q is not None:
            A[c], twist[c] = q, "palm line"
        else:
            A[c] = Q_mul(_swing(quat_rotate(base, vec[3]), vec[2]), base)
            twist[c] = "parallel transport"

    body = tuple(c for c in names if c in have and not _is_finger(c))
    finger_bones = tuple(c for c in names if c in have and _is_finger(c)) if fingers else ()
    chains = _chain_plan(target, ti, body, Pt)
    for ch in chains:
        who = ", ".join(target.names[j] for j in ch.path)
        notes.append(f"target joint(s) {who} between {target.names[ch.a]} and {target.names[ch.d]} take a share "
                     f"of the {'rotation' if ch.kind == 'bend' else 'twist'} between them")
    if pairs.source_only:
        notes.append(f"the target has no bone for source bone(s) {', '.join(pairs.source_only)}: their rotation "
                     "is carried by the nearest paired bones")
    if pairs.target_only:
        notes.append(f"the source has no bone for target bone(s) {', '.join(pairs.target_only)}")
    return Alignment(source_skeleton=source, target_skeleton=target, pairs=pairs, source_index=si,
                     target_index=ti, body=body, fingers=finger_bones, rest_rotations=A, vectors=vectors,
                     twist_ref=twist, chains=tuple(chains), notes=tuple(notes))


def _chain_plan(target: Skeleton, ti: Mapping[str, int], body: tuple[str, ...], Pt: np.ndarray) -> list[_Chain]:
    """The unpaired target joints that sit on a single path between two driven joints."""
    J = len(target)
    par = target.parents
    driven = np.zeros(J, dtype=bool)
    driven[[ti[c] for c in body]] = True
    canon_of = {ti[c]: c for c in body}
    through = np.zeros(J, dtype=int)
    found = []
    for d in np.flatnonzero(driven):
        path, p = [], int(par[d])
        while p >= 0 and not driven[p]:
            path.append(p)
            p = int(par[p])
        if p < 0 or not path:
            continue
        through[path] += 1
        found.append((p, tuple(reversed(path)), int(d)))
    chains = []
    for a, path, d in found:
        if np.any(through[list(path)] > 1):
            continue
        ca, cd = canon_of[a], canon_of[d]
        axis = Pt[d] - Pt[a]
        if np.linalg.norm(axis) < _MIN_LEN:
            continue
        axis = _unit(axis)
        if ca in _TRUNK and cd in _TRUNK:
            chains.append(_Chain("bend", a, path, d, axis))
            continue
        if _limb(ca) is None or _limb(ca) != _limb(cd):
            continue
        pts = [Pt[a]] + [Pt[j] for j in path] + [Pt[d]]
        links = [q - p for p, q in zip(pts[:-1], pts[1:])]
        if all(np.linalg.norm(v) < 1e-6 or (_unit(v) @ axis) > np.cos(np.radians(10.0)) for v in links):
            chains.append(_Chain("twist", a, path, d, axis))
    return chains


# -- pass 3: rotations ---------------------------------------------------------------------------


def _source_global(al: Alignment, c: str, P: np.ndarray, G: np.ndarray) -> np.ndarray:
    """The source's global rotation ``(T, 4)`` for canonical bone ``c``, swung so that its
    bone vector follows the source's actual segment when unpaired source joints lie on it."""
    sk, si = al.source_skeleton, al.source_index
    Gc = G[:, si[c]]
    vec = al.vectors.get(c)
    if vec is None:
        return Gc
    head, tail = si[vec[0]], si[vec[1]]
    j = si[c]
    if sk.parents[tail] == j and (head == j or sk.parents[head] == j):
        return Gc  # a plain bone: G d_s is the segment already
    Ps = sk.rest_positions()
    rest = _unit(Ps[tail] - Ps[head])
    actual = _unit(P[:, tail] - P[:, head])
    return _qmul(_swing(quat_rotate(Gc, rest), actual), Gc)


def assemble_locals(al: Alignment, G: np.ndarray, base: np.ndarray, *, driven: np.ndarray | None = None) -> np.ndarray:
    """Local rotations ``(T, J, 4)`` of the target from the global rotations ``G`` of its
    driven joints (``driven`` mask, default :meth:`Alignment.body_mask`): driven joints
    get ``G_parent^-1 G``, joints of a chain of the plan their share, the others keep
    ``base``. One loop over joints."""
    sk = al.target_skeleton
    par = sk.parents
    J = len(sk)
    driven = al.body_mask() if driven is None else np.asarray(driven, dtype=bool)
    L = np.array(base, dtype=float, copy=True)
    share: dict[int, np.ndarray] = {}
    for ch in al.chains:
        R = _qmul(Q_inv(G[:, ch.a]), G[:, ch.d])
        if ch.kind == "twist":
            R = _twist(R, ch.axis)
        s = _qpow(R, 1.0 / (len(ch.path) + 1))
        for j in ch.path:
            share[j] = s
    # a joint's running global is needed only when a child is driven or needs its own
    need = np.zeros(J, dtype=bool)
    for j in range(J - 1, 0, -1):
        if driven[j] or need[j]:
            need[par[j]] = True
    Grun: dict[int, np.ndarray] = {}
    for j in range(J):
        p = par[j]
        if driven[j]:
            Grun[j] = G[:, j]
            L[:, j] = G[:, j] if p < 0 else _qmul(Q_inv(Grun[p]), G[:, j])
            continue
        if j in share:
            L[:, j] = share[j]
        if need[j]:
            Grun[j] = L[:, j] if p < 0 else _qmul(Grun[p], L[:, j])
    return L


def _aim_bend_chains(al: Alignment, G: np.ndarray, rounds: int = 3) -> None:
    """Re-aim the top joint of each trunk chain (in place) so that, with the shares
    spread over the chain, the chain's end lies where a rigid chain would put it."""
    off = al.target_skeleton.offsets
    for ch in sorted((c for c in al.chains if c.kind == "bend"), key=lambda c: -c.a):
        want = quat_rotate(G[:, ch.a], ch.axis)
        Ga = G[:, ch.a]
        w = 1.0 / (len(ch.path) + 1)
        links = [off[j] for j in ch.path[1:]] + [off[ch.d]]
        for _ in range(rounds):
            s = _qpow(Q_mul(Q_inv(Ga), G[:, ch.d]), w)
            v = np.broadcast_to(off[ch.path[0]], want.shape).copy()
            acc = s
            for o in links:
                v += quat_rotate(acc, o)
                acc = Q_mul(acc, s)
            Ga = Q_mul(_swing(_unit(quat_rotate(Ga, v)), want), Ga)
        G[:, ch.a] = Ga


def solve_rotations(al: Alignment, source_positions: np.ndarray, source_globals: np.ndarray) -> np.ndarray:
    """Pass 3: the target's local rotations ``(T, J_target, 4)`` wxyz.

    Precondition: ``source_positions`` ``(T, J_source, 3)`` and ``source_globals``
    ``(T, J_source, 4)`` are the source motion's forward kinematics
    (:meth:`Motion.fk`), on ``al.source_skeleton``. Driven (paired body) bones get
    ``G_s A`` (with the segment swing, see the module docstring), trunk chains are
    re-aimed, then the plan fills the unpaired joints; unpaired joints off any chain and
    the fingers get identity (:func:`transfer_fingers` sets the fingers).
    """
    T = source_globals.shape[0]
    J = len(al.target_skeleton)
    G = np.tile(_I, (T, J, 1))
    for c in al.body:
        G[:, al.target_index[c]] = Q_mul(_source_global(al, c, source_positions, source_globals),
                                         al.rest_rotations[c])
    _aim_bend_chains(al, G)
    return assemble_locals(al, G, np.tile(_I, (T, J, 1)))


# -- source contacts ------------------------------------------------------------------------------


def leg_joints(skeleton: Skeleton, found: Mapping[str, str]) -> dict[str, tuple[str, str, str, str | None]]:
    """``{side: (thigh, shin, foot, toes or None)}`` joint names of a skeleton, from its
    resolved bone map ``found`` (canonical -> joint name), as :func:`mocap.contacts.lock_feet`
    takes them."""
    return {s: (found[f"{s}UpperLeg"], found[f"{s}LowerLeg"], found[f"{s}Foot"], found.get(f"{s}Toes"))
            for s in _SIDES}


@dataclass(frozen=True, eq=False)
class _LegRig:
    """The sub-skeleton a leg computation needs: the root-to-thigh paths and the legs,
    without the joints between thigh, shin, foot and toes (``between``: dropped joint ->
    (kept joint above, kept joint below))."""

    skeleton: Skeleton
    keep: np.ndarray
    between: Mapping[int, tuple[int, int]]


def _leg_rig(sk: Skeleton, legs: Mapping[str, tuple]) -> _LegRig:
    keep: set[int] = set()
    between: dict[int, tuple[int, int]] = {}
    for names in legs.values():
        idx = [sk.index(n) for n in names if n is not None]
        p = idx[0]
        while p >= 0:
            keep.add(p)
            p = int(sk.parents[p])
        for lo, hi in zip(idx[:-1], idx[1:]):
            keep.add(hi)
            p = int(sk.parents[hi])
            while p != lo:
                if p < 0:
                    raise UsageError(f"leg joints {names!r} are not one parent chain in this skeleton")
                between[p] = (lo, hi)
                p = int(sk.parents[p])
    kept = np.array(sorted(keep - set(between)))
    return _LegRig(skeleton=sk.subset(kept), keep=kept, between=between)


def _leg_rotations(rotations: np.ndarray, sk: Skeleton, lr: _LegRig) -> np.ndarray:
    """Local rotations ``(T, K, 4)`` on the leg sub-skeleton: each kept joint's composed
    with those of the dropped joints above it (exact for the positions of the kept joints
    when the dropped ones are identity or twist about their collinear segment)."""
    keepset = set(lr.keep.tolist())
    out = np.empty((len(rotations), len(lr.keep), 4))
    for k, j in enumerate(lr.keep):
        q = rotations[:, j]
        p = int(sk.parents[j])
        while p >= 0 and p not in keepset:
            q = Q_mul(rotations[:, p], q)
            p = int(sk.parents[p])
        out[:, k] = q
    return out


def _leg_motion(motion: Motion, lr: _LegRig) -> Motion:
    """``motion`` on the leg sub-skeleton (see :func:`_leg_rotations`)."""
    lo = None if motion.local_offsets is None else motion.local_offsets[:, lr.keep]
    return Motion(skeleton=lr.skeleton, rotations=_leg_rotations(motion.rotations, motion.skeleton, lr),
                  root_positions=motion.root_positions, fps=motion.fps, timestamps=motion.timestamps,
                  local_offsets=lo, meta=dict(motion.meta))


def _unfold(rotations: np.ndarray, sub_rotations: np.ndarray, lr: _LegRig, sk: Skeleton,
            al: Alignment | None) -> np.ndarray:
    """Inverse of :func:`_leg_motion`: the full local rotations with the kept joints'
    edited rotations put back; the dropped joints between two kept ones take their share
    of the new relative rotation as the plan of ``al`` says (else keep theirs)."""
    L = rotations.copy()
    plan = {} if al is None else {(c.a, c.d): c for c in al.chains}
    keepset = set(lr.keep.tolist())
    for k, j in enumerate(lr.keep):
        p = int(sk.parents[j])
        if p < 0 or p in keepset:
            L[:, j] = sub_rotations[:, k]
            continue
        path = []
        while p not in keepset:
            path.append(p)
            p = int(sk.parents[p])
        path = path[::-1]
        R = sub_rotations[:, k]  # new rotation of j relative to its kept ancestor p
        ch = plan.get((p, int(j)))
        if ch is not None:
            Rs = _twist(R, ch.axis) if ch.kind == "twist" else R
            share = _qpow(Rs, 1.0 / (len(path) + 1))
            for u in path:
                L[:, u] = share
        acc = L[:, path[0]]
        for u in path[1:]:
            acc = Q_mul(acc, L[:, u])
        L[:, j] = Q_mul(Q_inv(acc), R)
    return L


def source_contacts(source: Motion, legs: Mapping[str, tuple], **kw) -> tuple[dict[str, np.ndarray], int]:
    """The source's planted foot contacts: :func:`~mocap.contacts.motion_contacts` (its
    thresholds in ``kw``) filtered by :func:`~mocap.contacts.planted_contacts`. Returns
    ``({side: (T,) bool}, segments dropped as sliding)``.

    Precondition: the source's floor is ``y = 0`` (true of Understudy's solved motions
    and of the CMU files); ``legs`` as :func:`leg_joints` gives them.
    """
    m = _leg_motion(source, _leg_rig(source.skeleton, legs))
    c = motion_contacts(m, legs=legs, **kw)
    return planted_contacts(m, c, legs=legs)


# -- pass 4: root ----------------------------------------------------------------------------------


def _sole(skeleton: Skeleton) -> float:
    """Height of the floor under a rest pose: 0 when the rest pose stands on ``y = 0``
    (its lowest point 0-5 cm up, as glTF characters are authored), else its lowest point
    (the rule of :func:`mocap.contacts.lock_feet`)."""
    P = skeleton.rest_positions()
    lo = [P[:, 1].min()] + [p[1] for p in skeleton.rest_end_sites().values()]
    lo = float(min(lo))
    return 0.0 if 0.0 <= lo <= 0.05 else lo


def _leg_length(skeleton: Skeleton, legs: Mapping[str, tuple]) -> float:
    P = skeleton.rest_positions()
    out = []
    for names in legs.values():
        a, b, c = (skeleton.index(n) for n in names[:3])
        out.append(np.linalg.norm(P[b] - P[a]) + np.linalg.norm(P[c] - P[b]))
    return float(np.mean(out))


def _foot_points(sk: Skeleton, names: tuple, P: np.ndarray, G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World foot points ``(T, k, 3)`` (ankle, toes, toe tip) and their rest heights above
    the rest floor ``(k,)``."""
    R = sk.rest_positions()
    sole = _sole(sk)
    foot = sk.index(names[2])
    toes = sk.index(names[3]) if len(names) > 3 and names[3] is not None else -1
    pts, h = [P[:, foot]], [R[foot, 1]]
    if toes >= 0:
        pts.append(P[:, toes])
        h.append(R[toes, 1])
    tip = toes if toes >= 0 else foot
    end = sk.end_sites.get(sk.names[tip])
    if end is not None:
        pts.append(P[:, tip] + quat_rotate(G[:, tip], end))
        h.append(R[tip, 1] + end[1])
    return np.stack(pts, axis=1), np.asarray(h) - sole


def root_translation(
    al: Alignment,
    source_positions: np.ndarray,
    rotations: np.ndarray,
    *,
    contacts: Mapping[str, np.ndarray],
) -> tuple[np.ndarray, dict]:
    """Pass 4: the target's root positions ``(T, 3)`` and a report ``{"scale",
    "lift_m"}``.

    Precondition: ``rotations`` ``(T, J_target, 4)`` are the target's local rotations
    (:func:`solve_rotations`), ``source_positions`` the source's FK positions, the floor is
    ``y = 0`` on both sides and ``contacts`` the source's planted contacts by side (may
    be empty). The hips follow ``k`` x the source's hips (``k`` = target / source leg
    length), lifted by one constant so the target's feet stand at their rest heights on
    the floor, median over the contact frames (over the lowest 10 % of frames without
    contacts).
    """
    sk_t, sk_s = al.target_skeleton, al.source_skeleton
    legs_t = leg_joints(sk_t, al.pairs.target_found)
    legs_s = leg_joints(sk_s, al.pairs.source_found)
    k = _leg_length(sk_t, legs_t) / _leg_length(sk_s, legs_s)
    T = len(rotations)
    lr = _leg_rig(sk_t, legs_t)
    sub = lr.skeleton
    Lsub = _leg_rotations(rotations, sk_t, lr)
    P0, _ = fk(sub.parents, sub.offsets, Lsub, np.zeros((T, 3)))
    hips = sub.index(sk_t.names[al.target_index["hips"]])
    root = k * source_positions[:, al.source_index["hips"]] - P0[:, hips]
    P, G = fk(sub.parents, sub.offsets, Lsub, root)
    gaps, masks = [], []
    for side, names in legs_t.items():
        pts, h = _foot_points(sub, names, P, G)
        gaps.append(np.min(pts[..., 1] - h, axis=1))
        m = contacts.get(side)
        masks.append(np.zeros(T, dtype=bool) if m is None else np.asarray(m, dtype=bool))
    gaps, masks = np.stack(gaps), np.stack(masks)
    if masks.any():
        gap = float(np.median(gaps[masks]))
    else:
        low = gaps.min(axis=0)
        gap = float(np.median(low[low <= np.quantile(low, 0.1)]))
    root[:, 1] -= gap
    return root, {"scale": k, "lift_m": -gap}


# -- pass 5: feet ----------------------------------------------------------------------------------


def foot_ik(motion: Motion, contacts: Mapping[str, np.ndarray], legs: Mapping[str, tuple],
            al: Alignment | None = None, **lock_kw) -> Motion:
    """Pass 5: plant the target's feet through the source's contacts.

    Precondition: ``motion`` is on the target skeleton with its root placed
    (:func:`root_translation`), ``contacts`` are the source's (:func:`source_contacts`)
    by side, ``legs`` the target's leg joints (:func:`leg_joints`). The lock runs on the
    sub-skeleton of the root-to-thigh paths and the legs (the rest of the body cannot
    move a foot), without any joints between thigh, shin, foot and toes; those take their
    share of the new rotations from the plan of ``al`` (without ``al`` they keep their
    own). ``lock_kw`` go to :func:`mocap.contacts.lock_feet`.
    """
    lr = _leg_rig(motion.skeleton, legs)
    fixed = lock_feet(_leg_motion(motion, lr), contacts, legs=legs, **lock_kw)
    return Motion(skeleton=motion.skeleton, rotations=_unfold(motion.rotations, fixed.rotations, lr,
                                                              motion.skeleton, al),
                  root_positions=fixed.root_positions, fps=motion.fps, timestamps=motion.timestamps,
                  local_offsets=motion.local_offsets, meta=fixed.meta)


# -- pass 6: hands ---------------------------------------------------------------------------------


def _hinge_local(P, G, u, l, h, rest_dir) -> np.ndarray:
    """Elbow hinge axis in the upper arm's frame: mean bend-plane normal over the bent
    frames, else ``bone x forward``'s opposite (an elbow that bends forward)."""
    a, b = P[:, l] - P[:, u], P[:, h] - P[:, l]
    x = np.cross(a, b)
    s = np.linalg.norm(x, axis=-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
    bent = s > np.sin(np.radians(10.0))
    if np.any(bent):
        n = (quat_rotate(Q_inv(G[bent, u]), _unit(x[bent])) * s[bent, None]).sum(0)
    else:
        n = np.cross(rest_dir, FORWARD)
    n = n - (n @ rest_dir) * rest_dir
    return _unit(n) if np.linalg.norm(n) > 1e-9 else _unit(np.cross(rest_dir, UP))


def _two_bone(a, b, c, t, Gu, Gl, n_local):
    """New global rotations of the upper and lower bone so the end ``c`` reaches ``t``
    (``(T, 3)`` each), bending about the hinge in its plane, and where the end gets to
    (``t`` when in reach); the end's rotation is the caller's."""
    u, w = b - a, c - b
    l1, l2 = np.linalg.norm(u, axis=-1), np.linalg.norm(w, axis=-1)
    n = quat_rotate(Gu, n_local)
    ud = _unit(u)
    n = _unit(n - np.sum(n * ud, -1, keepdims=True) * ud)
    flex0 = np.arctan2(np.sum(n * np.cross(u, w), -1), np.sum(u * w, -1))
    d = np.clip(np.linalg.norm(t - a, axis=-1), np.abs(l1 - l2) + 1e-9, (l1 + l2) * (1.0 - 1e-6))
    flex1 = np.pi - np.arccos(np.clip((l1**2 + l2**2 - d**2) / (2.0 * l1 * l2), -1.0, 1.0))
    Rk = A2Q(n * (flex1 - flex0)[:, None])
    c1 = b + quat_rotate(Rk, w)
    S = _swing(_unit(c1 - a), _unit(t - a))
    return _qmul(S, Gu), _qmul(S, _qmul(Rk, Gl)), a + quat_rotate(S, c1 - a)


def hand_ik(motion: Motion, al: Alignment, source_positions: np.ndarray) -> tuple[Motion, dict]:
    """Pass 6 (optional): move each hand to the source's hand position relative to the
    shoulder, scaled by the arm-length ratio, with two-bone IK. Returns the motion and
    ``{side: mean hand distance to its target before, after (m)}``.

    Precondition: ``motion`` is on the target skeleton (root placed, feet done);
    ``source_positions`` the source's FK positions. The hand keeps its global rotation
    (so do the fingers); only the upper and lower arm (and the plan's joints) change.
    """
    sk_t, sk_s = al.target_skeleton, al.source_skeleton
    ti, si = al.target_index, al.source_index
    Rt, Rs = sk_t.rest_positions(), sk_s.rest_positions()
    P, G = motion.fk()
    targets, report = {}, {}
    for side in _SIDES:
        u, l, h = (ti[f"{side}{b}"] for b in ("UpperArm", "LowerArm", "Hand"))
        su, sl, sh = (si[f"{side}{b}"] for b in ("UpperArm", "LowerArm", "Hand"))
        k = (np.linalg.norm(Rt[l] - Rt[u]) + np.linalg.norm(Rt[h] - Rt[l])) / (
            np.linalg.norm(Rs[sl] - Rs[su]) + np.linalg.norm(Rs[sh] - Rs[sl]))
        targets[side] = P[:, u] + k * (source_positions[:, sh] - source_positions[:, su])
        rest_dir = _unit(Rt[l] - Rt[u])
        n_local = _hinge_local(P, G, u, l, h, rest_dir)
        G[:, u], G[:, l], reached = _two_bone(P[:, u], P[:, l], P[:, h], targets[side], G[:, u], G[:, l], n_local)
        report[side] = (float(np.linalg.norm(P[:, h] - targets[side], axis=-1).mean()),
                        float(np.linalg.norm(reached - targets[side], axis=-1).mean()))
    L = assemble_locals(al, G, motion.rotations)
    out = Motion(skeleton=motion.skeleton, rotations=L, root_positions=motion.root_positions, fps=motion.fps,
                 timestamps=motion.timestamps, local_offsets=motion.local_offsets, meta=dict(motion.meta))
    return out, report


_foot_ik_pass, _hand_ik_pass = foot_ik, hand_ik  # retarget()'s keywords shadow the pass names


# -- pass 7: fingers -------------------------------------------------------------------------------


def transfer_fingers(al: Alignment, rotations: np.ndarray, source_positions: np.ndarray,
                     source_globals: np.ndarray) -> np.ndarray:
    """Pass 7: local rotations of the target's hand subtrees, copied from the source's
    fingers relative to its hand (``al.fingers``; nothing when empty).

    Precondition: ``rotations`` ``(T, J_target, 4)`` the target's local rotations; the
    source's FK arrays as for :func:`solve_rotations`. Only joints below each hand
    change; fingers the source lacks keep their local rotation (identity: rest curl).
    """
    if not al.fingers:
        return rotations
    sk = al.target_skeleton
    par = sk.parents
    L = rotations.copy()
    for side in _SIDES:
        hand = f"{side}Hand"
        mine = [c for c in al.fingers if c.startswith(side)]
        if not mine:
            continue
        Gh = _source_global(al, hand, source_positions, source_globals)
        inv_h = Q_inv(_qmul(Gh, al.rest_rotations[hand]))
        delta = {al.target_index[c]: _qmul(inv_h, _qmul(_source_global(al, c, source_positions, source_globals),
                                                         al.rest_rotations[c])) for c in mine}
        h = al.target_index[hand]
        H: dict[int, np.ndarray | None] = {h: None}  # rotation relative to the hand; None = identity
        for j in sorted(delta):
            down = []
            while j not in H:
                if j < 0:
                    raise RigError(f"finger joint {sk.names[down[0]]!r} is not below {sk.names[h]!r}")
                down.append(j)
                j = int(par[j])
            for j in reversed(down):
                Hp = H[int(par[j])]
                if j in delta:
                    L[:, j] = delta[j] if Hp is None else _qmul(Q_inv(Hp), delta[j])
                    H[j] = delta[j]
                else:
                    H[j] = L[:, j] if Hp is None else _qmul(Hp, L[:, j])
    return L


# -- the whole thing -------------------------------------------------------------------------------


@dataclass(eq=False)
class RetargetResult:
    """What :func:`retarget` returns.

    ``motion`` on the target's skeleton (``rig.skeleton``), at the source's timestamps;
    ``map_used`` canonical -> (source joint, target joint); ``notes`` what was
    approximated or dropped, one sentence each; ``timings`` seconds per pass;
    ``contacts`` the source's planted contacts by side; ``alignment`` the rest data.
    """

    motion: Motion
    map_used: dict[str, tuple[str, str]]
    notes: list[str]
    timings: dict[str, float]
    contacts: dict[str, np.ndarray] = field(default_factory=dict)
    alignment: Alignment | None = None


def retarget(
    source: Motion,
    rig: Rig | Skeleton,
    *,
    source_map: BoneMap | str | None = None,
    target_map: BoneMap | str | None = None,
    foot_ik: bool = True,
    hand_ik: bool = False,
    fingers: bool = True,
) -> RetargetResult:
    """Retarget ``source`` onto ``rig`` (a :class:`~retarget.rig.Rig` or a bare
    world-aligned :class:`Skeleton`): the passes of the module docstring, in order.

    ``source_map``/``target_map``: :class:`BoneMap`, a built-in profile name, or None to
    use the rig's own map (``rig.bonemap``) or detect one; a rig without a usable map
    raises :class:`~mocap.errors.RigError` naming the missing core bones. ``foot_ik``
    plants the feet through the source's contacts; ``hand_ik`` moves the hands to the
    source's (scaled) hand positions; ``fingers`` copies the fingers both sides have.
    """
    clock = {}
    t0 = time.perf_counter()

    def lap(name):
        nonlocal t0
        t = time.perf_counter()
        clock[name] = t - t0
        t0 = t

    if not isinstance(source, Motion):
        raise UsageError(f"retarget needs a source Motion, got {type(source).__name__}")
    if isinstance(rig, Rig):
        target = rig.skeleton
        if target_map is None:
            target_map = rig.bonemap
    elif isinstance(rig, Skeleton):
        target = rig
    else:
        raise UsageError(f"retarget needs a Rig or a Skeleton as the target, got {type(rig).__name__}")

    pairs = map_bones(source.skeleton, target, source_map=source_map, target_map=target_map)
    lap("map_bones")
    al = rest_alignment(source.skeleton, target, pairs, fingers=fingers)
    notes = list(al.notes)
    lap("rest_alignment")
    Ps, Gs = source.fk()
    lap("source_fk")
    rot = solve_rotations(al, Ps, Gs)
    lap("solve_rotations")
    legs_s = leg_joints(source.skeleton, pairs.source_found)
    contacts, dropped = source_contacts(source, legs_s) if len(source) > 1 else ({}, 0)
    if dropped:
        notes.append(f"{dropped} source contact(s) slide more than 5 cm and are not locked")
    lap("contacts")
    root, info = root_translation(al, Ps, rot, contacts=contacts)
    notes.append(f"root path scaled by {info['scale']:.3f} (leg lengths), then moved {100 * info['lift_m']:+.1f} cm "
                 "up to stand the feet on the floor")
    motion = Motion(skeleton=target, rotations=rot, root_positions=root, fps=source.fps,
                    timestamps=source.timestamps, meta={"retarget_source": source.meta.get("source")})
    lap("root_translation")
    legs_t = leg_joints(target, pairs.target_found)
    if foot_ik and any(np.any(m) for m in contacts.values()):
        motion = _foot_ik_pass(motion, contacts, legs_t, al)
        fl = motion.meta.get("foot_lock", {})
        notes.append(f"feet locked through {sum(len(contact_segments(m)) for m in contacts.values())} contact(s); "
                     f"root lowered up to {100 * fl.get('root_lowered_max_m', 0.0):.1f} cm, lifted up to "
                     f"{100 * fl.get('root_lifted_max_m', 0.0):.1f} cm")
    lap("foot_ik")
    if hand_ik:
        motion, rep = _hand_ik_pass(motion, al, Ps)
        notes.append("hands moved to the source's scaled hand positions: " + ", ".join(
            f"{s} {100 * v[0]:.1f} cm off before" for s, v in rep.items()))
    lap("hand_ik")
    if al.fingers:
        motion = Motion(skeleton=target, rotations=transfer_fingers(al, motion.rotations, Ps, Gs),
                        root_positions=motion.root_positions, fps=motion.fps, timestamps=motion.timestamps,
                        meta=motion.meta)
    lap("fingers")
    meta = dict(motion.meta)
    meta.update(retarget={"source_map": pairs.source_map.name, "target_map": pairs.target_map.name})
    motion.meta = meta
    return RetargetResult(motion=motion, map_used=dict(pairs.pairs), notes=notes, timings=clock,
                          contacts=contacts, alignment=al)
