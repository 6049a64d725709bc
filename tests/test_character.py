"""The synthetic actor: a closed, symmetric, rigged, face-capable character that loads
everywhere and holds up when posed by motion capture."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from functools import cache

import numpy as np
import pytest

from mocap.errors import UsageError
from mocap.skeleton import canonical_skeleton
from retarget import character as C
from retarget import gltf
from retarget.rig import load_rig, skin_vertices

from .conftest import shared_file

pytest.importorskip("skimage", reason="scikit-image (marching cubes) is a dependency of retarget.character")

ARKIT = (
    "eyeBlinkLeft eyeLookDownLeft eyeLookInLeft eyeLookOutLeft eyeLookUpLeft eyeSquintLeft eyeWideLeft "
    "eyeBlinkRight eyeLookDownRight eyeLookInRight eyeLookOutRight eyeLookUpRight eyeSquintRight eyeWideRight "
    "jawForward jawLeft jawRight jawOpen mouthClose mouthFunnel mouthPucker mouthLeft mouthRight mouthSmileLeft "
    "mouthSmileRight mouthFrownLeft mouthFrownRight mouthDimpleLeft mouthDimpleRight mouthStretchLeft "
    "mouthStretchRight mouthRollLower mouthRollUpper mouthShrugLower mouthShrugUpper mouthPressLeft mouthPressRight "
    "mouthLowerDownLeft mouthLowerDownRight mouthUpperUpLeft mouthUpperUpRight browDownLeft browDownRight "
    "browInnerUp browOuterUpLeft browOuterUpRight cheekPuff cheekSquintLeft cheekSquintRight noseSneerLeft "
    "noseSneerRight tongueOut"
).split()


@cache
def made(preset: str | None = None, **kw) -> C.CharacterModel:
    """One generated character per argument set for the whole module (about 1.5 s each)."""
    return C.generate_character(preset=preset, **kw)


@pytest.fixture(scope="module")
def chen_glb(tmp_path_factory):
    return C.save_character(made("chen"), tmp_path_factory.mktemp("character") / "chen.glb")


def nearest(V: np.ndarray, p: np.ndarray) -> int:
    return int(np.argmin(np.linalg.norm(V - p, axis=1)))


def mirror_index(V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each vertex, the vertex nearest its mirror image (x -> -x), and that distance."""
    from scipy.spatial import cKDTree

    d, i = cKDTree(V).query(V * [-1.0, 1.0, 1.0])
    return i, d


# -- the surface ------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(C.PRESETS))
def test_presets_are_closed_surfaces_of_the_asked_height(preset):
    m = made(preset)
    f = m.faces
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, uses = np.unique(e, axis=0, return_counts=True)
    assert np.all(uses == 2), "every edge must be shared by exactly two triangles"
    assert C.mesh_edges_manifold(f) == {"edges": len(uses), "boundary": 0, "nonmanifold": 0, "misoriented": 0}
    assert len(np.unique(f)) == len(m.vertices), "no unused vertices"
    volume = C.mesh_volume(m.vertices, f)
    assert 0.03 < volume < 0.12, f"{preset}: {volume} m^3 is not a person"  # outward faces, human volume
    assert abs(m.height_m - C.PRESETS[preset]["height_m"]) < 0.01
    assert abs(m.vertices[:, 1].min()) < 1e-9, "the sole stands on y = 0"
    assert 20_000 <= len(m.vertices) <= 60_000


def test_height_follows_the_request_and_builds_order_the_volume():
    slim, heavy = made(height_m=1.55, build="slim"), made(height_m=1.55, build="heavy")
    tall = made(height_m=1.95, build="slim")
    for m, h in ((slim, 1.55), (heavy, 1.55), (tall, 1.95)):
        assert abs(m.height_m - h) < 0.01
    v = {k: C.mesh_volume(m.vertices, m.faces) for k, m in (("slim", slim), ("heavy", heavy), ("tall", tall))}
    assert v["heavy"] > 1.25 * v["slim"]
    assert v["tall"] / v["slim"] == pytest.approx((1.95 / 1.55) ** 3, rel=0.08)  # same shape, scaled


