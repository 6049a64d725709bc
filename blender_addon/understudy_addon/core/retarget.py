"""Retargeting inside Blender: a source :class:`~.formats.Motion` onto a target skeleton
given as rest joint positions, numpy only.

The maths is ``retarget.retarget``'s world-space transfer (``rest_alignment`` and
``solve_rotations``; read that module's docstring for the derivation). Both skeletons are
treated as **world-aligned**: a joint's global rotation ``G`` turns its rest
neighbourhood rigidly in the world. For a canonical bone ``c`` mapped on both sides with
rest bone vectors ``d_s`` (source) and ``d_t`` (target), from the joint to the next
canonical joint both sides map,

    G_t(c, t) = S(c, t) G_s(c, t) A_c,      A_c d_t = d_s

* ``A_hips``: the frame (hip line right -> left thigh, world up) of the target onto the
  source's, so an upright target stays upright;
* forearm and hand: the frame (bone vector, palm line little -> index knuckles) when
  both sides map those fingers, so the palm faces where the source's palm faces;
* any other bone: parallel transport, ``A_c = swing(A_p d_t -> d_s) A_p`` with ``p`` its
  nearest mapped canonical ancestor (a T-pose source onto an A-pose target turns each
  arm about the forward axis); the head takes the turn about +Y between the two rigs'
  facings (hip line about world up), so the face looks where the source's looks however
  differently the necks lean; any other bone without a vector (toes, ...) takes ``A_p``;
* ``S(c, t)``: the swing from ``G_s d_s`` onto the source's actual segment (joint to tail)
  at frame ``t``: identity when the source has no joints between the two, otherwise the
  target follows the segment through unmapped source joints (cgspeed's ``lowerneck``).

Target bones not in the map keep their rest pose relative to their parent (identity local
rotation). The hips follow the source's hips scaled by the ratio of leg lengths (thigh +
shin, target / source), lifted by one constant so the target's ankles and toes stand at
their rest heights above ``y = 0`` (median over the 10 % of frames where the feet are lowest).

Not done here (``understudy retarget`` does them): foot and hand IK, equal-share bending
of extra spine bones and twist segments, finger transfer relative to the hand after IK.
The fingers are driven like any other mapped bone (the same result without hand IK).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import quat
from .bonemaps import canonical_tree
from .errors import RigError
from .formats import Motion

_SIDES = ("left", "right")


def _tails() -> dict[str, tuple[str, ...]]:
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


@dataclass
class Target:
    """A target skeleton: ``names`` ``(J,)``, ``parents`` ``(J,)`` (-1 for roots, parents
    first), ``rest`` world rest joint (bone head) positions ``(J, 3)`` in metres, +Y up."""

    names: tuple[str, ...]
    parents: np.ndarray
    rest: np.ndarray


@dataclass
class Result:
    """``globals`` ``(T, J, 4)``: each target joint's world rotation relative to its rest
    (identity = rest pose); ``hips`` ``(T, 3)`` world position of the target's hips joint;
    ``hips_index``; ``pairs`` canonical -> (source joint, target joint); ``placed`` world
    positions ``(T, 3)`` of *detached* mapped joints by index (see :func:`retarget`);
    ``rest_rotations`` canonical -> ``A`` ``(4,)``; ``scale`` the leg
    ratio; ``notes`` one sentence each."""

    globals: np.ndarray
    hips: np.ndarray
    hips_index: int
    pairs: dict[str, tuple[str, str]]
    placed: dict[int, np.ndarray]
    rest_rotations: dict[str, np.ndarray]
    scale: float
    notes: list[str]


def _frame_rotation(p_t, s_t, p_s, s_s) -> np.ndarray | None:
    """The rotation taking frame (primary ``p_t``, secondary ``s_t``) onto ``(p_s, s_s)``;
    None when a secondary is within ~12 deg of its primary."""
    def frame(p, s):
        p = quat.unit(np.asarray(p, dtype=float))
        s = quat.unit(s - (s @ p) * p)
        return np.stack([p, s, np.cross(p, s)], axis=1)

    for p, q in ((p_t, s_t), (p_s, s_s)):
        if np.linalg.norm(np.cross(quat.unit(np.asarray(p, float)), quat.unit(np.asarray(q, float)))) <= 0.2:
            return None
    return quat.from_matrix(frame(p_s, s_s) @ frame(p_t, s_t).T)


def _palm(c: str, have) -> tuple[str, str] | None:
    """The palm line (knuckle -> knuckle) both sides map for a forearm or hand, if any."""
    side = "left" if c.startswith("left") else "right"
    for a, b in (("Little", "Index"), ("Ring", "Index"), ("Little", "Middle")):
        if f"{side}{a}Proximal" in have and f"{side}{b}Proximal" in have:
            return f"{side}{a}Proximal", f"{side}{b}Proximal"
    return None


def _leg_length(rest: np.ndarray, idx: dict[str, int]) -> float:
    out = []
    for s in _SIDES:
        a, b, c = (idx[f"{s}{n}"] for n in ("UpperLeg", "LowerLeg", "Foot"))
        out.append(np.linalg.norm(rest[b] - rest[a]) + np.linalg.norm(rest[c] - rest[b]))
    return float(np.mean(out))


def retarget(source: Motion, source_found: dict[str, str], target: Target, target_found: dict[str, str]) -> Result:
    """The target's world rotations and hips path for every frame of ``source``.

    ``source_found``/``target_found``: canonical -> joint name, as resolved by a bone map
    (both must hold the core bones; :class:`RigError` otherwise)."""
    canon, cparent = canonical_tree()
    pairs = {c: (source_found[c], target_found[c]) for c in canon if c in source_found and c in target_found}
    for c in ("hips", "leftUpperLeg", "rightUpperLeg", "leftLowerLeg", "rightLowerLeg", "leftFoot", "rightFoot"):
        if c not in pairs:
            raise RigError(f"canonical bone {c!r} is not mapped on both the source and the armature")
    si = {c: source.index(s) for c, (s, _) in pairs.items()}
    t_index = {n: i for i, n in enumerate(target.names)}
    ti = {c: t_index[t] for c, (_, t) in pairs.items()}
    Rs, Rt = source.rest_positions(), target.rest
    tails = _tails()
    notes = []

    # rest alignment A_c and bone vectors
    A: dict[str, np.ndarray] = {}
    vec: dict[str, tuple[str, np.ndarray]] = {}  # c -> (tail, source rest unit vector)
    for c in pairs:
        p = cparent.get(c)
        while p is not None and p not in pairs:
            p = cparent.get(p)
        Ap = A[p] if p is not None else quat.IDENTITY
        tail = next((x for x in tails.get(c, ()) if x in pairs and min(
            np.linalg.norm(Rs[si[x]] - Rs[si[c]]), np.linalg.norm(Rt[ti[x]] - Rt[ti[c]])) > 1e-3), None)
        if c == "hips":
            up = np.array([0.0, 1.0, 0.0])
            hip_t = Rt[ti["leftUpperLeg"]] - Rt[ti["rightUpperLeg"]]
            hip_s = Rs[si["leftUpperLeg"]] - Rs[si["rightUpperLeg"]]
            A[c] = _frame_rotation(hip_t, up, hip_s, up)
            if A[c] is None:
                raise RigError("the hip line is vertical in the rest pose: the rig does not stand upright")
            facing = _frame_rotation(up, hip_t, up, hip_s)  # the turn about +Y between the facings
            continue
        if tail is None:  # the head looks where the source's looks, not where the neck leans
            A[c] = facing if c == "head" else Ap
            continue
        ds, dt = quat.unit(Rs[si[tail]] - Rs[si[c]]), quat.unit(Rt[ti[tail]] - Rt[ti[c]])
        palm = _palm(c, pairs) if c.endswith(("LowerArm", "Hand")) else None
        q = None
        if palm is not None:  # forearm and hand: the palm faces where the source's faces
            q = _frame_rotation(dt, Rt[ti[palm[1]]] - Rt[ti[palm[0]]], ds, Rs[si[palm[1]]] - Rs[si[palm[0]]])
        A[c] = q if q is not None else quat.mul(quat.swing(quat.rotate(Ap, dt), ds), Ap)
        vec[c] = (tail, ds)

    # per frame
    Ps, Gs = source.fk()
    T, J = source.n_frames, len(target.names)
    G = np.empty((T, J, 4))
    done = np.zeros(J, dtype=bool)
    for c, j in ti.items():
        g = quat.mul(Gs[:, si[c]], A[c])
        if c in vec:
            tail, ds = vec[c]
            seg = quat.unit(Ps[:, si[tail]] - Ps[:, si[c]])
            g = quat.mul(quat.swing(quat.rotate(Gs[:, si[c]], ds), seg), g)
        G[:, j] = g
        done[j] = True
    for j in range(J):  # parents first: unmapped joints move rigidly with their parent
        if not done[j]:
            p = int(target.parents[j])
            G[:, j] = G[:, p] if p >= 0 else quat.IDENTITY

    # root path
    k = _leg_length(Rt, ti) / _leg_length(Rs, si)
    h = ti["hips"]
    hips = k * Ps[:, si["hips"]]
    pts, rest_h = [], []
    for s in _SIDES:
        chain = [ti[f"{s}{n}"] for n in ("UpperLeg", "LowerLeg", "Foot")]
        toes = ti.get(f"{s}Toes")
        path = [h] + chain + ([toes] if toes is not None else [])
        P = np.broadcast_to(hips, (T, 3)).copy()
        for a, b in zip(path[:-1], path[1:]):
            # joints between a and b (unmapped) move with a: b's offset from a turns with G[a]
            P = P + quat.rotate(G[:, a], Rt[b] - Rt[a])
            if b == chain[-1] or b == toes:
                pts.append(P.copy())
                rest_h.append(Rt[b, 1])
    gaps = np.min(np.stack([p[:, 1] - r for p, r in zip(pts, rest_h)]), axis=0)
    low = gaps[gaps <= np.quantile(gaps, 0.1)]
    lift = -float(np.median(low))
    hips[:, 1] += lift
    notes.append(f"root path scaled by {k:.3f} (leg lengths), lifted {100 * lift:+.1f} cm to stand on the floor")
    placed = _detached(target, ti, G, hips, cparent, pairs, notes)
    return Result(globals=G, hips=hips, hips_index=h, pairs=pairs, placed=placed, rest_rotations=A, scale=k,
                  notes=notes)


def _detached(target: Target, ti: dict[str, int], G: np.ndarray, hips: np.ndarray, cparent, pairs,
              notes: list[str]) -> dict[int, np.ndarray]:
    """World positions ``(T, 3)`` of the mapped target joints that do not hang below their
    canonical parent's joint in the rig (RobotExpressive's feet are IK bones under the
    root): where the canonical chain puts them, ``P(c) = P(p) + G(p) (rest(c) - rest(p))``.
    Only joints whose rig ancestors are all unmapped (they stay in the reference pose) are
    placed; others are noted and keep their parent-relative position."""
    mapped = set(ti.values())
    P = {"hips": hips}
    out = {}
    for c in pairs:
        if c == "hips":
            continue
        p = cparent.get(c)
        while p is not None and p not in pairs:
            p = cparent.get(p)
        if p is None:
            continue
        jp, jc = ti[p], ti[c]
        P[c] = P[p] + quat.rotate(G[:, jp], target.rest[jc] - target.rest[jp])
        anc, a = [], int(target.parents[jc])
        while a >= 0:
            anc.append(a)
            a = int(target.parents[a])
        if jp in anc:
            continue
        if any(a in mapped for a in anc):
            notes.append(f"{target.names[jc]!r} is not below {target.names[jp]!r} in the rig and cannot be placed")
            continue
        out[jc] = P[c]
        notes.append(f"{target.names[jc]!r} is not below {target.names[jp]!r} in the rig (an IK bone?): "
                     "its location is keyed where the chain puts it")
    return out
