"""The Blender add-on, headless with the bpy 5.0.1 module (Blender 5.0: slotted actions).

One worker process (tests/test_addon_worker.py) installs the zip built by ``understudy addon
build`` with ``bpy.ops.extensions.package_install_files`` into a temporary extension
repository, with scipy, mocap and retarget blocked from import as in a real Blender, and
runs the operators; the tests here check what it reports against the project's own
readers (mocap.motion_io, mocap.bvh, retarget.bonemap). About 15 s in all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mocap.bvh import load_bvh
from mocap.cli import main as cli
from mocap.motion_io import load_motion
from retarget.bonemap import builtin_profiles, detect_profile, load_bonemap

from .conftest import shared_file

WORKER = Path(__file__).with_name("test_addon_worker.py")
ROBOT_MAP = """schema = "understudy.bonemap"
schema_version = 1
name = "robot_expressive"
description = "three.js RobotExpressive: legs hang from Body, the feet are IK bones under the root"
[bones]
hips = "Body"
spine = "Abdomen"
chest = "Torso_1"
neck = "Neck"
head = "Head"
leftShoulder = "ShoulderL"
leftUpperArm = "UpperArmL"
leftLowerArm = "LowerArmL"
leftHand = "Palm2L"
rightShoulder = "ShoulderR"
rightUpperArm = "UpperArmR"
rightLowerArm = "LowerArmR"
rightHand = "Palm2R"
leftUpperLeg = "UpperLegL"
leftLowerLeg = "LowerLegL"
leftFoot = "FootL"
rightUpperLeg = "UpperLegR"
rightLowerLeg = "LowerLegR"
rightFoot = "FootR"
"""
CSV_ROWS = 30
FRAMES = [1, 60, 120, 240]
BVH_FRAMES = [1, 500, 990]
LIMBS = [("leftUpperArm", "leftLowerArm"), ("leftLowerArm", "leftHand"), ("rightUpperArm", "rightLowerArm"),
         ("rightLowerArm", "rightHand"), ("leftUpperLeg", "leftLowerLeg"), ("rightUpperLeg", "rightLowerLeg"),
         ("leftLowerLeg", "leftFoot"), ("rightLowerLeg", "rightFoot"), ("spine", "chest")]


def _csv_value(name: str, i: int) -> float:
    return {"EyeBlinkLeft": i / (CSV_ROWS - 1), "JawOpen": 0.5, "MouthSmileLeft": 1 - i / (CSV_ROWS - 1),
            "BrowDownLeft": 1.0}[name]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    pytest.importorskip("bpy", reason="bpy 5.0.1 is installed by scripts/setup.sh (the blender extra)")
    walk = shared_file("mocap/cmu_131_01_walk.bvh")
    robot = shared_file("characters/RobotExpressive.glb")
    t = tmp_path_factory.mktemp("addon")
    assert cli(["addon", "build", "-o", str(t / "understudy_addon.zip")]) == 0
    assert cli(["synth", str(walk), "-o", str(t / "walk"), "--width", "640", "--height", "360"]) == 0
    assert cli(["solve", str(t / "walk"), "-q"]) == 0
    from retarget.character import generate_character, save_character

    save_character(generate_character(seed=1), t / "generated.glb")
    (t / "bad.npz").write_bytes(b"not a zip at all")
    (t / "bad.bvh").write_text("HIERARCHY\nROOT Hips\n{\n OFFSET 0 0 0\n CHANNELS 3 Xposition Yposition Zposition\n}\n"
                               "MOTION\nFrames: 2\nFrame Time: 0.1\n0 0 0\n")
    (t / "bad_map.toml").write_text('schema = "understudy.bonemap"\nschema_version = 1\nname = "x"\n'
                                    '[bones]\nleftUpperArmm = "a"\n')
    (t / "robot.map.toml").write_text(ROBOT_MAP)
    header = ["Timecode", "BlendShapeCount", "EyeBlinkLeft", "JawOpen", "MouthSmileLeft", "BrowDownLeft", "HeadYaw"]
    rows = [",".join(header)] + [
        f"12:00:00:{i:02d}.000,52," + ",".join(f"{_csv_value(n, i):.4f}" for n in header[2:6]) + ",0.1"
        for i in range(CSV_ROWS)]
    (t / "face.csv").write_text("\n".join(rows) + "\n")
    (t / "repo").mkdir()
    job = dict(zip=str(t / "understudy_addon.zip"), repo_dir=str(t / "repo"), take=str(t / "walk" / "motion.npz"),
               take_name="walk", robot=str(robot), robot_map=str(t / "robot.map.toml"), generated=str(t / "generated.glb"),
               frames=FRAMES, bvh=str(walk), bvh_name=walk.stem, bvh_frames=BVH_FRAMES, map_out=str(t / "map.toml"),
               bad_map=str(t / "bad_map.toml"), bad_npz=str(t / "bad.npz"), bad_bvh=str(t / "bad.bvh"),
               shape_keys=["eyeBlinkLeft", "jawOpen", "mouthSmile_L", "Angry"], csv=str(t / "face.csv"),
               csv_frames=[1, 15, 30])
    (t / "job.json").write_text(json.dumps(job))
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(t / "blender_user"))
    r = subprocess.run([sys.executable, str(WORKER), str(t / "job.json")], capture_output=True, text=True, env=env,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):]), t


def _angles(pose: dict, P: np.ndarray, index, pairs) -> np.ndarray:
    """Degrees between each target bone (head to child head, Blender world, Y-up) and the
    source's segment at the same frame ``(frames, bones)``."""
    out = []
    for f, d in pose.items():
        i = int(f) - 1
        row = []
        for a, b in pairs:
            t = np.array(d[b]) - np.array(d[a])
            s = P[i, index(b)] - P[i, index(a)]
            row.append(np.degrees(np.arccos(np.clip(t @ s / np.linalg.norm(t) / np.linalg.norm(s), -1, 1))))
        out.append(row)
    return np.array(out)