def winding_number(V: np.ndarray, F: np.ndarray, p: np.ndarray) -> float:
    """Generalised winding number of point ``p`` (1 inside a closed outward mesh, 0
    outside): the solid angle of every triangle (Van Oosterom & Strackee 1983) / 4 pi."""
    a, b, c = (V[F[:, k]] - p for k in range(3))
    la, lb, lc = (np.linalg.norm(x, axis=1) for x in (a, b, c))
    num = np.einsum("ij,ij->i", a, np.cross(b, c))
    den = la * lb * lc + np.einsum("ij,ij->i", a, b) * lc + np.einsum("ij,ij->i", b, c) * la + \
        np.einsum("ij,ij->i", c, a) * lb
    return float(2 * np.arctan2(num, den).sum() / (4 * np.pi))


def test_the_hands_have_five_separate_fingers():
    m = made("chen")
    sk, P = m.skeleton, m.skeleton.rest_positions()
    fingers = ("Index", "Middle", "Ring", "Little")
    for side in ("left", "right"):
        for f in ("Thumb", *fingers):
            joint = P[sk.index(f"{side}{f}Distal")]
            assert winding_number(m.vertices, m.faces, joint) == pytest.approx(1.0, abs=0.01), f"{side}{f}"
        for a, b in zip(fingers, fingers[1:]):  # between two fingers' middle joints: air
            gap = 0.5 * (P[sk.index(f"{side}{a}Intermediate")] + P[sk.index(f"{side}{b}Intermediate")])
            assert winding_number(m.vertices, m.faces, gap) == pytest.approx(0.0, abs=0.01), f"{side} {a}/{b}"


def test_stylize_enlarges_head_and_hands_at_the_same_height():
    plain, toon = made(height_m=1.7), made(height_m=1.7, stylize=1.0)
    assert abs(toon.height_m - 1.7) < 0.01

    def head_share(m):
        return (m.vertices[:, 1].max() - m.landmarks["chin"][1]) / m.height_m

    assert head_share(toon) > 1.15 * head_share(plain)
    hand = [np.linalg.norm(m.skeleton.rest_end_sites()["leftMiddleDistal"] -
                           m.skeleton.rest_positions()[m.skeleton.index("leftHand")]) for m in (plain, toon)]
    assert hand[1] > 1.05 * hand[0]


def test_rest_pose_is_left_right_symmetric():
    m = made("chen")
    _, d = mirror_index(m.vertices)
    assert np.percentile(d, 99) < 0.001
    assert d.max() < 0.006
    P = m.skeleton.rest_positions()
    for j, name in enumerate(m.skeleton.names):
        other = name.replace("left", "@").replace("right", "left").replace("@", "right")
        np.testing.assert_allclose(P[m.skeleton.index(other)], P[j] * [-1, 1, 1], atol=1e-9)


def test_skeleton_is_the_canonical_one_scaled_to_the_character():
    m = made("ben")
    canon = canonical_skeleton()
    assert m.skeleton.same_topology(canon)
    P, Pc = m.skeleton.rest_positions(), canon.rest_positions()
    # T-pose: every bone points the canonical way (proportions change lengths, not directions)
    for j in range(1, len(canon)):
        a, b = P[j] - P[m.skeleton.parents[j]], Pc[j] - Pc[canon.parents[j]]
        if np.linalg.norm(b) > 1e-9:
            assert np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.999, canon.names[j]
    head_top = m.vertices[:, 1].max()
    assert P[canon.index("head"), 1] < head_top < P[canon.index("head"), 1] + 0.3


# -- skin weights -----------------------------------------------------------------------------


def test_skin_weights_are_normalised_and_local():
    m = made("chen")
    W, J = m.weights, m.joints
    assert W.dtype == np.float32 and W.shape == (len(m.vertices), 4) and J.shape == W.shape
    assert np.all(W >= 0)
    assert np.abs(W.sum(axis=1, dtype=np.float64) - 1.0).max() < 1e-4
    assert np.all(np.sum(W > 0, axis=1) <= 4)
    sk = m.skeleton
    dom = J[np.arange(len(J)), np.argmax(W, axis=1)]
    ends = sk.rest_end_sites()
    for f in ("Thumb", "Index", "Middle", "Ring", "Little"):  # finger tips follow their last bone
        v = nearest(m.vertices, ends[f"left{f}Distal"])
        assert sk.names[dom[v]] == f"left{f}Distal"
        assert W[v].max() > 0.95
    for k in ("nose_tip", "eye_left", "mouth", "ear_right", "chin"):  # the face is the head's
        v = nearest(m.vertices, m.landmarks[k])
        assert sk.names[dom[v]] == "head" and W[v].max() > 0.99, k
    P = sk.rest_positions()
    v = nearest(m.vertices, P[sk.index("leftLowerArm")] + [0, 0.06, 0])  # the top of the elbow: a blend
    names = {sk.names[j] for j, w in zip(J[v], W[v]) if w > 0.1}
    assert names == {"leftUpperArm", "leftLowerArm"}
    # weights vary smoothly: neighbours never disagree wildly
    dense = np.zeros((len(W), len(sk)))
    for c in range(4):  # unused slots hold joint 0 with weight 0
        np.add.at(dense, (np.arange(len(W)), J[:, c].astype(np.int64)), W[:, c])
    f = m.faces
    jump = np.abs(dense[f[:, 0]] - dense[f[:, 1]]).max()
    assert jump < 0.5


