"""Synthetic markers and takes from motion capture (mocap.synth), checked for geometry:
which side of the image the left wrist is on, hip-centring, reprojection, noise and
dropout statistics. The shared CMU files are in ../shared/mocap (SOURCES.md section 3).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from mocap import landmarks as L
from mocap.bvh import load_bvh
from mocap.errors import UsageError
from mocap.glossary import A2Q
from mocap.motion import Motion
from mocap.skeleton import canonical_skeleton
from mocap.synth import (
    CameraPose,
    VirtualCamera,
    canonical_targets,
    degrade_markers,
    synth_markers,
    synth_take,
)
from mocap.take import load_take, save_take

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MOCAP = SHARED / "mocap"
needs_mocap = pytest.mark.skipif(
    not MOCAP.is_dir(), reason=f"the shared CMU BVH files are not at {MOCAP} (see SOURCES.md section 3)"
)

# canonical (VRM) joint -> joint of the source BVH. The real maps live in assets/bonemaps;
# these small ones keep the tests independent of them.
CMU_MAP = {"hips": "Hips", "spine": "lowerback", "chest": "Chest", "upperChest": "Chest2",
           "neck": "Neck", "head": "Head"}  # fmt: skip
for _s, _S in (("left", "Left"), ("right", "Right")):
    CMU_MAP.update({
        f"{_s}Shoulder": f"{_S}Collar", f"{_s}UpperArm": f"{_S}Shoulder", f"{_s}LowerArm": f"{_S}Elbow",
        f"{_s}Hand": f"{_S}Wrist", f"{_s}UpperLeg": f"{_S}Hip", f"{_s}LowerLeg": f"{_S}Knee",
        f"{_s}Foot": f"{_S}Ankle", f"{_s}Toes": f"{_S}Toe",
    })  # fmt: skip
SALSA_MAP = {"hips": "hip", "spine": "abdomen", "chest": "chest", "neck": "neck", "head": "head"}
for _s, _c in (("left", "l"), ("right", "r")):
    SALSA_MAP.update({
        f"{_s}Shoulder": f"{_c}Collar", f"{_s}UpperArm": f"{_c}Shldr", f"{_s}LowerArm": f"{_c}ForeArm",
        f"{_s}Hand": f"{_c}Hand", f"{_s}UpperLeg": f"{_c}Thigh", f"{_s}LowerLeg": f"{_c}Shin",
        f"{_s}Foot": f"{_c}Foot",  # no toe joint: foot_index is the foot's end site
        f"{_s}ThumbMetacarpal": f"{_c}Thumb1", f"{_s}ThumbProximal": f"{_c}Thumb2",
        f"{_s}IndexProximal": f"{_c}Index1", f"{_s}IndexIntermediate": f"{_c}Index2",
        f"{_s}MiddleProximal": f"{_c}Mid1", f"{_s}MiddleIntermediate": f"{_c}Mid2",
        f"{_s}RingProximal": f"{_c}Ring1", f"{_s}RingIntermediate": f"{_c}Ring2",
        f"{_s}LittleProximal": f"{_c}Pinky1", f"{_s}LittleIntermediate": f"{_c}Pinky2",
    })  # fmt: skip
BVH_FILES = {
    "walk": ("cmu_131_01_walk.bvh", CMU_MAP),
    "hop": ("cmu_131_03_hop.bvh", CMU_MAP),
    "salsa": ("cmu_60_10_salsa_scaled.bvh", SALSA_MAP),
}
IDENTITY_MAP = {n: n for n in canonical_skeleton().names}


@functools.cache
def bvh30(key: str) -> Motion:
    """A shared BVH resampled to 30 fps (every 4th frame of the 120 fps files)."""
    path = MOCAP / BVH_FILES[key][0]
    if not path.exists():
        pytest.skip(f"../shared/mocap/{path.name} is not present (real test data lives beside the checkout)")
    return load_bvh(path).resample(30.0)


def canonical_motion(rotations: np.ndarray | None = None, T: int = 3) -> Motion:
    sk = canonical_skeleton()
    if rotations is None:
        rotations = np.tile([1.0, 0.0, 0.0, 0.0], (T, len(sk), 1))
    T = rotations.shape[0]
    return Motion(sk, rotations, np.tile(sk.offsets[0], (T, 1)), fps=30.0)


def idx(name: str) -> int:
    return L.index("pose", name)


# -- markers ---------------------------------------------------------------------------------


def test_canonical_rest_pose_landmarks_sit_on_the_joints():
    m = canonical_motion()
    mk = synth_markers(m, mapping=IDENTITY_MAP)
    P = m.positions()[0]
    sk = m.skeleton
    for joint, lm in [("leftLowerArm", "pose.left_elbow"), ("rightHand", "pose.right_wrist"),
                      ("leftUpperLeg", "pose.left_hip"), ("rightFoot", "pose.right_ankle"),
                      ("leftToes", "pose.left_foot_index"), ("leftIndexProximal", "left_hand.index_mcp"),
                      ("rightThumbDistal", "right_hand.thumb_ip"), ("leftIndexProximal", "pose.left_index"),
                      ("rightLittleProximal", "pose.right_pinky"), ("leftThumbProximal", "pose.left_thumb")]:
        assert np.abs(mk.get(lm)[0] - P[sk.index(joint)]).max() < 1e-12, (joint, lm)
    # the hips joint is midway between the hip landmarks; mid_shoulder at the neck (T-pose)
    assert np.abs(mk.get("pose.mid_hip")[0] - P[0]).max() < 1e-12
    assert np.abs(mk.get("pose.mid_shoulder")[0] - P[sk.index("neck")]).max() < 1e-12
    # fingertips are the end sites; the heel 6 cm below and 5 cm behind the ankle
    tip = P[sk.index("leftIndexDistal")] + sk.end_sites["leftIndexDistal"]
    assert np.abs(mk.get("left_hand.index_tip")[0] - tip).max() < 1e-12
    heel = mk.get("pose.left_heel")[0] - P[sk.index("leftFoot")]
    assert np.allclose(heel, [0.0, -0.06, -0.05])
    # the face looks forward (+Z) and the performer's left eye is on +X
    head = P[sk.index("head")]
    assert mk.get("pose.nose")[0, 2] - head[2] > 0.1
    assert mk.get("pose.left_eye")[0, 0] > 0 > mk.get("pose.right_eye")[0, 0]
    assert mk.meta["figure_scale"] == pytest.approx(1.0)
    # every target of canonical_targets is a canonical joint's landmark
    tg = canonical_targets(mk)
    assert np.abs(tg["neck"] - mk.get("pose.mid_shoulder")).max() == 0
    assert len(tg) == 2 + 2 * 6 + 2 + 2 * 15  # hips, neck, limbs, toes, fingers


def test_head_rotation_carries_the_face():
    """Turning the head 90 degrees to the performer's left brings the nose to +X."""
    sk = canonical_skeleton()
    R = np.tile([1.0, 0.0, 0.0, 0.0], (1, len(sk), 1))
    R[0, sk.index("head")] = A2Q([0.0, np.pi / 2, 0.0])
    mk = synth_markers(canonical_motion(R), mapping=IDENTITY_MAP)
    head = canonical_motion(R).positions()[0, sk.index("head")]
    assert mk.get("pose.nose")[0, 0] - head[0] == pytest.approx(0.115)


