"""Facial capture (issue 6): events labelled by eye on a real clip, invariance to head
rotation and face size, sides and signs, calibration, files (FaceTrack, Live Link CSV,
GLB morph-weight animation) and shape-key mapping.

Labelled frames of ``liveportrait_d18_face_closeup_jawopen.mp4`` (480x480, 30 fps, 216
frames; a man facing the camera), found by looking at each frame (0-based decoded index):

===========  ==========  ===============================================================
event        frames      what is seen
===========  ==========  ===============================================================
neutral      102-109,    mouth closed and relaxed, eyes open, brows at rest
             202-207
pucker       24-36       lips pursed and pushed forward, mouth narrow
jaw open     70-90       jaw dropped, mouth a tall open "O"
eyes shut    94-97       both eyes closed (a blink while the mouth closes)
smile        128-148     wide open grin, lip corners pulled up and out, teeth showing
===========  ==========  ===============================================================

(Frames 0-8 show a slight closed-mouth smile and 210-215 pursed lips: not neutral.)

Head pose on ``liveportrait_s20_upperbody_hands.mp4`` (480x908, 30 fps, 298 frames, a
woman, upper body): frames 0-40 her head is tilted towards her right shoulder (her left
ear, on the image's right, is higher) and turned a little to her right (the nose points
to the image's left); frames 150-250 it is upright and faces the camera. Head-yaw sign and
left/right are also tested on landmarks turned and edited synthetically.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from mocap.errors import FileFormatError, ModelFileError, UsageError
from tests.conftest import need_ffmpeg, shared_file

CLIP = "footage/liveportrait_d18_face_closeup_jawopen.mp4"
MODEL = "models/face_landmarker.task"
EVENTS = {
    "neutral": list(range(102, 110)) + list(range(202, 208)),
    "pucker": list(range(24, 37)),
    "jaw": list(range(70, 91)),
    "blink": [94, 95, 96, 97],
    "smile": list(range(128, 149)),
}
EVENT_SHAPES = {
    "pucker": ["mouthPucker"],
    "jaw": ["jawOpen"],
    "blink": ["eyeBlinkLeft", "eyeBlinkRight"],
    "smile": ["mouthSmileLeft", "mouthSmileRight"],
}


@pytest.fixture(scope="module")
def take(tmp_path_factory):
    """The close-up clip tracked once (about 10 s on one core)."""
    need_ffmpeg()
    from mocap.sources import open_source
    from mocap.take import save_take
    from mocap.tracking import TrackOptions, track

    clip = shared_file(CLIP)
    with open_source(str(clip)) as src:
        t = track(src, options=TrackOptions(), progress=False)
    out = tmp_path_factory.mktemp("face") / "d18"
    save_take(t, out)
    return out


@pytest.fixture(scope="module")
def geo(take):
    from mocap.face import solve_face
    from mocap.take import load_take

    return solve_face(load_take(take))


@pytest.fixture(scope="module")
def model_track(take):
    from mocap.face import solve_face
    from mocap.face_model import model_blendshapes
    from mocap.take import load_take

    t = load_take(take)
    m = model_blendshapes(t, shared_file(MODEL))
    return solve_face(t, model_curves=m)


def _check_events(track, neutral=EVENTS["neutral"]):
    assert len(track) == 216
    for ev, names in EVENT_SHAPES.items():
        for n in names:
            c = track.curve(n)
            assert c[EVENTS[ev]].mean() > 0.5, f"{n} during {ev}: {np.round(c[EVENTS[ev]], 2)}"
            assert np.median(c[EVENTS[ev]]) > 0.5
            assert c[neutral].max() < 0.2, f"{n} on neutral frames: {np.round(c[neutral], 2)}"
    # the shapes stay apart: the open "O" is partly puckered and a pucker drops the chin a little,
    # but neither reaches the other's level
    assert track.curve("mouthPucker")[EVENTS["jaw"]].mean() < 0.4
    assert track.curve("jawOpen")[EVENTS["pucker"]].mean() < 0.6


def test_geometric_events_on_real_clip(geo):
    _check_events(geo)
    assert geo.meta["solver"] == "geometric"
    assert np.all(geo.curve("tongueOut") == 0)


def test_model_events_and_agreement(geo, model_track):
    _check_events(model_track)
    for n in ("jawOpen", "mouthPucker", "mouthSmileLeft", "eyeBlinkRight"):
        r = np.corrcoef(geo.curve(n), model_track.curve(n))[0, 1]
        assert r > 0.75, f"{n}: geometric and model curves correlate only {r:.2f}"


def test_blink_is_crisp(geo):
    c = geo.curve("eyeBlinkLeft")
    onset = int(np.argmax(c[85:100] > 0.5)) + 85
    # from open (<0.2) to shut (>0.8) within 2 frames (67 ms at 30 fps): no low-pass smear
    assert c[onset - 2] < 0.2 and c[onset + 1] > 0.8, np.round(c[85:100], 2)


def test_head_pose_on_real_clip(geo):
    ypr = np.degrees(geo.head_euler())
    # the performer faces the camera with his head straight: small yaw and roll all along
    assert np.abs(ypr[:, 0]).max() < 12 and np.abs(ypr[:, 2]).max() < 12
    # head about 35-80 cm from the camera in a 480 px close-up at 60 deg FOV: position is metric, mm scale sane
    assert geo.meta["head_reference"].startswith("body")


def test_head_tilt_and_turn_on_real_clip(tmp_path):
    """s20: tilted to her right with the left ear up (roll > 0) and turned to her right
    (yaw < 0) in frames 0-40, upright and facing the camera in 150-250."""
    need_ffmpeg()
    from mocap.face import FaceOptions, solve_face
    from mocap.sources import open_source
    from mocap.tracking import TrackOptions, track

    clip = str(shared_file("footage/liveportrait_s20_upperbody_hands.mp4"))
    takes = []
    for start, end in ((0.0, 1.35), (5.0, 8.35)):  # frames 0-40 and 150-250 only, to keep the test short
        with open_source(clip) as src:
            takes.append(track(src, options=TrackOptions(), start=start, end=end, progress=False))
    assert takes[0].frame_index[-1] == 40 and takes[1].frame_index[0] == 150
    for ref in ("camera", "auto"):
        f = [solve_face(t, FaceOptions(head_reference=ref)) for t in takes]
        tilted, upright = (np.degrees(x.head_euler()).mean(axis=0) for x in f)
        assert tilted[2] - upright[2] > 10, (ref, tilted, upright)  # roll: the left ear rises
        assert tilted[0] - upright[0] < -5, (ref, tilted, upright)  # yaw: turned to her right
        assert abs(upright[2]) < 5 and abs(upright[0]) < 10
        if ref == "camera":
            assert abs(upright[1]) < 12  # facing the camera: pitch near level
    assert f[1].meta["head_reference"].startswith("body")
    # the face (about the nose bridge) sits 12-30 cm above her shoulder centre and near the midline
    pos = f[1].head_position.mean(axis=0)
    assert 0.12 < pos[1] < 0.30 and abs(pos[0]) < 0.08, pos


# -- synthetic edits of real landmarks -----------------------------------------------


@pytest.fixture(scope="module")
def base_take(take):
    from mocap.take import load_take

    return load_take(take)


def _with_face(t, F):
    from mocap.take import Take

    out = Take.empty(len(F), t.source)
    out.timestamps = t.timestamps[: len(F)].copy()
    out.face_image = F.astype(np.float32)
    out.present["face"][:] = True
    return out


def _rotate(F, R, scale=1.0, shift=(0.0, 0.0)):
    P = F * np.array([1.0, -1.0, -1.0])
    c = P.mean(axis=1, keepdims=True)
    P = scale * np.einsum("ij,tkj->tki", R, P - c) + c + np.array([shift[0], -shift[1], 0.0])
    return P * np.array([1.0, -1.0, -1.0])


def _Ry(deg):
    a = np.radians(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def _Rx(deg):
    a = np.radians(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def test_coefficients_do_not_depend_on_head_rotation_or_size(base_take):
    from mocap.face import FaceOptions, solve_face

    F = np.asarray(base_take.face_image, float)
    opts = FaceOptions(auto_gain=False, head_reference="camera")
    ref = solve_face(_with_face(base_take, F), opts)
    for R, s in ((_Ry(25), 1.0), (_Rx(-15) @ _Ry(-20), 0.6), (_Ry(0), 1.8)):
        moved = solve_face(_with_face(base_take, _rotate(F, R, s, shift=(30, -20))), opts)
        err = np.abs(moved.curves - ref.curves)
        assert err.max() < 0.1, f"max change {err.max():.3f} in {ref.names[int(err.max(0).argmax())]}"
        assert np.abs(moved.curve("jawOpen") - ref.curve("jawOpen")).max() < 0.03


def test_head_yaw_has_the_sign_of_the_turn(base_take):
    from mocap.face import FaceOptions, solve_face

    F = np.asarray(base_take.face_image, float)[:60]
    opts = FaceOptions(head_reference="camera")
    ref = np.degrees(solve_face(_with_face(base_take, F), opts).head_euler())
    for deg in (20, -20):  # +20: the head turns to the performer's left (image right)
        got = np.degrees(solve_face(_with_face(base_take, _rotate(F, _Ry(deg))), opts).head_euler())
        assert np.median(got[:, 0] - ref[:, 0]) == pytest.approx(deg, abs=2.0)
        assert np.abs(np.median(got[:, 2] - ref[:, 2])) < 2.0


def test_left_and_right_are_the_performers(base_take):
    """The performer's left mouth corner (face_291) is on the image's right; raising it
    must raise mouthSmileLeft, not ...Right. Irises moved to the image right look to the
    performer's left: left eye out, right eye in."""
    from mocap.face import FaceOptions, neutral_from_take, solve_face

    F = np.tile(np.asarray(base_take.face_image, float)[100:112], (4, 1, 1))  # 48 neutral frames
    iod = np.linalg.norm(F[:, 263, :2] - F[:, 33, :2], axis=-1).mean()
    neutral = neutral_from_take(_with_face(base_take, F))
    opts = FaceOptions(auto_gain=False, head_reference="camera", neutral=neutral)
    ref = solve_face(_with_face(base_take, F), opts)
    G = F.copy()
    G[24:, [291, 409, 375], 1] -= 0.06 * iod  # the performer's left corner up (image y is down)
    G[24:, 473:478, 0] += 0.04 * iod  # both irises towards the image right
    G[24:, 468:473, 0] += 0.04 * iod
    got = solve_face(_with_face(base_take, G), opts)
    d = {n: got.curve(n)[30:].mean() - ref.curve(n)[30:].mean() for n in got.names}
    assert d["mouthSmileLeft"] > 0.3 and d["mouthSmileLeft"] > d["mouthSmileRight"] + 0.25
    assert d["eyeLookOutLeft"] > 0.2 and d["eyeLookInRight"] > 0.2
    assert d["eyeLookInLeft"] < 0.05 and d["eyeLookOutRight"] < 0.05
    assert np.degrees(got.eye_angles[30:, 0]).mean() > 3  # left eye yaw towards the performer's left


