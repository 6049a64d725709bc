"""`mocap.evaluate`: known perturbations of the CMU walk give the numbers they must.

The truth is ``cmu_131_01_walk.bvh`` (cgspeed naming, 994 frames at 120 fps); every
"motion" is that walk changed in one known way, sometimes renamed into another
convention, so each metric can be checked against its closed-form value.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from mocap.bvh import load_bvh
from mocap.errors import RigError, UsageError
from mocap.evaluate import DEFAULT_JOINTS, evaluate
from mocap.glossary import A2Q, Q_mul
from mocap.motion import Motion, Skeleton
from retarget.bonemap import BoneMap, builtin_profiles

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WALK = SHARED / "mocap" / "cmu_131_01_walk.bvh"
pytestmark = pytest.mark.skipif(
    not WALK.is_file(), reason=f"the shared CMU walk is not at {WALK} (see SOURCES.md section 3)"
)

N_BONES = 14  # the default 15 joints form a tree of 14 bones


@functools.cache
def _walk() -> Motion:
    return load_bvh(WALK)


def _like(m: Motion, **kw) -> Motion:
    d = dict(skeleton=m.skeleton, rotations=m.rotations, root_positions=m.root_positions, fps=m.fps,
             timestamps=m.timestamps, local_offsets=m.local_offsets, meta=dict(m.meta))
    d.update(kw)
    return Motion(**d)


def _point_motion(names: list[str], P: np.ndarray, fps: float) -> Motion:
    """A 'motion' that is just points: every joint hangs from the root with an animated
    offset and no rotation, so any per-frame positions ``P`` ``(T, J, 3)`` (root first)
    can be evaluated, noise included."""
    T, J, _ = P.shape
    rel = P - P[:, :1]
    sk = Skeleton(names=tuple(names), parents=np.array([-1] + [0] * (J - 1)), offsets=rel[0])
    rot = np.zeros((T, J, 4))
    rot[..., 0] = 1.0
    return Motion(skeleton=sk, rotations=rot, root_positions=P[:, 0], fps=fps, local_offsets=rel)


def _assert_zero(r: dict, tol: float = 1e-6) -> None:
    assert r["mpjpe_mm"] < tol and r["pa_mpjpe_mm"] < tol and r["bone_direction_deg"] < tol
    assert max(r["mpjpe_per_joint_mm"].values()) < tol
    assert r["root_path_mm"]["start_aligned"] < tol and r["root_path_mm"]["raw"] < tol


def test_truth_against_itself_is_zero_and_json_ready():
    w = _walk()
    r = evaluate(w, w)
    _assert_zero(r)
    json.dumps(r, allow_nan=False)
    assert r["joints"] == list(DEFAULT_JOINTS)
    assert len(r["bones"]) == N_BONES
    assert r["motion"]["profile"] == r["truth"]["profile"] == "cmu_cgspeed"
    assert r["joint_names"]["leftUpperArm"] == {"motion": "LeftShoulder", "truth": "LeftShoulder"}
    assert r["time"]["frames"] == 994 and r["time"]["frames_dropped"] == 0
    assert r["jitter"]["ratio"] == pytest.approx(1.0) and r["jitter"]["truth_m_s3"] > 0
    fs = r["foot_skate"]
    assert fs["ratio"] == pytest.approx(1.0)
    # a walk plants its feet for a good share of the time; planted feet barely move
    assert 0.15 < fs["contact_frames"] / (2 * 993) < 0.6
    assert fs["truth_mm_per_s"] < 0.5 * 1000 * fs["contact_speed_m_s"]
    assert not r["scale"]["differs"] and r["scale"]["ratio"] == pytest.approx(1.0)


def test_translating_the_whole_motion_moves_only_the_raw_root_path():
    w = _walk()
    r = evaluate(_like(w, root_positions=w.root_positions + [0.10, 0.0, 0.0]), w)
    assert r["mpjpe_mm"] < 1e-9 and r["pa_mpjpe_mm"] < 1e-6 and r["bone_direction_deg"] < 1e-9
    assert r["root_path_mm"]["raw"] == pytest.approx(100.0, abs=1e-9)
    assert r["root_path_mm"]["start_aligned"] < 1e-9
    assert r["root_path_mm"]["rigid_horizontal"] < 1e-6


def test_a_turned_path_is_removed_only_by_the_rigid_alignment():
    w = _walk()
    Q = A2Q([0.0, math.radians(30.0), 0.0])  # the whole walk turned 30 deg about +Y at the origin
    rot = w.rotations.copy()
    rot[:, 0] = Q_mul(Q, rot[:, 0])
    R = np.array([[math.cos(math.pi / 6), 0, math.sin(math.pi / 6)], [0, 1, 0],
                  [-math.sin(math.pi / 6), 0, math.cos(math.pi / 6)]])
    r = evaluate(_like(w, rotations=rot, root_positions=w.root_positions @ R.T), w)
    assert r["root_path_mm"]["start_aligned"] > 100  # the path goes off in another direction
    assert r["root_path_mm"]["rigid_horizontal"] < 1e-6
    assert r["pa_mpjpe_mm"] < 1e-6  # pose is unchanged up to a rotation
    assert r["mpjpe_mm"] > 50  # root-aligned MPJPE does not forgive facing
    assert any("rotation about +Y (-30.0 deg)" in n for n in r["notes"])  # undoing the turn


def test_turning_one_forearm_by_10_degrees():
    w = _walk()
    sk = w.skeleton
    elbow, wrist = sk.index("LeftElbow"), sk.index("LeftWrist")
    o = sk.offsets[wrist]  # the forearm, in the elbow's frame
    axis = np.cross(o, [0.0, 0.0, 1.0])
    axis /= np.linalg.norm(axis)  # perpendicular to the forearm: it turns by the full angle
    rot = w.rotations.copy()
    rot[:, elbow] = Q_mul(rot[:, elbow], A2Q(axis * math.radians(10.0)))
    r = evaluate(_like(w, rotations=rot), w)
    per_bone = r["bone_direction_per_bone_deg"]
    assert per_bone["leftLowerArm->leftHand"] == pytest.approx(10.0, abs=1e-6)
    assert all(v < 1e-6 for k, v in per_bone.items() if k != "leftLowerArm->leftHand")
    assert r["bone_direction_deg"] == pytest.approx(10.0 / N_BONES, abs=1e-6)
    # only the hand moves, on a chord of the forearm's circle
    chord_mm = 2 * np.linalg.norm(o) * math.sin(math.radians(5.0)) * 1000
    assert r["mpjpe_per_joint_mm"]["leftHand"] == pytest.approx(chord_mm, rel=1e-6)
    assert r["mpjpe_mm"] == pytest.approx(chord_mm / N_BONES, rel=1e-6)


def test_gaussian_noise_gives_the_expected_statistics():
    w = _walk()
    m = builtin_profiles()["cmu_cgspeed"]
    names = list(DEFAULT_JOINTS)
    P = w.positions()[:, [w.skeleton.index(m.bones[n]) for n in names]]
    sigma = 0.010
    noisy = P.copy()
    # the hips are compared as the pelvis centre (mid upper legs): keep those exact so the
    # root stays put and the noise is that of each other joint alone
    noisy_j = [i for i, n in enumerate(names) if n not in ("hips", "leftUpperLeg", "rightUpperLeg")]
    noisy[:, noisy_j] += np.random.default_rng(7).normal(scale=sigma, size=noisy[:, noisy_j].shape)
    clean = evaluate(_point_motion(names, P, w.fps), w)
    _assert_zero(clean, tol=1e-6)  # the point motion itself is exact (and canonically named)
    assert clean["motion"]["profile"] == "canonical"
    r = evaluate(_point_motion(names, noisy, w.fps), w)
    # root-relative error = the noise of one joint: |N(0, s^2 I3)| has mean s * sqrt(8/pi)
    k = len(noisy_j)  # 12 of the 14 non-root joints carry noise
    expected = sigma * math.sqrt(8 / math.pi) * 1000 * k / 14  # 15.96 mm per noisy joint
    se = sigma * math.sqrt(3 - 8 / math.pi) * 1000 / math.sqrt(994 * k) * k / 14
    assert r["mpjpe_mm"] == pytest.approx(expected, abs=5 * se)
    # Procrustes absorbs 7 of the 45 degrees of freedom, so a bit less, not much
    assert 0.8 * r["mpjpe_mm"] < r["pa_mpjpe_mm"] < r["mpjpe_mm"]
    assert r["root_path_mm"]["start_aligned"] < 1e-9  # the root was left alone
    assert 0.5 < r["bone_direction_deg"] < 10
    # white noise dominates the jerk: at 120 fps, 10 mm gives ~1.6 * sqrt(20) * 0.01 * 120^3 m/s^3
    assert r["jitter"]["ratio"] > 50
    share = k / len(names)  # joints carrying noise, of the 15 compared
    assert r["jitter"]["motion_m_s3"] == pytest.approx(share * 1.6 * math.sqrt(20) * sigma * 120**3, rel=0.15)


@pytest.mark.parametrize("direction", ["motion at 30 fps", "truth at 30 fps"])
def test_a_resampled_copy_evaluates_to_under_a_millimetre(direction):
    w = _walk()
    w30 = w.resample(30)
    r = evaluate(w30, w) if direction == "motion at 30 fps" else evaluate(w, w30)
    assert r["mpjpe_mm"] < 1.0 and r["pa_mpjpe_mm"] < 1.0 and r["bone_direction_deg"] < 0.5
    # the 30 fps copy ends at 248/30 s, before the last three 120 fps frames
    assert r["time"]["frames"] == (249 if direction == "motion at 30 fps" else 993)
    if direction == "motion at 30 fps":  # the motion's frames fall on truth frames
        assert r["mpjpe_mm"] < 1e-9


def test_across_naming_conventions():
    w = _walk()
    cg = builtin_profiles()["cmu_cgspeed"]
    canon = w.rename(cg.to_canonical(w.skeleton.names))
    r = evaluate(canon, w)
    assert (r["motion"]["profile"], r["truth"]["profile"]) == ("canonical", "cmu_cgspeed")
    _assert_zero(r, tol=1e-9)
    assert r["joint_names"]["leftUpperArm"] == {"motion": "leftUpperArm", "truth": "LeftShoulder"}
    # a convention no shipped profile knows: detection fails, naming what to pass ...
    odd = w.rename(lambda n: f"bone_{n}")
    with pytest.raises(RigError, match="motion_map"):
        evaluate(odd, w)
    # ... and a map made on the spot (a rig is data) fixes it
    odd_map = BoneMap(name="odd", bones={c: f"bone_{r}" for c, r in cg.bones.items()})
    _assert_zero(evaluate(odd, w, motion_map=odd_map, truth_map="cmu_cgspeed"), tol=1e-9)


@pytest.mark.parametrize("profile", ["cmu_asf", "cmu_motionbuilder", "daz_sl", "mixamo", "rigify",
                                     "ue5_mannequin", "vrm"])
def test_the_walk_renamed_into_each_convention_is_detected_and_evaluates_to_zero(profile):
    w = _walk()
    cg, target = builtin_profiles()["cmu_cgspeed"], builtin_profiles()[profile]
    ren = {cg.bones[c]: target.bones[c] for c in cg.bones if c in target.bones}
    other = w.rename(lambda n: ren.get(n, f"extra_{n}"))  # unmapped joints get neutral names
    r = evaluate(other, w)
    # vrm and canonical map the same names; the tie goes to the name that sorts first
    assert r["motion"]["profile"] == ("canonical" if profile == "vrm" else profile)
    _assert_zero(r, tol=1e-9)
    assert len(r["joints"]) == 15


def test_a_different_figure_size_is_reported_and_normalised():
    w = _walk()
    r = evaluate(w.scaled(1.2), w)
    assert r["scale"]["differs"] and r["scale"]["ratio"] == pytest.approx(1.2)
    assert r["mpjpe_mm"] > 50
    assert r["mpjpe_scaled_mm"] < 1e-6 and r["pa_mpjpe_mm"] < 1e-6
    assert any("differ in size by +20.0%" in n for n in r["notes"])
    small = evaluate(w.scaled(1.03), w)
    assert not small["scale"]["differs"]
    assert not any("differ in size" in n for n in small["notes"])


def test_planted_feet_that_slide_are_measured():
    w = _walk()
    drift = 0.1  # m/s along X: every planted foot of the motion slides at 100 mm/s
    r = evaluate(_like(w, root_positions=w.root_positions + drift * w.timestamps[:, None] * [1, 0, 0]), w)
    fs = r["foot_skate"]
    assert fs["contact_frames"] > 300
    assert abs(fs["motion_mm_per_s"] - 100.0) < fs["truth_mm_per_s"] + 1e-9
    assert fs["motion_mm_per_frame"] == pytest.approx(fs["motion_mm_per_s"] / 120, rel=1e-9)
    assert fs["ratio"] > 1.5


def test_time_alignment_and_offsets():
    w = _walk()
    part = w.slice(100, 400)  # keeps its timestamps, 0.833-3.325 s
    _assert_zero(evaluate(part, w))
    r = evaluate(w, part)
    assert r["time"]["frames"] == 300 and r["time"]["frames_dropped"] == 694
    assert any("694 motion frames" in n for n in r["notes"])
    restarted = _like(part, timestamps=part.timestamps - part.timestamps[0])  # a clip that starts at 0
    assert evaluate(restarted, w)["mpjpe_mm"] > 1
    _assert_zero(evaluate(restarted, w, time_offset_s=-100 / 120), tol=1e-6)
    late = _like(part, timestamps=part.timestamps + 100.0)
    with pytest.raises(UsageError, match="do not overlap in time"):
        evaluate(late, w)


def test_joint_selection():
    w = _walk()
    r = evaluate(w, w, joints=["leftHand", "head"])
    assert r["joints"] == ["hips", "head", "leftHand"]
    assert r["bones"] == [["hips", "head"], ["hips", "leftHand"]]
    assert r["foot_skate"]["contact_frames"] == 0 and r["foot_skate"]["motion_mm_per_frame"] is None
    with pytest.raises(UsageError, match="did you mean 'leftHand'"):
        evaluate(w, w, joints=["leftHnad"])
    with pytest.raises(RigError, match=r"the motion \(cmu_cgspeed\) has no leftIndexProximal"):
        evaluate(w, w, joints=["leftIndexProximal"])
    with pytest.raises(UsageError, match="list of canonical names"):
        evaluate(w, w, joints="head")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="no bone-map profile named"):
        evaluate(w, w, truth_map="cmu")