# -- the face ---------------------------------------------------------------------------------


def test_all_52_arkit_shapes_move_the_face_only():
    m = made("chen")
    assert m.shape_names == tuple(ARKIT) == C.ARKIT_SHAPES and len(set(ARKIT)) == 52
    assert m.shapes.shape == (52, len(m.vertices), 3) and m.shapes.dtype == np.float32
    lm = m.landmarks
    face_centre = lm["head"] + np.array([0.0, 0.07, 0.06]) * (m.height_m / 1.75)
    for k, name in enumerate(ARKIT):
        d = np.linalg.norm(m.shapes[k], axis=1)
        assert d.max() > 0.001, f"{name} does not move anything"
        assert d.max() < 0.04, f"{name} moves a vertex {d.max():.3f} m"
        moved = m.vertices[d > 1e-6]
        assert np.linalg.norm(moved - face_centre, axis=1).max() < 0.13, f"{name} moves vertices off the face"
        assert moved[:, 1].min() > lm["chin"][1] - 0.05


def test_jaw_open_drops_the_chin_and_parts_the_lips():
    m = made("chen")
    jaw = m.shapes[ARKIT.index("jawOpen")]
    chin = nearest(m.vertices, m.landmarks["chin"])
    assert -0.04 <= jaw[chin, 1] <= -0.01
    upper_lip = nearest(m.vertices, m.landmarks["mouth"] + [0, 0.004, 0.002])
    assert abs(jaw[upper_lip, 1]) < 0.002, "the upper lip stays"
    nose = nearest(m.vertices, m.landmarks["nose_tip"])
    assert np.all(jaw[nose] == 0)


@pytest.mark.parametrize("side", ["Left", "Right"])
def test_a_blink_moves_only_its_own_eyelid(side):
    m = made("chen")
    d = m.shapes[ARKIT.index(f"eyeBlink{side}")]
    moved = np.linalg.norm(d, axis=1) > 1e-6
    eye = m.landmarks[f"eye_{side.lower()}"]
    sign = 1.0 if side == "Left" else -1.0  # the character's left is +X
    assert np.all(m.vertices[moved, 0] * sign > 0)
    assert np.linalg.norm(m.vertices[moved] - eye, axis=1).max() < 0.035
    # the upper lid comes down over the eye; the eyeball itself stays
    assert d[moved, 1].min() < -0.008
    eyeball = np.isin(m.zones, [C.ZONES.index(z) for z in ("sclera", "iris", "pupil")])
    assert not np.any(moved & eyeball)


def test_right_shapes_mirror_the_left_ones():
    m = made("chen")
    idx, dist = mirror_index(m.vertices)
    ok = dist < 2e-4
    for name in ("eyeBlink", "mouthSmile", "browOuterUp", "cheekSquint", "noseSneer", "mouthUpperUp"):
        left = m.shapes[ARKIT.index(name + "Left")]
        right = m.shapes[ARKIT.index(name + "Right")]
        err = np.abs(right[idx[ok]] * [-1, 1, 1] - left[ok]).max()
        assert err < 0.001, f"{name}Right is not the mirror of {name}Left ({err})"
    look_out = m.shapes[ARKIT.index("eyeLookOutLeft")]
    iris = m.zones == C.ZONES.index("pupil")
    left_pupil = iris & (m.vertices[:, 0] > 0)
    assert look_out[left_pupil, 0].mean() > 0.002, "looking out turns the left pupil towards +X"