def test_explicit_neutral_take(base_take):
    from mocap.face import FaceOptions, neutral_from_take, solve_face

    neutral = neutral_from_take(base_take.slice(100, 112), source="frames 100-111")
    tr = solve_face(base_take, FaceOptions(neutral=neutral))
    assert tr.meta["neutral_source"] == "frames 100-111"
    _check_events(tr, neutral=list(range(102, 110)))


# -- files ------------------------------------------------------------------------------


def test_facetrack_round_trip_and_bad_files(geo, tmp_path):
    from mocap.face import load_face, save_face

    p = save_face(geo, tmp_path / "face.npz")
    back = load_face(p)
    assert np.array_equal(back.curves, geo.curves)
    assert np.allclose(back.head_rotation, geo.head_rotation)
    assert back.names == geo.names and back.meta["solver"] == "geometric"
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(FileFormatError, match="not a readable"):
        load_face(tmp_path / "bad.npz")
    np.savez(tmp_path / "v9.npz", header=np.array('{"schema": "understudy.face", "schema_version": 9}'))
    with pytest.raises(FileFormatError, match="version 9"):
        load_face(tmp_path / "v9.npz")


def test_live_link_csv(geo, tmp_path):
    from mocap.face_csv import LIVE_LINK_HEADER, format_timecode, read_live_link_csv, write_live_link_csv

    p = write_live_link_csv(geo, tmp_path / "face.csv")
    lines = p.read_text().splitlines()
    assert lines[0] == (
        "Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,EyeLookInLeft,EyeLookOutLeft,EyeLookUpLeft,"
        "EyeSquintLeft,EyeWideLeft,EyeBlinkRight,EyeLookDownRight,EyeLookInRight,EyeLookOutRight,EyeLookUpRight,"
        "EyeSquintRight,EyeWideRight,JawForward,JawRight,JawLeft,JawOpen,MouthClose,MouthFunnel,MouthPucker,"
        "MouthRight,MouthLeft,MouthSmileLeft,MouthSmileRight,MouthFrownLeft,MouthFrownRight,MouthDimpleLeft,"
        "MouthDimpleRight,MouthStretchLeft,MouthStretchRight,MouthRollLower,MouthRollUpper,MouthShrugLower,"
        "MouthShrugUpper,MouthPressLeft,MouthPressRight,MouthLowerDownLeft,MouthLowerDownRight,MouthUpperUpLeft,"
        "MouthUpperUpRight,BrowDownLeft,BrowDownRight,BrowInnerUp,BrowOuterUpLeft,BrowOuterUpRight,CheekPuff,"
        "CheekSquintLeft,CheekSquintRight,NoseSneerLeft,NoseSneerRight,TongueOut,HeadYaw,HeadPitch,HeadRoll,"
        "LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll") == LIVE_LINK_HEADER
    assert len(lines) == 217 and all(len(r.split(",")) == 63 for r in lines)
    assert lines[1].startswith("00:00:00:00.000,61,")
    assert format_timecode(3725.125, 60) == "01:02:05:07.500"
    got = read_live_link_csv(p)
    assert np.array_equal(got["curves"], geo.curves)  # 9 significant digits: float32 exact
    assert np.allclose(got["times"], geo.timestamps - geo.timestamps[0], atol=1e-6)
    assert np.allclose(got["head"], geo.head_euler(), atol=1e-8)
    jaw = list(got["names"]).index("jawOpen")
    assert got["curves"][80, jaw] == geo.curve("jawOpen")[80]
    (tmp_path / "x.csv").write_text("frame,value\n1,2\n")
    with pytest.raises(FileFormatError, match="Timecode"):
        read_live_link_csv(tmp_path / "x.csv")


