"""Skeleton / Motion / FK and the BVH reader and writer, checked on the shared CMU files.

The CMU files (see /work/shared/SOURCES.md section 3):

* ``cmu_131_01_walk.bvh``, ``cmu_131_03_hop.bvh``: cgspeed conversion, 31 joints, ZYX
  (and ZXY on the arms), units of 1/0.45 inch = 0.05644 m.
* ``cmu_60_10_salsa_scaled.bvh``: DAZ/Second Life naming, 43 joints with fingers, metres.
"""

from __future__ import annotations

import functools
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from mocap.bvh import guess_scale, load_bvh, save_bvh
from mocap.errors import FileFormatError, UsageError
from mocap.glossary import A2Q, E2Q, Q2E, Q2R, Q_apply, Q_inv, Q_mul, Q_normalize
from mocap.motion import Motion, Skeleton, fk, quat_rotate, slerp

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MOCAP = SHARED / "mocap"
needs_mocap = pytest.mark.skipif(
    not MOCAP.is_dir(), reason=f"the shared CMU BVH files are not at {MOCAP} (see SOURCES.md section 3)"
)

CGSPEED_M_PER_UNIT = 0.0254 / 0.45
FILES = {
    # key: (file, joints, frames, root name)
    "walk": ("cmu_131_01_walk.bvh", 31, 994, "Hips"),
    "hop": ("cmu_131_03_hop.bvh", 31, 1102, "Hips"),
    "salsa": ("cmu_60_10_salsa_scaled.bvh", 43, 1197, "hip"),
}


@functools.cache
def _load(key: str) -> Motion:
    return load_bvh(MOCAP / FILES[key][0])


def _angle(Q1: np.ndarray, Q2: np.ndarray) -> np.ndarray:
    """Rotation angle in radians between unit quaternions (sign-insensitive; atan2 keeps
    it accurate near zero, where arccos of the dot product loses half the digits)."""
    D = Q_mul(Q_inv(Q1), Q2)
    return 2.0 * np.arctan2(np.linalg.norm(D[..., 1:], axis=-1), np.abs(D[..., 0]))


def _all_points(m: Motion) -> np.ndarray:
    """(T, J + E, 3): joints and end sites."""
    ends = m.end_site_positions()
    return np.concatenate([m.positions()] + [e[:, None] for e in ends.values()], axis=1)


# -- glossary: Euler conversions ------------------------------------------------------------


@pytest.mark.parametrize("order", ["ZXY", "ZYX", "XYZ", "YXZ", "zxy", "ZXZ"])
def test_E2Q_matches_scipy_intrinsic_and_Q2E_inverts_it(order):
    E = np.random.default_rng(1).uniform(-3.1, 3.1, (50, 3))
    Q = E2Q(E, order)
    ref = Rotation.from_euler(order.upper(), E).as_matrix()  # upper case = intrinsic
    assert np.abs(Q2R(Q) - ref).max() < 1e-12
    assert np.all(_angle(E2Q(Q2E(Q, order), order), Q) < 1e-9)
    # a batch gives what one item at a time gives
    assert np.allclose(E2Q(E[7], order), Q[7])


def test_E2Q_reads_as_listed_on_column_vectors():
    # "Zrotation Xrotation" with Z = 90 deg, X = 90 deg: R = Rz(90) @ Rx(90).
    # Rx(90) sends +Y to +Z; Rz(90) leaves +Z alone. Extrinsic would give -X instead.
    Q = E2Q(np.deg2rad([90.0, 90.0]), "ZX")
    assert np.allclose(Q_apply(Q, [0.0, 1.0, 0.0]), [0.0, 0.0, 1.0])


def test_Euler_orders_are_checked():
    with pytest.raises(ValueError, match="Euler order"):
        E2Q(np.zeros(3), "ZXW")
    with pytest.raises(ValueError, match="needs"):
        E2Q(np.zeros(2), "ZXY")
    with pytest.raises(ValueError, match="3 letters"):
        Q2E(np.array([1.0, 0, 0, 0]), "ZX")


# -- Skeleton and Motion --------------------------------------------------------------------


