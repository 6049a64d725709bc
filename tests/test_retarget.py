"""retarget.retarget: the CMU clips (and a canonical motion) onto Mixamo-, UE5- and
Rigify-named rigs built here from their published hierarchies, and onto the shared
characters. Checked physically: bone directions follow the source, planted feet stay put
and above the floor, no joint flips the source does not have, bone lengths are the rig's,
the skinned hand goes where the hand joint goes."""

from __future__ import annotations

import numpy as np
import pytest

from mocap.bvh import load_bvh
from mocap.contacts import contact_segments
from mocap.errors import RigError, UsageError
from mocap.glossary import A2Q, R2Q, Q_inv, Q_mul
from mocap.motion import Motion, Skeleton
from mocap.skeleton import canonical_skeleton
from retarget import gltf
from retarget.bonemap import builtin_profiles
from retarget.retarget import (
    foot_ik,
    hand_ik,
    leg_joints,
    map_bones,
    rest_alignment,
    retarget,
    root_translation,
    solve_rotations,
    source_contacts,
    transfer_fingers,
)
from retarget.rig import (
    load_rig,
    motion_to_node_rotations,
    rig_from_gltf,
    root_to_node_translations,
    skin_vertices,
)

from .conftest import shared_file

# -- test rigs from the published hierarchies ------------------------------------------------------


def _mirror(name: str) -> str:
    for a, b in (("Left", "Right"), ("left", "right"), ("_l", "_r"), (".L", ".R"), ("_L", "_R")):
        if a in name:
            return name.replace(a, b)
    return name


def build_skeleton(spec: list[tuple[str, str | None, tuple[float, float, float]]], *, mirror: bool = True) -> Skeleton:
    """A skeleton from ``(name, parent, offset from the parent)`` rows, parents first;
    rows naming a left-side joint are mirrored (x negated) into the right side."""
    rows = list(spec)
    if mirror:
        rows += [(_mirror(n), _mirror(p) if p else p, (-o[0], o[1], o[2])) for n, p, o in spec if _mirror(n) != n]
    names = [r[0] for r in rows]
    order: list[int] = []
    placed: set[str] = set()
    while len(order) < len(rows):  # parents first
        for k, (n, p, _) in enumerate(rows):
            if n not in placed and (p is None or p in placed):
                order.append(k)
                placed.add(n)
    names = [rows[k][0] for k in order]
    parents = [-1 if rows[k][1] is None else names.index(rows[k][1]) for k in order]
    offsets = [rows[k][2] for k in order]
    return Skeleton(names, np.array(parents), np.array(offsets, dtype=float))


def _along(v, length):
    v = np.asarray(v, dtype=float)
    return tuple(length * v / np.linalg.norm(v))


def mixamo_skeleton() -> Skeleton:
    """Mixamo auto-rig (Y Bot proportions, metres), T-pose, with its end bones."""
    p = "mixamorig:"
    s = [
        ("Hips", None, (0.0, 1.00, 0.0)),
        ("Spine", "Hips", (0.0, 0.10, 0.01)), ("Spine1", "Spine", (0.0, 0.12, 0.0)),
        ("Spine2", "Spine1", (0.0, 0.13, 0.0)), ("Neck", "Spine2", (0.0, 0.15, 0.0)),
        ("Head", "Neck", (0.0, 0.10, 0.02)), ("HeadTop_End", "Head", (0.0, 0.18, 0.0)),
        ("LeftShoulder", "Spine2", (0.06, 0.09, 0.0)), ("LeftArm", "LeftShoulder", (0.12, 0.0, 0.0)),
        ("LeftForeArm", "LeftArm", (0.28, 0.0, 0.0)), ("LeftHand", "LeftForeArm", (0.27, 0.0, 0.0)),
        ("LeftUpLeg", "Hips", (0.09, -0.06, 0.0)), ("LeftLeg", "LeftUpLeg", (0.0, -0.44, 0.0)),
        ("LeftFoot", "LeftLeg", (0.0, -0.42, 0.0)), ("LeftToeBase", "LeftFoot", (0.0, -0.06, 0.13)),
        ("LeftToe_End", "LeftToeBase", (0.0, 0.0, 0.08)),
    ]
    base = {"Thumb": ((0.03, -0.01, 0.03), (1.0, 0.0, 0.7)), "Index": ((0.095, 0.0, 0.025), (1, 0, 0)),
            "Middle": ((0.097, 0.0, 0.005), (1, 0, 0)), "Ring": ((0.09, 0.0, -0.015), (1, 0, 0)),
            "Pinky": ((0.08, 0.0, -0.035), (1, 0, 0))}
    for f, (o, d) in base.items():
        s.append((f"LeftHand{f}1", "LeftHand", o))
        for k, length in ((2, 0.035), (3, 0.025), (4, 0.02)):
            s.append((f"LeftHand{f}{k}", f"LeftHand{f}{k - 1}", _along(d, length)))
    sk = build_skeleton(s)
    return sk.rename(lambda n: p + n)


