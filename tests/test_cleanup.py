"""World-frame marker cleanup, checked against a synthetic performance whose truth is known.

The truth is forward kinematics of the canonical skeleton walking forward at 1 m/s with
smooth sinusoidal joint rotations (a 0.9 Hz gait, arm swing, finger curls, a nodding
head, a jaw opening), read out as the markers MediaPipe would give: every ``pose.*``
landmark, both hands' 21 points, a few face points. The corruption is what MediaPipe
does to it: 20 mm Gaussian noise on every marker, 5 % of frames lost entirely, a hand
lost for half a second, 15 cm spikes, and left/right swaps of the legs (with and
without the hips) and of the arms for 3-frame stretches.
"""

from __future__ import annotations

import numpy as np
import pytest

from mocap import filters as F  # noqa: N812
from mocap.cleanup import (
    SWAP_GROUPS,
    WORLD_DEFAULTS,
    CleanReport,
    LiveCleaner,
    bone_length_tracks,
    clean_markers,
    part_indices,
)
from mocap.errors import UsageError
from mocap.glossary import A2Q, Q_apply, Q_mul
from mocap.landmarks import HAND, POSE
from mocap.markers import Markers
from mocap.motion import Motion
from mocap.skeleton import canonical_spec

FPS = 30.0
NOISE = 0.02
SPIKE = 0.15

_HEAD_POINTS = {  # head-frame offsets from the head joint, metres (the performer faces +Z)
    "pose.nose": (0.0, 0.08, 0.10),
    "pose.left_eye_inner": (0.015, 0.11, 0.09), "pose.left_eye": (0.03, 0.11, 0.09),
    "pose.left_eye_outer": (0.045, 0.11, 0.085),
    "pose.right_eye_inner": (-0.015, 0.11, 0.09), "pose.right_eye": (-0.03, 0.11, 0.09),
    "pose.right_eye_outer": (-0.045, 0.11, 0.085),
    "pose.left_ear": (0.075, 0.09, 0.0), "pose.right_ear": (-0.075, 0.09, 0.0),
    "pose.mouth_left": (0.025, 0.04, 0.09), "pose.mouth_right": (-0.025, 0.04, 0.09),
    "face.nose_tip": (0.0, 0.08, 0.11), "face.forehead": (0.0, 0.17, 0.09),
    "face.left_eye_outer": (0.045, 0.11, 0.08), "face.right_eye_outer": (-0.045, 0.11, 0.08),
    "face.mouth_left": (0.025, 0.04, 0.095), "face.mouth_right": (-0.025, 0.04, 0.095),
}  # fmt: skip
_JAW = ("face.chin", (0.0, 0.0, 0.09))  # moves down as the jaw opens


def _rot(t: np.ndarray, axis: int, angle: np.ndarray) -> np.ndarray:
    A = np.zeros(t.shape + (3,))
    A[:, axis] = angle
    return A2Q(A)


