"""Root motion from one camera: translation fit, floor, world frame, lifting a take.

The synthetic walk of ``test_contacts`` (canonical skeleton, 2 m along +X, floor at y = 0)
is filmed by a virtual pinhole camera: 1280x720, 60 deg horizontal field of view, 4 m
from the walking line, 1.2 m up, tilted down 10 deg. Its landmarks are projected into a
take the way the tracker stores them (pixels with +y down and relative depth; hip-centred
metric landmarks in the camera frame), so every expected number is known exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from mocap import landmarks as L
from mocap.errors import SolveError, UsageError
from mocap.motion import Motion, quat_rotate
from mocap.root import (
    FOOT_LANDMARKS,
    camera_translation,
    estimate_floor,
    lift_take,
    smooth_track,
)
from mocap.skeleton import canonical_spec
from mocap.take import Intrinsics, SourceInfo, Take

from .test_contacts import make_walk

W, H, HFOV = 1280, 720, 60.0
CAM_POS = np.array([0.0, 1.2, 4.0])
PITCH = np.radians(10.0)
# camera -> world rotation: a turn of -10 deg about X tips the view direction (-Z) down
R_WC = np.array([[1, 0, 0], [0, np.cos(PITCH), np.sin(PITCH)], [0, -np.sin(PITCH), np.cos(PITCH)]])
UP_IN_CAMERA = R_WC.T @ np.array([0.0, 1.0, 0.0])
INTR = Intrinsics.from_hfov(W, H, HFOV)

# landmarks the skeleton has no joint for: offsets in the head / foot frames (metres)
HEAD = {"nose": (0, .10, .10), "left_eye_inner": (.015, .13, .09), "left_eye": (.032, .13, .085),
        "left_eye_outer": (.048, .13, .075), "left_ear": (.075, .11, 0), "mouth_left": (.025, .05, .09)}
HEAD.update({k.replace("left", "right"): (-v[0], v[1], v[2]) for k, v in list(HEAD.items())})
HEEL = (0.0, -0.06, -0.05)  # 2 cm above the floor under a flat foot, like the toe joint
HAND_JOINTS = {"pinky": "LittleProximal", "index": "IndexProximal", "thumb": "ThumbDistal"}


def world_landmarks(m: Motion):
    """True world positions of the 33 body landmarks, both hands' 21 and the named face points."""
    spec = canonical_spec()
    sk = m.skeleton
    P, Q = m.fk()
    ends = m.end_site_positions()

    def at(joint, off):
        j = sk.index(joint)
        return P[:, j] + quat_rotate(Q[:, j], np.asarray(off, float))

    joint_of = {v: k for k, v in spec.markers.items()}
    end_of = {v: k for k, v in spec.end_markers.items()}
    pose = np.empty((len(m), 33, 3))
    for i, n in enumerate(L.POSE):
        if f"pose.{n}" in joint_of:
            pose[:, i] = P[:, sk.index(joint_of[f"pose.{n}"])]
        elif n in HEAD:
            pose[:, i] = at("head", HEAD[n])
        elif n.endswith("_heel"):
            pose[:, i] = at(n.split("_")[0] + "Foot", HEEL)
        else:
            side, what = n.split("_")
            pose[:, i] = P[:, sk.index(side + HAND_JOINTS[what])]
    hands = {}
    for side in ("left", "right"):
        h = np.empty((len(m), 21, 3))
        for i, n in enumerate(L.HAND):
            key = f"{side}_hand.{n}"
            h[:, i] = (P[:, sk.index(f"{side}Hand")] if n == "wrist" else
                       P[:, sk.index(joint_of[key])] if key in joint_of else ends[end_of[key]])
        hands[side] = h
    rng = np.random.default_rng(7)
    face = {}
    for n in L.FACE_POINTS:
        off = {"nose_tip": HEAD["nose"], "forehead": (0, .2, .09), "chin": (0, 0, .08)}.get(n)
        face[n] = at("head", off or (rng.uniform(-.06, .06), rng.uniform(.03, .18), rng.uniform(.05, .09)))
    return pose, hands, face


def to_camera(p):
    return (p - CAM_POS) @ R_WC  # R_WC.T @ (p - C), row-wise


def project(pc):
    d = -pc[..., 2]
    return np.stack([INTR.cx + INTR.fx * pc[..., 0] / d, INTR.cy - INTR.fy * pc[..., 1] / d], -1), d