def test_face_model_file_errors(base_take, tmp_path):
    from mocap.face_model import check_model_file

    with pytest.raises(ModelFileError, match="no such file"):
        check_model_file(tmp_path / "missing.task")
    (tmp_path / "junk.task").write_bytes(b"hello")
    with pytest.raises(ModelFileError, match="not a MediaPipe .task bundle"):
        check_model_file(tmp_path / "junk.task")
    with zipfile.ZipFile(tmp_path / "pose.task", "w") as z:
        z.writestr("pose_detector.tflite", b"x")
    with pytest.raises(ModelFileError, match="no face landmarker with blendshapes"):
        check_model_file(tmp_path / "pose.task")


# -- shape keys ---------------------------------------------------------------------------


def test_arkit_names_are_one_tuple():
    from mocap.face import ARKIT_SHAPES
    from retarget.character import ARKIT_SHAPES as CHAR

    assert ARKIT_SHAPES == CHAR and len(ARKIT_SHAPES) == 52


def test_alias_mapping_names():
    from mocap.face_map import map_shapes

    names = ["mouthSmile_L", "MouthSmileRight", "eyeBlinkLeft", "Jaw_Open", "blendShape1.browInnerUp", "blink",
             "blink_l", "aa", "ih", "ou", "ee", "oh", "happy", "angry", "sad", "relaxed", "surprised",
             "Brow_Raise_Inner_L", "Mouth_Roll_In_Lower", "Eye_L_Look_L", "Hat"]
    m, notes = map_shapes(names)
    assert m["mouthSmile_L"] == {"mouthSmileLeft": 1.0}
    assert m["MouthSmileRight"] == {"mouthSmileRight": 1.0}
    assert m["Jaw_Open"] == {"jawOpen": 1.0} and m["blendShape1.browInnerUp"] == {"browInnerUp": 1.0}
    assert m["blink"] == {"eyeBlinkLeft": 0.5, "eyeBlinkRight": 0.5} and m["blink_l"] == {"eyeBlinkLeft": 1.0}
    assert m["aa"] == {"jawOpen": 1.0} and m["ou"] == {"mouthPucker": 1.0}
    assert m["Eye_L_Look_L"] == {"eyeLookOutLeft": 1.0} and m["Mouth_Roll_In_Lower"] == {"mouthRollLower": 1.0}
    assert "Hat" not in m and len(m) == len(names) - 1