def synthetic_walk(T: int = 450, fps: float = FPS, seed: int = 0) -> Markers:
    """Truth: ``(T, 84, 3)`` markers of the canonical skeleton walking forward at 1 m/s."""
    spec = canonical_spec()
    sk = spec.skeleton
    rng = np.random.default_rng(seed)
    t = np.arange(T) / fps
    w = 2 * np.pi * 0.9  # gait, rad/s
    R = np.zeros((T, len(sk), 4))
    R[..., 0] = 1.0

    def setq(joint, Q):
        R[:, sk.index(joint)] = Q

    setq("hips", _rot(t, 1, 0.1 * np.sin(w * t)))
    setq("spine", _rot(t, 0, 0.05 * np.sin(2 * w * t)))
    setq("neck", _rot(t, 0, 0.1 * np.sin(0.7 * w * t)))
    setq("head", _rot(t, 1, 0.3 * np.sin(0.4 * w * t)))
    for side, ph, sgn in (("left", 0.0, 1.0), ("right", np.pi, -1.0)):
        s = w * t + ph
        setq(f"{side}UpperLeg", _rot(t, 0, -0.35 * np.sin(s)))
        setq(f"{side}LowerLeg", _rot(t, 0, 0.45 * (1 + np.sin(s + 1.2))))
        setq(f"{side}Foot", _rot(t, 0, 0.2 * np.sin(s - 0.5)))
        down = _rot(t, 2, np.full(T, -sgn * 1.25))
        setq(f"{side}UpperArm", Q_mul(_rot(t, 0, 0.3 * np.sin(s + np.pi)), down))
        setq(f"{side}LowerArm", _rot(t, 1, -sgn * (0.5 + 0.3 * np.sin(s + 2.0))))
        setq(f"{side}Hand", Q_mul(_rot(t, 2, 0.2 * np.sin(1.3 * s)), _rot(t, 0, 0.2 * np.sin(0.8 * s))))
        for finger in ("Index", "Middle", "Ring", "Little", "Thumb"):
            f, p = rng.uniform(0.5, 1.5), rng.uniform(0, 2 * np.pi)
            curl = 0.35 + 0.3 * np.sin(2 * np.pi * f * t + p)
            segs = ("Metacarpal", "Proximal", "Distal") if finger == "Thumb" else (
                "Proximal", "Intermediate", "Distal")
            for k, seg in enumerate(segs):
                axis = 1 if finger == "Thumb" else 2
                setq(f"{side}{finger}{seg}", _rot(t, axis, -sgn * curl * (0.6 if k == 0 else 1.0)))
    root = np.stack([0.05 * np.sin(w * t), 0.95 + 0.02 * np.cos(2 * w * t), 1.0 * t], axis=1)
    motion = Motion(skeleton=sk, rotations=R, root_positions=root, fps=fps)
    P, Qg = motion.fk()
    ends = motion.end_site_positions()

    pts: dict[str, np.ndarray] = {}
    for joint, marker in spec.markers.items():
        pts[marker] = P[:, sk.index(joint)]
    for joint, marker in spec.end_markers.items():
        pts[marker] = ends[joint]
    head = sk.index("head")
    for name, off in _HEAD_POINTS.items():
        pts[name] = P[:, head] + Q_apply(Qg[:, head], np.asarray(off))
    jaw = np.asarray(_JAW[1]) + np.outer(0.015 * (1 + np.sin(2 * np.pi * 1.7 * t)), [0, -1.0, 0.2])
    pts[_JAW[0]] = P[:, head] + Q_apply(Qg[:, head], jaw)
    for side in ("left", "right"):
        foot = sk.index(f"{side}Foot")
        pts[f"pose.{side}_heel"] = P[:, foot] + Q_apply(Qg[:, foot], np.array([0.0, -0.07, -0.06]))
        pts[f"{side}_hand.wrist"] = pts[f"pose.{side}_wrist"]
        pts[f"pose.{side}_index"] = pts[f"{side}_hand.index_pip"]
        pts[f"pose.{side}_pinky"] = pts[f"{side}_hand.pinky_pip"]
        pts[f"pose.{side}_thumb"] = pts[f"{side}_hand.thumb_ip"]
    pts["pose.mid_hip"] = 0.5 * (pts["pose.left_hip"] + pts["pose.right_hip"])
    pts["pose.mid_shoulder"] = 0.5 * (pts["pose.left_shoulder"] + pts["pose.right_shoulder"])
    names = ([f"pose.{n}" for n in POSE] + ["pose.mid_hip", "pose.mid_shoulder"]
             + [f"left_hand.{n}" for n in HAND] + [f"right_hand.{n}" for n in HAND]
             + [n for n in _HEAD_POINTS if n.startswith("face.")] + [_JAW[0]])
    X = np.stack([pts[n] for n in names], axis=1)
    return Markers(names=names, points=X, timestamps=t, meta={"synthetic": "canonical walk"})


def _swap(X: np.ndarray, names, frames, group: str) -> None:
    ix = {n: i for i, n in enumerate(names)}
    pairs = [(ix[a], ix[b]) for a, b in zip(*SWAP_GROUPS[group]) if a in ix and b in ix]
    li = [a for a, _ in pairs]
    ri = [b for _, b in pairs]
    rows = np.asarray(frames)[:, None]
    X[rows, li + ri] = X[rows, ri + li]


