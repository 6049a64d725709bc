"""Foot contacts and foot locking, on a synthetic walk whose feet are planted by construction.

:func:`make_walk` drives the canonical skeleton along +X at 1 m/s (60 fps, 2 s, 2 m): the
ankles follow footprints (stance 60% of a 1 s cycle, flat feet, 8 cm swing clearance) and
the legs reach them through a planar law-of-cosines solve written here, independent of
:mod:`mocap.contacts`. ``test_root`` films the same walk.
"""

from __future__ import annotations

import numpy as np
import pytest

from mocap.contacts import (
    DEFAULT_LEGS,
    contact_segments,
    detect_contacts,
    foot_points,
    foot_skate,
    lock_feet,
    motion_contacts,
    planted_contacts,
    sight_weight,
)
from mocap.errors import UsageError
from mocap.glossary import E2Q, Q2A, Q_IDENTITY
from mocap.motion import Motion
from mocap.skeleton import canonical_skeleton

SIDES = ("left", "right")


def make_walk(*, fps=60.0, duration=2.0, speed=1.0, cycle=1.0, stance=0.6, hip_height=0.84, bob=0.01,
              clearance=0.08, x0=-1.0):
    """A walk along +X. Returns ``(motion, contacts, ankle_targets)``: the true stance
    frames and the planted ankle positions, per side."""
    sk = canonical_skeleton()
    T = int(round(duration * fps))
    t = np.arange(T) / fps
    rot = np.tile(Q_IDENTITY, (T, len(sk), 1))
    yaw = np.pi / 2  # the character faces +X: its left (+x) is world -z
    R_yaw = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    root = np.stack([x0 + speed * t, hip_height + bob * np.cos(4 * np.pi * t / cycle), np.zeros(T)], 1)
    rot[:, sk.index("hips")] = E2Q(np.array([yaw]), "Y")
    rot[:, sk.index("leftUpperArm")] = E2Q(np.array([-np.radians(70)]), "Z")  # arms down
    rot[:, sk.index("rightUpperArm")] = E2Q(np.array([np.radians(70)]), "Z")
    l1 = np.linalg.norm(sk.offsets[sk.index("leftLowerLeg")])
    l2 = np.linalg.norm(sk.offsets[sk.index("leftFoot")])
    contacts, ankles = {}, {}
    for side, phase0, lateral in (("left", 0.0, 0.09), ("right", 0.5, -0.09)):
        u = t / cycle + phase0
        k = np.floor(u)
        ph = u - k
        print_x = x0 + speed * (k - phase0 + stance / 2) * cycle  # under the hip at mid-stance
        swing = ph >= stance
        s = np.clip((ph - stance) / (1 - stance), 0, 1)
        ax = print_x + speed * cycle * np.where(swing, (1 - np.cos(np.pi * s)) / 2, 0.0)
        ay = 0.08 + np.where(swing, clearance * np.sin(np.pi * s), 0.0)
        A = np.stack([ax, ay, np.full(T, -lateral)], 1)
        v = (A - (root + [0.0, 0.0, -lateral])) @ R_yaw  # hip -> ankle in the character's frame
        d = np.linalg.norm(v, axis=1)
        assert np.all(d < l1 + l2)
        phi = np.arctan2(-v[:, 2], -v[:, 1])
        knee = np.pi - np.arccos((l1**2 + l2**2 - d**2) / (2 * l1 * l2))
        hip = phi - np.arccos((l1**2 + d**2 - l2**2) / (2 * l1 * d))
        rot[:, sk.index(f"{side}UpperLeg")] = E2Q(hip[:, None], "X")
        rot[:, sk.index(f"{side}LowerLeg")] = E2Q(knee[:, None], "X")
        rot[:, sk.index(f"{side}Foot")] = E2Q(-(hip + knee)[:, None], "X")  # flat foot
        contacts[side] = ~swing
        ankles[side] = A
    return Motion(sk, rot, root, fps), contacts, ankles


def with_root(motion: Motion, root: np.ndarray) -> Motion:
    return Motion(motion.skeleton, motion.rotations, root, motion.fps)