def _ue5_rows() -> list[tuple[str, str | None, tuple[float, float, float]]]:
    h = np.array([0.70, -0.70, 0.12]) / np.linalg.norm([0.70, -0.70, 0.12])  # A-pose hand direction
    k = np.array([0.0, 0.0, 1.0]) - h[2] * h
    k /= np.linalg.norm(k)  # across the knuckles, towards the thumb side
    rows = [
        ("root", None, (0.0, 0.0, 0.0)),
        ("pelvis", "root", (0.0, 0.96, -0.01)),
        ("spine_01", "pelvis", (0.0, 0.05, -0.01)), ("spine_02", "spine_01", (0.0, 0.10, 0.0)),
        ("spine_03", "spine_02", (0.0, 0.10, 0.01)), ("spine_04", "spine_03", (0.0, 0.09, 0.01)),
        ("spine_05", "spine_04", (0.0, 0.10, 0.0)),
        ("neck_01", "spine_05", (0.0, 0.12, 0.01)), ("neck_02", "neck_01", (0.0, 0.05, 0.01)),
        ("head", "neck_02", (0.0, 0.05, 0.0)),
        ("clavicle_l", "spine_05", (0.03, 0.03, 0.02)), ("upperarm_l", "clavicle_l", (0.15, -0.01, -0.03)),
        ("upperarm_twist_01_l", "upperarm_l", _along((0.72, -0.69, -0.03), 0.14)),
        ("upperarm_twist_02_l", "upperarm_l", _along((0.72, -0.69, -0.03), 0.07)),
        ("lowerarm_l", "upperarm_l", _along((0.72, -0.69, -0.03), 0.28)),
        ("lowerarm_twist_01_l", "lowerarm_l", _along((0.70, -0.70, 0.15), 0.13)),
        ("hand_l", "lowerarm_l", _along((0.70, -0.70, 0.15), 0.26)),
        ("thigh_l", "pelvis", (0.09, -0.03, 0.0)), ("thigh_twist_01_l", "thigh_l", (0.005, -0.21, 0.005)),
        ("calf_l", "thigh_l", (0.01, -0.43, 0.01)), ("calf_twist_01_l", "calf_l", (0.005, -0.21, -0.02)),
        ("foot_l", "calf_l", (0.01, -0.42, -0.04)), ("ball_l", "foot_l", (0.0, -0.065, 0.14)),
        ("ik_foot_root", "root", (0.0, 0.0, 0.0)), ("ik_foot_l", "ik_foot_root", (0.11, 0.08, -0.04)),
        ("ik_hand_root", "root", (0.0, 0.0, 0.0)), ("ik_hand_gun", "ik_hand_root", (-0.6, 1.0, 0.1)),
        ("ik_hand_l", "ik_hand_gun", (1.2, 0.0, 0.0)),
    ]
    for f, (along, across) in {"index": (0.09, 0.022), "middle": (0.095, 0.004), "ring": (0.088, -0.014),
                               "pinky": (0.078, -0.03)}.items():
        rows.append((f"{f}_metacarpal_l", "hand_l", tuple(0.03 * h + 0.6 * across * k)))
        rows.append((f"{f}_01_l", f"{f}_metacarpal_l", tuple((along - 0.03) * h + 0.4 * across * k)))
        rows.append((f"{f}_02_l", f"{f}_01_l", tuple(0.04 * h)))
        rows.append((f"{f}_03_l", f"{f}_02_l", tuple(0.025 * h)))
    t = (h + k) / np.linalg.norm(h + k)
    rows += [("thumb_01_l", "hand_l", tuple(0.02 * h + 0.025 * k - 0.01 * np.cross(h, k))),
             ("thumb_02_l", "thumb_01_l", tuple(0.035 * t)), ("thumb_03_l", "thumb_02_l", tuple(0.03 * t))]
    return rows


def ue5_skeleton() -> Skeleton:
    """Unreal Engine 5 mannequin (Manny): A-pose, five spine bones, two neck bones,
    metacarpals, twist and IK helper bones; root on the floor."""
    rows = _ue5_rows()
    sk = build_skeleton([r for r in rows if r[0] not in ("ik_hand_gun", "ik_hand_l")])
    # the IK hand bones are not mirrored: add them as they are
    extra = [("ik_hand_gun", "ik_hand_root", (-0.6, 1.0, 0.1)), ("ik_hand_l", "ik_hand_gun", (1.2, 0.0, 0.0)),
             ("ik_hand_r", "ik_hand_gun", (0.0, 0.0, 0.0))]
    names = list(sk.names) + [e[0] for e in extra]
    parents = list(sk.parents) + [names.index(e[1]) for e in extra]
    offsets = np.vstack([sk.offsets, [e[2] for e in extra]])
    return Skeleton(names, np.array(parents), offsets)