def corrupt(truth: Markers, seed: int = 1) -> tuple[Markers, dict]:
    """Noise, spikes, swaps, dropped frames and a long hand gap; returns the corrupted
    markers and what was injected. As :func:`mocap.root.lift_take` does, each hand is
    placed so that its wrist is the (noisy) pose wrist: a hand's points carry their own
    20 mm noise plus the pose wrist's."""
    rng = np.random.default_rng(seed)
    X = truth.points.copy()
    T, N, _ = X.shape
    names = truth.names
    ix = {n: i for i, n in enumerate(names)}
    X += rng.normal(0.0, NOISE, X.shape)
    inj: dict = {"swaps": {"legs": [], "hips": [], "arms": []}, "spikes": [], "long_gap": None}
    busy = np.zeros(T, bool)
    busy[:8] = busy[-8:] = True

    def free_start(n: int) -> int:
        for _ in range(10000):
            s = int(rng.integers(10, T - 10 - n))
            if not busy[s - 5:s + n + 5].any():
                busy[s - 5:s + n + 5] = True
                return s
        raise RuntimeError("no room left for another event; make the take longer")

    body = [i for i, n in enumerate(names) if n.startswith("pose.") and "mid_" not in n]
    for _ in range(6):
        f = free_start(1)
        j = int(rng.choice(body))
        d = rng.normal(size=3)
        X[f, j] += SPIKE * d / np.linalg.norm(d)
        inj["spikes"].append((f, names[j]))
    for side in ("left", "right"):
        hand = [ix[f"{side}_hand.{n}"] for n in HAND]
        X[:, hand] += (X[:, ix[f"pose.{side}_wrist"]] - X[:, ix[f"{side}_hand.wrist"]])[:, None]
    for group, n_swaps in (("legs", 4), ("arms", 2)):
        for _ in range(n_swaps):
            s = free_start(3)
            frames = list(range(s, s + 3))
            _swap(X, names, frames, group)
            inj["swaps"][group] += frames
    s = free_start(3)  # a leg swap that takes the hips along
    frames = list(range(s, s + 3))
    _swap(X, names, frames, "legs")
    _swap(X, names, frames, "hips")
    inj["swaps"]["legs"] += frames
    inj["swaps"]["hips"] += frames
    # 5 % of frames lost entirely, away from the spikes and swaps
    cand = np.flatnonzero(~busy)
    drop = rng.choice(cand, size=int(0.05 * T), replace=False)
    X[drop] = np.nan
    inj["dropped"] = np.sort(drop)
    # the left hand is lost for 0.5 s: longer than the hands' max_gap_s, so it stays missing
    g0 = free_start(15)
    hand = [ix[f"left_hand.{n}"] for n in HAND]
    X[g0:g0 + 15, hand] = np.nan
    inj["long_gap"] = (g0, g0 + 15, hand)
    for k in inj["swaps"]:
        inj["swaps"][k] = sorted(inj["swaps"][k])
    conf = np.where(np.isnan(X[..., 0]), 0.0, 0.9)
    return truth.with_points(X, confidence=conf), inj


def mpjpe(a: np.ndarray, b: np.ndarray) -> float:
    """Mean per-marker position error, metres, over entries finite in both."""
    d = np.sqrt(np.sum((a - b) ** 2, axis=-1))
    return float(np.nanmean(d))


@pytest.fixture(scope="module")
def case():
    truth = synthetic_walk()
    noisy, inj = corrupt(truth)
    clean, report = clean_markers(noisy)
    return truth, noisy, inj, clean, report


# -- a. swaps ---------------------------------------------------------------------------


def test_every_swap_is_found_and_repaired(case):
    truth, noisy, inj, clean, report = case
    for group, frames in inj["swaps"].items():
        assert report.swap_frames[group] == frames, group
        assert report.swaps[group] == len(frames)
    # the swapped markers are back where they belong: within the noise of the truth
    ix = {n: i for i, n in enumerate(truth.names)}
    for group, frames in inj["swaps"].items():
        cols = [ix[n] for side in SWAP_GROUPS[group] for n in side]
        rows = np.asarray(frames)[:, None]
        err = np.linalg.norm(clean.points[rows, cols] - truth.points[rows, cols], axis=-1)
        raw_err = np.linalg.norm(noisy.points[rows, cols] - truth.points[rows, cols], axis=-1)
        typical = np.nanmean(np.linalg.norm(clean.points[:, cols] - truth.points[:, cols], axis=-1))
        assert np.nanmax(err) < 4 * NOISE, (group, np.nanmax(err))
        assert np.nanmean(err) < 1.5 * typical, (group, np.nanmean(err), typical)
        assert np.nanmean(raw_err) > 5 * np.nanmean(err)  # they really were swapped