def test_without_finger_joints_the_hand_points_follow_the_hand_frame():
    """A source without fingers (the CMU files) gets pose.*_index/_pinky/_thumb from the
    hand's frame: for the canonical skeleton that is exactly where its knuckles are."""
    sk = canonical_skeleton()
    R = np.tile([1.0, 0.0, 0.0, 0.0], (2, len(sk), 1))
    R[:, sk.index("leftHand")] = A2Q([[0.3, -0.5, 0.8], [-1.0, 0.2, 0.1]])
    R[:, sk.index("rightLowerArm")] = A2Q([0.0, -1.2, 0.0])
    m = canonical_motion(R)
    no_fingers = {k: v for k, v in IDENTITY_MAP.items()
                  if not any(f in k for f in ("Thumb", "Index", "Middle", "Ring", "Little"))}
    mk = synth_markers(m, mapping=no_fingers)
    P = m.positions()
    for s in ("left", "right"):
        for key, joint in (("index", "IndexProximal"), ("pinky", "LittleProximal"), ("thumb", "ThumbProximal")):
            assert np.abs(mk.get(f"pose.{s}_{key}") - P[:, sk.index(f"{s}{joint}")]).max() < 1e-12
        assert f"{s}_hand.wrist" not in mk


def test_mapping_errors_name_the_problem():
    m = canonical_motion()
    with pytest.raises(UsageError, match="not a canonical joint"):
        synth_markers(m, mapping={**IDENTITY_MAP, "leftElbow": "leftLowerArm"})
    with pytest.raises(UsageError, match="no joint 'LeftWrist'"):
        synth_markers(m, mapping={**IDENTITY_MAP, "leftHand": "LeftWrist"})
    with pytest.raises(UsageError, match="lacks"):
        synth_markers(m, mapping={k: v for k, v in IDENTITY_MAP.items() if k != "head"})
    partial = {k: v for k, v in IDENTITY_MAP.items() if k != "leftRingProximal"}
    with pytest.raises(UsageError, match="all five"):
        synth_markers(m, mapping=partial)