def test_user_face_map(tmp_path):
    from mocap.face_map import load_facemap, map_shapes, target_weights

    p = tmp_path / "hero.toml"
    p.write_text('schema = "understudy.facemap"\nschema_version = 1\n[targets]\n'
                 'Smile = { mouthSmileLeft = 0.5, mouthSmileRight = 0.5 }\nmouthSmileLeft = "jawOpen"\n')
    m, _ = map_shapes(["Smile", "mouthSmileLeft"], p)
    assert m["mouthSmileLeft"] == {"jawOpen": 1.0}  # the map file wins over the exact name
    curves = np.zeros((3, 52))
    curves[:, 23], curves[:, 24] = [0.2, 0.6, 1.0], [0.4, 1.0, 1.0]
    assert np.allclose(target_weights(curves, m)["Smile"], [0.3, 0.8, 1.0])
    p.write_text('schema = "understudy.facemap"\nschema_version = 1\n[targets]\nSmile = { mouthGrin = 1 }\n')
    with pytest.raises(FileFormatError, match="mouthGrin"):
        load_facemap(p)


def test_robot_expressive_targets(geo, tmp_path):
    from mocap.face_map import add_face_to_glb, map_shapes, target_weights
    from retarget import gltf

    src = shared_file("characters/RobotExpressive.glb")
    doc = gltf.load_gltf(src)
    names = sorted({n for m in doc.meshes for n in m.target_names})
    assert names == ["Angry", "Sad", "Surprised"]
    m, notes = map_shapes(names)
    assert set(m) == {"Angry", "Sad", "Surprised"} and "vrm" in notes[-1]
    r = add_face_to_glb(src, geo, start_s=float(geo.timestamps[0]), out_path=tmp_path / "robot.glb")
    assert r["nodes"] == 3 and r["targets"] == ["Angry", "Sad", "Surprised"]
    out = gltf.load_gltf(tmp_path / "robot.glb")
    anim = out.animations[-1]
    ch = [c for c in anim.channels if c.path == "weights"]
    assert len(ch) == 3
    s = anim.samplers[ch[0].sampler]
    want = target_weights(np.stack([np.interp(geo.timestamps[0] + s.input, geo.timestamps, geo.curves[:, j])
                                    for j in range(52)], axis=1), m)
    tn = out.meshes[out.nodes[ch[0].node].mesh].target_names
    assert np.allclose(s.output[:, tn.index("Surprised")], want["Surprised"], atol=1e-6)
    assert not gltf.validate_glb(tmp_path / "robot.glb")