def test_no_swap_is_invented():
    truth = synthetic_walk(T=300)
    rng = np.random.default_rng(7)
    noisy = truth.with_points(truth.points + rng.normal(0.0, NOISE, truth.points.shape))
    _, report = clean_markers(noisy)
    assert report.swaps == {"hips": 0, "legs": 0, "arms": 0}


def test_swaps_on_a_real_walk():
    """CMU 131_01 (a real gait: the feet pass each other every step), 20 mm noise and
    nine 3-frame leg swaps: all found, nothing else."""
    from mocap.bvh import load_bvh

    from .conftest import shared_file

    m = load_bvh(shared_file("mocap/cmu_131_01_walk.bvh")).slice(0, None, 4)  # 120 -> 30 fps
    P = m.positions()
    joints = {"pose.mid_hip": "Hips"}
    for s, S in (("left", "Left"), ("right", "Right")):
        joints.update({f"pose.{s}_hip": f"{S}Hip", f"pose.{s}_knee": f"{S}Knee",
                       f"pose.{s}_ankle": f"{S}Ankle", f"pose.{s}_foot_index": f"{S}Toe",
                       f"pose.{s}_shoulder": f"{S}Shoulder", f"pose.{s}_elbow": f"{S}Elbow",
                       f"pose.{s}_wrist": f"{S}Wrist"})
    names = list(joints)
    X = np.stack([P[:, m.skeleton.index(joints[n])] for n in names], axis=1)
    rng = np.random.default_rng(3)
    Xn = X + rng.normal(0.0, NOISE, X.shape)
    frames = [f for s in range(15, len(X) - 15, 25) for f in range(s, s + 3)]
    _swap(Xn, names, frames, "legs")
    clean, report = clean_markers(Markers(names=names, points=Xn, timestamps=m.timestamps))
    assert report.swap_frames["legs"] == frames
    assert report.swaps["hips"] == report.swaps["arms"] == 0
    assert mpjpe(clean.points, X) < 0.6 * mpjpe(Xn, X)


# -- b-d. spikes, gaps, smoothing ------------------------------------------------------


def test_cleaned_is_much_closer_to_the_truth(case):
    truth, noisy, inj, clean, report = case
    assert mpjpe(clean.points, truth.points) < 0.6 * mpjpe(noisy.points, truth.points)
    body = part_indices(truth.names)["body"]
    assert mpjpe(clean.points[:, body], truth.points[:, body]) < 0.6 * mpjpe(noisy.points[:, body], truth.points[:, body])


def test_jitter_falls_at_least_fivefold(case):
    truth, noisy, inj, clean, report = case
    t = truth.timestamps
    assert F.jitter(noisy.points, t) > 5 * F.jitter(clean.points, t)
    parts = part_indices(truth.names)
    assert F.jitter(noisy.points[:, parts["body"]], t) > 10 * F.jitter(clean.points[:, parts["body"]], t)
    for part, idx in parts.items():  # hands and face keep 8 Hz for fast gestures and blinks
        assert F.jitter(noisy.points[:, idx], t) > 4 * F.jitter(clean.points[:, idx], t), part


def test_spikes_are_taken_out(case):
    truth, noisy, inj, clean, report = case
    ix = {n: i for i, n in enumerate(truth.names)}
    raw = [np.linalg.norm(noisy.points[f, ix[n]] - truth.points[f, ix[n]]) for f, n in inj["spikes"]]
    out = [np.linalg.norm(clean.points[f, ix[n]] - truth.points[f, ix[n]]) for f, n in inj["spikes"]]
    assert report.spikes["body"] >= len(inj["spikes"]) // 2
    assert np.mean(out) < 0.3 * np.mean(raw)


def test_short_gaps_filled_long_gaps_stay_missing(case):
    truth, noisy, inj, clean, report = case
    g0, g1, hand = inj["long_gap"]
    assert np.all(np.isnan(clean.points[g0:g1][:, hand]))
    assert np.all(clean.confidence[g0:g1][:, hand] == 0.0)
    body = part_indices(truth.names)["body"]
    drop = inj["dropped"]
    assert np.all(np.isfinite(clean.points[drop][:, body]))  # one-frame losses are bridged
    assert np.all(clean.confidence[drop][:, body] == pytest.approx(0.25))
    assert report.missing["hands"] == (g1 - g0) * len(hand)
    assert report.missing["body"] == report.missing["face"] == 0
    assert report.missing_in["body"] == len(drop) * len(body)


# -- e. bones ---------------------------------------------------------------------------