def sliding_walk():
    """The walk with its root wobbling (2.5 cm at 2 Hz along X, 1 cm across), so every
    planted foot slides 5-13 cm through its contact."""
    m, contacts, ankles = make_walk()
    t = m.timestamps
    root = m.root_positions.copy()
    root[:, 0] += 0.025 * np.sin(2 * np.pi * 2.0 * t)
    root[:, 2] += 0.01 * np.sin(2 * np.pi * 1.3 * t)
    return with_root(m, root), contacts, ankles


def knee_flexion(motion: Motion, side: str) -> np.ndarray:
    """Signed knee flexion (rad) about the canonical knee's hinge (+X of the thigh)."""
    return Q2A(motion.rotations[:, motion.skeleton.index(f"{side}LowerLeg")])


# -- the walk itself -----------------------------------------------------------------------


def test_walk_is_planted_by_construction():
    m, contacts, ankles = make_walk()
    P = m.positions()
    for side in SIDES:
        np.testing.assert_allclose(P[:, m.skeleton.index(f"{side}Foot")], ankles[side], atol=1e-9)
    skate = foot_skate(m, contacts)
    assert skate["slide_cm_max"] < 1e-6
    assert skate["floor_penetration"]["max_depth_cm"] == 0.0
    assert np.ptp(m.root_positions[:, 0]) == pytest.approx(2.0, abs=0.02)


# -- detection -------------------------------------------------------------------------------


def test_detect_contacts_finds_the_walking_contacts():
    m, truth, _ = make_walk()
    pts = foot_points(m)
    for side in SIDES:
        found = detect_contacts(pts[side], m.timestamps)
        accuracy = np.mean(found == truth[side])
        assert accuracy >= 0.95, (side, accuracy)  # measured: 99.2% left, 98.3% right
        assert len(contact_segments(found)) == len(contact_segments(truth[side]))
    assert {k: len(contact_segments(v)) for k, v in motion_contacts(m).items()} == {"left": 2, "right": 3}


def test_detect_contacts_with_tracking_noise():
    m, truth, _ = make_walk()
    rng = np.random.default_rng(3)
    for side, p in foot_points(m).items():
        noisy = p + rng.normal(0, 0.005, p.shape)  # 5 mm jitter
        assert np.mean(detect_contacts(noisy, m.timestamps) == truth[side]) >= 0.95


def test_hysteresis_stops_flicker_at_the_threshold():
    # a still foot hovering about the 5 cm entry height (+-1.5 cm drift, 4 mm jitter)
    rng = np.random.default_rng(0)
    T = 300
    ts = np.arange(T) / 60.0
    foot = np.zeros((T, 2, 3))
    foot[:, 1, 2] = 0.15
    foot[..., 1] = (0.05 + 0.015 * np.sin(2 * np.pi * 0.7 * ts) + rng.normal(0, 0.004, T))[:, None]
    with_h = detect_contacts(foot, ts)
    naive = detect_contacts(foot, ts, height_on=0.05, height_off=0.05, speed_on=0.25, speed_off=0.25,
                            min_duration_s=0.0, min_gap_s=0.0)
    flips = lambda c: int(np.count_nonzero(np.diff(c.astype(int))))  # noqa: E731
    assert flips(naive) > 15  # a single threshold flickers (measured: 26 flips in 5 s)
    assert flips(with_h) <= 1  # hysteresis: enters once and stays
    assert with_h[-1]


def test_short_contacts_are_dropped_and_gaps_closed():
    T = 120
    ts = np.arange(T) / 60.0
    y = np.full(T, 0.3)
    y[10:14] = 0.02  # 4 frames: shorter than 0.1 s
    y[40:80] = 0.02
    y[60:62] = 0.2  # a 2-frame blip (0.033 s) inside a contact
    foot = np.stack([np.zeros(T), y, np.zeros(T)], 1)
    c = detect_contacts(foot, ts, speed_on=10.0, speed_off=20.0)  # height alone
    assert contact_segments(c) == [(40, 80)]


def test_detect_contacts_checks_its_thresholds():
    with pytest.raises(UsageError, match="height_on <= height_off"):
        detect_contacts(np.zeros((5, 3)), np.arange(5) / 30.0, height_on=0.1, height_off=0.05)


# -- monocular takes: depth much noisier than the image ------------------------------------------