def _chain() -> Skeleton:
    """shoulder at the origin, elbow 1 m along +X, wrist 1 m further."""
    return Skeleton(("shoulder", "elbow", "wrist"), [-1, 0, 1], [[0, 0, 0], [1, 0, 0], [1, 0, 0]])


def test_fk_two_bone_chain_with_known_rotations():
    q90z = A2Q([0.0, 0.0, math.pi / 2])
    one = np.array([1.0, 0.0, 0.0, 0.0])
    # shoulder turned 90 deg about +Z: the arm points up, the wrist at (0, 2, 0)
    m = Motion(_chain(), np.stack([q90z, one, one])[None], np.zeros((1, 3)), fps=30)
    P, G = m.fk()
    assert np.allclose(P[0], [[0, 0, 0], [0, 1, 0], [0, 2, 0]], atol=1e-12)
    # and the elbow another 90 deg: the forearm points along -X, wrist at (-1, 1, 0)
    m = Motion(_chain(), np.stack([q90z, q90z, one])[None], np.array([[0.0, 0.0, 5.0]]), fps=30)
    P, G = m.fk()
    assert np.allclose(P[0], [[0, 0, 5], [0, 1, 5], [-1, 1, 5]], atol=1e-12)
    assert _angle(G[0, 2], A2Q([0.0, 0.0, math.pi])) < 1e-9


def test_fk_matches_a_matrix_reference_and_single_frames():
    rng = np.random.default_rng(0)
    J, T = 12, 40
    parents = np.array([-1] + [int(rng.integers(0, j)) for j in range(1, J)])
    offsets = rng.normal(size=(J, 3))
    Q = Q_normalize(rng.normal(size=(T, J, 4)))
    root = rng.normal(size=(T, 3))
    P, G = fk(parents, offsets, Q, root)
    # reference: global matrices, one joint at a time
    R = Q2R(Q)
    Rg = np.empty_like(R)
    Pr = np.empty((T, J, 3))
    for j in range(J):
        p = parents[j]
        Rg[:, j] = R[:, j] if p < 0 else Rg[:, p] @ R[:, j]
        Pr[:, j] = root if p < 0 else Pr[:, p] + Rg[:, p] @ offsets[j]
    assert np.abs(P - Pr).max() < 1e-12
    assert np.abs(Q2R(G) - Rg).max() < 1e-12
    # one frame with no batch axis; per-frame offsets equal to the constant ones
    P5, _ = fk(parents, offsets, Q[5], root[5])
    assert np.allclose(P5, P[5])
    Pt, _ = fk(parents, np.broadcast_to(offsets, (T, J, 3)), Q, root)
    assert np.allclose(Pt, P)
    assert np.allclose(quat_rotate(Q[:, 3], offsets[3]), Q_apply(Q[:, 3], offsets[3]))


def test_fk_refuses_unsorted_parents():
    with pytest.raises(UsageError, match="topologically sorted"):
        fk(np.array([-1, 2, 0]), np.zeros((3, 3)), np.tile([1.0, 0, 0, 0], (3, 1)), np.zeros(3))


def test_skeleton_validation_names_the_problem():
    with pytest.raises(UsageError, match=r"joint 1 \('b'\) has parent 2"):
        Skeleton(("a", "b", "c"), [-1, 2, 0], np.zeros((3, 3)))
    with pytest.raises(UsageError, match="must be the root"):
        Skeleton(("a", "b"), [0, -1], np.zeros((2, 3)))
    with pytest.raises(UsageError, match="second root"):
        Skeleton(("a", "b"), [-1, -1], np.zeros((2, 3)))
    with pytest.raises(UsageError, match="duplicate joint name 'a'"):
        Skeleton(("a", "a"), [-1, 0], np.zeros((2, 3)))
    with pytest.raises(UsageError, match=r"offsets must have shape \(2, 3\)"):
        Skeleton(("a", "b"), [-1, 0], np.zeros((3, 3)))
    with pytest.raises(UsageError, match=r"parents must have shape \(2,\)"):
        Skeleton(("a", "b"), [-1, 0, 1], np.zeros((2, 3)))
    with pytest.raises(UsageError, match="unknown joint 'z'"):
        Skeleton(("a", "b"), [-1, 0], np.zeros((2, 3)), {"z": [0, 1, 0]})