def test_vrm_without_morph_targets_says_so(geo, tmp_path):
    from mocap.face_map import add_face_to_glb
    from retarget import gltf
    from retarget.rig import export_glb, load_rig

    src = shared_file("characters/VRMC_materials_mtoon_UV_Animation_Test.vrm")
    rig = load_rig(src)
    from mocap.motion import Motion

    T = 4
    mo = Motion(skeleton=rig.skeleton, rotations=np.tile([1.0, 0, 0, 0], (T, len(rig.skeleton), 1)),
                root_positions=np.zeros((T, 3)), fps=30.0, timestamps=np.arange(T) / 30.0)
    out = export_glb(rig, mo, tmp_path / "v.glb")
    assert not any(m.n_targets for m in gltf.load_gltf(out).meshes)
    with pytest.raises(UsageError, match="none of the character's morph targets"):
        add_face_to_glb(out, geo, start_s=0.0)


def test_solve_and_retarget_put_the_face_on_a_generated_character(take, tmp_path):
    """`understudy solve` stores face.npz; `understudy retarget` onto a generated character
    (all 52 ARKit shape keys) animates them in step with the body."""
    import shutil

    import retarget.character as C
    from mocap.cli import main
    from mocap.face import load_face
    from retarget import gltf

    t = tmp_path / "take"
    shutil.copytree(take, t)
    assert main(["solve", str(t), "-q"]) == 0
    face = load_face(t)
    char = C.save_character(C.generate_character(preset="chen", resolution_m=0.03), tmp_path / "chen.glb")
    out = tmp_path / "chen_out.glb"
    assert main(["retarget", str(t), "--rig", str(char), "-o", str(out), "--frames", "60:120"]) == 0
    doc = gltf.load_gltf(out)
    anim = doc.animations[-1]
    ch = [c for c in anim.channels if c.path == "weights"]
    assert len(ch) == 1
    s = anim.samplers[ch[0].sampler]
    names = doc.meshes[doc.nodes[ch[0].node].mesh].target_names
    assert len(names) == 52 and s.output.shape == (60, 52)
    jaw = face.curve("jawOpen")[60:120]
    assert np.allclose(s.output[:, names.index("jawOpen")], jaw, atol=1e-5)  # frame 60 is the GLB's t = 0
    assert s.output[10:30, names.index("jawOpen")].mean() > 0.5  # frames 70-90: jaw open
    assert not gltf.validate_glb(out)