CAMERA = np.array([4.0, 1.2, 0.0])  # 4 m ahead of the walker (who walks along +X, towards it), 1.2 m up


def depth_noisy_feet(m, *, camera=CAMERA, depth_sd=0.03, image_sd=0.003, seed=5):
    """The walk's foot points as a monocular lift sees them: each foot displaced as a whole
    along its camera ray by a wandering error (``depth_sd`` m, low-passed at 3 Hz as the lift's
    depth is: planted feet seem to move ~0.3 m/s) plus ``image_sd`` m of jitter on every point."""
    from scipy.ndimage import gaussian_filter1d

    rng = np.random.default_rng(seed)
    out = {}
    for side, p in foot_points(m).items():
        wander = gaussian_filter1d(rng.normal(0, 1, len(p)), sigma=m.fps / (2 * np.pi * 3.0))
        wander *= depth_sd / wander.std()
        ray = p.mean(axis=1) - camera
        ray /= np.linalg.norm(ray, axis=1, keepdims=True)
        out[side] = p + wander[:, None, None] * ray[:, None] + rng.normal(0, image_sd, p.shape)
    return out


def _recall_and_swing(found, truth):
    return np.mean(found[truth]), np.mean(~truth[found]) if found.any() else 0.0


@pytest.mark.parametrize("camera, max_swing", [
    (CAMERA, 0.25),  # head-on: measured 0.18 left, 0.20 right (see below)
    (np.array([3.0, 1.2, 3.0]), 0.05),  # three-quarter: measured 0.00 / 0.01
])
def test_contacts_found_through_depth_noise(camera, max_swing):
    """3 cm of wandering depth error (0.26-0.42 m/s on a planted foot, 10x the image noise)
    hides most contacts from the 3D speed test; judged across the view they are found. A
    foot swinging straight at the camera moves mostly in depth, so the start and end of its
    swing look still: head-on, about a fifth of the contact frames found are swing frames
    (the 5 cm lateral-drift split and the lock's reach keep that from planting the foot
    far from where it lands)."""
    m, truth, _ = make_walk()
    noisy = depth_noisy_feet(m, camera=camera)
    for side in SIDES:
        p = noisy[side]
        speed = np.linalg.norm(np.gradient(p.mean(axis=1), m.timestamps, axis=0), axis=1)
        assert np.median(speed[truth[side]]) > 0.2  # a planted foot "moves" near the 0.25 m/s entry threshold
        rec3d, _ = _recall_and_swing(detect_contacts(p, m.timestamps), truth[side])
        across = detect_contacts(p, m.timestamps, view_from=camera, depth_weight=0.0, speed_window_s=0.2,
                                 height_on=0.1, height_off=0.16, speed_on=0.3, speed_off=0.48)
        rec, swing = _recall_and_swing(across, truth[side])
        assert rec3d < 0.6, (side, rec3d)  # measured 0.54-0.56 left, 0.22 right
        assert rec >= 0.9 and swing <= max_swing, (side, rec, swing)  # measured recall 0.92-0.97
        assert len(contact_segments(across)) == len(contact_segments(truth[side]))


def test_sight_weight_reads_the_depth_noise():
    """The line of sight gets no weight when a take's planted feet wander in depth, full
    weight when depth is as good as the image (markers, isotropic noise)."""
    m, _, _ = make_walk()
    w, ratio = sight_weight(depth_noisy_feet(m), m.timestamps, CAMERA)
    assert w == 0.0 and ratio > 2.0, ratio
    rng = np.random.default_rng(1)
    iso = {s: p + rng.normal(0, 0.003, p.shape) for s, p in foot_points(m).items()}
    w, ratio = sight_weight(iso, m.timestamps, CAMERA)
    assert w == 1.0 and ratio < 1.0, ratio
    w, ratio = sight_weight({s: p + [0.0, 1.0, 0.0] for s, p in foot_points(m).items()}, m.timestamps, CAMERA)
    assert w == 1.0 and np.isnan(ratio)  # feet never near the floor: no evidence, full weight