def test_motion_validation_names_the_problem():
    sk = _chain()
    ok = np.tile([1.0, 0, 0, 0], (4, 3, 1))
    with pytest.raises(UsageError, match=r"rotations must be \(T, 3, 4\).*got \(4, 2, 4\)"):
        Motion(sk, ok[:, :2], np.zeros((4, 3)), fps=30)
    with pytest.raises(UsageError, match=r"root_positions must be \(4, 3\)"):
        Motion(sk, ok, np.zeros((5, 3)), fps=30)
    with pytest.raises(UsageError, match="fps must be a positive"):
        Motion(sk, ok, np.zeros((4, 3)), fps=0)
    with pytest.raises(UsageError, match="increase strictly: frame 1"):
        Motion(sk, ok, np.zeros((4, 3)), fps=30, timestamps=[0, 1, 1, 2])
    bad = ok.copy()
    bad[2, 1] = [2.0, 0, 0, 0]
    with pytest.raises(UsageError, match="joint 'elbow' at frame 2 has norm 2"):
        Motion(sk, bad, np.zeros((4, 3)), fps=30)
    bad[2, 1] = np.nan
    with pytest.raises(UsageError, match="not finite"):
        Motion(sk, bad, np.zeros((4, 3)), fps=30)
    with pytest.raises(UsageError, match=r"local_offsets must be \(4, 3, 3\)"):
        Motion(sk, ok, np.zeros((4, 3)), fps=30, local_offsets=np.zeros((4, 3)))
    # near-unit quaternions (text rounding) are renormalised, not refused
    m = Motion(sk, ok * 1.0004, np.zeros((4, 3)), fps=30)
    assert np.allclose(np.linalg.norm(m.rotations, axis=-1), 1.0)
    assert np.allclose(m.timestamps, [0, 1 / 30, 2 / 30, 3 / 30])


def test_skeleton_queries_and_derived_skeletons():
    sk = Skeleton(
        ("hips", "spine", "head", "thigh", "shin"),
        [-1, 0, 1, 0, 3],
        [[0, 1, 0], [0, 0.2, 0], [0, 0.5, 0], [0.1, 0, 0], [0, -0.45, 0]],
        {"head": [0, 0.2, 0]},
    )
    assert sk.index("shin") == 4 and sk.children("hips") == [1, 3] and sk.parent("head") == 1
    with pytest.raises(UsageError, match="did you mean 'thigh'"):
        sk.index("thig")
    assert np.allclose(sk.rest_positions()[2], [0, 1.7, 0])
    assert np.allclose(sk.rest_end_sites()["head"], [0, 1.9, 0])
    assert np.allclose(sk.bone_lengths(), [0, 0.2, 0.5, 0.1, 0.45])
    sub = sk.subset(["hips", "head", "shin"])  # spine and thigh dropped
    assert sub.names == ("hips", "head", "shin") and list(sub.parents) == [-1, 0, 0]
    assert np.allclose(sub.rest_positions(), sk.rest_positions()[[0, 2, 4]])
    with pytest.raises(UsageError, match="keep the root"):
        sk.subset(["spine"])
    ren = sk.rename({"hips": "pelvis", "head": "skull"})
    assert ren.names[:3] == ("pelvis", "spine", "skull") and "skull" in ren.end_sites
    with pytest.raises(UsageError, match="no joints named"):
        sk.rename({"hip": "pelvis"})
    with pytest.raises(UsageError, match="duplicate"):
        sk.rename({"spine": "head"})
    assert np.allclose(sk.scaled(2.0).rest_positions(), 2 * sk.rest_positions())
    assert not sk.offsets.flags.writeable  # skeletons are shared between motions


def test_slerp_halfway_and_shorter_arc():
    a = A2Q([0.0, 0.0, 0.0])
    b = A2Q([0.0, 1.0, 0.0])
    assert _angle(slerp(a, b, 0.5), A2Q([0.0, 0.5, 0.0])) < 1e-12
    assert _angle(slerp(a, -b, 0.25), A2Q([0.0, 0.25, 0.0])) < 1e-12  # -b is the same rotation


