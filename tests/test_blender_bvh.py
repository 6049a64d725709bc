"""BVH written by Understudy imports into Blender (bpy 5.0, headless, its own process)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mocap.bvh import load_bvh, save_bvh
from mocap.glossary import A2Q
from mocap.motion import Motion
from mocap.skeleton import canonical_skeleton

from .conftest import shared_file

IMPORT = textwrap.dedent(
    """
    import json, sys
    import bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)
    res = bpy.ops.import_anim.bvh(filepath=sys.argv[1], update_scene_fps=True, update_scene_duration=True)
    arm = [o for o in bpy.data.objects if o.type == "ARMATURE"][0]
    act = arm.animation_data.action
    scene = bpy.context.scene
    head = {}
    for f in (1, int(act.frame_range[1])):
        scene.frame_set(f)
        pb = arm.pose.bones[sys.argv[2]]
        head[f] = list(arm.matrix_world @ pb.head)
    print("RESULT" + json.dumps({"result": list(res), "bones": [b.name for b in arm.data.bones],
        "frame_range": list(act.frame_range), "fps": scene.render.fps / scene.render.fps_base,
        "frame_start": scene.frame_start, "frame_end": scene.frame_end, "head": head}))
    """
)


def blender_import(path, bone):
    pytest.importorskip("bpy", reason="bpy 5.0.1 is installed by scripts/setup.sh (the blender extra)")
    r = subprocess.run([sys.executable, "-c", IMPORT, str(path), bone], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT"):])


def test_canonical_motion_bvh_imports_with_all_joints_and_frames(tmp_path):
    sk = canonical_skeleton()
    T = 90
    rot = np.tile(np.array([1.0, 0, 0, 0]), (T, len(sk.names), 1))
    knee = sk.index("leftLowerLeg")
    rot[:, knee] = A2Q(np.outer(np.linspace(0, 1.2, T), [1.0, 0, 0]))  # bend the left knee
    root = np.stack([np.zeros(T), np.full(T, 0.93), np.linspace(0, 1.5, T)], axis=1)  # walk 1.5 m forward
    m = Motion(skeleton=sk, rotations=rot, root_positions=root, fps=30.0)
    path = save_bvh(m, tmp_path / "canonical.bvh")
    out = blender_import(path, "hips")
    assert out["result"] == ["FINISHED"]
    assert len(out["bones"]) == 52 and "leftIndexDistal" in out["bones"]
    assert out["frame_range"] == [1.0, 90.0]
    assert out["fps"] == pytest.approx(30.0)
    # Blender is Z-up: our +Y height becomes Z, our forward +Z becomes -Y; 1.5 m travelled
    start, end = out["head"]["1"], out["head"]["90"]
    assert start[2] == pytest.approx(0.93, abs=1e-3)
    assert abs(end[1] - start[1]) == pytest.approx(1.5, abs=1e-3)


def test_cmu_round_trip_through_our_writer_imports(tmp_path):
    m = load_bvh(shared_file("mocap/cmu_131_01_walk.bvh"))
    path = save_bvh(m.slice(0, 240), tmp_path / "walk.bvh")
    out = blender_import(path, "Hips")
    assert len(out["bones"]) == 31
    assert out["frame_range"] == [1.0, 240.0]
    assert out["fps"] == pytest.approx(120.0)