def test_bones_hold_one_length_left_and_right(case):
    truth, noisy, inj, clean, report = case
    tracks = bone_length_tracks(clean)
    truth_tracks = bone_length_tracks(truth)
    assert len(tracks) == 2 * (9 + 20)
    for key, ln in tracks.items():
        ok = ln[np.isfinite(ln)]
        assert np.ptp(ok) < 1e-3, key  # constant to < 1 mm over the take
        side, bone = key.split(".", 1)
        other = ("right" if side == "left" else "left") + "." + bone
        assert np.nanmean(ln) == pytest.approx(np.nanmean(tracks[other]), abs=1e-6)
        assert np.nanmean(ln) == pytest.approx(report.bone_lengths_m[bone], abs=1e-6)
        # the estimate itself, despite 20 mm of noise on 2-4 cm phalanges (debiased)
        tol = 0.006 if bone.startswith("hand.") else 0.01
        assert np.nanmean(ln) == pytest.approx(np.nanmean(truth_tracks[key]), abs=tol), key
    raw_std = [np.nanstd(v) for v in bone_length_tracks(noisy).values()]
    assert min(raw_std) > 0.01


def test_bone_lengths_can_be_given_or_only_measured(case):
    truth, noisy, inj, clean, report = case
    given = dict(report.bone_lengths_m, thigh=0.5)
    c2, r2 = clean_markers(noisy, params={"bones": {"lengths_m": given}})
    assert np.nanmean(bone_length_tracks(c2)["left.thigh"]) == pytest.approx(0.5)
    c3, r3 = clean_markers(noisy, params={"bones": {"enforce": False}})
    assert np.nanstd(bone_length_tracks(c3)["left.thigh"]) > 1e-3
    assert r3.bone_lengths_m["thigh"] == pytest.approx(report.bone_lengths_m["thigh"])


def test_debiased_length_undoes_the_noise():
    from mocap.cleanup import debiased_length

    rng = np.random.default_rng(0)
    for L, s in ((0.02, 0.02), (0.03, 0.01), (0.4, 0.02), (0.0, 0.01)):
        d = np.array([L, 0.0, 0.0]) + rng.normal(0.0, s, (20000, 3))
        sq = np.sum(d * d, axis=1)
        if L < 2 * s:
            assert np.sqrt(np.median(sq)) > L + 0.5 * s  # the plain median is far too long
        assert debiased_length(float(np.median(sq)), s * s) == pytest.approx(L, abs=0.15 * s)


def test_enforcement_moves_children_along_their_bones():
    from mocap.cleanup import Bone, enforce_bone_lengths

    names = ("pose.left_hip", "pose.left_knee", "pose.left_ankle")
    X = np.array([[[0, 1, 0], [0, 0.5, 0.1], [0.1, 0.1, 0.1]]], dtype=float)
    bones = [Bone("thigh", "left", *names[:2]), Bone("shin", "left", *names[1:])]
    Y = enforce_bone_lengths(X, bones, {"thigh": 0.4, "shin": 0.3}, names)
    assert np.linalg.norm(Y[0, 1] - Y[0, 0]) == pytest.approx(0.4)
    assert np.linalg.norm(Y[0, 2] - Y[0, 1]) == pytest.approx(0.3)
    u = (X[0, 1] - X[0, 0]) / np.linalg.norm(X[0, 1] - X[0, 0])
    assert np.allclose((Y[0, 1] - Y[0, 0]) / 0.4, u)  # same direction from the hip
    v = X[0, 2] - Y[0, 1]  # the shin points from the corrected knee to the ankle as seen
    assert np.allclose((Y[0, 2] - Y[0, 1]) / 0.3, v / np.linalg.norm(v))
    X[0, 0] = np.nan
    Z = enforce_bone_lengths(X, bones, {"thigh": 0.4, "shin": 0.3}, names)
    assert np.array_equal(Z[0, 1], X[0, 1])  # no parent: the child stays


def test_hands_hang_from_the_corrected_wrist(case):
    truth, noisy, inj, clean, report = case
    lw, hw = clean.get("pose.left_wrist"), clean.get("left_hand.wrist")
    ok = np.isfinite(hw[:, 0])
    assert np.allclose(lw[ok], hw[ok])
    assert any("hands hung from the pose wrist" in n for n in report.notes)
    # a source whose hand wrist is its own measurement is left alone ("auto")
    X = noisy.points.copy()
    X[:, noisy.index("right_hand.wrist")] += 0.03
    c2, r2 = clean_markers(noisy.with_points(X))
    assert r2.notes.count("hands hung from the pose wrist: left") == 1