@needs_mocap
def test_salsa_has_21_hand_landmarks_and_cmu_none():
    mk = synth_markers(bvh30("salsa"), mapping=SALSA_MAP)
    for s in ("left", "right"):
        names = [f"{s}_hand.{n}" for n in L.HAND]
        assert all(n in mk for n in names)
        pts = mk.select(names)
        assert np.isfinite(pts).all()
        # the salsa has 2 joints per finger: the DIP is interpolated on the PIP -> tip line
        pip, dip, tip = (mk.get(f"{s}_hand.index_{k}") for k in ("pip", "dip", "tip"))
        cross = np.linalg.norm(np.cross(dip - pip, tip - pip), axis=-1)
        assert cross.max() < 1e-12
    cmu = synth_markers(bvh30("walk"), mapping=CMU_MAP)
    assert not any(n.endswith("_hand.wrist") for n in cmu.names)
    assert np.isfinite(cmu.get("pose.left_pinky")).all()


def test_degrade_markers_noise_and_dropout_statistics():
    rng = np.random.default_rng(0)
    T = 2000
    names = ("pose.left_hip", "pose.right_hip", "pose.mid_hip", "pose.nose")
    pts = rng.normal(size=(T, 4, 3))
    pts[:, 2] = 0.5 * (pts[:, 0] + pts[:, 1])
    from mocap.markers import Markers

    mk = Markers(names, pts, np.arange(T) / 30.0)
    d = degrade_markers(mk, noise_mm=10.0, dropout=0.05, seed=7)
    lost = ~np.isfinite(d.points[:, 0, 0])
    assert lost.sum() == 100  # exactly round(0.05 * 2000) frames
    assert np.all(d.confidence[lost] == 0)
    sigma_mm = np.std((d.points - pts)[~lost][:, [0, 1, 3]]) * 1000
    assert sigma_mm == pytest.approx(10.0, rel=0.1)
    # the midpoint is recomputed from the noisy hips
    assert np.allclose(d.points[~lost, 2], 0.5 * (d.points[~lost, 0] + d.points[~lost, 1]))
    again = degrade_markers(mk, noise_mm=10.0, dropout=0.05, seed=7)
    assert np.array_equal(again.points, d.points, equal_nan=True)
    other = degrade_markers(mk, noise_mm=10.0, dropout=0.05, seed=8)
    assert not np.array_equal(np.isnan(other.points[:, 0, 0]), lost)
    with pytest.raises(UsageError):
        degrade_markers(mk, dropout=1.5)


# -- takes ---------------------------------------------------------------------------------------


@needs_mocap
@pytest.mark.parametrize("key", ["walk", "salsa"])
def test_performer_facing_the_camera_has_the_left_wrist_on_the_image_right(key):
    motion = bvh30(key)
    mapping = BVH_FILES[key][1]
    take = synth_take(motion, mapping=mapping)
    assert take.source.kind == "synthetic" and take.source.intrinsics.source == "synthetic"
    assert (take.source.width, take.source.height) == (1280, 720)
    assert take.source.intrinsics.hfov_deg(1280) == pytest.approx(60.0)
    img = take.pose_image
    # frame 0: the camera stands 4 m in front of the performer, so their left is image right
    for left, right in (("left_wrist", "right_wrist"), ("left_shoulder", "right_shoulder"),
                        ("left_hip", "right_hip"), ("left_ear", "right_ear")):
        assert img[0, idx(left), 0] > img[0, idx(right), 0], (left, right)
    # the hips are centred horizontally, and the head is above them (image +y down)
    mid_x = 0.5 * (img[0, idx("left_hip"), 0] + img[0, idx("right_hip"), 0])
    assert abs(mid_x - 640.0) < 1.0
    assert img[0, idx("nose"), 1] < img[0, idx("left_hip"), 1]
    # camera 1.2 m high looking at the hips: the camera centre is 4 m away
    cam = take.tracker["camera"]
    pose = CameraPose(np.array(cam["rotation_cam_to_world"]), np.array(cam["position_m"]))
    mk = synth_markers(motion, mapping=mapping)
    anchor = mk.get("pose.mid_hip")[0]
    assert np.hypot(*(pose.position - anchor)[[0, 2]]) == pytest.approx(4.0)