# -- the shared CMU files --------------------------------------------------------------------


@needs_mocap
@pytest.mark.parametrize("key", FILES)
def test_shared_file_loads_with_documented_joints_frames_and_rate(key):
    name, J, T, root = FILES[key]
    m = _load(key)
    assert (m.n_joints, m.n_frames, m.fps) == (J, T, 120.0)
    assert m.skeleton.names[0] == root
    assert m.timestamps[-1] == pytest.approx((T - 1) / 120)
    assert m.meta["bvh_frame_time"] == pytest.approx(1 / 120, rel=1e-4)


@needs_mocap
@pytest.mark.parametrize("key", ["walk", "hop"])
def test_cgspeed_units_are_guessed_and_the_figure_is_human_sized(key):
    m = _load(key)
    assert m.meta["bvh_scale"] == pytest.approx(CGSPEED_M_PER_UNIT)
    assert "cgspeed" in m.meta["bvh_scale_rule"]
    # standing height in frame 0: top of the head (the Head's End Site) above the lowest
    # point of the feet. Walk 1.43 m, hop 1.44 m.
    P = m.positions()[0]
    head_top = m.end_site_positions()["Head"][0, 1]
    feet = [m.end_site_positions()[n][0, 1] for n in ("LeftToe", "RightToe")]
    feet += [P[m.skeleton.index(n), 1] for n in ("LeftAnkle", "RightAnkle")]
    height = head_top - min(feet)
    assert 1.4 < height < 2.0, f"figure height {height:.3f} m"
    # the hips at about 0.95 m while standing at the start
    assert 0.85 < m.root_positions[0, 1] < 1.05


@needs_mocap
def test_salsa_is_already_metres():
    # The "scaled" DAZ/SL figure spans 1.19 units in its rest pose, so it is read as
    # metres. It is small, and has no head-top End Site (the eyes are its highest
    # points): hips 0.66 m, eyes 1.18 m above the feet in frame 0, i.e. a figure of
    # roughly 1.3 m. We keep the file's metres rather than inflate it to 1.4-2.0 m.
    m = _load("salsa")
    assert m.meta["bvh_scale"] == 1.0 and m.meta["bvh_scale_rule"].startswith("metres")
    P = m.positions()[0]
    ends = m.end_site_positions()
    floor = min(ends["lFoot"][0, 1], ends["rFoot"][0, 1])
    assert 0.6 < P[0, 1] - floor < 0.75
    assert 1.1 < ends["leftEye"][0, 1] - floor < 1.3


@needs_mocap
@pytest.mark.parametrize("key", FILES)
def test_the_body_stays_on_the_floor(key):
    # Lowest point of the body (joints and end sites), frame by frame: between 3 cm below
    # and 10 cm above y = 0 for 90% of the take. Reading the Euler angles in the wrong
    # order lifts the salsa's lowest point 0.43 m off the floor and the walk's 0.14 m.
    low = _all_points(_load(key))[..., 1].min(axis=1)
    p5, p95 = np.percentile(low, [5, 95])
    assert -0.03 < p5 and p95 < 0.10, f"lowest point 5-95%: {p5:.3f} .. {p95:.3f} m"


@needs_mocap
def test_walk_root_travels_about_2_6_m_along_plus_z():
    # 131_01 "Start Walk Stop": from z = -1.91 m to z = +0.69 m, 2.6 m as the crow flies
    # (4.5 m of path at 10 Hz, the dance steps included); the hips stay 0.5-1.0 m high.
    r = _load("walk").root_positions
    d = r[-1] - r[0]
    assert 2.4 < math.hypot(d[0], d[2]) < 2.9
    assert d[2] > 2.3
    assert 0.45 < r[:, 1].min() and r[:, 1].max() < 1.05


