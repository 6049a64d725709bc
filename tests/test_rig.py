"""retarget.rig on the shared characters: what loads (joints, bone maps, heights, A-pose),
the conversion between our world-aligned motion and the rig's own node rotations, and
export_glb checked by re-reading the file, by skinning its meshes with the animated
joints, and by importing it into Blender."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mocap.errors import FileFormatError, RigError, UsageError
from mocap.glossary import A2Q, yup_to_blender
from mocap.motion import Motion
from retarget import gltf
from retarget.rig import (
    animation_to_motion,
    export_glb,
    load_rig,
    motion_to_node_rotations,
    node_to_motion_rotations,
    root_to_node_translations,
    skin_vertices,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CHARACTERS = SHARED / "characters"
VRM = "VRMC_materials_mtoon_UV_Animation_Test.vrm"


def character(name: str) -> Path:
    p = CHARACTERS / name
    if not p.exists():
        pytest.skip(f"../shared/characters/{name} is not present (real test data lives beside the checkout)")
    return p


_CACHE: dict[str, object] = {}


def rig(name: str):
    """Each character loaded once per session (loading is ~10 ms, but skinning the
    MakeHuman meshes is not free)."""
    if name not in _CACHE:
        _CACHE[name] = load_rig(character(name))
    return _CACHE[name]


# -- loading -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, joints, root, bonemap",
    [
        ("RobotExpressive.glb", 43, "Bone", None),
        ("CesiumMan_blender_reexport.glb", 19, "Skeleton_torso_joint_1", None),
        ("RiggedSimple_blender_reexport.glb", 4, "Root", None),
        (VRM, 53, "hips", "vrm-file"),
        ("mh_male_casual_cmu31.glb", 31, "Hips", "cmu_motionbuilder"),
        ("mh_male_dark_game53.glb", 53, "Root", "ue5_mannequin"),
    ],
)
def test_character_loads_with_its_joints_and_bone_map(name, joints, root, bonemap):
    r = rig(name)
    assert len(r.skeleton) == joints
    assert r.skeleton.names[0] == root
    assert (r.bonemap.name if r.bonemap else None) == bonemap
    assert r.rest_global_rotations.shape == (joints, 4)
    np.testing.assert_allclose(np.linalg.norm(r.rest_global_rotations, axis=1), 1, atol=1e-9)
    # node_index points at the nodes of those names
    assert [r.doc.nodes[i].name for i in r.node_index] == list(r.skeleton.names)
    # world-aligned: offsets are differences of the nodes' world positions
    W = r.world_from_file @ r.doc.world_matrices()
    np.testing.assert_allclose(r.rest_positions(), W[r.node_index][:, :3, 3], atol=1e-12)


def test_robot_expressive_joins_its_four_skins():
    r = rig("RobotExpressive.glb")
    skins = r.doc.skins
    assert len(skins) == 4
    union = set().union(*(set(s.joints) for s in skins))
    assert len(union) == 43 and set(r.node_index) == union
    kinds = [m.skinned for m in r.meshes]
    assert len(r.meshes) == 19 and kinds.count(True) == 4  # the hands are skinned, the rest hang off bones
    heads = [m for m in r.meshes if m.morph_target_names]
    assert [m.morph_target_names for m in heads] == [("Angry", "Surprised", "Sad")] * 3
    assert heads[0].morph_targets.shape == (3, len(heads[0].vertices), 3)
    assert "Head_end" in [r.doc.nodes[i].name for i in range(len(r.doc.nodes))]
    assert "Head" in r.skeleton.end_sites  # the leaf "Head_end" node becomes the head's end site


@pytest.mark.parametrize("name, height", [("mh_male_casual_cmu31.glb", 1.77), ("mh_male_dark_game53.glb", 1.82)])
def test_makehuman_height_feet_facing_and_a_pose(name, height):
    r = rig(name)
    lo, hi = r.vertex_bounds()
    assert hi[1] - lo[1] == pytest.approx(height, abs=0.05)  # head top minus soles
    assert abs(lo[1]) < 0.01  # feet on the floor, y = 0
    np.testing.assert_allclose(r.facing(), [0, 0, 1], atol=1e-6)
    found = r.bonemap.resolve(r.skeleton.names)
    P = r.rest_positions()
    for side, sign in (("left", 1), ("right", -1)):
        shoulder = P[r.skeleton.index(found[f"{side}UpperArm"])]
        elbow = P[r.skeleton.index(found[f"{side}LowerArm"])]
        hand = P[r.skeleton.index(found[f"{side}Hand"])]
        d = elbow - shoulder
        below = np.degrees(np.arcsin(-d[1] / np.linalg.norm(d)))
        assert below == pytest.approx(45, abs=7), f"{side} upper arm {below:.1f} deg below horizontal"
        assert np.sign(d[0]) == sign  # the left arm is on +X: facing +Z
        assert hand[2] - elbow[2] > 0.1  # forearms angled forward
    # skinned rest vertices line up with the skeleton: the head joint is inside the head
    head = P[r.skeleton.index(found["head"])]
    assert lo[1] < head[1] < hi[1] and abs(head[0]) < 0.01


def test_vrm_humanoid_tree_and_its_bone_map():
    r = rig(VRM)
    hb = r.doc.extensions["VRMC_vrm"]["humanoid"]["humanBones"]
    assert len(hb) == 53 and set(r.node_index) == {v["node"] for v in hb.values()}
    assert r.meshes and all(not m.skinned for m in r.meshes)  # three quads, no skin
    bm = r.bonemap
    assert bm.name == "vrm-file" and len(bm) == 51  # the eyes are not canonical joints
    assert bm.bones["leftUpperArm"] == "upper_arm.L" and bm.bones["leftThumbMetacarpal"] == "thumb.proximal.L"
    np.testing.assert_allclose(r.facing(), [0, 0, 1], atol=1e-6)
    P = r.rest_positions()
    d = P[r.skeleton.index("lower_arm.L")] - P[r.skeleton.index("upper_arm.L")]
    assert abs(d[1]) < 1e-6 and d[0] > 0.3  # T-pose, left arm along +X


def vrm0_copy(tmp_path) -> Path:
    """The VRM 1.0 sample rewritten with a VRM 0.x humanoid (the same nodes): a 0.x
    reader must turn it 180 degrees about Y (0.x models face -Z)."""
    from tests.test_gltf import glb_join, glb_split

    js, blob = glb_split(character(VRM).read_bytes())
    hb = js["extensions"].pop("VRMC_vrm")["humanoid"]["humanBones"]
    back = {"leftThumbMetacarpal": "leftThumbProximal", "leftThumbProximal": "leftThumbIntermediate",
            "rightThumbMetacarpal": "rightThumbProximal", "rightThumbProximal": "rightThumbIntermediate"}
    js["extensions"]["VRM"] = {"specVersion": "0.0", "humanoid": {"humanBones": [
        {"bone": back.get(b, b), "node": v["node"], "useDefaultValues": True} for b, v in hb.items()]}}
    js["extensionsUsed"] = [e for e in js["extensionsUsed"] if e != "VRMC_vrm"] + ["VRM"]
    p = tmp_path / "vrm0.vrm"
    p.write_bytes(glb_join(js, blob))
    return p


def test_vrm0_is_turned_to_face_plus_z(tmp_path):
    r1 = rig(VRM)
    r0 = load_rig(vrm0_copy(tmp_path))
    assert "VRM 0.x" in r0.notes[0] and "-Z" in r0.notes[0]
    np.testing.assert_allclose(r0.rest_positions(), r1.rest_positions() * [-1, 1, -1], atol=1e-12)
    assert r0.bonemap.bones == r1.bonemap.bones  # 0.x thumb names mapped onto 1.0's
    # this sample really faces +Z, so read as 0.x it faces -Z after the turn: the turn happened
    np.testing.assert_allclose(r0.facing(), [0, 0, -1], atol=1e-6)
    out = export_glb(r0, still(r0, 3), tmp_path / "vrm0.glb")
    assert gltf.validate_glb(out) == []
    doc = gltf.load_gltf(out)
    assert doc.nodes[-1].name == "understudy_world" and doc.scenes[0]["nodes"] == [len(doc.nodes) - 1]
    world = doc.world_matrices()
    np.testing.assert_allclose(world[r0.node_index][:, :3, 3], r0.rest_positions(), atol=1e-6)


def test_unknown_extension_lists_the_supported_ones(tmp_path):
    p = tmp_path / "hero.fbx"
    p.write_bytes(b"Kaydara FBX Binary")
    with pytest.raises(FileFormatError, match=r"\.glb, \.gltf, \.vrm, \.bvh"):
        load_rig(p)


def test_a_mesh_without_skin_is_not_a_rig(tmp_path):
    doc = gltf.load_gltf(character("RiggedSimple_blender_reexport.glb"))
    doc.skins = []
    for n in doc.nodes:
        n.skin = None
    out = gltf.write_glb(doc, tmp_path / "noskin.glb")
    with pytest.raises(RigError, match="no skin"):
        load_rig(out)


def test_import_is_numpy_only():
    code = ("import sys; import retarget.rig, retarget.gltf; "
            "print(sorted(m for m in ('scipy', 'bpy', 'mathutils', 'mediapipe', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- motion <-> node rotations ---------------------------------------------------------------


def still(r, T: int) -> Motion:
    sk = r.skeleton
    return Motion(skeleton=sk, rotations=np.tile([1.0, 0, 0, 0], (T, len(sk), 1)),
                  root_positions=np.tile(sk.offsets[0], (T, 1)), fps=30.0)


def node_fk(r, node_rot: np.ndarray, root_t: np.ndarray) -> np.ndarray:
    """World joint positions (T, J, 3) from node-local rotations applied with the rig's
    own node translations and scales, through the glTF node hierarchy."""
    doc = r.doc
    L0 = doc.local_matrices()
    L = np.broadcast_to(L0, (len(node_rot),) + L0.shape).copy()
    for j, ni in enumerate(r.node_index):
        n = doc.nodes[ni]
        t = root_t if j == 0 else np.broadcast_to(n.translation, (len(node_rot), 3))
        L[:, ni] = gltf.trs_to_matrix(t, node_rot[:, j], n.scale)
    W = r.world_from_file @ doc.world_matrices(L)
    return W[:, r.node_index][..., :3, 3]


@pytest.mark.parametrize("name", ["RobotExpressive.glb", "CesiumMan_blender_reexport.glb",
                                  "RiggedSimple_blender_reexport.glb", VRM, "mh_male_casual_cmu31.glb",
                                  "mh_male_dark_game53.glb"])
def test_node_rotations_reproduce_world_positions(name):
    r = rig(name)
    sk = r.skeleton
    rng = np.random.default_rng(7)
    T = 8
    Q = A2Q(rng.normal(scale=0.6, size=(T, len(sk), 3)))
    root = sk.offsets[0] + rng.normal(scale=0.3, size=(T, 3))
    m = Motion(skeleton=sk, rotations=Q, root_positions=root, fps=30.0)
    node_rot = motion_to_node_rotations(r, m)
    P = node_fk(r, node_rot, root_to_node_translations(r, root))
    assert np.abs(P - m.positions()).max() < 1e-5  # < 0.01 mm
    back = node_to_motion_rotations(r, node_rot)
    np.testing.assert_allclose(np.abs(np.sum(back * Q, axis=-1)), 1, atol=1e-12)
    # the identity motion gives the nodes' own rest rotations
    rest = motion_to_node_rotations(r, np.tile([1.0, 0, 0, 0], (len(sk), 1)))
    own = np.array([r.doc.nodes[i].rotation for i in r.node_index])
    np.testing.assert_allclose(np.abs(np.sum(rest * own, axis=-1)), 1, atol=1e-6)


# -- export -----------------------------------------------------------------------------------


def elbow_bend(r, T: int = 30, degrees: float = 90.0) -> Motion:
    """Both elbows bend from 0 to ``degrees`` about world X over T frames at 30 fps."""
    m = still(r, T)
    ang = np.radians(np.linspace(0, degrees, T))
    Q = m.rotations.copy()
    for n in ("LeftForeArm", "RightForeArm"):
        Q[:, r.skeleton.index(n)] = A2Q(ang[:, None] * np.array([1.0, 0, 0]))
    return Motion(skeleton=r.skeleton, rotations=Q, root_positions=m.root_positions, fps=30.0)


@pytest.fixture(scope="module")
def bent(tmp_path_factory):
    r = rig("mh_male_casual_cmu31.glb")
    m = elbow_bend(r)
    out = export_glb(r, m, tmp_path_factory.mktemp("export") / "bend.glb")
    return r, m, out


def test_export_reads_back_as_the_same_motion(bent):
    r, m, out = bent
    assert gltf.validate_glb(out) == []
    r2 = load_rig(out)
    assert r2.skeleton.names == r.skeleton.names
    np.testing.assert_allclose(r2.skeleton.offsets, r.skeleton.offsets, atol=1e-12)  # rest pose untouched
    doc = r2.doc
    assert [a.name for a in doc.animations] == ["understudy"]
    assert doc.animations[0].duration == pytest.approx(29 / 30)
    m2 = animation_to_motion(r2, "understudy", fps=30.0)
    assert len(m2) == 30
    assert np.abs(m2.positions() - m.positions()).max() < 1e-4  # 0.1 mm at every frame
    # images and materials came along
    assert len(doc.images) == 7 and doc.images[0].data == r.doc.images[0].data
    assert doc.materials == r.doc.materials


def gltf_skin(doc, node_index: int, world: np.ndarray) -> np.ndarray:
    """glTF linear blend skinning of a node's first primitive: v' = sum_k w_k W[joint_k] IBM_k v."""
    node = doc.nodes[node_index]
    skin = doc.skins[node.skin]
    prim = doc.meshes[node.mesh].primitives[0]
    mats = world[..., skin.joints, :, :] @ skin.ibm()
    J, Wt = prim.attributes["JOINTS_0"], prim.attributes["WEIGHTS_0"].astype(float)
    v = np.c_[prim.attributes["POSITION"], np.ones(len(J))]
    return np.einsum("nk,...nkij,nj->...ni", Wt, mats[..., J, :, :], v)[..., :3]


def test_skinned_hand_moves_with_the_forearm_and_the_torso_does_not(bent):
    r, m, out = bent
    doc = gltf.load_gltf(out)
    body = next(i for i, n in enumerate(doc.nodes) if n.name == "body")
    frames = np.array([0, 15, 29])
    local = gltf.sample_animation(doc, "understudy", frames / 30.0)
    V = gltf_skin(doc, body, doc.world_matrices(local))  # (3, N, 3)
    rest = next(mm for mm in r.meshes if mm.name == "body")
    np.testing.assert_allclose(V[0], rest.vertices, atol=1e-5)  # frame 0 is the rest pose

    prim = doc.meshes[doc.nodes[body].mesh].primitives[0]
    skin_names = [doc.nodes[j].name for j in doc.skins[doc.nodes[body].skin].joints]
    J, Wt = prim.attributes["JOINTS_0"], prim.attributes["WEIGHTS_0"]

    def only(names):
        ok = np.isin(np.array(skin_names)[J], list(names)) | (Wt == 0)
        return np.all(ok, axis=1)

    hand = only({"LeftHand", "LeftFingerBase", "LeftHandFinger1", "LThumb"})
    torso = only({"Hips", "LowerBack", "Spine", "Spine1", "Neck", "Neck1", "Head", "LeftShoulder",
                  "RightShoulder", "LHipJoint", "RHipJoint"})  # trunk and head: nothing below an elbow
    assert hand.sum() > 100 and torso.sum() > 1000
    elbow = r.rest_positions()[r.skeleton.index("LeftForeArm")]
    rel = rest.vertices[hand] - elbow
    r_perp = np.linalg.norm(rel[:, 1:], axis=1)  # distance from the bend axis (world X through the elbow)
    for k, f in enumerate(frames):
        theta = np.radians(90.0 * f / 29)
        moved = np.linalg.norm(V[k, hand] - V[0, hand], axis=1)
        # a rigid turn by theta moves each point along an arc of length theta * r_perp;
        # the straight-line displacement is the chord 2 r_perp sin(theta / 2)
        np.testing.assert_allclose(moved, 2 * r_perp * np.sin(theta / 2), atol=1e-4)
        assert np.abs(V[k, torso] - V[0, torso]).max() < 1e-5
    assert np.linalg.norm(V[2, hand] - V[0, hand], axis=1).mean() > 0.2  # the hand really travelled
    # our world-aligned skinning agrees with glTF's bind-matrix skinning
    ours = skin_vertices(r, m, "body")[frames]
    assert np.abs(ours - V).max() < 1e-4


def test_robot_walk_round_trips_through_export(tmp_path):
    r = rig("RobotExpressive.glb")
    walk = animation_to_motion(r, "Walking", fps=30.0)
    assert len(walk) > 20 and np.ptp(walk.positions()[:, r.skeleton.index("FootL"), 2]) > 0.3  # feet swing
    out = export_glb(r, walk, tmp_path / "walk.glb")
    assert gltf.validate_glb(out) == []
    r2 = load_rig(out)
    assert [a.name for a in r2.doc.animations] == ["understudy"]
    again = animation_to_motion(r2, "understudy", fps=30.0)
    assert np.abs(again.positions() - walk.positions()).max() < 1e-4
    kept = export_glb(r, walk, tmp_path / "kept.glb", keep_animations=True, name="retake")
    assert len(gltf.load_gltf(kept).animations) == 15


def test_morph_target_weights_are_animated_by_name(tmp_path):
    r = rig("RobotExpressive.glb")
    T = 10
    surprise = np.linspace(0, 1, T)
    out = export_glb(r, still(r, T), tmp_path / "face.glb", morph_weights={"Surprised": surprise})
    assert gltf.validate_glb(out) == []
    doc = gltf.load_gltf(out)
    anim = doc.animations[0]
    chans = [c for c in anim.channels if c.path == "weights"]
    assert sorted(doc.nodes[c.node].name for c in chans) == ["Head_2", "Head_3", "Head_4"]
    vals = gltf.sample_sampler(anim.samplers[chans[0].sampler], [0.0, 4.5 / 30])
    np.testing.assert_allclose(vals, [[0, 0, 0], [0, 0.5, 0]], atol=1e-6)  # Angry, Surprised, Sad
    with pytest.raises(UsageError, match="Angry"):
        export_glb(r, still(r, T), tmp_path / "x.glb", morph_weights={"Happy": surprise})


def test_export_refuses_a_motion_on_another_skeleton(tmp_path):
    r = rig("mh_male_casual_cmu31.glb")
    other = still(rig("mh_male_dark_game53.glb"), 2)
    with pytest.raises(UsageError, match="Retarget"):
        export_glb(r, other, tmp_path / "x.glb")


def test_bvh_rig_exports_a_skeleton_only_file(tmp_path):
    bvh = SHARED / "mocap" / "cmu_131_01_walk.bvh"
    if not bvh.exists():
        pytest.skip("../shared/mocap/cmu_131_01_walk.bvh is not present")
    r = load_rig(bvh)
    assert len(r.skeleton) == 31 and r.meshes == [] and r.bonemap is not None
    from mocap.bvh import load_bvh

    m = load_bvh(bvh).slice(0, 60)
    out = export_glb(r, m, tmp_path / "walk.glb")
    assert gltf.validate_glb(out) == []
    doc = gltf.load_gltf(out)
    assert len(doc.nodes) == 31 and not doc.meshes
    W = doc.world_matrices(gltf.sample_animation(doc, 0, m.timestamps - m.timestamps[0]))
    assert np.abs(W[..., :3, 3] - m.positions()).max() < 1e-4


# -- Blender ---------------------------------------------------------------------------------

BLENDER = textwrap.dedent(
    """
    import json, sys
    import bpy
    out = {}
    for path, bone in zip(sys.argv[1::2], sys.argv[2::2]):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        bpy.context.scene.render.fps = 30
        res = bpy.ops.import_scene.gltf(filepath=path)
        arm = [o for o in bpy.data.objects if o.type == "ARMATURE"]
        act = arm[0].animation_data.action
        end = int(round(act.frame_range[1]))
        bpy.context.scene.frame_set(end)
        out[path] = {"result": list(res), "armatures": len(arm), "bones": len(arm[0].data.bones),
                     "action": act.name, "frame_range": list(act.frame_range),
                     "meshes": sum(o.type == "MESH" for o in bpy.data.objects),
                     "head": list(arm[0].matrix_world @ arm[0].pose.bones[bone].head)}
    print("RESULT" + json.dumps(out))
    """
)


def test_blender_opens_our_exports(bent, tmp_path):
    pytest.importorskip("bpy", reason="bpy 5.0.1 is installed by scripts/setup.sh (the blender extra)")
    r, m, out = bent
    r53 = rig("mh_male_dark_game53.glb")
    m53 = still(r53, 61)
    m53.root_positions[:, 2] += np.linspace(0, 1, 61)  # walk 1 m forward (+Z) in 2 s
    out53 = export_glb(r53, m53, tmp_path / "slide.glb")
    args = [str(out), "LeftHand", str(out53), "pelvis"]
    res = subprocess.run([sys.executable, "-c", BLENDER, *args], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    got = json.loads([x for x in res.stdout.splitlines() if x.startswith("RESULT")][-1][len("RESULT"):])
    a, b = got[str(out)], got[str(out53)]
    assert a["result"] == ["FINISHED"] and a["armatures"] == 1
    assert a["bones"] == 31 and a["action"] == "understudy" and a["frame_range"] == [0.0, 29.0]
    assert a["meshes"] >= 7
    hand = m.positions()[-1, r.skeleton.index("LeftHand")]
    np.testing.assert_allclose(a["head"], yup_to_blender(hand), atol=1e-3)  # Blender is Z-up
    assert b["bones"] == 53 and b["frame_range"] == [0.0, 60.0]
    pelvis = m53.positions()[-1, r53.skeleton.index("pelvis")]
    np.testing.assert_allclose(b["head"], yup_to_blender(pelvis), atol=1e-3)
    assert b["head"][1] == pytest.approx(-1.0 + yup_to_blender(r53.rest_positions()[1])[1], abs=1e-3)