def test_detect_contacts_pads_and_checks_the_view():
    m, truth, _ = make_walk()
    p = foot_points(m)["left"]
    T = len(p)
    plain = contact_segments(detect_contacts(p, m.timestamps))
    padded = contact_segments(detect_contacts(p, m.timestamps, pad_s=2 / 60))  # 2 frames each side
    assert padded == [(max(s - 2, 0), min(e + 2, T)) for s, e in plain]
    with pytest.raises(UsageError, match="depth_weight"):
        detect_contacts(p, m.timestamps, view_from=CAMERA, depth_weight=1.5)
    with pytest.raises(UsageError, match="camera centre"):
        detect_contacts(p, m.timestamps, view_from=np.zeros(2), depth_weight=0.0)


def _planted_for(ankle_x: np.ndarray, fps: float = 60.0):
    """A standing figure whose left ankle follows ``ankle_x`` (m, along X); right foot still.
    Returns ``(motion, contacts)`` with the whole clip marked as contact on the left."""
    m, _, _ = make_walk(fps=fps, duration=len(ankle_x) / fps, speed=0.0, clearance=0.0)
    root = m.root_positions.copy()
    # moving the root moves both feet: compare the left ankle only
    root[:, 0] += ankle_x - ankle_x[0]
    m = with_root(m, root)
    return m, {"left": np.ones(len(ankle_x), bool)}


def test_drifting_contact_is_cut_into_its_still_parts():
    """Plant 0.5 s, step 20 cm in 0.2 s, plant 0.5 s: the one low, slow-ish segment is
    not dropped whole but cut into the two plants."""
    fps = 60.0
    t = np.arange(72) / fps
    x = np.where(t < 0.5, 0.0, np.where(t < 0.7, 0.2 * (t - 0.5) / 0.2, 0.2))
    m, c = _planted_for(x, fps)
    dropped, n = planted_contacts(m, c)
    assert not dropped["left"].any() and n == 1  # the old rule: the whole contact is lost
    cut, n = planted_contacts(m, c, split=True)
    segs = contact_segments(cut["left"])
    assert n == 1 and len(segs) == 2, segs
    (a0, a1), (b0, b1) = segs
    assert a0 == 0 and 26 <= a1 <= 32 and 40 <= b0 <= 44 and b1 == 72  # the step (frames 30-42) is left out
    xs = foot_points(m)["left"][:, 0, 0]
    for s, e in segs:
        assert np.ptp(xs[s:e]) <= 0.05  # each part is a real plant


def test_steady_slide_is_not_cut_into_plants():
    """A foot sliding steadily at 0.3 m/s (a dance slide) has no still part to lock."""
    fps = 60.0
    x = 0.3 * np.arange(60) / fps
    m, c = _planted_for(x, fps)
    cut, n = planted_contacts(m, c, split=True)
    assert n == 1 and not cut["left"].any()


def test_drift_across_the_view_only():
    """With the camera given and the line of sight weighted 0, a 10 cm drift straight towards
    the camera is not a slide; the same drift across the view is."""
    fps = 60.0
    x = 0.1 * np.sin(np.linspace(0, np.pi, 60))
    m, c = _planted_for(x, fps)
    along = np.array([10.0, 1.2, -0.09])  # on the X axis: the drift is along the line of sight
    kept, n = planted_contacts(m, c, view_from=along, depth_weight=0.0)
    assert n == 0 and kept["left"].all()
    kept, n = planted_contacts(m, c, view_from=along, depth_weight=1.0)
    assert n == 1 and not kept["left"].any()
    side_on = np.array([0.05, 1.2, 10.0])  # the same drift seen from the side
    kept, n = planted_contacts(m, c, view_from=side_on, depth_weight=0.0)
    assert n == 1 and not kept["left"].any()


# -- locking ------------------------------------------------------------------------------------