@needs_mocap
def test_cgspeed_rest_skeleton_is_left_right_symmetric():
    sk = _load("walk").skeleton
    L = dict(zip(sk.names, sk.bone_lengths()))
    # CMU measured this performer: legs differ by < 5 mm (thigh 411.5 vs 406.9 mm, shin
    # 390.7 vs 393.5 mm), arms by < 12 mm (upper arm 239.9 vs 251.8 mm).
    for left, right, lo, hi, tol_mm in [
        ("LeftKnee", "RightKnee", 0.35, 0.5, 5.0),  # thigh: hip -> knee
        ("LeftAnkle", "RightAnkle", 0.35, 0.5, 5.0),  # shin
        ("LeftElbow", "RightElbow", 0.2, 0.35, 12.0),  # upper arm
        ("LeftWrist", "RightWrist", 0.15, 0.3, 10.0),  # forearm
    ]:
        assert lo < L[left] < hi and lo < L[right] < hi, (left, L[left], L[right])
        assert abs(L[left] - L[right]) * 1000 < tol_mm, (left, L[left], L[right])
    # hip joints mirror each other across x = 0 within 4 mm
    P = sk.rest_positions()
    lh, rh = P[sk.index("LeftHip")], P[sk.index("RightHip")]
    assert np.abs(lh * [-1, 1, 1] - rh).max() < 0.004
    assert lh[0] > 0  # the performer's left is +X when facing +Z


@needs_mocap
def test_salsa_rest_skeleton_mirrors_exactly():
    sk = _load("salsa").skeleton
    P = sk.rest_positions()
    pairs = [(n, "r" + n[1:]) for n in sk.names if n.startswith("l") and "r" + n[1:] in sk]
    assert len(pairs) == 18  # collar, shoulder, forearm, hand, 10 finger joints, buttock, thigh, shin, foot
    for left, right in pairs:
        diff = P[sk.index(left)] * [-1, 1, 1] - P[sk.index(right)]
        assert np.abs(diff).max() < 1e-3, (left, right, diff)  # under 1 mm


def _independent_frame_positions(path: Path, frame: int, scale: float) -> dict[str, np.ndarray]:
    """A second, deliberately simple BVH reader for one frame: a brace stack for the
    hierarchy, scipy for the Euler angles (upper-case order = intrinsic, as listed)."""
    text = path.read_text()
    head, motion = text.split("MOTION")
    joints = []  # (name, parent index, offset, channels)
    stack = []
    tokens = head.split()
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t in ("ROOT", "JOINT"):
            joints.append([tokens[i + 1], stack[-1] if stack else -1, None, []])
            i += 2
            continue
        if t == "End":
            joints.append(["<end>", stack[-1], None, []])
            i += 2
            continue
        if t == "{":
            stack.append(len(joints) - 1)
        elif t == "}":
            stack.pop()
        elif t == "OFFSET":
            joints[stack[-1]][2] = np.array(tokens[i + 1 : i + 4], dtype=float) * scale
            i += 4
            continue
        elif t == "CHANNELS":
            n = int(tokens[i + 1])
            joints[stack[-1]][3] = tokens[i + 2 : i + 2 + n]
            i += 2 + n
            continue
        i += 1
    rows = [ln for ln in motion.splitlines()[3:] if ln.strip()]
    values = iter(np.array(rows[frame].split(), dtype=float))
    world = {}
    for k, (name, parent, offset, channels) in enumerate(joints):
        if name == "<end>":
            continue
        vals = {c: next(values) for c in channels}
        pos = np.array([vals.get(a + "position", np.nan) for a in "XYZ"]) * scale
        order = "".join(c[0] for c in channels if c.endswith("rotation"))
        rot = Rotation.from_euler(order, [vals[c + "rotation"] for c in order], degrees=True)
        if parent < 0:
            world[k] = (rot, np.where(np.isnan(pos), offset, pos))
        else:
            prot, ppos = world[parent]
            world[k] = (prot * rot, ppos + prot.apply(offset))
    return {joints[k][0]: p for k, (_, p) in world.items() if joints[k][0] != "<end>"}


