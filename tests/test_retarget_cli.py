"""`understudy retarget`: a BVH or a solved take onto a character, as GLB, BVH or FBX,
with the bone map used written out for reuse, and one-line errors.

Everything runs the real CLI in a subprocess (``python -m mocap.cli retarget ...``)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mocap.bvh import load_bvh, save_bvh
from mocap.motion import Motion
from retarget.bonemap import load_bonemap
from retarget.fbx import FBX_MAGIC
from retarget.gltf import validate_glb
from retarget.retarget import retarget
from retarget.rig import animation_to_motion, load_rig

from .conftest import ROOT, shared_file


def understudy(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "mocap.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-3000:]}"
    return r


def one_line_error(r, code=1):
    assert r.returncode == code, f"exit {r.returncode}: {r.stderr[-2000:]}"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("understudy: error: "), r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def hop():
    return shared_file("mocap/cmu_131_03_hop.bvh")


@pytest.fixture(scope="module")
def hero():
    return shared_file("characters/mh_male_casual_cmu31.glb")


CLIP = ("--fps", "30", "--frames", "0:30")  # 30 frames: a second of the hop


# -- outputs ---------------------------------------------------------------------------------


def test_bvh_onto_character_as_glb(tmp_path, hop, hero):
    out = tmp_path / "hero.glb"
    r = ok(understudy("retarget", hop, "--rig", hero, "-o", out, *CLIP))
    assert "written" in r.stdout and "hero.map.toml" in r.stdout
    assert validate_glb(out) == []
    rig = load_rig(out)
    assert rig.n_joints == 31 and len(rig.meshes) == len(load_rig(hero).meshes)
    back = animation_to_motion(rig, "understudy", fps=30.0)
    assert back.n_frames == 30
    # the file holds what the retargeter computes in this process (float32 keyframes)
    want = retarget(load_bvh(hop).resample(30.0).slice(0, 30), load_rig(hero)).motion
    assert np.abs(back.positions() - want.positions()).max() < 1e-3
    assert np.ptp(want.positions(), axis=0).max() > 0.05  # and it moves (not the rest pose)
    saved = load_bonemap(tmp_path / "hero.map.toml")
    assert set(saved.bones) >= {"hips", "leftUpperLeg", "rightHand", "head"}
    assert set(saved.bones.values()) <= set(rig.skeleton.names)


def test_bvh_onto_character_as_bvh(tmp_path, hop, hero):
    out = tmp_path / "hero.bvh"
    ok(understudy("retarget", hop, "--rig", hero, "-o", out, *CLIP))
    m = load_bvh(out, scale=1.0)
    assert m.skeleton.names == load_rig(hero).skeleton.names  # the character's 31 joints, not the source's
    assert m.n_frames == 30 and m.fps == pytest.approx(30.0)
    want = retarget(load_bvh(hop).resample(30.0).slice(0, 30), load_rig(hero)).motion
    assert np.abs(m.positions() - want.positions()).max() < 1e-4


def test_bvh_onto_character_as_fbx(tmp_path, hop, hero):
    pytest.importorskip("bpy", reason="FBX goes through Blender (bpy 5.0.1, the blender extra)")
    out = tmp_path / "hero.fbx"
    ok(understudy("retarget", hop, "--rig", hero, "-o", out, *CLIP))
    assert out.read_bytes()[: len(FBX_MAGIC)] == FBX_MAGIC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hero.fbx", "hero.map.toml"]


@pytest.fixture(scope="module")
def solved_take(tmp_path_factory, hop):
    """A take made the way a user makes one: `understudy synth` then `understudy solve`."""
    take = tmp_path_factory.mktemp("take") / "hop"
    ok(understudy("synth", hop, "-o", take, "--fps", "30"))
    ok(understudy("solve", take, "-q"))
    return take


def test_solved_take_folder_as_input(tmp_path, solved_take, hero):
    out = tmp_path / "from_take.bvh"
    r = ok(understudy("retarget", solved_take, "--rig", hero, "-o", out, "--frames", "10:50"))
    assert "'canonical'" in r.stdout  # the solved motion is on the canonical skeleton
    m = load_bvh(out, scale=1.0)
    assert m.n_frames == 40 and len(m.skeleton) == 31


def test_saved_map_reloads_and_reuse_gives_the_same_output(tmp_path, hop, hero):
    first, again = tmp_path / "first.bvh", tmp_path / "again.bvh"
    ok(understudy("retarget", hop, "--rig", hero, "-o", first, *CLIP))
    saved = load_bonemap(tmp_path / "first.map.toml")
    assert saved.name == "mh_male_casual_cmu31" and len(saved) >= 14
    custom = tmp_path / "maps" / "hero.toml"
    custom.parent.mkdir()
    r = ok(understudy("retarget", hop, "--rig", hero, "-o", again, *CLIP,
                      "--map", tmp_path / "first.map.toml", "--save-map", custom))
    assert str(custom) in r.stdout
    assert load_bonemap(custom) == saved  # the map used the second time is the one given
    a, b = load_bvh(first, scale=1.0), load_bvh(again, scale=1.0)
    assert np.allclose(a.rotations, b.rotations, atol=1e-6) and np.allclose(a.root_positions, b.root_positions)
    # an edited map is the one used: without the shoulders, the shoulders no longer move
    edited = tmp_path / "edited.map.toml"
    text = (tmp_path / "first.map.toml").read_text()
    edited.write_text("# my edit: shoulders stay put\n" + "".join(
        line for line in text.splitlines(keepends=True) if not line.startswith(("leftShoulder", "rightShoulder"))))
    r = ok(understudy("retarget", hop, "--rig", hero, "-o", tmp_path / "edited.bvh", *CLIP, "--map", edited))
    assert f"written {tmp_path / 'edited.bvh'}" in r.stdout
    assert edited.read_text().startswith("# my edit")  # the user's file is left alone (it is OUT.map.toml here)
    c = load_bvh(tmp_path / "edited.bvh", scale=1.0)
    shoulder = c.skeleton.index("LeftShoulder")
    assert np.abs(a.rotations[:, shoulder] - c.rotations[:, shoulder]).max() > 1e-3
    assert np.allclose(c.rotations[:, shoulder], [1, 0, 0, 0], atol=1e-6)


# -- errors ------------------------------------------------------------------------------------


def test_rig_without_the_needed_bones_lists_them(tmp_path, hop):
    sk = load_bvh(hop).skeleton
    arm = {"LeftShoulder", "LeftElbow", "LeftWrist", "lhand", "LFingers", "LThumb"}
    armless = sk.subset([n for n in sk.names if n not in arm])
    T = 2
    save_bvh(Motion(skeleton=armless, rotations=np.tile([1.0, 0, 0, 0], (T, len(armless), 1)),
                    root_positions=np.tile(armless.offsets[0], (T, 1)), fps=30), tmp_path / "armless.bvh")
    line = one_line_error(understudy("retarget", hop, "--rig", tmp_path / "armless.bvh",
                                     "-o", tmp_path / "x.glb", *CLIP))
    assert "armless.bvh" in line
    for bone in ("leftUpperArm", "leftLowerArm", "leftHand"):
        assert bone in line
    assert not (tmp_path / "x.glb").exists()


def test_malformed_map_toml(tmp_path, hop, hero):
    bad = tmp_path / "bad.toml"
    bad.write_text("schema = 'understudy.bonemap'\n[bones\nhips = 'Hips'\n")
    line = one_line_error(understudy("retarget", hop, "--rig", hero, "-o", tmp_path / "x.glb", "--map", bad))
    assert "bad.toml" in line and "malformed TOML" in line
    typo = tmp_path / "typo.toml"
    typo.write_text('schema = "understudy.bonemap"\nschema_version = 1\nname = "t"\n[bones]\nhipz = "Hips"\n')
    line = one_line_error(understudy("retarget", hop, "--rig", hero, "-o", tmp_path / "x.glb",
                                     "--map", typo))
    assert "'hipz' is not a canonical joint name" in line and "'hips'" in line


def test_unknown_output_extension_and_bad_arguments(tmp_path, hop, hero):
    line = one_line_error(understudy("retarget", hop, "--rig", hero, "-o", tmp_path / "x.obj"), code=2)
    assert "'.obj'" in line and ".glb" in line and ".fbx" in line
    line = one_line_error(understudy("retarget", hop, "--rig", hero, "-o", tmp_path / "x.glb",
                                     "--frames", "30:10"), code=2)
    assert "30:10" in line
    line = one_line_error(understudy("retarget", hop, "--rig", hero, "-o", tmp_path / "x.glb",
                                     "--source-map", "no_such_profile"), code=2)
    assert "no_such_profile" in line and "mixamo" in line
    line = one_line_error(understudy("retarget", tmp_path / "nothing.bvh", "--rig", hero,
                                     "-o", tmp_path / "x.glb"))
    assert "nothing.bvh" in line
    assert list(tmp_path.iterdir()) == []