def test_vrm_expression_binds_drive_their_targets(geo, tmp_path):
    """A VRM 1.0 expression ("aa", bound here to the mouthFunnel target to tell it apart)
    is weighted from jawOpen and drives the target it binds; other targets keep their names."""
    import retarget.character as C
    from mocap.face_map import add_face_to_glb, vrm_expressions
    from mocap.motion import Motion
    from retarget import gltf
    from retarget.rig import export_glb, load_rig

    char = C.save_character(C.generate_character(preset="ada", resolution_m=0.03), tmp_path / "ada.glb")
    rig = load_rig(char)
    T = 10
    mo = Motion(skeleton=rig.skeleton, rotations=np.tile([1.0, 0, 0, 0], (T, len(rig.skeleton), 1)),
                root_positions=np.zeros((T, 3)), fps=30.0, timestamps=np.arange(T) / 30.0)
    out = export_glb(rig, mo, tmp_path / "ada_anim.glb")
    doc = gltf.load_gltf(out)
    ni = next(i for i, n in enumerate(doc.nodes) if n.mesh is not None and doc.meshes[n.mesh].n_targets)
    names = doc.meshes[doc.nodes[ni].mesh].target_names
    funnel = names.index("mouthFunnel")
    doc.extra.setdefault("extensions", {})["VRMC_vrm"] = {
        "specVersion": "1.0", "expressions": {"preset": {"aa": {"morphTargetBinds": [
            {"node": ni, "index": funnel, "weight": 1.0}]}}}}
    gltf.write_glb(doc, tmp_path / "ada_vrm.glb")
    assert vrm_expressions(gltf.load_gltf(tmp_path / "ada_vrm.glb")) == {"aa": [(ni, funnel, 1.0)]}
    start = float(geo.timestamps[75])  # jaw open from frame 70 to 90
    r = add_face_to_glb(tmp_path / "ada_vrm.glb", geo, start_s=start)
    assert any("VRM expression" in n for n in r["notes"])
    back = gltf.load_gltf(tmp_path / "ada_vrm.glb")
    anim = back.animations[-1]
    ch = next(c for c in anim.channels if c.path == "weights")
    s = anim.samplers[ch.sampler]
    jaw = np.interp(start + s.input, geo.timestamps, geo.curve("jawOpen"))
    assert jaw.mean() > 0.5
    assert np.allclose(s.output[:, funnel], jaw, atol=1e-5)  # the bound target follows "aa" = jawOpen
    assert np.allclose(s.output[:, names.index("jawOpen")], jaw, atol=1e-5)  # by name
    assert not gltf.validate_glb(tmp_path / "ada_vrm.glb")