def film(m: Motion, *, noise_m: float = 0.0, seed: int = 0):
    """A take of the motion, and the truth. ``noise_m``: Gaussian noise (metres, per
    coordinate) on the metric landmarks and, independently, on the 3D points before they
    are projected to pixels."""
    T = len(m)
    take = Take.empty(T, SourceInfo(kind="video", path="synthetic-walk", width=W, height=H,
                                    nominal_fps=m.fps, intrinsics=INTR))
    take.timestamps = m.timestamps.copy()
    pose, hands, face = world_landmarks(m)
    rng = np.random.default_rng(seed)
    pc = to_camera(pose)
    ih = [L.index("pose", "left_hip"), L.index("pose", "right_hip")]
    hips_cam = pc[:, ih].mean(1)
    uv, d = project(pc + (rng.normal(0, noise_m, pc.shape) if noise_m else 0.0))
    dh = -hips_cam[:, 2:3]
    take.pose_image[:] = np.concatenate([uv, ((d - dh) * INTR.fx / dh)[..., None]], -1)
    take.pose_world[:] = pc - hips_cam[:, None] + (rng.normal(0, noise_m, pc.shape) if noise_m else 0.0)
    take.pose_visibility[:] = 1.0
    take.pose_presence[:] = 1.0
    take.present["pose"][:] = True
    for side in ("left", "right"):
        uv, d = project(to_camera(hands[side]))
        take.image(f"{side}_hand")[:] = np.concatenate([uv, ((d - d[:, :1]) * INTR.fx / d[:, :1])[..., None]], -1)
        take.present[f"{side}_hand"][:] = True
    dn = -to_camera(face["nose_tip"])[:, 2]
    for n, p in face.items():
        uv, d = project(to_camera(p))
        take.face_image[:, L.index("face", n)] = np.concatenate([uv, ((d - dn) * INTR.fx / dn + 3.0)[:, None]], -1)
    take.present["face"][:] = True
    take.validate()
    truth = {"hips_cam": hips_cam, "hips_world": pose[:, ih].mean(1), "pose": pose, "hands": hands, "face": face}
    return take, truth


@pytest.fixture(scope="module")
def walk():
    m, contacts, _ = make_walk()
    take, truth = film(m)
    return m, contacts, take, truth


def angle_deg(a, b):
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


# -- camera_translation -----------------------------------------------------------------------


def test_scene_is_in_frame(walk):
    _, _, take, _ = walk
    uv = take.pose_image[..., :2]
    assert uv[..., 0].min() > 0 and uv[..., 0].max() < W and uv[..., 1].min() > 0 and uv[..., 1].max() < H


def test_camera_translation_is_exact_on_exact_input(walk):
    _, _, take, truth = walk
    t = camera_translation(take.pose_world, take.pose_image, INTR)
    err = np.linalg.norm(t - truth["hips_cam"], axis=1)
    assert err.max() < 0.01  # measured: 1e-7 m (float32 storage)
    t_lin = camera_translation(take.pose_world, take.pose_image, INTR, iterations=0)
    assert np.linalg.norm(t_lin - truth["hips_cam"], axis=1).max() < 0.01  # linear step alone is exact too
    assert np.all(t[:, 2] < -3.5)  # in front of the camera (depth = -z)


def test_camera_translation_with_20mm_landmark_noise(walk):
    m, _, _, _ = walk
    take, truth = film(m, noise_m=0.02, seed=0)
    t = camera_translation(take.pose_world, take.pose_image, INTR)
    err = t - truth["hips_cam"]
    rms = np.sqrt(np.mean(np.sum(err**2, axis=1)))
    per_axis = np.sqrt(np.mean(err**2, axis=0))
    # measured: RMS 4.1 cm per frame (mean 3.3, worst 10.5), of which depth (z) 3.9 cm,
    # x 0.8 cm, y 0.6 cm: 33 landmarks with 2 cm of noise each pin the body's apparent
    # size to ~1%, which is 4 cm of depth at 4 m
    assert rms < 0.05
    assert per_axis[2] > 2 * per_axis[0]  # depth, read from the apparent size, is the weak axis
    smooth = np.linalg.norm(smooth_track(t, take.timestamps, 0.1) - truth["hips_cam"], axis=1)
    assert np.sqrt(np.mean(smooth**2)) < 0.025  # measured: 1.3 cm RMS
    assert np.percentile(smooth, 95) < 0.05  # measured: 2.7 cm (worst frame 4.0 cm)


def test_camera_translation_weights_and_gaps(walk):
    _, _, take, truth = walk
    w = np.ones((len(take), 33))
    w[5, 3:] = 0.0  # only 3 usable landmarks
    pw = take.pose_world.copy()
    pw[7] = np.nan  # no body
    t = camera_translation(pw, take.pose_image, INTR, weights=w)
    assert np.all(np.isnan(t[[5, 7]]))
    ok = np.ones(len(take), bool)
    ok[[5, 7]] = False
    assert np.linalg.norm(t[ok] - truth["hips_cam"][ok], axis=1).max() < 0.01
    with pytest.raises(UsageError, match="weights must be"):
        camera_translation(take.pose_world, take.pose_image, INTR, weights=np.ones(33))