def test_lock_feet_removes_injected_sliding():
    bad, contacts, ankles = sliding_walk()
    before = foot_skate(bad, contacts)
    assert min(c["slide_cm"] for c in before["per_contact"] if c["stop"] - c["start"] > 20) > 5.0
    fixed = lock_feet(bad, contacts)
    after = foot_skate(fixed, contacts)
    assert after["slide_cm_max"] <= 1.0  # measured: < 1e-9 cm
    assert max(c["drift_cm"] for c in after["per_contact"]) <= 1.0
    assert after["floor_penetration"]["max_depth_cm"] <= 0.1

    sk = bad.skeleton
    P0, P1 = bad.positions(), fixed.positions()
    for side in SIDES:
        # bone lengths of the leg unchanged
        for j in ("LowerLeg", "Foot", "Toes"):
            jj = sk.index(side + j)
            length = np.linalg.norm(P1[:, jj] - P1[:, sk.parents[jj]], axis=1)
            np.testing.assert_allclose(length, np.linalg.norm(sk.offsets[jj]), atol=1e-9)
        # the knee stays a hinge that never hyperextends
        A = knee_flexion(fixed, side)
        assert A[:, 0].min() > 0.0 and np.abs(A[:, 1:]).max() < 1e-9
        # planted where the clean walk planted it (the wobble averages out to < 2 cm)
        f = sk.index(f"{side}Foot")
        assert np.abs(P1[contacts[side], f] - ankles[side][contacts[side]]).max() < 0.02
        # swing frames away from the contacts (beyond the 0.1 s blend) are left alone
        near = np.convolve(contacts[side].astype(float), np.ones(15), mode="same") > 0
        assert np.abs(P1[~near, f] - P0[~near, f]).max() < 1e-3
    assert np.abs(fixed.root_positions - bad.root_positions).max() < 1e-9  # no root edit needed
    assert np.min(np.concatenate([p[..., 1] for p in foot_points(fixed).values()])) >= -1e-3


def test_lock_feet_blends_without_pops():
    bad, contacts, _ = sliding_walk()
    fixed = lock_feet(bad, contacts)
    for side in SIDES:
        accel = [np.linalg.norm(np.diff(foot_points(m)[side][:, 0], 2, axis=0), axis=1).max() for m in (bad, fixed)]
        # the blends add some acceleration at contact boundaries, never a jump
        # (measured: 1.13 -> 1.42 cm/frame^2, the swing itself peaks at 1.13)
        assert accel[1] < 1.5 * accel[0]


def bobbing_hips_on_straight_legs():
    """1.5 s at 60 fps standing on straight legs while the hips bob up 4 cm and sway 3 cm,
    both feet in contact throughout: ``(motion, contacts)``."""
    sk = canonical_skeleton()
    T, fps = 90, 60.0
    t = np.arange(T) / fps
    rot = np.tile(Q_IDENTITY, (T, len(sk), 1))
    root = np.stack([0.03 * np.sin(2 * np.pi * t), 0.93 + 0.02 * (1 - np.cos(3 * np.pi * t)), np.zeros(T)], 1)
    return Motion(sk, rot, root, fps), {s: np.ones(T, bool) for s in SIDES}


def test_lock_feet_lowers_the_root_when_the_legs_cannot_reach():
    # standing on straight legs while the hips bob up 4 cm and sway 3 cm: locked feet
    # cannot be reached without lowering the hips
    m, contacts = bobbing_hips_on_straight_legs()
    assert foot_skate(m, contacts)["slide_cm_mean"] > 10.0
    fixed = lock_feet(m, contacts)
    skate = foot_skate(fixed, contacts)
    assert skate["slide_cm_max"] <= 1.0
    info = fixed.meta["foot_lock"]
    assert info["root_lowered_max_m"] > 0.01 and info["unreachable_frames"] == 0
    assert np.all(fixed.root_positions[:, 1] <= m.root_positions[:, 1] + 1e-9)
    for side in SIDES:
        assert knee_flexion(fixed, side)[:, 0].min() >= 0.0
        ankle = foot_points(fixed)[side][:, 0]
        assert np.ptp(ankle, axis=0).max() < 1e-6  # one planted position
        assert ankle[0, 1] >= 0.08 - 1e-9  # not below the rest ankle height


def test_lock_feet_can_hold_only_the_horizontal_plant():
    """``hold_height=False``: the ankle is held in x, z only and keeps its own height (a heel
    rising 3 cm at push-off still rises), never going below the rest ankle height."""
    bad, contacts, _ = sliding_walk()
    sk = bad.skeleton
    root = bad.root_positions.copy()
    root[:, 1] += 0.03 * np.sin(2 * np.pi * 1.5 * bad.timestamps) ** 2  # the hips, and so the feet, rise and fall
    bad = with_root(bad, root)
    fixed = lock_feet(bad, contacts, hold_height=False)
    assert foot_skate(fixed, contacts)["slide_cm_max"] <= 1.0
    f = sk.index("leftFoot")
    c = contacts["left"]
    y0, y1 = bad.positions()[c, f, 1], fixed.positions()[c, f, 1]
    assert np.ptp(y0) > 0.02
    np.testing.assert_allclose(y1, np.maximum(y0, 0.08), atol=2e-3)
    held = lock_feet(bad, contacts)  # the default holds the height too
    assert all(np.ptp(held.positions()[a:b, f, 1]) < 1e-6 for a, b in contact_segments(c))