def test_zones_dress_the_character():
    m = made("ada")  # long sleeves, a bun
    Z = {z: i for i, z in enumerate(C.ZONES)}
    zone_at = {k: C.ZONES[m.zones[nearest(m.vertices, p)]] for k, p in {
        "chest": m.landmarks["head"] + [0, -0.35, 0.12], "thigh": [0.09, 0.6, 0.08], "toe": [0.09, 0.03, 0.18],
        "crown": m.landmarks["head"] + [0, 0.25, 0], "nose": m.landmarks["nose_tip"],
        "finger": m.skeleton.rest_end_sites()["leftMiddleDistal"]}.items()}
    assert zone_at == {"chest": "shirt", "thigh": "trousers", "toe": "shoes", "crown": "hair", "nose": "skin",
                       "finger": "skin"}
    for z in ("sclera", "iris", "brow", "lips", "mouth", "lashes"):
        assert np.sum(m.zones == Z[z]) > 10, z
    assert np.sum(m.zones == Z["pupil"]) >= 4  # 3.5 mm across, on a 3 mm head mesh
    assert m.colors.min() >= 0 and m.colors.max() <= 1
    skin, shirt = m.colors[m.zones == Z["skin"]].mean(0), m.colors[m.zones == Z["shirt"]].mean(0)
    assert np.abs(skin - shirt).max() > 0.05


# -- determinism, options ------------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_character(tmp_path):
    a = C.save_character(made(seed=5), tmp_path / "a.glb")
    b = C.save_character(C.generate_character(seed=5), tmp_path / "b.glb")
    assert a.read_bytes() == b.read_bytes()
    other = made(seed=6)
    same = made(seed=5)
    assert not np.allclose(other.colors.mean(0), same.colors.mean(0))
    assert len(other.vertices) != len(same.vertices) or not np.allclose(other.vertices, same.vertices)


def test_options_are_checked_with_the_offending_value():
    with pytest.raises(UsageError, match="'zed'"):
        C.generate_character(preset="zed")
    with pytest.raises(UsageError, match="'muscular'"):
        C.generate_character(build="muscular")
    with pytest.raises(UsageError, match="3.5"):
        C.generate_character(height_m=3.5)
    with pytest.raises(UsageError, match="'tail'"):
        C.generate_character(proportions={"tail": 1.2})
    with pytest.raises(UsageError, match=r"\.fbx"):
        C.save_character(made("chen"), "x.fbx")


def test_importing_the_module_loads_no_meshing_library():
    code = "import sys, retarget.character; print(sorted(m for m in ('skimage', 'scipy', 'bpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- the file ----------------------------------------------------------------------------------


def test_glb_validates_and_loads_as_a_canonical_rig(chen_glb):
    m = made("chen")
    assert gltf.validate_glb(chen_glb) == []
    rig = load_rig(chen_glb)
    assert rig.bonemap is not None and rig.bonemap.name in ("canonical", "vrm")
    assert rig.skeleton.names == canonical_skeleton().names
    np.testing.assert_allclose(rig.rest_positions(), m.skeleton.rest_positions(), atol=1e-6)
    np.testing.assert_allclose(rig.facing(), [0, 0, 1], atol=1e-9)
    (mesh,) = rig.meshes
    np.testing.assert_allclose(mesh.vertices, m.vertices, atol=1e-5)
    np.testing.assert_array_equal(mesh.faces, m.faces)
    assert mesh.morph_target_names == tuple(ARKIT)
    np.testing.assert_allclose(mesh.morph_targets, m.shapes, atol=1e-7)
    doc = gltf.load_gltf(chen_glb)
    prim = doc.meshes[0].primitives[0]
    assert set(prim.attributes) == {"POSITION", "NORMAL", "COLOR_0", "JOINTS_0", "WEIGHTS_0"}
    assert doc.extra["extras"]["understudy_character"]["preset"] == "chen"
    # a still pose skins back onto the rest mesh; bending the elbow moves only the arm
    from mocap.glossary import A2Q
    from mocap.motion import Motion

    sk = rig.skeleton
    Q = np.tile([1.0, 0, 0, 0], (2, len(sk), 1))
    Q[1, sk.index("leftLowerArm")] = A2Q(np.array([0.0, -np.pi / 2, 0.0]))
    mo = Motion(skeleton=sk, rotations=Q, root_positions=np.repeat(sk.offsets[:1], 2, axis=0), fps=30)
    V = skin_vertices(rig, mo)
    np.testing.assert_allclose(V[0], m.vertices, atol=1e-5)
    moved = np.linalg.norm(V[1] - V[0], axis=1) > 1e-4
    assert np.all(m.vertices[moved, 0] > 0.2)
    tip = nearest(m.vertices, m.skeleton.rest_end_sites()["leftMiddleDistal"])
    assert V[1, tip, 2] > m.vertices[tip, 2] + 0.3  # the hand swings forward (+Z)