def test_zip_installs_as_an_extension_with_panel_and_operators_and_no_scipy(run):
    res, t = run
    with zipfile.ZipFile(t / "understudy_addon.zip") as z:
        names = z.namelist()
        import tomllib

        m = tomllib.loads(z.read("blender_manifest.toml").decode())
    assert m["schema_version"] == "1.0.0" and m["id"] == "understudy" and m["blender_version_min"] == "4.2.0"
    assert "files" in m["permissions"] and "network" in m["permissions"] and m["license"]
    assert {f"data/bonemaps/{p}.toml" for p in builtin_profiles()} <= set(names)
    assert "data/skeleton/canonical.toml" in names and "__init__.py" in names
    assert res["blender"].startswith("5.0")
    assert res["install"] == ["FINISHED"] and res["addons"] == ["bl_ext.understudy_test.understudy"]
    assert {"import_take", "import_bvh", "import_face_csv", "map_detect", "map_export", "map_import"} <= set(
        res["operators"])
    assert res["panel"] == ["VIEW_3D", "UI", "Understudy"]
    assert res["scipy_loaded"] is False and res["scipy_loaded_end"] is False
    # the sidebar panel, drawn for the generated character after its import
    drawn = res["panel_draw"]
    ops = [d[1][0] for d in drawn if d[0] == "operator"]
    assert ops == ["understudy.import_take", "understudy.import_bvh", "understudy.import_face_csv",
                   "understudy.live_link", "understudy.live_link_stop", "understudy.map_detect", "understudy.map_import", "understudy.map_export", "understudy.map_clear"]
    labels = [d[2] for d in drawn if d[0] == "label"]
    assert labels == ["Rig: understudy_skeleton", "Bone map: canonical"]
    assert ["template_list", ["UNDERSTUDY_UL_bonemap", "", "understudy_map", "understudy_map_index"], None] in drawn


def test_take_onto_generated_character_keys_every_frame_and_matches_the_solved_pose(run):
    res, t = run
    g = res["generated"]
    motion, _ = load_motion(t / "walk" / "motion.npz")
    T = motion.n_frames
    assert g["error"] is None and g["map_name"] == "canonical"
    assert g["tracks"] == ["walk"] and g["strips"] == [["walk", 1.0, float(T)]] and g["active_action"] is None
    assert g["fcurves"] == 52 * 4 + 3  # a quaternion per bone + the hips' location
    assert g["keys_per_fcurve"] == [T] and g["key_frame_range"] == [1.0, float(T)]
    assert g["fps"] == pytest.approx(motion.fps) and g["frame_range"] == [1, T]
    assert g["interpolation"] == ["LINEAR"]
    P, _ = motion.fk()
    err = _angles(g["pose"], P, motion.skeleton.index, LIMBS)
    assert err.max() < 2.0, err.round(2)
    # the feet stand on the floor: at their lowest, ankles within 2.5 cm of the rig's rest ankle height (8.1 cm)
    assert abs(g["foot_min"] - 0.081) < 0.025


def test_take_onto_robot_expressive_needs_its_map_then_matches_the_limbs(run):
    res, t = run
    r = res["robot"]
    assert "no bone map fits this rig" in r["no_map_error"] and "leftUpperLeg" in r["no_map_error"]
    assert r["map_import_error"] is None and r["map_name"] == "robot_expressive" and r["error"] is None
    motion, _ = load_motion(t / "walk" / "motion.npz")
    assert r["fcurves"] == r["bones"] * 4 + 3 * 3 == 43 * 4 + 9  # + locations of the hips and the two IK feet
    assert r["keys_per_fcurve"] == [motion.n_frames] and r["frame_range"] == [1, motion.n_frames]
    assert r["tracks"][-1] == "walk" and r["active_action"] is None  # glTF's own clips stay on their tracks
    P, _ = motion.fk()
    # the robot's feet are IK bones under its root, not children of the shins: they are placed
    # where the leg chain puts them, so the shins (knee -> foot) point the right way too
    err = _angles(r["pose"], P, motion.skeleton.index, LIMBS)
    assert err.max() < 2.0, err.round(2)
    # at their lowest over the take, the ankles are where they were before the import (2.5 cm)
    assert abs(r["foot_min"] - r["feet_before"]["leftFoot"][1]) < 0.025