@needs_mocap
@pytest.mark.parametrize("key,frame", [("walk", 500), ("salsa", 700)])
def test_parser_and_fk_agree_with_an_independent_reparse(key, frame):
    m = _load(key)
    ref = _independent_frame_positions(MOCAP / FILES[key][0], frame, m.meta["bvh_scale"])
    P = m.positions()[frame]
    assert list(ref) == list(m.skeleton.names)
    err_mm = 1000 * np.abs(np.array([ref[n] for n in m.skeleton.names]) - P).max()
    assert err_mm < 1e-6, f"{err_mm} mm"


@needs_mocap
@pytest.mark.parametrize("key", FILES)
def test_save_then_load_reproduces_every_frame(key, tmp_path):
    m = _load(key)
    out = save_bvh(m, tmp_path / f"{key}.bvh")
    back = load_bvh(out, scale=1.0)
    assert back.skeleton.names == m.skeleton.names
    assert np.array_equal(back.skeleton.parents, m.skeleton.parents)
    assert (back.n_frames, back.fps) == (m.n_frames, m.fps)
    assert np.abs(back.positions() - m.positions()).max() * 1000 < 0.01  # mm
    assert _angle(back.rotations, m.rotations).max() < 1e-5  # rad
    assert set(back.skeleton.end_sites) == set(m.skeleton.end_sites)
    assert [p.name for p in tmp_path.iterdir()] == [f"{key}.bvh"]  # no temp file left


@needs_mocap
def test_round_trip_in_centimetres_with_another_rotation_order(tmp_path):
    m = _load("walk")
    out = save_bvh(m, tmp_path / "walk_cm_xyz.bvh", order="XYZ", scale=0.01)
    text = out.read_text()
    assert "CHANNELS 6 Xposition Yposition Zposition Xrotation Yrotation Zrotation" in text
    assert "CHANNELS 3 Xrotation Yrotation Zrotation" in text
    back = load_bvh(out)  # the figure spans 137 units: guessed to be centimetres
    assert back.meta["bvh_scale"] == 0.01 and back.meta["bvh_scale_rule"].startswith("centimetres")
    assert np.abs(back.positions() - m.positions()).max() * 1000 < 0.01
    assert _angle(back.rotations, m.rotations).max() < 1e-5


@needs_mocap
def test_resample_120_to_30_fps_keeps_coincident_frames():
    m = _load("walk")
    r = m.resample(30)
    assert r.n_frames == 249 and r.fps == 30.0  # 8.275 s at 30 Hz
    assert np.allclose(r.timestamps, np.arange(249) / 30)
    assert np.abs(r.positions() - m.positions()[::4]).max() < 1e-9
    # between frames: a 240 Hz version's odd frames lie halfway (in angle) between neighbours
    h = m.slice(0, 11).resample(240)
    assert h.n_frames == 21
    a = _angle(h.rotations[1::2], m.rotations[:10])
    b = _angle(h.rotations[1::2], m.rotations[1:11])
    assert np.allclose(a, b, atol=1e-9)


@needs_mocap
def test_slice_keeps_times_and_steps_change_the_rate():
    m = _load("hop")
    s = m.slice(120, 240)
    assert s.n_frames == 120 and s.timestamps[0] == pytest.approx(1.0)
    assert np.abs(s.positions() - m.positions()[120:240]).max() < 1e-12
    assert m.slice(step=4).fps == 30.0 and m.slice(step=4).n_frames == 276
    with pytest.raises(UsageError, match="empty"):
        m.slice(2000)


# -- BVH edge cases on a small file ----------------------------------------------------------

MINI = """\
HIERARCHY
ROOT Hips
{
\tOFFSET 0 0 0
\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
\tJOINT Spine
\t{
\t\tOFFSET 0 10 0
\t\tCHANNELS 3 Zrotation Xrotation Yrotation
\t\tEnd Site
\t\t{
\t\t\tOFFSET 0 5 0
\t\t}
\t}
}
MOTION
Frames: 3
Frame Time: 0.0333333
0 90 0 0 0 0 0 0 0
1 90 0 90 0 0 0 0 0
2 90 0 0 0 0 0 90 0
"""