def test_hand_over_face_is_not_read_as_expression():
    """mpsamples_gesture_thumbsup_upperbody.mp4 (1280x720, 25 fps): the woman's face is
    clear in frames 0-25; her fist passes in front of it in 29-40, is raised beside her
    head in 42-52 and from 53 on her thumbs-up covers her face. Covered frames are flagged
    and, once covered longer than 0.5 s, rest at neutral instead of reading the guessed mouth."""
    need_ffmpeg()
    from mocap.face import hand_occlusion, solve_face
    from mocap.sources import open_source
    from mocap.tracking import TrackOptions, track

    with open_source(str(shared_file("footage/mpsamples_gesture_thumbsup_upperbody.mp4"))) as src:
        t = track(src, options=TrackOptions(), end=2.4, progress=False)
    assert len(t) == 60
    occ = hand_occlusion(t)
    assert not occ[:25].any() and occ[30:40].mean() > 0.7 and occ[53:].all(), np.flatnonzero(occ)
    f = solve_face(t)
    assert f.meta["hand_over_face_frames"] == int(occ.sum())
    assert not f.present[occ].any() and f.present[:25].all()
    # covered to the end of the take: the neutral face, after the filters' few-frame ease into it
    assert f.curves[57:].max() < 0.02, f.names[int(np.argmax(f.curves[57:].max(axis=0)))]


def test_shape_keys_rendered_and_tracked_come_back(tmp_path):
    """The loop closed: a generated character's ARKit shape keys applied, its head
    rendered (pyrender), the renders tracked with MediaPipe and solved give back the
    shape that was applied, on the side it was applied (the character's left = +X =
    the performer's left)."""
    pytest.importorskip("pyrender")
    import cv2

    import retarget.character as C
    from mocap.face import FaceOptions, solve_face
    from mocap.sources import open_source
    from mocap.tracking import TrackOptions, track

    m = C.generate_character(preset="chen")
    V = m.vertices
    keep = (V[:, 1] > V[:, 1].max() - 0.30) & (np.abs(V[:, 0]) < 0.13)  # the head and neck
    idx = np.flatnonzero(keep)
    remap = -np.ones(len(V), int)
    remap[idx] = np.arange(len(idx))
    faces = remap[m.faces[keep[m.faces].all(axis=1)]]
    poses = [{}, {"jawOpen": 1.0}, {}, {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}, {},
             {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0}, {"mouthPucker": 1.0}, {}, {"mouthSmileLeft": 1.0},
             {"eyeBlinkLeft": 1.0}, {}]
    k = 0
    for w in poses:
        Vp = V + sum(x * m.shapes[m.shape_names.index(n)] for n, x in w.items()) if w else V
        img = C.render_preview(Vp[idx], faces, m.colors[idx], size=(320, 320), fov_deg=30)
        for _ in range(3):
            cv2.imwrite(str(tmp_path / f"f{k:03d}.png"), img[..., ::-1])
            k += 1
    with open_source(str(tmp_path), fps=10) as src:
        take = track(src, options=TrackOptions(), progress=False)
    assert take.present["face"].all()
    f = solve_face(take, FaceOptions(filter=False))
    seg = {n: np.array([f.curve(n)[3 * i:3 * i + 3].mean() for i in range(len(poses))]) for n in f.names}
    neutral = [0, 2, 4, 7, 10]
    for i, w in enumerate(poses):
        for n in w:
            assert seg[n][i] > 0.5, (n, i, np.round(seg[n], 2))
    for n in ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft", "mouthSmileRight", "mouthPucker"):
        assert seg[n][neutral].max() < 0.2, (n, np.round(seg[n], 2))
    assert seg["mouthSmileLeft"][8] > seg["mouthSmileRight"][8] + 0.3  # left only: the character's left
    assert seg["eyeBlinkLeft"][9] > 0.5 > seg["eyeBlinkRight"][9] + 0.2