def test_smooth_track_keeps_constant_velocity_and_gaps():
    ts = np.arange(100) / 60.0
    x = np.stack([1.5 * ts, np.zeros(100), -4.0 + 0.2 * ts], 1)
    x[40:45] = np.nan
    out = smooth_track(x, ts, 0.1)
    ok = np.isfinite(x[:, 0])
    np.testing.assert_allclose(out[ok], x[ok], atol=1e-9)  # a line is kept exactly, ends included
    assert np.all(np.isnan(out[40:45]))


# -- the floor ---------------------------------------------------------------------------------


def test_estimate_floor_recovers_the_tilted_floor(walk):
    _, _, take, truth = walk
    pc = to_camera(truth["pose"])
    feet = np.stack([pc[:, L.indices("pose", FOOT_LANDMARKS[s])] for s in ("left", "right")], axis=1)
    world = estimate_floor(feet, hips_cam=truth["hips_cam"], timestamps=take.timestamps,
                           up_hint_cam=UP_IN_CAMERA + [0.0, 0.0, 0.02])  # a prior 1 deg off
    assert not world.fallback and world.notes == ()
    assert angle_deg(world.up_cam, UP_IN_CAMERA) < 1.0  # measured: 0.008 deg (the prior's pull)
    assert world.camera_height == pytest.approx(1.2, abs=0.01)  # measured: 1.2000 m
    assert world.camera_pitch_deg == pytest.approx(10.0, abs=1.0)
    # the world frame: +Y up, +Z towards the camera, origin under the first hips
    np.testing.assert_allclose(world.R_cam_to_world @ UP_IN_CAMERA, [0, 1, 0], atol=1e-3)
    np.testing.assert_allclose(world.R_cam_to_world, R_WC, atol=1e-3)
    hips0 = world.to_world(truth["hips_cam"][0])
    assert abs(hips0[0]) < 1e-9 and abs(hips0[2]) < 1e-9 and hips0[1] == pytest.approx(truth["hips_world"][0, 1], abs=0.01)


def test_estimate_floor_follows_contact_hints_and_ignores_a_raised_still_foot(walk):
    m, contacts, take, truth = walk
    pc = to_camera(truth["pose"])
    feet = np.stack([pc[:, L.indices("pose", FOOT_LANDMARKS[s])] for s in ("left", "right")], axis=1)
    hint = np.stack([contacts["left"], contacts["right"]], 1)
    world = estimate_floor(feet, hint, hips_cam=truth["hips_cam"], timestamps=take.timestamps)
    assert angle_deg(world.up_cam, UP_IN_CAMERA) < 1.0
    assert world.camera_height == pytest.approx(1.2, abs=0.01)
    # a foot held still 30 cm up for the first half second: slow, but not on the floor
    raised = feet.copy()
    raised[:30, 0] += 0.3 * UP_IN_CAMERA
    world = estimate_floor(raised, hips_cam=truth["hips_cam"], timestamps=take.timestamps)
    assert angle_deg(world.up_cam, UP_IN_CAMERA) < 1.0
    assert world.camera_height == pytest.approx(1.2, abs=0.01)


def test_estimate_floor_notes_a_floor_seen_along_one_line_only(walk):
    _, contacts, take, truth = walk
    pc = to_camera(truth["pose"])
    feet = np.full((len(take), 2, 3, 3), np.nan)
    left = contacts["left"] & (np.arange(len(take)) < 40)  # one foot, one footprint
    feet[left, 0] = pc[left][:, L.indices("pose", FOOT_LANDMARKS["left"])]
    world = estimate_floor(feet, hips_cam=truth["hips_cam"], timestamps=take.timestamps,
                           up_hint_cam=UP_IN_CAMERA)
    assert not world.fallback
    assert any("follows the body's up" in n for n in world.notes)
    assert angle_deg(world.up_cam, UP_IN_CAMERA) < 1.0  # the prior decides the unseen tilt
    assert world.camera_height == pytest.approx(1.2, abs=0.01)
    with pytest.raises(SolveError, match="hips are not located"):
        estimate_floor(feet, hips_cam=np.full((len(take), 3), np.nan), timestamps=take.timestamps)


# -- lifting -----------------------------------------------------------------------------------------