BLENDER = textwrap.dedent(
    """
    import json, sys
    import bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)
    res = bpy.ops.import_scene.gltf(filepath=sys.argv[1])
    arm = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    body = bpy.data.objects["body"]
    keys = [k.name for k in body.data.shape_keys.key_blocks]
    print("RESULT" + json.dumps({"result": list(res), "armatures": len(arm), "bones": len(arm[0].data.bones),
          "keys": keys, "vertices": len(body.data.vertices), "groups": len(body.vertex_groups),
          "colors": len(body.data.color_attributes), "armature_modifier": any(m.type == "ARMATURE"
          for m in body.modifiers)}))
    """
)


def test_blender_imports_an_armature_and_52_shape_keys(chen_glb):
    pytest.importorskip("bpy", reason="bpy 5.0.1 is installed by scripts/setup.sh (the blender extra)")
    res = subprocess.run([sys.executable, "-c", BLENDER, str(chen_glb)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    got = json.loads([x for x in res.stdout.splitlines() if x.startswith("RESULT")][-1][len("RESULT"):])
    assert got["result"] == ["FINISHED"] and got["armatures"] == 1 and got["bones"] == 52
    assert got["keys"] == ["Basis", *ARKIT]
    assert got["vertices"] == len(made("chen").vertices)
    assert got["groups"] == 52 and got["colors"] >= 1 and got["armature_modifier"]


# -- the check ---------------------------------------------------------------------------------


def test_character_check_on_the_walk_is_within_tolerances(chen_glb):
    walk = shared_file("mocap/cmu_131_01_walk.bvh")
    r = C.character_check(chen_glb, motions=[walk], frame_step=8, height_m=C.PRESETS["chen"]["height_m"])
    assert r["passed"], r["failures"]
    assert r["watertight"] and r["joints"] == 52 and r["shape_keys"] == 52 and r["bonemap"] in ("canonical", "vrm")
    assert r["max_influences"] <= 4 and r["weight_sum_error"] < 1e-4
    w = r["motions"]["cmu_131_01_walk"]
    assert w["frames"] >= 100
    # the figures the tolerances are about, and that the walk really bends the joints
    assert w["max_offset_ratio"] < 0.75 and w["max_edge_stretch"] < 6 and w["volume_change"] < 0.05
    for h in ("left_elbow", "right_elbow", "left_knee", "right_knee"):
        assert w[h]["max_flexion_deg"] > 60, h
        assert w[h]["volume_change"] > -0.40, (h, w[h])
    assert w["arm_in_torso_share"] < 0.02 <= w["arm_in_torso_share_max"] + 0.02
    json.dumps(r)  # JSON-ready


def test_character_check_catches_a_torn_mesh_and_a_flying_vertex(tmp_path):
    m = made("chen")
    doc = C.character_document(m)
    prim = doc.meshes[0].primitives[0]
    prim.indices = prim.indices[3:]  # one triangle missing: a hole
    w = prim.attributes["WEIGHTS_0"].copy()
    j = prim.attributes["JOINTS_0"].copy()
    v = nearest(m.vertices, m.landmarks["nose_tip"])  # the nose tip follows the left foot
    j[v] = [m.skeleton.index("leftFoot"), 0, 0, 0]
    w[v] = [1, 0, 0, 0]
    prim.attributes["WEIGHTS_0"], prim.attributes["JOINTS_0"] = w, j
    bad = gltf.write_glb(doc, tmp_path / "bad.glb")
    walk = shared_file("mocap/cmu_131_01_walk.bvh")
    r = C.character_check(bad, motions=[walk], frame_step=40)
    assert not r["passed"] and not r["watertight"]
    text = " ".join(r["failures"])
    assert "not closed" in text and "stretched" in text