def _write(tmp_path: Path, text: str, name: str = "mini.bvh") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_mini_file_values(tmp_path):
    m = load_bvh(_write(tmp_path, MINI), scale=0.01)
    assert m.fps == 30.0 and m.meta["bvh_rotation_orders"] == {"Hips": "ZXY", "Spine": "ZXY"}
    P = m.positions()
    assert np.allclose(P[0], [[0, 0.9, 0], [0, 1.0, 0]])
    assert np.allclose(P[1], [[0.01, 0.9, 0], [-0.09, 0.9, 0]])  # hips turned 90 deg about +Z
    head = m.end_site_positions()["Spine"]
    assert np.allclose(head[2], [0.02, 1.0, 0.05])  # spine turned 90 deg about +X


def test_position_channels_on_other_joints(tmp_path):
    text = MINI.replace(
        "CHANNELS 3 Zrotation Xrotation Yrotation",
        "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation",
    )
    rows = ["0 90 0 0 0 0 0 10 0 0 0 0", "1 90 0 0 0 0 0 10 0 0 0 0", "2 90 0 0 0 0 0 10 0 0 0 0"]
    head, _ = text.split("0 90 0 0 0 0 0 0 0\n")
    constant = load_bvh(_write(tmp_path, head + "\n".join(rows) + "\n", "c.bvh"), scale=0.01)
    assert constant.local_offsets is None  # equal to the rest offset: dropped
    rows[1] = "1 90 0 0 0 0 0 20 0 0 0 0"  # the spine slides up 10 cm in frame 1
    moving = load_bvh(_write(tmp_path, head + "\n".join(rows) + "\n", "m.bvh"), scale=0.01)
    assert moving.meta["bvh_animated_offsets"] == ["Spine"]
    assert np.allclose(moving.positions()[:, 1, 1], [1.0, 1.1, 1.0])
    back = load_bvh(save_bvh(moving, tmp_path / "back.bvh"), scale=1.0)
    assert np.allclose(back.positions(), moving.positions(), atol=1e-6)


def test_guess_scale_rules():
    def fig(height: float) -> Skeleton:
        return Skeleton(
            ("hips", "head", "foot"), [-1, 0, 0], [[0, 0, 0], [0, 0.4 * height, 0], [0, -0.6 * height, 0]]
        )

    assert guess_scale(fig(1.8))[0] == 1.0
    assert guess_scale(fig(175.0))[0] == 0.01
    assert guess_scale(fig(100.0))[0] == 0.01  # a 1 m child in cm, not a 2.54 m giant in inches
    assert guess_scale(fig(70.0))[0] == 0.0254
    assert guess_scale(fig(30.0))[0] == pytest.approx(CGSPEED_M_PER_UNIT)
    assert guess_scale(fig(1750.0))[0] == 0.001
    k, rule = guess_scale(fig(3.5))  # no usual unit fits: scaled to 1.7 m
    assert k == pytest.approx(1.7 / 3.5) and "no usual unit" in rule


def _sub(old: str, new: str):
    return lambda text: text.replace(old, new)