def test_bvh_onto_the_same_rig_gets_its_own_track_and_pose(run):
    res, t = run
    b = res["bvh"]
    walk = load_bvh(shared_file("mocap/cmu_131_01_walk.bvh"))
    assert b["error"] is None and b["tracks"] == ["walk", "cmu_131_01_walk"]
    assert b["keys_per_fcurve"] == [walk.n_frames] == [994]
    assert b["fps"] == 120.0 and b["frame_range"] == [1, 994]
    bm, _ = detect_profile(walk.skeleton.names)
    found = bm.resolve(walk.skeleton.names)
    P, _ = walk.fk()
    err = _angles(b["pose"], P, lambda c: walk.skeleton.index(found[c]), LIMBS[:8])
    assert err.max() < 2.0, err.round(2)


def test_face_csv_keys_arkit_shape_keys_spellings_and_vrm_aliases(run):
    res, _ = run
    assert res["face_error"] is None
    assert res["face_fcurves"] == ['key_blocks["Angry"].value', 'key_blocks["eyeBlinkLeft"].value',
                                   'key_blocks["jawOpen"].value', 'key_blocks["mouthSmile_L"].value']
    for f, vals in res["face_values"].items():  # 60 fps scene, 60 fps CSV: row i on frame i + 1
        i = int(f) - 1
        assert vals["eyeBlinkLeft"] == pytest.approx(_csv_value("EyeBlinkLeft", i), abs=1e-3)
        assert vals["jawOpen"] == pytest.approx(0.5, abs=1e-3)
        assert vals["mouthSmile_L"] == pytest.approx(_csv_value("MouthSmileLeft", i), abs=1e-3)
        # VRM alias: angry = 0.4 browDownLeft + 0.4 browDownRight + 0.1 mouthFrownLeft/Right (absent: 0)
        assert vals["Angry"] == pytest.approx(0.4, abs=1e-3)
    assert "no shape key on plain is named like an ARKit blendshape" in res["face_no_keys"]


def test_bad_input_cancels_with_a_message(run):
    res, _ = run
    assert res["bad_take"].startswith("Error: bad.npz: not a readable motion archive")
    assert res["bad_bvh"].startswith("Error: bad.bvh: MOTION says 2 frames, found 1")
    assert res["no_armature"].startswith("Error: select an armature")
    assert "leftUpperArmm is not a canonical joint name" in res["map_bad_import"]
    for k in ("bad_take", "bad_bvh", "no_armature", "map_bad_import"):
        assert "Traceback" not in res[k]


def test_bone_map_round_trip_and_the_project_reads_the_saved_toml(run):
    res, t = run
    assert res["map_export_error"] is None and res["map_import_error"] is None
    assert res["map_roundtrip_equal"] and res["map_rows"] == 52
    saved = load_bonemap(t / "map.toml")  # the project's own reader accepts the add-on's file
    assert saved.name == "canonical" and dict(saved.bones) == dict(builtin_profiles()["canonical"].bones)


CORE_CHECK = textwrap.dedent(
    """
    import importlib.abc, json, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("scipy", "mocap", "retarget", "bpy"):
                raise ImportError(name + " blocked")
    sys.meta_path.insert(0, Block())
    sys.path.insert(0, sys.argv[1])
    from understudy_addon.core import bonemaps, formats, quat, retarget
    m = formats.load_bvh(sys.argv[2])
    P, G = m.fk()
    prof, n = bonemaps.detect_profile(m.names)
    import numpy as np
    np.save(sys.argv[3], P)
    print(json.dumps({"fps": m.fps, "frames": m.n_frames, "profile": prof.name, "found": n,
                      "scale": m.meta["bvh_scale"], "loaded": sorted(k for k in sys.modules if k.split(".")[0]
                      in ("scipy", "mocap", "retarget", "bpy"))}))
    """
)


def test_core_modules_run_with_scipy_blocked_and_match_the_project_readers(run, tmp_path):
    _, t = run
    with zipfile.ZipFile(t / "understudy_addon.zip") as z:
        z.extractall(tmp_path / "understudy_addon")
    walk_path = shared_file("mocap/cmu_131_01_walk.bvh")
    r = subprocess.run([sys.executable, "-c", CORE_CHECK, str(tmp_path), str(walk_path), str(tmp_path / "P.npy")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    walk = load_bvh(walk_path)
    bm, n = detect_profile(walk.skeleton.names)
    assert out["loaded"] == [] and out["frames"] == walk.n_frames and out["fps"] == walk.fps
    assert out["profile"] == bm.name and out["found"] == n and out["scale"] == walk.meta["bvh_scale"]
    mm = np.abs(np.load(tmp_path / "P.npy") - walk.positions()).max() * 1000
    assert mm < 1e-3  # positions agree to a micrometre