# -- the whole ---------------------------------------------------------------------------


def test_report_is_json_and_markers_keep_their_shape(case):
    import json

    truth, noisy, inj, clean, report = case
    assert isinstance(report, CleanReport)
    d = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert d["mode"] == "offline" and d["frames"] == len(truth)
    assert set(d["spikes"]) == set(d["filled"]) == set(d["missing"]) == {"body", "hands", "face"}
    assert d["params"]["hands"]["units"] == "m"
    assert clean.names == noisy.names and clean.points.shape == noisy.points.shape
    assert np.array_equal(clean.timestamps, noisy.timestamps)
    assert clean.meta["cleanup"]["swaps"] == d["swaps"]
    assert np.allclose(clean.get("pose.mid_hip"), 0.5 * (clean.get("pose.left_hip") + clean.get("pose.right_hip")))


def test_world_defaults_are_metres():
    for part, p in WORLD_DEFAULTS.items():
        assert p["units"] == "m"
        assert set(p) - {"auto_range_hz"} == set(F.DEFAULTS[part])
        assert 0.005 <= p["spike_floor"] <= 0.1  # metres, not pixels


def test_unknown_settings_and_other_markers():
    truth = synthetic_walk(T=60)
    with pytest.raises(UsageError, match="unknown settings"):
        clean_markers(truth, params={"body": {"cutof_hz": 3}})
    with pytest.raises(UsageError, match="unknown params section"):
        clean_markers(truth, params={"legs": {}})
    with pytest.raises(UsageError, match="mode"):
        clean_markers(truth, mode="fast")
    names = truth.names + ("prop.ball",)
    X = np.concatenate([truth.points, np.full((len(truth), 1, 3), 7.0)], axis=1)
    X[10, -1] = np.nan
    m = Markers(names=names, points=X, timestamps=truth.timestamps)
    for mode in ("offline", "live"):
        c, r = clean_markers(m, mode=mode)
        assert np.array_equal(c.points[:, -1], X[:, -1], equal_nan=True), mode
    assert any("outside pose/hands/face" in n for n in r.notes) or mode == "live"


@pytest.mark.parametrize("T", [0, 1, 2, 5])
def test_tiny_takes(T):
    truth = synthetic_walk(T=max(T, 1))
    m = Markers(names=truth.names, points=truth.points[:T], timestamps=truth.timestamps[:T])
    for mode in ("offline", "live"):
        c, r = clean_markers(m, mode=mode)
        assert c.points.shape == m.points.shape and r.frames == T


# -- live -------------------------------------------------------------------------------


def test_live_is_causal_and_frame_by_frame(case):
    truth, noisy, inj, clean, report = case
    whole, rep = clean_markers(noisy, mode="live")
    lc = LiveCleaner(noisy.names)
    for i in range(len(noisy)):
        p, c = lc.push(noisy.points[i], noisy.timestamps[i], noisy.confidence[i])
        assert np.array_equal(p, whole.points[i], equal_nan=True), i
        assert np.array_equal(c, whole.confidence[i]), i
    # causal: the first k frames do not depend on what follows
    k = 200
    head, _ = clean_markers(Markers(names=noisy.names, points=noisy.points[:k], timestamps=noisy.timestamps[:k],
                                    confidence=noisy.confidence[:k]), mode="live")
    assert np.array_equal(head.points, whole.points[:k], equal_nan=True)
    # and it still cleans: swaps repaired as they happen, closer to the truth, steadier
    assert rep.mode == "live"
    for group, frames in inj["swaps"].items():
        assert rep.swap_frames[group] == frames, group
    assert mpjpe(whole.points, truth.points) < 0.9 * mpjpe(noisy.points, truth.points)
    assert F.jitter(whole.points, truth.timestamps) < 0.5 * F.jitter(noisy.points, truth.timestamps)
    # bones: calibrated over the first second, then held
    ln = bone_length_tracks(whole)["left.thigh"][60:]
    assert np.ptp(ln[np.isfinite(ln)]) < 1e-3
    g0, g1, hand = inj["long_gap"]
    assert np.all(np.isnan(whole.points[g0 + 5:g1][:, hand]))  # held 0.15 s, then missing