@needs_mocap
def test_pose_world_is_hip_centred_camera_frame_and_reprojects():
    motion = bvh30("salsa")
    take = synth_take(motion, mapping=SALSA_MAP)
    ok = take.present["pose"]
    assert ok.all()
    W = take.pose_world.astype(float)
    mid = 0.5 * (W[:, idx("left_hip")] + W[:, idx("right_hip")])
    assert np.abs(mid).max() * 1000 < 1.0  # within 1 mm of the origin
    # pose_world + the mid-hip's camera position projects onto pose_image
    cam = take.tracker["camera"]
    pose = CameraPose(np.array(cam["rotation_cam_to_world"]), np.array(cam["position_m"]))
    t = pose.world_to_camera(synth_markers(motion, mapping=SALSA_MAP).get("pose.mid_hip"))
    p = W + t[:, None]
    K = take.source.intrinsics
    u = K.cx + K.fx * p[..., 0] / -p[..., 2]
    v = K.cy - K.fy * p[..., 1] / -p[..., 2]
    err = np.hypot(u - take.pose_image[..., 0], v - take.pose_image[..., 1])
    assert err.max() < 0.01, f"reprojection error {err.max():.4f} px"
    # camera axes: +Y up (the head is above the hips), the body is in front (z < 0 there)
    assert np.all(W[:, idx("nose"), 1] > 0.3)
    assert np.all(t[:, 2] < -2.0)
    # image z is depth relative to the hips on the x scale: the hips are at 0
    zh = take.pose_image[:, [idx("left_hip"), idx("right_hip")], 2].mean(axis=1)
    assert np.abs(zh).max() < 0.5
    d = -p[..., 2]
    assert np.allclose(take.pose_image[..., 2], K.fx * (d - (-t[:, 2:3])) / -t[:, 2:3], atol=1e-2)
    # hands and face are filled, the other 455 face-mesh points are not
    assert take.present["left_hand"].all() and take.present["face"].all()
    assert np.isfinite(take.left_hand_image).all()
    filled = np.isfinite(take.face_image[0, :, 0])
    assert filled.sum() == len(L.FACE_POINTS)


@needs_mocap
def test_take_noise_has_the_requested_sigma_and_dropout_fraction():
    motion = bvh30("walk")
    clean = synth_take(motion, mapping=CMU_MAP, camera=VirtualCamera(distance_m=6.0))
    noisy = synth_take(motion, mapping=CMU_MAP, camera=VirtualCamera(distance_m=6.0),
                       noise_mm=10.0, dropout=0.05, seed=3)
    T = len(motion)
    lost = ~noisy.present["pose"]
    assert lost.sum() == round(0.05 * T)
    assert np.isnan(noisy.pose_world[lost]).all() and not noisy.present["face"][lost].any()
    keep = ~lost & clean.present["pose"]
    # pose_world is hip-centred, so each point carries its noise minus the mid-hip's
    # (sigma / sqrt 2 per axis): var = sigma^2 (1 + 1/2)
    others = [i for i in range(33) if i not in (idx("left_hip"), idx("right_hip"))]
    diff = (noisy.pose_world - clean.pose_world)[keep][:, others].astype(float)
    sigma_mm = np.std(diff) / np.sqrt(1.5) * 1000
    assert sigma_mm == pytest.approx(10.0, rel=0.1)
    # and the image noise is that noise projected: about fx * sigma / depth px
    px = np.std((noisy.pose_image - clean.pose_image)[keep][:, others, :2])
    assert 0.5 < px < 8.0
    again = synth_take(motion, mapping=CMU_MAP, camera=VirtualCamera(distance_m=6.0),
                       noise_mm=10.0, dropout=0.05, seed=3)
    assert np.array_equal(again.pose_image, noisy.pose_image, equal_nan=True)


@needs_mocap
def test_camera_yaw_and_tilt(tmp_path):
    motion = bvh30("salsa").slice(0, 5)
    # orbit 90 degrees to the performer's left: their left side faces the camera
    side = synth_take(motion, mapping=SALSA_MAP, camera=VirtualCamera(yaw_deg=90.0))
    z = side.pose_image[0, :, 2]
    assert z[idx("left_shoulder")] < z[idx("right_shoulder")]
    # tilting the camera up moves the performer down in the image
    up = synth_take(motion, mapping=SALSA_MAP, camera=VirtualCamera(tilt_deg=10.0))
    flat = synth_take(motion, mapping=SALSA_MAP)
    assert up.pose_image[0, idx("nose"), 1] > flat.pose_image[0, idx("nose"), 1] + 100
    # a synthetic take is an ordinary take on disk
    save_take(flat, tmp_path / "take")
    back = load_take(tmp_path / "take")
    assert back.source.kind == "synthetic" and back.source.intrinsics.source == "synthetic"
    assert np.allclose(back.pose_image, flat.pose_image, equal_nan=True)
    assert back.tracker["camera"]["hfov_deg"] == 60.0