def rolled_rig(sk: Skeleton, *, seed: int = 3):
    """A :class:`~retarget.rig.Rig` for ``sk`` whose nodes carry their own rest
    orientations, Unreal-style: each bone's local +X along the bone (towards its first
    child; right-side bones point -X down the bone) with an arbitrary roll about it."""
    rng = np.random.default_rng(seed)
    P = sk.rest_positions()
    J = len(sk)
    R = np.empty((J, 3, 3))
    for j in range(J):
        kids = sk.children(j)
        d = P[kids[0]] - P[j] if kids else P[j] - P[sk.parents[j]] if j else np.array([0.0, 1.0, 0.0])
        if np.linalg.norm(d) < 1e-6:
            d = np.array([0.0, 1.0, 0.0])
        x = d / np.linalg.norm(d) * (-1.0 if sk.names[j].endswith("_r") else 1.0)
        ref = np.array([0.0, 0.0, 1.0]) if abs(x[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
        z = ref - (ref @ x) * x
        z /= np.linalg.norm(z)
        a = rng.uniform(-np.pi, np.pi)  # roll
        z = np.cos(a) * z + np.sin(a) * np.cross(x, z)
        R[j] = np.stack([x, np.cross(z, x), z], axis=1)
    Q = R2Q(R)
    doc = gltf.GltfDocument(extra={"asset": {"version": "2.0"}})
    for j, name in enumerate(sk.names):
        p = sk.parents[j]
        if p < 0:
            t, q = P[j], Q[j]
        else:
            t = R[p].T @ (P[j] - P[p])
            q = R2Q(R[p].T @ R[j])
        doc.nodes.append(gltf.Node(name=name, children=[int(c) for c in sk.children(j)], translation=t, rotation=q))
    doc.scenes, doc.scene = [{"nodes": [0]}], 0
    return rig_from_gltf(doc, extra_joints=list(range(J)))


def rigify_skeleton() -> Skeleton:
    """Blender Rigify's deform bones (DEF-*) as exported for a game engine: limbs split
    in two segments (``.001`` twist halves), palm bones, arms about 14 deg below level."""
    up = _along((0.97, -0.24, 0.0), 0.14)
    fore = _along((0.97, -0.24, 0.05), 0.13)
    s = [
        ("DEF-spine", None, (0.0, 1.0, 0.02)), ("DEF-spine.001", "DEF-spine", (0.0, 0.11, -0.02)),
        ("DEF-spine.002", "DEF-spine.001", (0.0, 0.12, -0.01)), ("DEF-spine.003", "DEF-spine.002", (0.0, 0.14, 0.0)),
        ("DEF-spine.004", "DEF-spine.003", (0.0, 0.16, 0.01)), ("DEF-spine.005", "DEF-spine.004", (0.0, 0.05, 0.01)),
        ("DEF-spine.006", "DEF-spine.005", (0.0, 0.05, 0.0)),
        ("DEF-pelvis.L", "DEF-spine", (0.0, 0.0, 0.0)), ("DEF-breast.L", "DEF-spine.003", (0.1, 0.0, 0.1)),
        ("DEF-shoulder.L", "DEF-spine.003", (0.02, 0.12, 0.03)),
        ("DEF-upper_arm.L", "DEF-shoulder.L", (0.16, -0.01, -0.04)),
        ("DEF-upper_arm.L.001", "DEF-upper_arm.L", up), ("DEF-forearm.L", "DEF-upper_arm.L.001", up),
        ("DEF-forearm.L.001", "DEF-forearm.L", fore), ("DEF-hand.L", "DEF-forearm.L.001", fore),
        ("DEF-thigh.L", "DEF-spine", (0.1, -0.05, 0.0)), ("DEF-thigh.L.001", "DEF-thigh.L", (0.0, -0.225, 0.005)),
        ("DEF-shin.L", "DEF-thigh.L.001", (0.0, -0.225, 0.005)), ("DEF-shin.L.001", "DEF-shin.L", (0.0, -0.21, -0.02)),
        ("DEF-foot.L", "DEF-shin.L.001", (0.0, -0.21, -0.02)), ("DEF-toe.L", "DEF-foot.L", (0.0, -0.05, 0.13)),
    ]
    fingers = {"index": (0, 0.025), "middle": (1, 0.005), "ring": (2, -0.015), "pinky": (3, -0.033)}
    for f, (k, z) in fingers.items():
        palm = f"DEF-palm.0{k + 1}.L"
        s.append((palm, "DEF-hand.L", (0.01, 0.0, 0.5 * z)))
        s.append((f"DEF-f_{f}.01.L", palm, (0.075, -0.005, 0.5 * z)))
        s.append((f"DEF-f_{f}.02.L", f"DEF-f_{f}.01.L", (0.04, -0.003, 0.0)))
        s.append((f"DEF-f_{f}.03.L", f"DEF-f_{f}.02.L", (0.025, -0.002, 0.0)))
    s += [("DEF-thumb.01.L", "DEF-palm.01.L", (0.01, -0.01, 0.02)),
          ("DEF-thumb.02.L", "DEF-thumb.01.L", _along((1, -0.2, 0.8), 0.04)),
          ("DEF-thumb.03.L", "DEF-thumb.02.L", _along((1, -0.2, 0.6), 0.03))]
    return build_skeleton(s)


# -- sources ------------------------------------------------------------------------------------------

_CACHE: dict[str, object] = {}


def cached(key, make):
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def source(name: str) -> Motion:
    """The CMU clips at 30 fps (the salsa without its T-pose start), and a canonical
    motion: the walk on the canonical skeleton with the fingers curling."""
    def make():
        if name == "canonical":
            walk = source("walk")
            m = retarget(walk, canonical_skeleton()).motion
            sk = m.skeleton
            Q = m.rotations.copy()
            t = m.timestamps - m.timestamps[0]
            curl = 0.5 * (1 - np.cos(2 * np.pi * t / 2.0)) * np.radians(70.0)
            for j, n in enumerate(sk.names):
                if any(f in n for f in ("Index", "Middle", "Ring", "Little")):
                    # fingers point along +-X in the T-pose; they curl down, towards the palm
                    axis = np.array([0.0, 0.0, -1.0 if n.startswith("left") else 1.0])
                    Q[:, j] = A2Q(curl[:, None] * axis)
            return Motion(skeleton=sk, rotations=Q, root_positions=m.root_positions, fps=m.fps)
        file = {"walk": "cmu_131_01_walk.bvh", "hop": "cmu_131_03_hop.bvh",
                "salsa": "cmu_60_10_salsa_scaled.bvh"}[name]
        m = load_bvh(shared_file(f"mocap/{file}")).resample(30.0)
        return m.slice(5) if name == "salsa" else m
    return cached(("source", name), make)


def target(name: str):
    def make():
        if name == "mixamo":
            return mixamo_skeleton()
        if name == "ue5":
            return rolled_rig(ue5_skeleton())
        if name == "rigify":
            return rigify_skeleton()
        file = {"mh_cmu31": "mh_male_casual_cmu31.glb", "mh_game53": "mh_male_dark_game53.glb",
                "vrm": "VRMC_materials_mtoon_UV_Animation_Test.vrm"}[name]
        return load_rig(shared_file(f"characters/{file}"))
    return cached(("target", name), make)


def result(src: str, tgt: str, **kw):
    key = ("result", src, tgt, tuple(sorted(kw.items())))
    return cached(key, lambda: retarget(source(src), target(tgt), **kw))


def skeleton_of(t) -> Skeleton:
    return t if isinstance(t, Skeleton) else t.skeleton


SOURCES = ["walk", "hop", "salsa", "canonical"]
TARGETS = ["mixamo", "ue5", "rigify", "mh_cmu31", "mh_game53", "vrm"]


# -- independent measures -----------------------------------------------------------------------------

_CHAINS = (
    ["spine", "chest", "upperChest", "neck", "head"],
    *([f"{s}Shoulder", f"{s}UpperArm", f"{s}LowerArm", f"{s}Hand", f"{s}MiddleProximal"] for s in ("left", "right")),
    *([f"{s}UpperLeg", f"{s}LowerLeg", f"{s}Foot", f"{s}Toes"] for s in ("left", "right")),
    *([f"{s}{f}{p}" for p in ("Metacarpal", "Proximal", "Intermediate", "Distal")]
      for s in ("left", "right") for f in ("Thumb", "Index", "Middle", "Ring", "Little")),
)


def bone_segments(map_used: dict) -> list[tuple[str, str]]:
    """(head, tail) canonical pairs to compare: the hip line, and consecutive mapped
    joints along each canonical chain."""
    segs = [("rightUpperLeg", "leftUpperLeg")]
    for chain in _CHAINS:
        present = [c for c in chain if c in map_used]
        segs += list(zip(present[:-1], present[1:]))
    return segs


def direction_errors(src: Motion, res) -> dict[str, tuple[float, float]]:
    """Per bone segment: (mean, max) over frames of the angle (deg) between the source's
    and the target's world direction, segments at least 1 mm long on both rigs."""
    Ps, Pt = src.positions(), res.motion.positions()
    ss, ts = src.skeleton, res.motion.skeleton
    out = {}
    for h, t in bone_segments(res.map_used):
        (sh, th), (st, tt) = res.map_used[h], res.map_used[t]
        a = Ps[:, ss.index(st)] - Ps[:, ss.index(sh)]
        b = Pt[:, ts.index(tt)] - Pt[:, ts.index(th)]
        if min(np.linalg.norm(ss.rest_positions()[ss.index(st)] - ss.rest_positions()[ss.index(sh)]),
               np.linalg.norm(ts.rest_positions()[ts.index(tt)] - ts.rest_positions()[ts.index(th)])) < 1e-3:
            continue
        cos = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
        ang = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
        out[f"{h}->{t}"] = (float(ang.mean()), float(ang.max()))
    return out


def jumps_deg(Q: np.ndarray) -> np.ndarray:
    """Frame-to-frame rotation angles (deg) of ``(T, ..., 4)`` rotations."""
    d = Q_mul(Q_inv(Q[:-1]), Q[1:])
    return np.degrees(2.0 * np.arccos(np.clip(np.abs(d[..., 0]), 0.0, 1.0)))


# -- the passes, per rig ------------------------------------------------------------------------------


@pytest.mark.parametrize("tgt", TARGETS)
@pytest.mark.parametrize("src", SOURCES)
def test_bone_directions_follow_the_source(src, tgt):
    res = result(src, tgt, foot_ik=False)
    err = direction_errors(source(src), res)
    assert len(err) >= 14, err  # trunk, both arms and legs at least
    worst = max(err, key=lambda k: err[k][1])
    assert err[worst][1] < 5.0, (worst, err[worst])
    assert np.mean([e[0] for e in err.values()]) < 1.0
    # with the feet locked, everything above the legs still follows
    locked = direction_errors(source(src), result(src, tgt))
    upper = {k: v for k, v in locked.items() if "Leg" not in k and "Foot" not in k and "Toes" not in k}
    assert max(v[1] for v in upper.values()) < 5.0


@pytest.mark.parametrize("tgt", TARGETS)
@pytest.mark.parametrize("src", ["walk", "hop", "salsa"])
def test_planted_feet_stay_put_and_above_the_floor(src, tgt):
    res = result(src, tgt)
    m = res.motion
    legs = leg_joints(m.skeleton, res.alignment.pairs.target_found)
    P = m.positions()
    pts = {side: P[:, [m.skeleton.index(n) for n in leg[2:] if n is not None]] for side, leg in legs.items()}
    n = 0
    for side, mask in res.contacts.items():
        for s, e in contact_segments(mask):
            seg = pts[side][s:e]
            drift = np.linalg.norm(seg - seg.mean(axis=0), axis=-1).max()
            assert drift < 0.01, (side, s, e, drift)
            n += 1
    assert n >= 3
    lowest = min(p[..., 1].min() for p in pts.values())
    assert lowest >= -1e-3
    # and on the floor, not floating: in a contact some foot point (heel strike: the
    # ankle; on the ball: the toes) comes down to about its own rest height. The source's
    # own clearance varies by +-2 cm from contact to contact, hence the margins.
    R = m.skeleton.rest_positions()
    clear = []
    for side, mask in res.contacts.items():
        rest_h = np.array([R[m.skeleton.index(n), 1] for n in legs[side][2:] if n is not None])
        clear += [(pts[side][s:e, :, 1] - rest_h).min() for s, e in contact_segments(mask)]
    assert max(clear) < 0.03 and np.median(clear) < 0.01, clear


@pytest.mark.parametrize("tgt", TARGETS)
@pytest.mark.parametrize("src", SOURCES)
def test_no_flips_the_source_does_not_have(src, tgt):
    res = result(src, tgt)
    _, Gs = source(src).fk()
    _, Gt = res.motion.fk()
    for c, (sn, tn) in res.map_used.items():
        js = jumps_deg(Gs[:, source(src).skeleton.index(sn)])
        jt = jumps_deg(Gt[:, res.motion.skeleton.index(tn)])
        new = (jt > 30.0) & (jt > js + 15.0)
        assert not new.any(), (c, np.flatnonzero(new)[:5], jt[new][:5], js[new][:5])
    # joints the map does not name (shares, helpers) turn smoothly too
    unmapped = [j for j, n in enumerate(res.motion.skeleton.names) if n not in {t for _, t in res.map_used.values()}]
    js_all = jumps_deg(Gs).max(axis=1)
    jl = jumps_deg(res.motion.rotations[:, unmapped])
    assert np.all((jl <= 30.0) | (jl <= js_all[:, None] + 1e-6))


@pytest.mark.parametrize("tgt", TARGETS)
def test_bone_lengths_are_the_rigs(tgt):
    res = result("hop", tgt)
    sk = skeleton_of(target(tgt))
    assert res.motion.skeleton is sk
    P = res.motion.positions()
    L = np.linalg.norm(P[:, 1:] - P[:, sk.parents[1:]], axis=-1)
    rest = np.linalg.norm(sk.offsets[1:], axis=-1)
    assert np.abs(L - rest).max() < 1e-5  # 0.01 mm
    assert res.motion.local_offsets is None


def test_the_maps_used_pair_what_both_sides_have():
    res = result("walk", "mh_game53")
    assert res.alignment.pairs.source_map.name == "cmu_cgspeed"
    assert res.alignment.pairs.target_map.name == "ue5_mannequin"
    assert res.map_used["leftUpperArm"] == ("LeftShoulder", "upperarm_l")  # cgspeed's shifted names
    assert res.map_used["chest"] == ("Chest", "spine_03")
    assert "upperChest" not in res.map_used  # the game rig has three spine bones
    assert "upperChest" in res.alignment.pairs.source_only
    assert set(res.timings) >= {"map_bones", "rest_alignment", "solve_rotations", "root_translation", "foot_ik",
                                "hand_ik", "fingers"}
    assert any("spine_02" in n for n in res.notes)


# -- rest poses, proportions, roots ------------------------------------------------------------------


def rest_motion(sk: Skeleton, T: int = 3) -> Motion:
    P = sk.rest_positions()
    return Motion(skeleton=sk, rotations=np.tile([1.0, 0, 0, 0], (T, len(sk), 1)),
                  root_positions=np.tile(P[0], (T, 1)), fps=30.0)


@pytest.mark.parametrize("tgt", ["ue5", "mh_cmu31", "mh_game53"])
def test_a_t_pose_source_puts_an_a_pose_target_in_a_t_pose(tgt):
    res = retarget(rest_motion(canonical_skeleton()), target(tgt), foot_ik=False)
    sk = res.motion.skeleton
    P = res.motion.positions()[0]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        u, l, h = (sk.index(res.map_used[f"{side}{b}"][1]) for b in ("UpperArm", "LowerArm", "Hand"))
        for a, b in ((u, l), (l, h)):
            d = (P[b] - P[a]) / np.linalg.norm(P[b] - P[a])
            assert d[0] * sign > np.cos(np.radians(1.0)), (side, d)  # horizontal, straight out
    # the rest arms really were down: 45-50 deg for the MakeHuman characters
    R = sk.rest_positions()
    u, l = (sk.index(res.map_used[f"left{b}"][1]) for b in ("UpperArm", "LowerArm"))
    assert np.degrees(np.arctan2(R[u, 1] - R[l, 1], R[l, 0] - R[u, 0])) > 40.0


def test_a_motion_onto_its_own_skeleton_is_unchanged():
    src = source("canonical")
    res = retarget(src, src.skeleton, foot_ik=False)
    assert np.abs(np.abs(np.sum(res.motion.rotations * src.rotations, -1)) - 1).max() < 1e-9
    d = res.motion.positions() - src.positions()
    assert np.abs(d[..., [0, 2]]).max() < 1e-9
    assert np.ptp(d[..., 1]) < 1e-9 and np.abs(d[..., 1]).max() < 0.01  # one height: the floor fit


@pytest.mark.parametrize("tgt", ["mixamo", "mh_game53"])
def test_root_path_scales_with_leg_length(tgt):
    src = source("walk")
    res = result("walk", tgt, foot_ik=False)
    al = res.alignment
    hs = src.positions()[:, al.source_index["hips"]]
    ht = res.motion.positions()[:, al.target_index["hips"]]
    k = float(np.median(np.linalg.norm(np.diff(ht[:, [0, 2]], axis=0), axis=1)) /
              np.median(np.linalg.norm(np.diff(hs[:, [0, 2]], axis=0), axis=1)))
    sk_s, sk_t = src.skeleton, res.motion.skeleton

    def leg(sk, found):
        P = sk.rest_positions()
        a, b, c = (sk.index(found[f"left{x}"]) for x in ("UpperLeg", "LowerLeg", "Foot"))
        return np.linalg.norm(P[b] - P[a]) + np.linalg.norm(P[c] - P[b])

    want = leg(sk_t, al.pairs.target_found) / leg(sk_s, al.pairs.source_found)
    assert k == pytest.approx(want, rel=0.02)
    # vertical motion scales too (bobbing of the walk)
    assert np.ptp(ht[:, 1]) == pytest.approx(want * np.ptp(hs[:, 1]), rel=0.02)


# -- the unpaired joints ------------------------------------------------------------------------------


def test_ue5_spine_and_neck_bend_smoothly_over_the_unmapped_bones():
    res = result("walk", "ue5", foot_ik=False)
    sk = res.motion.skeleton
    kinds = {tuple(sk.names[j] for j in c.path): c.kind for c in res.alignment.chains}
    assert kinds == {("spine_02",): "bend", ("spine_04",): "bend", ("neck_02",): "bend"}
    R = res.motion.rotations
    for u in ("spine_02", "spine_04", "neck_02"):
        # the unmapped joint bends with the chain
        bend = np.degrees(2 * np.arccos(np.clip(np.abs(R[:, sk.index(u), 0]), 0, 1)))
        assert bend.max() > 0.5
    # helpers stay put relative to their bone
    for n in ("upperarm_twist_01_l", "ik_foot_l", "thigh_twist_01_r"):
        np.testing.assert_allclose(R[:, sk.index(n)], np.tile([1.0, 0, 0, 0], (len(R), 1)), atol=1e-12)


def test_rigify_twist_halves_share_the_twist_and_do_not_bend():
    res = result("canonical", "rigify")
    sk = res.motion.skeleton
    kinds = {sk.names[c.path[0]]: c.kind for c in res.alignment.chains}
    assert {kinds[n] for n in ("DEF-upper_arm.L.001", "DEF-forearm.R.001", "DEF-thigh.L.001",
                               "DEF-shin.R.001")} == {"twist"}
    R = res.motion.rotations
    P = sk.rest_positions()
    for n in ("DEF-upper_arm.L.001", "DEF-forearm.L.001", "DEF-thigh.R.001", "DEF-shin.L.001"):
        j = sk.index(n)
        axis = P[sk.children(j)[0]] - P[j]
        axis /= np.linalg.norm(axis)
        v = R[:, j, 1:]
        # a pure twist: the rotation axis is the bone (or there is no rotation)
        off_axis = np.linalg.norm(v - (v @ axis)[:, None] * axis, axis=-1)
        assert off_axis.max() < 1e-9
    assert np.abs(R[:, sk.index("DEF-forearm.L.001"), 1:]).max() > 1e-3  # it does twist


def test_fingers_follow_when_both_sides_have_them_and_rest_otherwise():
    on = result("canonical", "ue5")
    sk = on.motion.skeleton
    assert "leftIndexIntermediate" in on.alignment.fingers
    err = direction_errors(source("canonical"), on)
    fingers = {k: v for k, v in err.items() if any(f in k for f in ("Index", "Middle", "Ring", "Little"))}
    assert len(fingers) >= 16 and max(v[1] for v in fingers.values()) < 5.0
    curl = np.degrees(2 * np.arccos(np.clip(np.abs(on.motion.rotations[:, sk.index("index_02_l"), 0]), 0, 1)))
    assert curl.max() > 60.0
    off = retarget(source("canonical"), target("ue5"), fingers=False, foot_ik=False)
    I = np.tile([1.0, 0, 0, 0], (len(off.motion), 1))
    for n in ("index_01_l", "index_02_l", "thumb_02_r", "pinky_03_r"):
        np.testing.assert_allclose(off.motion.rotations[:, sk.index(n)], I, atol=1e-12)


# -- the optional hand IK ---------------------------------------------------------------------------


@pytest.mark.parametrize("tgt", ["mh_cmu31", "rigify"])
def test_hand_ik_puts_the_hands_at_the_scaled_source_positions(tgt):
    src = source("hop")
    res = result("hop", tgt, hand_ik=True)
    sk_s, sk_t = src.skeleton, res.motion.skeleton
    Ps, Pt = src.positions(), res.motion.positions()
    Rs, Rt = sk_s.rest_positions(), sk_t.rest_positions()
    for side in ("left", "right"):
        s = [sk_s.index(res.map_used[f"{side}{b}"][0]) for b in ("UpperArm", "LowerArm", "Hand")]
        t = [sk_t.index(res.map_used[f"{side}{b}"][1]) for b in ("UpperArm", "LowerArm", "Hand")]
        k = (np.linalg.norm(Rt[t[1]] - Rt[t[0]]) + np.linalg.norm(Rt[t[2]] - Rt[t[1]])) / (
            np.linalg.norm(Rs[s[1]] - Rs[s[0]]) + np.linalg.norm(Rs[s[2]] - Rs[s[1]]))
        want = Pt[:, t[0]] + k * (Ps[:, s[2]] - Ps[:, s[0]])
        assert np.linalg.norm(Pt[:, t[2]] - want, axis=-1).max() < 1e-3
    # the hands keep the orientation the plain transfer gave them
    plain = result("hop", tgt)
    _, G1 = res.motion.fk()
    _, G0 = plain.motion.fk()
    h = sk_t.index(res.map_used["leftHand"][1])
    assert jumps_deg(np.stack([G0[:, h], G1[:, h]]))[0].max() < 1e-4


# -- the characters ----------------------------------------------------------------------------------


def test_skinned_hand_follows_the_raised_hand_joint():
    r = target("mh_cmu31")
    src = source("salsa")
    Ps = src.positions()
    ss = src.skeleton
    lift = Ps[:, ss.index("rHand"), 1] - Ps[:, ss.index("rShldr"), 1]
    f = int(np.argmax(lift))
    assert lift[f] > 0.15  # the source's right hand is well above its shoulder
    res = result("salsa", "mh_cmu31")
    one = res.motion.slice(f, f + 1)
    sk = r.skeleton
    hand = sk.index("RightHand")
    P = one.positions()[0]
    body = next(m for m in r.meshes if m.name == "body")
    w = np.where(body.joints == hand, body.weights, 0.0).sum(axis=1)
    near = np.argsort(w)[-40:]  # the 40 vertices most weighted to the hand
    assert w[near].min() > 0.5
    V = skin_vertices(r, one, "body")[0]
    rest_mean = body.vertices[near].mean(axis=0)
    assert rest_mean[1] < sk.rest_positions()[hand, 1] + 0.05  # the hand hung down in the rest pose
    moved = V[near].mean(axis=0)
    assert np.linalg.norm(moved - P[hand]) < 0.05
    assert moved[1] > P[sk.index("RightArm"), 1] + 0.1  # raised above the shoulder


def test_ue5_rig_with_its_own_bone_orientations_exports_the_same_pose():
    r = target("ue5")
    assert r.bonemap.name == "ue5_mannequin"
    assert np.abs(r.rest_global_rotations[:, 0]).min() < 0.9  # the nodes are really rolled
    res = result("hop", "ue5")
    m = res.motion.slice(0, 40)
    node_rot = motion_to_node_rotations(r, m)
    doc = r.doc
    T = len(m)
    L = np.tile(doc.local_matrices(), (T, 1, 1, 1))
    root_t = root_to_node_translations(r, m.root_positions)
    for k, ni in enumerate(r.node_index):
        node = doc.nodes[ni]
        for i in range(T):
            t = root_t[i] if k == 0 else node.translation
            L[i, ni] = gltf.trs_to_matrix(t, node_rot[i, k], node.scale)
    W = doc.world_matrices(L)[:, r.node_index][..., :3, 3]
    assert np.abs(W - m.positions()).max() < 1e-6


def test_a_rig_without_a_profile_is_refused_naming_the_missing_bones():
    robot = load_rig(shared_file("characters/RobotExpressive.glb"))
    assert robot.bonemap is None
    with pytest.raises(RigError) as e:
        retarget(source("walk"), robot)
    msg = str(e.value)
    assert "target rig" in msg and "lacks core bone" in msg
    assert "leftUpperLeg" in msg and "rightHand" in msg
    with pytest.raises(RigError, match=r"leftUpperLeg \(as 'mixamorig:LeftUpLeg'\)"):
        retarget(source("walk"), robot, target_map="mixamo")


def test_maps_can_be_given_by_name_or_object_and_bad_ones_are_refused():
    src = source("walk").slice(0, 30)
    a = retarget(src, target("mixamo"), source_map="cmu_cgspeed", target_map=builtin_profiles()["mixamo"])
    b = retarget(src, target("mixamo"))
    assert a.map_used == b.map_used
    with pytest.raises(UsageError, match="no built-in bone map 'mixamoo'"):
        retarget(src, target("mixamo"), target_map="mixamoo")
    with pytest.raises(UsageError, match="needs a Rig or a Skeleton"):
        retarget(src, "mixamo")
    with pytest.raises(RigError, match="source motion"):
        retarget(src, target("mixamo"), source_map="daz_sl")


def test_the_passes_compose_by_hand():
    """The public passes, called one by one, give what retarget() gives."""
    src, tgt = source("hop"), target("mh_game53")
    sk = tgt.skeleton
    pairs = map_bones(src.skeleton, sk, target_map=tgt.bonemap)
    al = rest_alignment(src.skeleton, sk, pairs)
    Ps, Gs = src.fk()
    rot = solve_rotations(al, Ps, Gs)
    contacts, _ = source_contacts(src, leg_joints(src.skeleton, pairs.source_found))
    root, info = root_translation(al, Ps, rot, contacts=contacts)
    m = Motion(skeleton=sk, rotations=rot, root_positions=root, fps=src.fps)
    m = foot_ik(m, contacts, leg_joints(sk, pairs.target_found), al)
    m, rep = hand_ik(m, al, Ps)
    assert max(v[1] for v in rep.values()) < 1e-6
    rot = transfer_fingers(al, m.rotations, Ps, Gs)
    want = result("hop", "mh_game53", hand_ik=True).motion
    np.testing.assert_allclose(m.root_positions, want.root_positions, atol=1e-9)
    assert np.abs(np.abs(np.sum(rot * want.rotations, -1)) - 1).max() < 1e-9


def test_import_is_numpy_only():
    import subprocess
    import sys

    code = ("import sys, retarget.retarget; "
            "print(sorted(m for m in ('scipy', 'bpy', 'cv2', 'mediapipe', 'dask') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