MALFORMED = [
    # (id, edit of MINI, expected message after "mini.bvh: ")
    ("empty", lambda t: "", r"empty file"),
    (
        "not-bvh",
        lambda t: "hello, world\n",
        r"not a BVH file: line 1 should start with 'HIERARCHY', found 'hello,'",
    ),
    (
        "no-brace",
        _sub("ROOT Hips\n{", "ROOT Hips\n"),
        r"line 4: expected '\{' after ROOT Hips, found 'OFFSET'",
    ),
    (
        "bad-offset",
        _sub("OFFSET 0 10 0", "OFFSET 0 ten 0"),
        r"line 8: expected a number in the OFFSET of Spine, found 'ten'",
    ),
    (
        "bad-channel",
        _sub("Zrotation Xrotation Yrotation\n\t\tEnd", "Zrotation Wrotation Yrotation\n\t\tEnd"),
        r"line 9: unknown channel 'Wrotation' in Spine",
    ),
    (
        "unclosed",
        _sub("\t}\n}\nMOTION", "\t}\nMOTION"),
        r"line 15: expected '\}' to close ROOT Hips \(opened on line 2\), reached MOTION",
    ),
    (
        "duplicate",
        _sub("JOINT Spine", "JOINT Hips"),
        r"line 6: duplicate joint name 'Hips' \(first at line 2\)",
    ),
    ("two-roots", _sub("}\nMOTION", "}\nROOT Other\nMOTION"), r"line 16: a second ROOT"),
    ("no-motion", lambda t: t.split("MOTION")[0], r"no MOTION section after the HIERARCHY"),
    ("frame-count", _sub("Frames: 3", "Frames: 4"), r"MOTION says 4 frames, found 3"),
    (
        "frames-word",
        _sub("Frames: 3", "Frames: three"),
        r"line 17: frame count must be a whole number, found 'three'",
    ),
    (
        "zero-frame-time",
        _sub("Frame Time: 0.0333333", "Frame Time: 0"),
        r"line 18: frame time must be positive",
    ),
    (
        "no-frame-time",
        _sub("Frame Time: 0.0333333", "Time: 0.03"),
        r"line 18: expected 'Frame Time: <value>'",
    ),
    (
        "non-numeric",
        _sub("1 90 0 90 0 0", "1 90 0 9O 0 0"),
        r"line 20: value 4 \('9O'\) is not a finite number",
    ),
    (
        "short-line",
        _sub("2 90 0 0 0 0 0 90 0", "2 90 0 0 0 0 0 90"),
        r"line 21: expected 9 values \(the channels declared in HIERARCHY\), found 8",
    ),
    (
        "nan-value",
        _sub("2 90 0 0 0 0 0 90 0", "2 90 0 0 0 0 0 90 nan"),
        r"line 21: value 9 \('nan'\) is not a finite number",
    ),
]


@pytest.mark.parametrize("edit,message", [pytest.param(e, m, id=i) for i, e, m in MALFORMED])
def test_malformed_bvh_gives_file_format_error(tmp_path, edit, message):
    p = _write(tmp_path, edit(MINI))
    with pytest.raises(FileFormatError, match=r"^mini\.bvh: " + message):
        load_bvh(p)


def test_unreadable_files_and_bad_arguments(tmp_path):
    with pytest.raises(FileFormatError, match="no such BVH file"):
        load_bvh(tmp_path / "missing.bvh")
    (tmp_path / "bin.bvh").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    with pytest.raises(FileFormatError, match="binary data"):
        load_bvh(tmp_path / "bin.bvh")
    p = _write(tmp_path, MINI)
    with pytest.raises(UsageError, match="scale must be a positive"):
        load_bvh(p, scale=0)
    m = load_bvh(p)
    with pytest.raises(UsageError, match="permutation of XYZ"):
        save_bvh(m, tmp_path / "x.bvh", order="ZZY")
    with pytest.raises(UsageError, match="does not exist"):
        save_bvh(m, tmp_path / "no" / "x.bvh")
    with pytest.raises(UsageError, match="whitespace"):
        save_bvh(m.rename({"Spine": "Upper Spine"}), tmp_path / "x.bvh")


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    p = _write(tmp_path, MINI)
    m = load_bvh(p)
    before = p.read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save_bvh(m, p)
    assert p.read_text() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["mini.bvh"]


def test_q_mul_convention_matches_fk():
    # global_R[child] = global_R[parent] @ R_local[child]: glossary.Q_mul(parent, child)
    rng = np.random.default_rng(3)
    Q = Q_normalize(rng.normal(size=(5, 2, 4)))
    _, G = fk(np.array([-1, 0]), np.zeros((2, 3)), Q, np.zeros((5, 3)))
    assert np.all(_angle(G[:, 1], Q_mul(Q[:, 0], Q[:, 1])) < 1e-12)


def test_frame_time_snapping(tmp_path):
    p = _write(tmp_path, MINI.replace("Frame Time: 0.0333333", "Frame Time: 0.0333667"))
    assert load_bvh(p).fps == pytest.approx(29.97, abs=1e-3)
    p = _write(tmp_path, MINI.replace("Frame Time: 0.0333333", "Frame Time: 0.0333"))
    assert load_bvh(p).fps == 30.0
    assert re.search(r"Frame Time: 0\.0333333333", save_bvh(load_bvh(p), tmp_path / "o.bvh").read_text())