def test_lift_take_puts_the_walk_in_the_world(walk):
    m, contacts, take, truth = walk
    markers, info = lift_take(take)
    assert markers.frame == "world" and info["notes"] == []
    world = info["world"]
    assert angle_deg(world.up_cam, UP_IN_CAMERA) < 1.0  # measured: 0.02 deg
    assert world.camera_height == pytest.approx(1.2, abs=0.01)  # measured: 1.199 m
    np.testing.assert_allclose(info["T_world_from_camera"][:3, 3], CAM_POS - truth["hips_world"][0] * [1, 0, 1],
                               atol=0.02)
    # root path: the world frames differ only by the origin (first hips' x, z)
    hips = markers.get("pose.mid_hip")
    true = truth["hips_world"] - truth["hips_world"][0] * [1, 0, 1]
    err = np.linalg.norm(hips - true, axis=1)
    assert err.max() < 0.05  # measured: 2 mm (from the default 0.05 s smoothing)
    assert np.ptp(hips[:, 0]) == pytest.approx(2.0, abs=0.05)
    # feet at the floor during contacts: heel/toe landmarks 2 cm up, as built
    for side in ("left", "right"):
        sole = markers.select([f"pose.{side}_heel", f"pose.{side}_foot_index"])[contacts[side], :, 1]
        assert np.abs(sole - 0.02).max() < 0.01
    # every marker where it belongs
    shift = truth["hips_world"][0] * [1, 0, 1]
    np.testing.assert_allclose(markers.select([f"pose.{n}" for n in L.POSE]), truth["pose"] - shift, atol=0.01)
    for side in ("left", "right"):
        got = markers.select([f"{side}_hand.{n}" for n in L.HAND])
        assert np.abs(got - (truth["hands"][side] - shift)).max() < 0.01
    got = markers.select([f"face.{n}" for n in L.FACE_POINTS])
    want = np.stack([truth["face"][n] for n in L.FACE_POINTS], 1) - shift
    assert np.abs(got - want).max() < 0.01
    np.testing.assert_allclose(markers.get("pose.mid_shoulder"),
                               markers.select(["pose.left_shoulder", "pose.right_shoulder"]).mean(1), atol=1e-12)
    assert np.all(markers.confidence == 1.0)
    assert info["reprojection_rms_px"].max() < 1.0


def test_lift_take_with_tracking_noise(walk):
    m, _, _, _ = walk
    take, truth = film(m, noise_m=0.01, seed=1)
    markers, info = lift_take(take)
    hips = markers.get("pose.mid_hip")
    err = np.linalg.norm(hips - (truth["hips_world"] - truth["hips_world"][0] * [1, 0, 1]), axis=1)
    # measured with 10 mm noise: up 0.14 deg off, camera height 1.214 m, root 3.2 cm mean, 5.3 cm worst
    assert angle_deg(info["world"].up_cam, UP_IN_CAMERA) < 2.0
    assert err.mean() < 0.05


def test_feet_never_visible_falls_back_and_says_so(walk):
    _, _, take, truth = walk
    clip = take.slice(0, len(take))
    for n in ("knee", "ankle", "heel", "foot_index"):
        for side in ("left", "right"):
            clip.pose_visibility[:, L.index("pose", f"{side}_{n}")] = 0.05  # an upper-body shot
    markers, info = lift_take(clip)
    world = info["world"]
    assert world.fallback
    assert any("floor fallback" in n and "not visible" in n for n in info["notes"])
    assert any("torso" in n for n in info["notes"])
    np.testing.assert_allclose(world.up_cam, [0, 1, 0])  # the camera's up
    # floor = 1.9 x torso (0.49 m) = 0.93 m below the median hips, measured along camera up
    hips_cam = info["translation_cam"]
    assert world.floor_cam == pytest.approx(np.median(hips_cam[:, 1]) - 0.931, abs=0.01)
    assert markers.get("pose.mid_hip")[0, 1] == pytest.approx(0.93, abs=0.02)
    assert markers.meta["notes"] == info["notes"]


def test_frames_without_a_body_are_empty(walk):
    _, _, take, _ = walk
    clip = take.slice(0, len(take))
    clip.present["pose"][10:15] = False
    clip.present["left_hand"][20:] = False
    markers, info = lift_take(clip)
    assert np.all(np.isnan(markers.points[10:15])) and np.all(markers.confidence[10:15] == 0)
    assert np.all(np.isfinite(markers.get("pose.mid_hip")[np.r_[0:10, 15:len(clip)]]))
    lh = [markers.index(f"left_hand.{n}") for n in L.HAND]
    assert np.all(np.isnan(markers.points[20:, lh])) and np.all(markers.confidence[20:, lh] == 0)
    assert np.all(np.isnan(info["translation_cam"][10:15]))
