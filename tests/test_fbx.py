"""FBX export through Blender in a worker process: the file imports back into Blender
with the rig's bones, the motion's frames and the motion's movement; every failure of
the worker becomes an error, never a missing or half-written file."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mocap.errors import FileFormatError, RenderError, UsageError
from mocap.glossary import A2Q
from mocap.motion import Motion
from retarget import fbx
from retarget.fbx import FBX_MAGIC, WORKER, export_fbx
from retarget.rig import load_rig

from .conftest import shared_file

pytest.importorskip("bpy", reason="bpy 5.0.1 is installed by scripts/setup.sh (the blender extra)")

REIMPORT = textwrap.dedent(
    """
    import json, sys
    import bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)
    res = bpy.ops.import_scene.fbx(filepath=sys.argv[1])
    arm = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    scene = bpy.context.scene
    act = arm[0].animation_data.action
    lo, hi = (int(round(x)) for x in act.frame_range)
    feet = {}
    for f in (lo, hi):
        scene.frame_set(f)
        feet[f] = list(arm[0].matrix_world @ arm[0].pose.bones[sys.argv[2]].head)
    print("RESULT" + json.dumps({"result": list(res), "armatures": len(arm), "bones": [b.name for b in arm[0].data.bones],
        "frame_range": [lo, hi], "fps": scene.render.fps / scene.render.fps_base, "feet": [feet[lo], feet[hi]],
        "meshes": sum(o.type == "MESH" for o in bpy.data.objects)}))
    """
)


def reimport(path, bone):
    r = subprocess.run([sys.executable, "-c", REIMPORT, str(path), bone], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads([x for x in r.stdout.splitlines() if x.startswith("RESULT")][-1][len("RESULT"):])


def knee_bend(skeleton, knee: str, *, T: int = 30, fps: float = 30.0) -> Motion:
    """Rest pose with one knee bending from 0 to 90 degrees about the world X axis."""
    rot = np.tile([1.0, 0, 0, 0], (T, len(skeleton), 1))
    rot[:, skeleton.index(knee)] = A2Q(np.outer(np.linspace(0, np.pi / 2, T), [1.0, 0, 0]))
    root = np.tile(skeleton.offsets[0], (T, 1))
    return Motion(skeleton=skeleton, rotations=rot, root_positions=root, fps=fps)


@pytest.fixture(scope="module")
def character():
    return load_rig(shared_file("characters/mh_male_casual_cmu31.glb"))


def test_character_fbx_imports_back_with_its_bones_frames_and_motion(tmp_path, character):
    m = knee_bend(character.skeleton, "LeftLeg")
    out = export_fbx(character, m, tmp_path / "hero.fbx")
    assert out == tmp_path / "hero.fbx"
    assert out.read_bytes()[: len(FBX_MAGIC)] == FBX_MAGIC
    assert [p.name for p in tmp_path.iterdir()] == ["hero.fbx"]  # no temporary file left behind
    back = reimport(out, "LeftFoot")
    assert back["result"] == ["FINISHED"] and back["armatures"] == 1
    assert len(back["bones"]) == character.n_joints == 31
    assert set(back["bones"]) == set(character.skeleton.names)
    lo, hi = back["frame_range"]
    assert hi - lo + 1 == 30
    assert back["fps"] == pytest.approx(30.0)
    assert back["meshes"] >= 1
    # the foot swings as far in Blender as in our forward kinematics (axis conventions aside)
    P = m.positions()[:, character.skeleton.index("LeftFoot")]
    ours = np.linalg.norm(P[-1] - P[0])
    assert ours > 0.3
    assert np.linalg.norm(np.subtract(*back["feet"])) == pytest.approx(ours, abs=0.005)


def test_skeleton_only_rig_goes_through_bvh(tmp_path):
    rig = load_rig(shared_file("mocap/cmu_131_03_hop.bvh"))
    m = knee_bend(rig.skeleton, "LeftKnee", T=12, fps=24.0)
    out = export_fbx(rig, m, tmp_path / "skeleton.fbx")
    back = reimport(out, "LeftAnkle")
    assert len(back["bones"]) == rig.n_joints and back["meshes"] == 0
    assert back["frame_range"][1] - back["frame_range"][0] + 1 == 12
    assert back["fps"] == pytest.approx(24.0)
    P = m.positions()[:, rig.skeleton.index("LeftAnkle")]
    assert np.linalg.norm(np.subtract(*back["feet"])) == pytest.approx(np.linalg.norm(P[-1] - P[0]), abs=0.005)


def test_worker_exits_nonzero_with_one_line_reason(tmp_path):
    bad = tmp_path / "broken.glb"
    bad.write_text("this is not a glTF file")
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"schema": "understudy.fbx_job", "schema_version": 1, "input": str(bad),
                               "output": str(tmp_path / "out.fbx"), "fps": 30.0, "frames": 10}))
    r = subprocess.run([sys.executable, str(WORKER), str(job)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("fbx_worker: error:") and "glTF" in last
    assert not (tmp_path / "out.fbx").exists()
    r = subprocess.run([sys.executable, "-m", "blender_addon.fbx_worker"], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr


@pytest.mark.parametrize("script, expect", [
    ("import sys; print('fbx_worker: error: RuntimeError: boom', file=sys.stderr); sys.exit(1)", "exit code 1): RuntimeError: boom"),
    ("pass", "wrote no FBX"),  # exit 0 but no file: the run lied
    ("import json, sys; j = json.load(open(sys.argv[1])); open(j['output'], 'wb').write(b'junk')", "not a binary FBX"),
])  # fmt: skip
def test_a_lying_or_failing_blender_raises_and_leaves_no_file(tmp_path, monkeypatch, character, script, expect):
    monkeypatch.setattr(fbx, "blender_command", lambda: [sys.executable, "-c", script])
    with pytest.raises((RenderError, FileFormatError)) as info:
        export_fbx(character, knee_bend(character.skeleton, "LeftLeg", T=3), tmp_path / "x.fbx")
    assert expect in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_report_must_match_the_motion(tmp_path, monkeypatch, character):
    fake = (f"import json, sys; j = json.load(open(sys.argv[1])); open(j['output'], 'wb').write({FBX_MAGIC!r} + b'x');"
            "print('UNDERSTUDY_FBX ' + json.dumps({'bones': ['Hips'], 'frame_start': 0, 'frame_end': 2}))")
    monkeypatch.setattr(fbx, "blender_command", lambda: [sys.executable, "-c", fake])
    with pytest.raises(RenderError, match="lacks 30 of the rig's joints"):
        export_fbx(character, knee_bend(character.skeleton, "LeftLeg", T=3), tmp_path / "x.fbx")
    with pytest.raises(RenderError, match="baked 3 frames, the motion has 4"):
        export_fbx(character, knee_bend(character.skeleton, "LeftLeg", T=4), tmp_path / "x.fbx")
    assert list(tmp_path.iterdir()) == []


def test_arguments_are_checked_before_blender_runs(tmp_path, character):
    m = knee_bend(character.skeleton, "LeftLeg", T=3)
    with pytest.raises(UsageError, match="must end in .fbx"):
        export_fbx(character, m, tmp_path / "x.glb")
    with pytest.raises(UsageError, match="retarget the motion"):
        export_fbx(character, m.rename({"Hips": "pelvis"}), tmp_path / "x.fbx")
    with pytest.raises(UsageError, match="does not exist"):
        export_fbx(character, m, tmp_path / "nope" / "x.fbx")


def test_missing_blender_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(fbx.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("UNDERSTUDY_BLENDER", raising=False)
    with pytest.raises(RenderError, match=r"understudy\[blender\]"):
        fbx.blender_command()