def test_lock_feet_can_leave_the_root_alone():
    """``max_root_shift_m=0``: the root is not moved to let the legs reach; the legs stretch
    straight towards their plants and stop short (the foot slides by the shortfall)."""
    m, contacts = bobbing_hips_on_straight_legs()
    fixed = lock_feet(m, contacts, max_root_shift_m=0.0)
    np.testing.assert_allclose(fixed.root_positions, m.root_positions, atol=1e-12)
    before, after = foot_skate(m, contacts), foot_skate(fixed, contacts)
    assert after["slide_cm_mean"] < 0.8 * before["slide_cm_mean"]  # closer to planted, not fully
    assert fixed.meta["foot_lock"]["unreachable_frames"] > 0
    capped = lock_feet(m, contacts, max_root_shift_m=0.01)
    assert np.linalg.norm(capped.root_positions - m.root_positions, axis=1).max() <= 0.01 + 1e-9


def test_lock_feet_keeps_every_foot_point_above_the_floor():
    m, contacts, _ = make_walk()
    root = m.root_positions.copy()
    root[:, 1] -= 0.05  # the whole walk sunk 5 cm: toes 3 cm under the floor
    sunk = with_root(m, root)
    assert foot_skate(sunk, contacts)["floor_penetration"]["max_depth_cm"] == pytest.approx(3.0, abs=1e-6)
    fixed = lock_feet(sunk, contacts)
    pen = foot_skate(fixed, contacts)["floor_penetration"]
    assert pen["max_depth_cm"] <= 0.1 and pen["share_frames"] == 0.0
    assert foot_skate(fixed, contacts)["slide_cm_max"] <= 1.0


def test_lock_feet_takes_other_joint_names():
    bad, contacts, _ = sliding_walk()
    names = {"leftUpperLeg": "thigh_L", "leftLowerLeg": "shin_L", "leftFoot": "foot_L", "leftToes": "toe_L",
             "rightUpperLeg": "thigh_R", "rightLowerLeg": "shin_R", "rightFoot": "foot_R", "rightToes": "toe_R"}
    renamed = bad.rename(names)
    legs = {"L": ("thigh_L", "shin_L", "foot_L", "toe_L"), "R": ("thigh_R", "shin_R", "foot_R", None)}
    c = {"L": contacts["left"], "R": contacts["right"]}
    fixed = lock_feet(renamed, c, legs=legs)
    assert foot_skate(fixed, c, legs=legs)["slide_cm_max"] <= 1.0
    with pytest.raises(UsageError, match="no joint named 'leftUpperLeg'"):
        lock_feet(renamed, c)
    with pytest.raises(UsageError, match="not a leg"):
        lock_feet(bad, {"middle": contacts["left"]})


def test_foot_skate_measures_a_known_slide():
    T = 40
    p = np.zeros((T, 3))
    p[:, 0] = np.linspace(0, 0.05, T)  # 5 cm along x while in contact
    p[:, 1] = np.where(np.arange(T) < 30, 0.01, -0.02)
    contact = np.arange(T) < 30
    out = foot_skate({"left": p}, {"left": contact})
    (c,) = out["per_contact"]
    assert c["slide_cm"] == pytest.approx(5.0 * 29 / 39, rel=1e-9)
    assert c["drift_cm"] == pytest.approx(c["slide_cm"])
    assert out["floor_penetration"]["max_depth_cm"] == pytest.approx(2.0)
    assert out["floor_penetration"]["share_frames"] == pytest.approx(0.25)


def test_default_legs_name_canonical_joints():
    sk = canonical_skeleton()
    for names in DEFAULT_LEGS.values():
        assert all(n in sk for n in names)
